use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StatusLookup, StepStore, StoreError, SyncState,
    ThrottleStore, UserStatus, VerificationStart,
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
    /// Picks a user's shard. Not SipHash: it runs on every call, and the
    /// shard's map hashes the id again with its own SipHash anyway. Ids
    /// chosen to collide here (the seed is random, so they must first be
    /// found) only put users behind the same one of 32 locks; no map ever
    /// probes longer for it (`docs/performance.md`, bench `layer`).
    shard_hasher: foldhash::fast::RandomState,
}

#[derive(Debug, Default)]
struct UserRecord {
    epoch: u64,
    authenticators: Vec<Authenticator>,
    recovery: Vec<RecoveryHash>,
    throttle: ThrottleState,
    /// Boxed: few users have any of it (bytes per user: `docs/performance.md`, tool `scale`).
    rare: Option<Box<Rare>>,
}

/// The parts of a user's record that most users do not have.
#[derive(Debug, Default)]
struct Rare {
    /// Each owned by the session that started it; short-lived.
    pending: Vec<PendingEnrollment>,
    /// Set by a reset: logins at or before it are over.
    sessions_ended_at: Option<UnixTime>,
}

impl UserRecord {
    fn pending(&self) -> &[PendingEnrollment] {
        self.rare.as_ref().map_or(&[], |r| &r.pending)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn status(&self) -> UserStatus {
        UserStatus {
            epoch: self.epoch,
            enrolled: !self.authenticators.is_empty(),
            sessions_ended_at: self.rare.as_ref().and_then(|x| x.sessions_ended_at),
        }
    }

    /// Whether nothing but throttle state is here, and that may be forgotten.
    fn holds_only_forgettable_throttle(&self, now: UnixTime, policy: &ThrottlePolicy) -> bool {
        self.epoch == 0
            && self.authenticators.is_empty()
            && self.recovery.is_empty()
            && self
                .rare
                .as_ref()
                .is_none_or(|r| r.pending.is_empty() && r.sessions_ended_at.is_none())
            && self.throttle.is_forgettable(now, policy)
    }

    /// Free the box once it holds nothing.
    fn tidy(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.pending.is_empty() && r.sessions_ended_at.is_none())
        {
            self.rare = None;
        }
    }
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
            shard_hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// How many users have any state.
    pub fn user_count(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Forget the users whose record holds only throttle state (epoch 0,
    /// no authenticator, recovery code, pending enrollment or reset) whose
    /// lockout ended more than `policy`'s
    /// [`retention`](ThrottlePolicy::retention) before `now`; how many
    /// went. Such a record carries nothing a later decision needs: a
    /// missing record reads as epoch 0, and a fresh throttle state decides
    /// later attempts no more leniently than waiting would have, so a
    /// lockout is never shortened. Applications that throttle names nobody
    /// owns (a password throttle keyed by the typed name) call this now
    /// and then so such records do not pile up.
    pub fn prune_idle_throttles(&self, now: UnixTime, policy: &ThrottlePolicy) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut users = lock(shard);
                let before = users.len();
                users.retain(|_, r| !r.holds_only_forgettable_throttle(now, policy));
                before - users.len()
            })
            .sum()
    }

    fn shard(&self, user: &UserId) -> MutexGuard<'_, HashMap<UserId, UserRecord>> {
        let index = self.shard_hasher.hash_one(user) as usize % SHARDS;
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

/// [`EnrollmentStore::activate_pending`] on one record, under its lock.
fn activate(r: &mut UserRecord, activation: &Activation) -> Activated {
    let Some(at) = r
        .pending()
        .iter()
        .position(|p| p.id == activation.pending_id)
    else {
        return Activated::NoPending;
    };
    let had_any = !r.authenticators.is_empty();
    if activation.first_only && had_any {
        return Activated::AlreadyEnrolled;
    }
    let replaces = r.pending()[at].replaces.clone();
    let staying = r
        .authenticators
        .iter()
        .filter(|a| Some(&a.id) != replaces.as_ref())
        .count();
    if staying >= activation.max_authenticators {
        return Activated::TooMany;
    }
    let pending = r.rare_mut().pending.swap_remove(at);
    r.tidy();
    if let Some(old) = &replaces {
        r.authenticators.retain(|a| &a.id != old);
    }
    // Exactly one more slot (bytes per user: `docs/performance.md`, tool `scale`).
    r.authenticators.reserve_exact(1);
    r.authenticators.push(Authenticator {
        id: pending.id,
        name: pending.name,
        secret: pending.secret,
        params: pending.params,
        created_at: activation.now,
        sync: SyncState {
            last_step: Some(activation.step),
            offset: activation.offset,
            resync: None,
        },
    });
    r.epoch += 1;
    r.throttle = ThrottleState::default();
    let recovery_issued = !had_any || r.recovery.is_empty();
    if recovery_issued {
        let mut hashes = activation.recovery.clone();
        hashes.shrink_to_fit();
        r.recovery = hashes;
    }
    Activated::Done {
        epoch: r.epoch,
        recovery_issued,
    }
}

fn find<'a>(record: &'a mut UserRecord, id: &AuthenticatorId) -> Option<&'a mut Authenticator> {
    record.authenticators.iter_mut().find(|a| &a.id == id)
}

impl MemoryStore {
    /// The user's status (a missing record is epoch 0, nothing enrolled).
    fn status_of(&self, user: &UserId) -> UserStatus {
        self.read_user(user, UserRecord::status).unwrap_or_default()
    }
}

