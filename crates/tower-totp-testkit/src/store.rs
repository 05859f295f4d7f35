//! [`TestStore`]: a store wrapper that forwards every store trait to an
//! inner store, counts the calls per [`Op`], and fails the operations a
//! test switches off.
//!
//! ```
//! use tower_totp::UserId;
//! use tower_totp::store::{EnrollmentStore, MemoryStore, StatusLookup};
//! use tower_totp_testkit::store::{Op, TestStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = TestStore::new(MemoryStore::new());
//! let alice = UserId::new("alice");
//! store.status(&alice).await.unwrap();
//! assert_eq!(store.count(Op::Status), 1);
//!
//! store.fail(Op::Status);
//! assert!(store.status(&alice).await.is_err());
//! assert_eq!(store.count(Op::Status), 2, "a failed call counts too");
//!
//! // The synchronous lookup has no error to give: switched off, it is
//! // not at hand, and the caller's `status` fails.
//! assert_eq!(store.status_now(&alice), StatusLookup::NotAtHand);
//! store.restore(Op::Status);
//! assert!(matches!(store.status_now(&alice), StatusLookup::Found(_)));
//! assert_eq!(store.count(Op::StatusNow), 2);
//! # });
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, MemoryStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome,
    RecoveryStore, ResealOutcome, ResyncCandidate, RevokeOutcome, StepStore, StoreError,
    ThrottleStore, UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};

/// One store operation: a method of one of the store traits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // Each is the trait method of the same name.
pub enum Op {
    Status,
    StatusNow,
    Authenticators,
    PutPending,
    Pending,
    BeginConfirmation,
    RemovePending,
    ActivatePending,
    Revoke,
    Reseal,
    Reset,
    BeginVerification,
    ConsumeStep,
    RecordMiss,
    BeginAttempt,
    ClearThrottle,
    ThrottleState,
    ReplaceRecoveryCodes,
    ConsumeRecoveryCode,
    RecoveryCodesLeft,
}

impl Op {
    /// Every operation, in the traits' order.
    pub const ALL: [Self; 20] = [
        Self::Status,
        Self::StatusNow,
        Self::Authenticators,
        Self::PutPending,
        Self::Pending,
        Self::BeginConfirmation,
        Self::RemovePending,
        Self::ActivatePending,
        Self::Revoke,
        Self::Reseal,
        Self::Reset,
        Self::BeginVerification,
        Self::ConsumeStep,
        Self::RecordMiss,
        Self::BeginAttempt,
        Self::ClearThrottle,
        Self::ThrottleState,
        Self::ReplaceRecoveryCodes,
        Self::ConsumeRecoveryCode,
        Self::RecoveryCodesLeft,
    ];

    /// The trait method's name (`consume_step`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::StatusNow => "status_now",
            Self::Authenticators => "authenticators",
            Self::PutPending => "put_pending",
            Self::Pending => "pending",
            Self::BeginConfirmation => "begin_confirmation",
            Self::RemovePending => "remove_pending",
            Self::ActivatePending => "activate_pending",
            Self::Revoke => "revoke",
            Self::Reseal => "reseal",
            Self::Reset => "reset",
            Self::BeginVerification => "begin_verification",
            Self::ConsumeStep => "consume_step",
            Self::RecordMiss => "record_miss",
            Self::BeginAttempt => "begin_attempt",
            Self::ClearThrottle => "clear_throttle",
            Self::ThrottleState => "throttle_state",
            Self::ReplaceRecoveryCodes => "replace_recovery_codes",
            Self::ConsumeRecoveryCode => "consume_recovery_code",
            Self::RecoveryCodesLeft => "recovery_codes_left",
        }
    }
}

/// What the clones of one [`TestStore`] share.
#[derive(Debug, Default)]
struct Switches {
    /// Every operation fails.
    down: AtomicBool,
    /// These operations fail.
    failing: Mutex<BTreeSet<Op>>,
    /// Yield to the runtime before each call.
    yielding: AtomicBool,
    /// Calls per operation, indexed like [`Op::ALL`].
    counts: [AtomicUsize; Op::ALL.len()],
    /// Every call, in order.
    log: Mutex<Vec<Op>>,
}

/// A store that forwards every call to `inner` (the memory store by
/// default), first counting and logging it, then failing it with
/// [`StoreError::unavailable`] when the test switched the operation (or the
/// whole store) off. Clones share the inner store, the counts and the
/// switches.
#[derive(Debug, Clone, Default)]
pub struct TestStore<S = MemoryStore> {
    inner: S,
    switches: Arc<Switches>,
}

