//! Where enrollments and the hot verification state live.
//!
//! Four traits, one per kind of state, and [`TotpStore`] for a type that
//! implements all four. They are object-safe `async_trait`s, so the layer
//! holds an `Arc<dyn TotpStore>`: `TotpLayer` is not generic over the store,
//! and an application chooses memory, SQLite or Redis at start-up without
//! its types changing. The cost, one boxed future per call, is small next to
//! a store round trip.
//!
//! What must be atomic is one call: [`StepStore::consume_step`] is a
//! compare-and-set ("accept step N only if N is newer than the last accepted
//! step") that, when it accepts, also forgets the user's throttle failures,
//! [`ThrottleStore::begin_attempt`] charges and checks in one go, and
//! [`RecoveryStore::consume_recovery_code`] removes the code it matches.
//! None of the methods has a default body: every store decides each one.
//!
//! [`conformance`] (feature `conformance`) is the test suite every store
//! runs.

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;
mod records;

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use records::{
    Authenticator, AuthenticatorId, ConsumeOutcome, PendingEnrollment, ResyncCandidate, SyncState,
    UserStatus,
};

use crate::clock::UnixTime;
use crate::recovery::RecoveryHash;
use crate::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use crate::user::UserId;

/// Errors from a store's backend, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store could not answer. The layer fails closed on it (503).
///
/// Backends must not put secrets in the source error; they only ever see
/// sealed secrets and hashes, so a driver's message cannot leak one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend is unreachable or failed.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be read back.
    #[error("stored record is corrupt")]
    Corrupt(#[source] BoxError),
}

impl StoreError {
    /// A [`StoreError::Unavailable`] from any error.
    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        Self::Unavailable(e.into())
    }

    /// A [`StoreError::Corrupt`] from any error.
    pub fn corrupt(e: impl Into<BoxError>) -> Self {
        Self::Corrupt(e.into())
    }
}

/// Enrolled authenticators and pending enrollments.
///
/// Every change to a user's authenticators (activation, revocation, reset)
/// increases the user's *epoch*, which never decreases, not even through a
/// reset: sessions remember the epoch they were verified at, and a changed
/// epoch sends them back to the second step.
#[async_trait]
pub trait EnrollmentStore: Send + Sync + std::fmt::Debug + 'static {
    /// The epoch and whether any authenticator is active: what the layer
    /// asks on every request, so it must be one cheap round trip.
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError>;

    /// The user's active authenticators with their sync state.
    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError>;

    /// Keep `pending` as the user's one pending enrollment, replacing any
    /// earlier one.
    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
    ) -> Result<(), StoreError>;

    /// The user's pending enrollment, if any.
    async fn pending(&self, user: &UserId) -> Result<Option<PendingEnrollment>, StoreError>;

    /// Atomically turn the pending enrollment `pending_id` into an active
    /// authenticator whose last accepted step is `step` (the confirming
    /// code cannot be replayed) and whose offset is `offset`; remove the
    /// authenticator it replaces, if any; increase the epoch.
    ///
    /// Returns the new epoch, or `None` if no pending enrollment with that id
    /// exists (another request confirmed or replaced it first).
    async fn activate_pending(
        &self,
        user: &UserId,
        pending_id: &AuthenticatorId,
        step: u64,
        offset: i64,
        now: UnixTime,
    ) -> Result<Option<u64>, StoreError>;

    /// Remove one authenticator; increase the epoch if it existed.
    async fn revoke(&self, user: &UserId, id: &AuthenticatorId) -> Result<bool, StoreError>;

    /// Replace the sealed secret of an authenticator (key rotation), leaving
    /// its sync state alone. Returns whether it existed.
    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: crate::seal::SealedSecret,
    ) -> Result<bool, StoreError>;

    /// Remove all authenticators, the pending enrollment and the recovery
    /// codes; increase the epoch. The throttle state is kept.
    async fn reset(&self, user: &UserId) -> Result<(), StoreError>;
}

/// The hot state of verification: which steps were used, and drift.
#[async_trait]
pub trait StepStore: Send + Sync + std::fmt::Debug + 'static {
    /// Compare-and-set: if `step` is newer than the authenticator's last
    /// accepted step, record it as the last accepted step, set the learned
    /// `offset`, clear any resync candidate and forget the user's throttle
    /// failures (what [`ThrottleStore::clear_throttle`] does), all in one
    /// atomic operation, and return [`ConsumeOutcome::Consumed`]. Otherwise
    /// ([`ConsumeOutcome::Replayed`], [`ConsumeOutcome::NotFound`]) change
    /// nothing, the throttle state included.
    /// Of many concurrent calls with the same step, exactly one consumes it.
    ///
    /// Clearing the throttle here rather than in a second call saves the
    /// engine a store round trip on every accepted code, and leaves no
    /// moment at which a step is spent but its failures still count.
    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError>;

    /// Remember a code that matched outside the window, so that a code for
    /// the next step at the same offset can resynchronise the user.
    async fn set_resync_candidate(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        candidate: ResyncCandidate,
    ) -> Result<(), StoreError>;
}

/// Per-account failure counting.
#[async_trait]
pub trait ThrottleStore: Send + Sync + std::fmt::Debug + 'static {
    /// Atomically apply [`ThrottleState::begin`] to the user's state.
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError>;

    /// Forget the user's failures (after a success). An accepted code does
    /// not need it: [`StepStore::consume_step`] already clears them; an
    /// activated enrollment and a used recovery code do.
    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError>;

    /// The user's current state, for display and tests.
    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError>;
}

/// Hashed recovery codes.
#[async_trait]
pub trait RecoveryStore: Send + Sync + std::fmt::Debug + 'static {
    /// Replace all of the user's recovery codes with `hashes`.
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError>;

    /// Atomically remove the code with this hash; whether it was there.
    /// Comparisons are constant-time where the backend allows it.
    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<bool, StoreError>;

    /// How many unused recovery codes the user has.
    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError>;
}

/// A complete store: all four kinds of state.
pub trait TotpStore: EnrollmentStore + StepStore + ThrottleStore + RecoveryStore {}

impl<T> TotpStore for T where T: EnrollmentStore + StepStore + ThrottleStore + RecoveryStore {}
