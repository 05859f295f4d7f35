use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Authenticator, AuthenticatorId, ConsumeOutcome, EnrollmentStore, PendingEnrollment,
    RecoveryStore, ResyncCandidate, StepStore, StoreError, SyncState, ThrottleStore, UserStatus,
};
use crate::clock::UnixTime;
use crate::recovery::RecoveryHash;
use crate::seal::SealedSecret;
use crate::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use crate::user::UserId;

/// Shards keep threads verifying different users off each other's lock.
const SHARDS: usize = 32;

/// The embedded default store: everything in process memory, gone at exit.
///
/// Clones share the same data. Each user's state sits behind one of 32
/// mutexes, held only for the few instructions of one operation, which makes
/// every operation atomic.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    shards: Arc<[Mutex<HashMap<UserId, UserRecord>>]>,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct UserRecord {
    epoch: u64,
    authenticators: Vec<Authenticator>,
    /// Boxed: a pending enrollment is rare and short-lived, and inline it
    /// would make every user's record about 100 bytes larger.
    pending: Option<Box<PendingEnrollment>>,
    recovery: Vec<RecoveryHash>,
    throttle: ThrottleState,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// How many users have any state.
    pub fn user_count(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    fn shard(&self, user: &UserId) -> MutexGuard<'_, HashMap<UserId, UserRecord>> {
        let index = self.hasher.hash_one(user) as usize % SHARDS;
        lock(&self.shards[index])
    }

    /// Run `f` on the user's record, creating it if needed.
    fn with_user<T>(&self, user: &UserId, f: impl FnOnce(&mut UserRecord) -> T) -> T {
        let mut shard = self.shard(user);
        f(shard.entry(user.clone()).or_default())
    }

    /// Run `f` on the user's record if it exists.
    fn read_user<T>(&self, user: &UserId, f: impl FnOnce(&UserRecord) -> T) -> Option<T> {
        self.shard(user).get(user).map(f)
    }
}

/// A poisoned lock means a panic happened while holding it; each operation
/// leaves a record consistent before anything can panic, so the data is
/// still good to use.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn find<'a>(record: &'a mut UserRecord, id: &AuthenticatorId) -> Option<&'a mut Authenticator> {
    record.authenticators.iter_mut().find(|a| &a.id == id)
}

#[async_trait]
impl EnrollmentStore for MemoryStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        Ok(self
            .read_user(user, |r| UserStatus {
                epoch: r.epoch,
                enrolled: !r.authenticators.is_empty(),
            })
            .unwrap_or_default())
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        Ok(self
            .read_user(user, |r| r.authenticators.clone())
            .unwrap_or_default())
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
    ) -> Result<(), StoreError> {
        self.with_user(user, |r| r.pending = Some(Box::new(pending)));
        Ok(())
    }

    async fn pending(&self, user: &UserId) -> Result<Option<PendingEnrollment>, StoreError> {
        Ok(self
            .read_user(user, |r| r.pending.as_deref().cloned())
            .flatten())
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        pending_id: &AuthenticatorId,
        step: u64,
        offset: i64,
        now: UnixTime,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.with_user(user, |r| {
            if r.pending.as_ref().map(|p| &p.id) != Some(pending_id) {
                return None;
            }
            let pending = *r.pending.take()?;
            if let Some(old) = &pending.replaces {
                r.authenticators.retain(|a| &a.id != old);
            }
            // Room for exactly one more: a first push would reserve four,
            // and nearly every user has one authenticator.
            r.authenticators.reserve_exact(1);
            r.authenticators.push(Authenticator {
                id: pending.id,
                name: pending.name,
                secret: pending.secret,
                params: pending.params,
                created_at: now,
                sync: SyncState {
                    last_step: Some(step),
                    offset,
                    resync: None,
                },
            });
            r.epoch += 1;
            Some(r.epoch)
        }))
    }

    async fn revoke(&self, user: &UserId, id: &AuthenticatorId) -> Result<bool, StoreError> {
        Ok(self.with_user(user, |r| {
            let before = r.authenticators.len();
            r.authenticators.retain(|a| &a.id != id);
            let removed = r.authenticators.len() != before;
            if removed {
                r.epoch += 1;
            }
            removed
        }))
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<bool, StoreError> {
        Ok(self.with_user(user, |r| match find(r, id) {
            Some(a) => {
                a.secret = secret;
                true
            }
            None => false,
        }))
    }

    async fn reset(&self, user: &UserId) -> Result<(), StoreError> {
        self.with_user(user, |r| {
            r.authenticators.clear();
            r.pending = None;
            r.recovery.clear();
            r.epoch += 1;
        });
        Ok(())
    }
}

#[async_trait]
impl StepStore for MemoryStore {
    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        // One lock for the compare-and-set and the throttle reset: no other
        // call sees the step spent with the failures still counted.
        Ok(self.with_user(user, |r| match find(r, id) {
            None => ConsumeOutcome::NotFound,
            Some(a) if a.sync.last_step.is_some_and(|last| step <= last) => {
                ConsumeOutcome::Replayed
            }
            Some(a) => {
                a.sync = SyncState {
                    last_step: Some(step),
                    offset,
                    resync: None,
                };
                r.throttle = ThrottleState::default();
                ConsumeOutcome::Consumed
            }
        }))
    }

    async fn set_resync_candidate(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        candidate: ResyncCandidate,
    ) -> Result<(), StoreError> {
        self.with_user(user, |r| {
            if let Some(a) = find(r, id) {
                a.sync.resync = Some(candidate);
            }
        });
        Ok(())
    }
}

#[async_trait]
impl ThrottleStore for MemoryStore {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        Ok(self.with_user(user, |r| r.throttle.begin(now, policy)))
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.with_user(user, |r| r.throttle = ThrottleState::default());
        Ok(())
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        Ok(self.read_user(user, |r| r.throttle).unwrap_or_default())
    }
}

#[async_trait]
impl RecoveryStore for MemoryStore {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        mut hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        // Kept for a long time: drop the spare capacity a collected `Vec`
        // may carry (ten codes collected one by one reserve sixteen).
        hashes.shrink_to_fit();
        self.with_user(user, |r| r.recovery = hashes);
        Ok(())
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<bool, StoreError> {
        Ok(self.with_user(user, |r| {
            // Compare against every stored hash, constant-time, before removing.
            let mut found = None;
            for (i, stored) in r.recovery.iter().enumerate() {
                if stored.ct_eq(hash) {
                    found = Some(i);
                }
            }
            match found {
                Some(i) => {
                    r.recovery.swap_remove(i);
                    true
                }
                None => false,
            }
        }))
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self.read_user(user, |r| r.recovery.len()).unwrap_or(0))
    }
}
