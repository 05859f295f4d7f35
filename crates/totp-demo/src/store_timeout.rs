//! A bound on every store call: [`Bounded`] wraps the TOTP store and the
//! session store and fails a call that has not answered within the store
//! timeout (`--store-timeout-ms`, default [`STORE_TIMEOUT`]).
//!
//! Why here and not only in the Redis connection: the layer waits for each
//! store call as long as the store takes, and the Redis store's own bounds
//! add up (a connection attempt and its retry, then the reply: about three
//! seconds, see `tower_totp_redis::connection_config`); SQLite waits for
//! its lock, other backends for their pools. One deadline per call, the
//! same for every backend, is what an operator can reason about: a guarded
//! request behind a partitioned store gets its 503 after about one store
//! timeout, since the first call that fails ends the request.
//!
//! A call cut off may still complete at the store (a script that ran but
//! whose reply is late). The answer is then a 503 for something that took
//! effect: a code consumed, an attempt charged, a recovery code used. That
//! errs on the closed side: nothing is let through that the store did not
//! confirm in time.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StatusLookup, StepStore, StoreError,
    ThrottleStore, UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};

/// The store timeout unless `--store-timeout-ms` (or
/// [`DemoConfig::store_timeout`](crate::DemoConfig::store_timeout)) says
/// otherwise: one second, the Redis store's own response timeout.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(1000);

/// A store call that did not answer within the store timeout.
#[derive(Debug, thiserror::Error)]
#[error("the store did not answer within {} ms", .0.as_millis())]
pub(crate) struct TimedOut(Duration);

/// `inner` with every call bounded by `timeout`. Cheap to clone when the
/// inner store is.
#[derive(Debug, Clone)]
pub(crate) struct Bounded<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Bounded<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// `call`'s answer, or an unavailable store once the timeout passed.
    async fn bound<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable(TimedOut(self.timeout))))
    }

    /// The same for the session store, whose error is its own type.
    async fn bound_session<T>(
        &self,
        call: impl Future<Output = session_store::Result<T>>,
    ) -> session_store::Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(session_store::Error::Backend(
                    TimedOut(self.timeout).to_string(),
                ))
            })
    }
}

#[async_trait]
impl<S: EnrollmentStore> EnrollmentStore for Bounded<S> {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.bound(self.inner.status(user)).await
    }

    /// Synchronous, nothing to wait for: the inner store's answer.
    fn status_now(&self, user: &UserId) -> StatusLookup {
        self.inner.status_now(user)
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        self.bound(self.inner.authenticators(user)).await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        self.bound(self.inner.put_pending(user, pending, limits))
            .await
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        self.bound(self.inner.pending(user, id)).await
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        self.bound(self.inner.begin_confirmation(user, id, now, policy, digits))
            .await
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        self.bound(self.inner.remove_pending(user, id)).await
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        self.bound(self.inner.activate_pending(user, activation))
            .await
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        self.bound(self.inner.revoke(user, id)).await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        self.bound(self.inner.reseal(user, id, secret)).await
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        self.bound(self.inner.reset(user, now)).await
    }
}

#[async_trait]
impl<S: StepStore> StepStore for Bounded<S> {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        self.bound(self.inner.begin_verification(user, now, policy, digits))
            .await
    }

    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        self.bound(self.inner.consume_step(user, id, step, offset))
            .await
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        self.bound(self.inner.record_miss(user, candidate)).await
    }
}

#[async_trait]
impl<S: ThrottleStore> ThrottleStore for Bounded<S> {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        self.bound(self.inner.begin_attempt(user, now, policy))
            .await
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.bound(self.inner.clear_throttle(user)).await
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        self.bound(self.inner.throttle_state(user)).await
    }
}

#[async_trait]
impl<S: RecoveryStore> RecoveryStore for Bounded<S> {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        self.bound(self.inner.replace_recovery_codes(user, hashes))
            .await
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        self.bound(self.inner.consume_recovery_code(user, hash))
            .await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.bound(self.inner.recovery_codes_left(user)).await
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for Bounded<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Not `bound_session`: the closure would borrow `record` mutably
        // inside a future that `self` also borrows; the same deadline.
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.inner.create(record))
            .await
            .unwrap_or_else(|_| Err(session_store::Error::Backend(TimedOut(timeout).to_string())))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.bound_session(self.inner.save(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.bound_session(self.inner.load(id)).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.bound_session(self.inner.delete(id)).await
    }
}