#[async_trait]
impl EnrollmentStore for MemoryStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        Ok(self.status_of(user))
    }

    /// Always at hand: the same lock and lookup as `status`.
    fn status_now(&self, user: &UserId) -> StatusLookup {
        StatusLookup::Found(self.status_of(user))
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
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        Ok(self.with_user(user, |r| {
            let rare = r.rare_mut();
            rare.pending
                .retain(|p| p.created_at >= limits.expired_before);
            let outcome = if rare.pending.len() >= limits.max {
                PutPending::TooMany
            } else {
                rare.pending.push(pending);
                PutPending::Stored
            };
            r.tidy();
            outcome
        }))
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        Ok(self
            .read_user(user, |r| r.pending().iter().find(|p| &p.id == id).cloned())
            .flatten())
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        // One lock for the read and the charge. No record is made for a
        // user who has none: such a user has no pending enrollment either.
        let mut shard = self.shard(user);
        let Some(r) = shard.get_mut(user) else {
            return Ok(ConfirmationStart {
                pending: None,
                attempt: None,
            });
        };
        let pending = r.pending().iter().find(|p| &p.id == id).cloned();
        let attempt = pending
            .as_ref()
            .filter(|p| Some(p.params.digits()) == digits)
            .map(|_| r.throttle.begin(now, policy));
        Ok(ConfirmationStart { pending, attempt })
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        if let Some(r) = self.shard(user).get_mut(user)
            && let Some(rare) = &mut r.rare
        {
            rare.pending.retain(|p| &p.id != id);
            r.tidy();
        }
        Ok(())
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        Ok(self.with_user(user, |r| activate(r, activation)))
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        Ok(self.with_user(user, |r| {
            let before = r.authenticators.len();
            r.authenticators.retain(|a| &a.id != id);
            if r.authenticators.len() == before {
                return RevokeOutcome::NotFound;
            }
            r.epoch += 1;
            if r.authenticators.is_empty() {
                r.recovery = Vec::new();
            }
            RevokeOutcome::Revoked
        }))
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        Ok(self.with_user(user, |r| match find(r, id) {
            Some(a) => {
                a.secret = secret;
                ResealOutcome::Resealed
            }
            None => ResealOutcome::NotFound,
        }))
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        self.with_user(user, |r| {
            r.authenticators = Vec::new();

            r.recovery = Vec::new();
            r.epoch += 1;
            r.rare = Some(Box::new(Rare {
                pending: Vec::new(),
                sessions_ended_at: Some(now),
            }));
        });
        Ok(())
    }
}

#[async_trait]
impl StepStore for MemoryStore {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        // One lock for the reads and the charge. No record is made for a
        // user who has none: such a user has no authenticator to charge for.
        let mut shard = self.shard(user);
        let Some(r) = shard.get_mut(user) else {
            return Ok(VerificationStart {
                status: UserStatus::default(),
                authenticators: Vec::new(),
                attempt: None,
            });
        };
        let attempt = r
            .authenticators
            .iter()
            .any(|a| Some(a.params.digits()) == digits)
            .then(|| r.throttle.begin(now, policy));
        Ok(VerificationStart {
            status: r.status(),
            authenticators: r.authenticators.clone(),
            attempt,
        })
    }

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

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        // The same lock and lookup either way; the write itself is a few
        // instructions. (No record is made for a user who has none.)
        if let Some(r) = self.shard(user).get_mut(user)
            && let Some((id, c)) = candidate
            && let Some(a) = find(r, &id)
        {
            a.sync.resync = Some(c);
        }
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
        // Kept long: no spare capacity (`docs/performance.md`, tool `scale`).
        hashes.shrink_to_fit();
        self.with_user(user, |r| r.recovery = hashes);
        Ok(())
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
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
                    RecoveryOutcome::Consumed
                }
                None => RecoveryOutcome::NoMatch,
            }
        }))
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self.read_user(user, |r| r.recovery.len()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn idle_throttle_only_records_are_pruned_and_nothing_else() {
        let store = MemoryStore::new();
        let policy = ThrottlePolicy::default();
        let keep = policy.retention().unwrap_or_default();
        let t0 = UnixTime::from_secs(1_700_000_000);
        for i in 0..300 {
            let ghost = UserId::new(format!("ghost-{i}"));
            store.begin_attempt(&ghost, t0, &policy).await.ok();
        }
        let prune_at = t0.saturating_add(keep + Duration::from_millis(1));
        let with_codes = UserId::new("with-codes");
        let codes = vec![RecoveryHash::from_bytes([7; 32])];
        store.replace_recovery_codes(&with_codes, codes).await.ok();
        store.begin_attempt(&with_codes, t0, &policy).await.ok();
        let was_reset = UserId::new("was-reset");
        store.reset(&was_reset, t0).await.ok();
        let recent = UserId::new("recent");
        let a_second_before = prune_at.saturating_sub(Duration::from_secs(1));
        store
            .begin_attempt(&recent, a_second_before, &policy)
            .await
            .ok();
        let locked = UserId::new("locked");
        for _ in 0..4 {
            store.begin_attempt(&locked, prune_at, &policy).await.ok();
        }
        assert_eq!(store.user_count(), 304);

        assert_eq!(
            store.prune_idle_throttles(t0.saturating_add(keep), &policy),
            0
        );
        assert_eq!(store.prune_idle_throttles(prune_at, &policy), 300);
        assert_eq!(store.user_count(), 4);
        let attempts = |u: &UserId| store.read_user(u, |r| r.throttle.attempts);
        assert_eq!(attempts(&with_codes), Some(1));
        assert_eq!(attempts(&recent), Some(1));
        assert_eq!(attempts(&locked), Some(4));
        assert_eq!(store.read_user(&was_reset, |r| r.epoch), Some(1));
    }
}