impl<S> TestStore<S> {
    /// Wrap `inner`: everything works, nothing counted yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            switches: Arc::default(),
        }
    }

    /// The wrapped store (calls to it are not counted).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Make every call fail (`true`) or work again (`false`); the
    /// operations switched off one by one stay off.
    pub fn set_down(&self, down: bool) {
        self.switches.down.store(down, Ordering::SeqCst);
    }

    /// Make every call of `op` fail, until [`TestStore::restore`].
    pub fn fail(&self, op: Op) {
        lock(&self.switches.failing).insert(op);
    }

    /// Let `op` work again.
    pub fn restore(&self, op: Op) {
        lock(&self.switches.failing).remove(&op);
    }

    /// Yield to the runtime before every call, so that requests driven
    /// together (`tokio::join!`) interleave at each store call, as they
    /// would on a busy server.
    pub fn set_yielding(&self, yielding: bool) {
        self.switches.yielding.store(yielding, Ordering::SeqCst);
    }

    /// Calls of `op` so far (failed ones included).
    pub fn count(&self, op: Op) -> usize {
        self.switches.counts[op as usize].load(Ordering::SeqCst)
    }

    /// Calls of every operation so far.
    pub fn calls(&self) -> usize {
        Op::ALL.iter().map(|op| self.count(*op)).sum()
    }

    /// The operations called so far, in order.
    pub fn log(&self) -> Vec<Op> {
        lock(&self.switches.log).clone()
    }

    /// The names of the operations called so far, in order.
    pub fn call_log(&self) -> Vec<&'static str> {
        self.log().into_iter().map(Op::name).collect()
    }

    /// Forget the calls logged so far (the counts go on).
    pub fn clear_call_log(&self) {
        lock(&self.switches.log).clear();
    }

    /// Count and log a call of `op`; whether it is switched off (the
    /// whole store, or `op` or `also` alone).
    fn enter_now(&self, op: Op, also: Op) -> bool {
        let s = &self.switches;
        s.counts[op as usize].fetch_add(1, Ordering::SeqCst);
        lock(&s.log).push(op);
        let failing = lock(&s.failing);
        s.down.load(Ordering::SeqCst) || failing.contains(&op) || failing.contains(&also)
    }

    /// Count and log a call of `op`; its error if `op` is switched off.
    async fn enter(&self, op: Op) -> Result<(), StoreError> {
        let s = &self.switches;
        if s.yielding.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        s.counts[op as usize].fetch_add(1, Ordering::SeqCst);
        lock(&s.log).push(op);
        if s.down.load(Ordering::SeqCst) || lock(&s.failing).contains(&op) {
            return Err(StoreError::unavailable(std::io::Error::other(format!(
                "{} switched off by the test",
                op.name()
            ))));
        }
        Ok(())
    }
}

/// A poisoned lock only means another test thread panicked: keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl<S: EnrollmentStore> EnrollmentStore for TestStore<S> {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.enter(Op::Status).await?;
        self.inner.status(user).await
    }

    /// Counted as [`Op::StatusNow`]. Switched off (the whole store,
    /// [`Op::StatusNow`] or [`Op::Status`]) it answers `NotAtHand`, so the
    /// caller awaits `status`, which then fails: a synchronous lookup has no
    /// error to give. Not at hand either while the store yields
    /// ([`TestStore::set_yielding`]): a synchronous call cannot yield, and
    /// requests should still interleave at their status.
    fn status_now(&self, user: &UserId) -> tower_totp::store::StatusLookup {
        let off = self.enter_now(Op::StatusNow, Op::Status);
        if off || self.switches.yielding.load(Ordering::SeqCst) {
            return tower_totp::store::StatusLookup::NotAtHand;
        }
        self.inner.status_now(user)
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        self.enter(Op::Authenticators).await?;
        self.inner.authenticators(user).await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        self.enter(Op::PutPending).await?;
        self.inner.put_pending(user, pending, limits).await
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        self.enter(Op::Pending).await?;
        self.inner.pending(user, id).await
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        self.enter(Op::BeginConfirmation).await?;
        self.inner
            .begin_confirmation(user, id, now, policy, digits)
            .await
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        self.enter(Op::RemovePending).await?;
        self.inner.remove_pending(user, id).await
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        self.enter(Op::ActivatePending).await?;
        self.inner.activate_pending(user, activation).await
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        self.enter(Op::Revoke).await?;
        self.inner.revoke(user, id).await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        self.enter(Op::Reseal).await?;
        self.inner.reseal(user, id, secret).await
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        self.enter(Op::Reset).await?;
        self.inner.reset(user, now).await
    }
}

#[async_trait]
impl<S: StepStore> StepStore for TestStore<S> {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        self.enter(Op::BeginVerification).await?;
        self.inner
            .begin_verification(user, now, policy, digits)
            .await
    }

    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        self.enter(Op::ConsumeStep).await?;
        self.inner.consume_step(user, id, step, offset).await
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        self.enter(Op::RecordMiss).await?;
        self.inner.record_miss(user, candidate).await
    }
}

#[async_trait]
impl<S: ThrottleStore> ThrottleStore for TestStore<S> {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        self.enter(Op::BeginAttempt).await?;
        self.inner.begin_attempt(user, now, policy).await
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.enter(Op::ClearThrottle).await?;
        self.inner.clear_throttle(user).await
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        self.enter(Op::ThrottleState).await?;
        self.inner.throttle_state(user).await
    }
}

#[async_trait]
impl<S: RecoveryStore> RecoveryStore for TestStore<S> {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        self.enter(Op::ReplaceRecoveryCodes).await?;
        self.inner.replace_recovery_codes(user, hashes).await
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        self.enter(Op::ConsumeRecoveryCode).await?;
        self.inner.consume_recovery_code(user, hash).await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.enter(Op::RecoveryCodesLeft).await?;
        self.inner.recovery_codes_left(user).await
    }
}
