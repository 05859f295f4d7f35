use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use hashbrown::HashTable;

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

mod record;

use record::{PackedUser, Unpacked, recovery_prefix};

/// Shards keep threads verifying different users off each other's lock.
const SHARDS: usize = 32;
/// Which bits of a user's hash pick the shard: above those the table's
/// buckets use (the low bits, 2^19 buckets at ten million users) and below
/// its seven control bits (the top ones), so neither loses entropy within a
/// shard.
const SHARD_SHIFT: u32 = 40;

/// The embedded default store: everything in process memory, gone at exit.
///
/// Clones share the same data. Each user's state sits behind one of 32
/// mutexes, held only for the few instructions of one operation, which makes
/// every operation atomic.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    shards: Arc<[Mutex<Shard>]>,
    hasher: RandomState,
}

/// One shard's users. Each record is one allocation holding its own key
/// (`record.rs`; bytes per user: `docs/performance.md`, tool `scale`), so
/// the table holds nothing but a pointer and a length per user.
#[derive(Debug, Default)]
struct Shard {
    users: HashTable<PackedUser>,
    /// What few users have: pending enrollments, the time of a reset. A
    /// user's record says whether it has an entry here, so the common
    /// user costs no second lookup.
    rare: HashMap<UserId, Rare>,
}

/// The parts of a user's record that most users do not have.
#[derive(Debug, Default)]
struct Rare {
    /// Each owned by the session that started it; short-lived.
    pending: Vec<PendingEnrollment>,
    /// Set by a reset: logins at or before it are over.
    sessions_ended_at: Option<UnixTime>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.sessions_ended_at.is_none()
    }
}

/// A damaged packed record: a bug, never a user's doing; the store fails
/// closed on it.
#[derive(Debug, thiserror::Error)]
#[error("a memory store record does not unpack")]
struct Damaged;

fn damaged() -> StoreError {
    StoreError::corrupt(Damaged)
}

/// The user's record and their rare state, under the shard's lock.
struct UserRecord<'a> {
    user: &'a UserId,
    packed: &'a mut PackedUser,
    rare: &'a mut HashMap<UserId, Rare>,
}

impl UserRecord<'_> {
    fn rare(&self) -> Option<&Rare> {
        if self.packed.has_rare() {
            self.rare.get(self.user)
        } else {
            None
        }
    }

    fn pending(&self) -> &[PendingEnrollment] {
        self.rare().map_or(&[], |r| &r.pending)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.packed.set_has_rare(true);
        self.rare.entry(self.user.clone()).or_default()
    }

    /// Forget the rare state once it holds nothing.
    fn tidy(&mut self) {
        if self.rare().is_some_and(Rare::is_empty) {
            self.rare.remove(self.user);
        }
        if self.packed.has_rare() && !self.rare.contains_key(self.user) {
            self.packed.set_has_rare(false);
        }
    }

    /// Take the record apart, change it with `f`, pack it again: for the
    /// rare changes that resize it.
    fn repack<T>(&mut self, f: impl FnOnce(&mut Unpacked) -> T) -> Result<T, StoreError> {
        let mut unpacked = self.packed.unpack().ok_or_else(damaged)?;
        let out = f(&mut unpacked);
        *self.packed = unpacked.pack(self.user.as_str().as_bytes());
        Ok(out)
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
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// How many users have any state.
    pub fn user_count(&self) -> usize {
        self.shards.iter().map(|s| lock(s).users.len()).sum()
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
                let mut shard = lock(shard);
                let before = shard.users.len();
                shard.users.retain(|r| {
                    let forgettable = r.epoch() == 0
                        && !r.has_rare()
                        && r.authenticator_count() == 0
                        && r.recovery_count() == 0
                        && r.throttle().is_forgettable(now, policy);
                    !forgettable
                });
                before - shard.users.len()
            })
            .sum()
    }

    /// The user's hash: its middle bits pick the shard, the whole of it
    /// finds the record in the shard's table (one SipHash per call).
    fn hash(&self, user: &UserId) -> u64 {
        self.hasher.hash_one(user.as_str().as_bytes())
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        lock(&self.shards[(hash >> SHARD_SHIFT) as usize % SHARDS])
    }

    /// Run `f` on the user's record, creating it if needed.
    fn with_user<T>(&self, user: &UserId, f: impl FnOnce(&mut UserRecord<'_>) -> T) -> T {
        let hash = self.hash(user);
        let key = user.as_str().as_bytes();
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        let packed = shard
            .users
            .entry(hash, |r| r.key() == key, |r| self.hasher.hash_one(r.key()))
            .or_insert_with(|| PackedUser::new(key))
            .into_mut();
        f(&mut UserRecord {
            user,
            packed,
            rare: &mut shard.rare,
        })
    }

    /// Run `f` on the user's record if it exists.
    fn read_user<T>(&self, user: &UserId, f: impl FnOnce(&UserRecord<'_>) -> T) -> Option<T> {
        self.write_user(user, |r| f(r))
    }

    /// Run `f` on the user's record if it exists, without creating one.
    fn write_user<T>(&self, user: &UserId, f: impl FnOnce(&mut UserRecord<'_>) -> T) -> Option<T> {
        let hash = self.hash(user);
        let key = user.as_str().as_bytes();
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        let packed = shard.users.find_mut(hash, |r| r.key() == key)?;
        Some(f(&mut UserRecord {
            user,
            packed,
            rare: &mut shard.rare,
        }))
    }
}

/// A poisoned lock means a panic happened while holding it; each operation
/// leaves a record consistent before anything can panic, so the data is
/// still good to use.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    /// The user's status (a missing record is epoch 0, nothing enrolled).
    /// A damaged record is an error, never "not enrolled": that could let
    /// an enrolled user in with the password alone.
    fn status_of(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.read_user(user, status_of_record)
            .unwrap_or(Ok(UserStatus::default()))
    }
}

/// What [`EnrollmentStore::status`] answers for this record.
fn status_of_record(r: &UserRecord<'_>) -> Result<UserStatus, StoreError> {
    Ok(UserStatus {
        epoch: r.packed.epoch(),
        enrolled: r.packed.checked_authenticator_count().ok_or_else(damaged)? > 0,
        sessions_ended_at: r.rare().and_then(|x| x.sessions_ended_at),
    })
}

/// [`ThrottleState::begin`] on the record's throttle, under its lock.
fn charge(r: &mut UserRecord<'_>, now: UnixTime, policy: &ThrottlePolicy) -> Attempt {
    let mut throttle = r.packed.throttle();
    let attempt = throttle.begin(now, policy);
    r.packed.set_throttle(throttle);
    attempt
}

/// [`EnrollmentStore::activate_pending`] on one record, under its lock.
fn activate(r: &mut UserRecord<'_>, activation: &Activation) -> Result<Activated, StoreError> {
    let Some(at) = r
        .pending()
        .iter()
        .position(|p| p.id == activation.pending_id)
    else {
        return Ok(Activated::NoPending);
    };
    let had_any = r.packed.authenticator_count() > 0;
    if activation.first_only && had_any {
        return Ok(Activated::AlreadyEnrolled);
    }
    let replaces = r.pending()[at].replaces.clone();
    let staying = r
        .packed
        .authenticators()
        .ok_or_else(damaged)?
        .iter()
        .filter(|a| Some(&a.id) != replaces.as_ref())
        .count();
    if staying >= activation.max_authenticators {
        return Ok(Activated::TooMany);
    }
    let pending = r.rare_mut().pending.swap_remove(at);
    r.tidy();
    r.repack(|u| {
        if let Some(old) = &replaces {
            u.authenticators.retain(|a| &a.id != old);
        }
        u.authenticators.push(Authenticator {
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
        u.epoch += 1;
        u.throttle = ThrottleState::default();
        let recovery_issued = !had_any || u.recovery.is_empty();
        if recovery_issued {
            u.recovery = activation.recovery.iter().map(recovery_prefix).collect();
        }
        Activated::Done {
            epoch: u.epoch,
            recovery_issued,
        }
    })
}

#[async_trait]
impl EnrollmentStore for MemoryStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.status_of(user)
    }

    /// At hand but for a damaged record, whose error the awaited `status`
    /// then reports (the layer fails closed on it).
    fn status_now(&self, user: &UserId) -> StatusLookup {
        match self.status_of(user) {
            Ok(status) => StatusLookup::Found(status),
            Err(_) => StatusLookup::NotAtHand,
        }
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        self.read_user(user, |r| r.packed.authenticators().ok_or_else(damaged))
            .unwrap_or(Ok(Vec::new()))
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
        Ok(self
            .write_user(user, |r| {
                let pending = r.pending().iter().find(|p| &p.id == id).cloned();
                let attempt = pending
                    .as_ref()
                    .filter(|p| Some(p.params.digits()) == digits)
                    .map(|_| charge(r, now, policy));
                ConfirmationStart { pending, attempt }
            })
            .unwrap_or(ConfirmationStart {
                pending: None,
                attempt: None,
            }))
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        self.write_user(user, |r| {
            if r.rare().is_some() {
                r.rare_mut().pending.retain(|p| &p.id != id);
                r.tidy();
            }
        });
        Ok(())
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        self.with_user(user, |r| activate(r, activation))
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        self.with_user(user, |r| {
            r.repack(|u| {
                let before = u.authenticators.len();
                u.authenticators.retain(|a| &a.id != id);
                if u.authenticators.len() == before {
                    return RevokeOutcome::NotFound;
                }
                u.epoch += 1;
                if u.authenticators.is_empty() {
                    u.recovery = Vec::new();
                }
                RevokeOutcome::Revoked
            })
        })
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        self.with_user(user, |r| {
            r.repack(
                |u| match u.authenticators.iter_mut().find(|a| &a.id == id) {
                    Some(a) => {
                        a.secret = secret;
                        ResealOutcome::Resealed
                    }
                    None => ResealOutcome::NotFound,
                },
            )
        })
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        self.with_user(user, |r| {
            *r.rare_mut() = Rare {
                pending: Vec::new(),
                sessions_ended_at: Some(now),
            };
            r.repack(|u| {
                u.authenticators = Vec::new();
                u.recovery = Vec::new();
                u.epoch += 1;
                u.has_rare = true;
            })
        })
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
        self.write_user(user, |r| {
            let authenticators = r.packed.authenticators().ok_or_else(damaged)?;
            let attempt = authenticators
                .iter()
                .any(|a| Some(a.params.digits()) == digits)
                .then(|| charge(r, now, policy));
            Ok(VerificationStart {
                status: status_of_record(r)?,
                authenticators,
                attempt,
            })
        })
        .unwrap_or(Ok(VerificationStart {
            status: UserStatus::default(),
            authenticators: Vec::new(),
            attempt: None,
        }))
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
        Ok(self
            .write_user(user, |r| {
                let outcome = r.packed.update_sync(id, |sync| {
                    if sync.is_used(step) {
                        return ConsumeOutcome::Replayed;
                    }
                    *sync = SyncState {
                        last_step: Some(step),
                        offset,
                        resync: None,
                    };
                    ConsumeOutcome::Consumed
                });
                if outcome == Some(ConsumeOutcome::Consumed) {
                    r.packed.set_throttle(ThrottleState::default());
                }
                outcome.unwrap_or(ConsumeOutcome::NotFound)
            })
            .unwrap_or(ConsumeOutcome::NotFound))
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        // The same lock and lookup either way; the write itself is a few
        // instructions. (No record is made for a user who has none.)
        self.write_user(user, |r| {
            if let Some((id, c)) = candidate {
                r.packed.update_sync(&id, |sync| sync.resync = Some(c));
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
        Ok(self.with_user(user, |r| charge(r, now, policy)))
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.with_user(user, |r| r.packed.set_throttle(ThrottleState::default()));
        Ok(())
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        Ok(self
            .read_user(user, |r| r.packed.throttle())
            .unwrap_or_default())
    }
}

#[async_trait]
impl RecoveryStore for MemoryStore {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        // 128 bits of each hash (`record.rs`, `docs/security.md`).
        let prefixes = hashes.iter().map(recovery_prefix).collect();
        self.with_user(user, |r| r.repack(|u| u.recovery = prefixes))
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        self.with_user(user, |r| {
            // Compared against every stored hash, constant-time, before removing.
            match r.packed.find_recovery(hash) {
                Some(i) => r.repack(|u| {
                    u.recovery.swap_remove(i);
                    RecoveryOutcome::Consumed
                }),
                None => Ok(RecoveryOutcome::NoMatch),
            }
        })
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self
            .read_user(user, |r| r.packed.recovery_count())
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A record that does not unpack is an error everywhere the status is
    /// read, never "not enrolled" (which would let an enrolled user in
    /// with the password alone where 2FA applies only to the enrolled).
    #[tokio::test]
    async fn a_damaged_record_fails_closed() {
        let store = MemoryStore::new();
        let u = UserId::new("dana");
        let now = UnixTime::from_secs(1_700_000_000);
        let policy = ThrottlePolicy::default();
        store.begin_attempt(&u, now, &policy).await.unwrap();
        store.write_user(&u, |r| *r.packed = r.packed.cut_after_key());
        assert!(store.status(&u).await.is_err());
        assert_eq!(store.status_now(&u), StatusLookup::NotAtHand);
        assert!(
            store
                .begin_verification(&u, now, &policy, Some(6))
                .await
                .is_err()
        );
    }

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
        let attempts = |u: &UserId| store.read_user(u, |r| r.packed.throttle().attempts);
        assert_eq!(attempts(&with_codes), Some(1));
        assert_eq!(attempts(&recent), Some(1));
        assert_eq!(attempts(&locked), Some(4));
        assert_eq!(store.read_user(&was_reset, |r| r.packed.epoch()), Some(1));
    }
}
