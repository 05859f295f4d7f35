//! Where enrollments and the hot verification state live.
//!
//! Four traits, one per kind of state, and [`TotpStore`] for a type that
//! implements all four. They are object-safe `async_trait`s, so the layer
//! holds an `Arc<dyn TotpStore>`: `TotpLayer` is not generic over the store,
//! and an application chooses memory, SQLite or Redis at start-up without
//! its types changing. The cost, one boxed future per call, is small next to
//! a store round trip.
//!
//! What must be atomic is one call: [`StepStore::begin_verification`]
//! reads the user's status and authenticators and charges the attempt
//! (when the code could be one of theirs),
//! [`EnrollmentStore::begin_confirmation`] does the same for a pending
//! enrollment, [`StepStore::consume_step`] is a
//! compare-and-set ("accept step N only if N is newer than the last accepted
//! step") that, when it accepts, also forgets the user's throttle failures,
//! [`ThrottleStore::begin_attempt`] charges and checks in one go, and
//! [`RecoveryStore::consume_recovery_code`] removes the code it matches,
//! [`EnrollmentStore::activate_pending`] activates and issues recovery codes
//! together, and [`EnrollmentStore::revoke`] of the last authenticator takes
//! the recovery codes with it.
//! None of the methods has a default body: every store decides each one.
//!
//! A login code thus costs two store operations, each one atomic backend
//! operation (one lock, one SQLite transaction, one Redis script):
//! `begin_verification`, then `consume_step` or `record_miss`. A confirmed
//! enrollment costs two as well: `begin_confirmation`, `activate_pending`.
//!
//! [`conformance`] (feature `conformance`) is the test suite every store
//! runs.

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;
mod records;
mod status_lookup;

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use records::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, ResealOutcome, ResyncCandidate,
    RevokeOutcome, SyncState, UserStatus, VerificationStart,
};
pub use status_lookup::StatusLookup;

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

    /// The same answer as [`status`](Self::status) when the store has it at
    /// hand without waiting (process memory, a fresh cached copy), for the
    /// layer's check on every guarded request; [`StatusLookup::NotAtHand`]
    /// otherwise, and the layer then awaits `status`. Never a weaker answer
    /// than `status` gives: a copy is at hand only within the same
    /// freshness bound `status` itself answers from (the SQLite store's
    /// status cache: its own writes at once, other connections' within its
    /// `max_staleness`), and a damaged record is not at hand (its error
    /// comes from `status`).
    ///
    /// A synchronous call saves the layer a boxed future per request
    /// (`docs/performance.md`, bench `layer`). A store that must ask its
    /// backend answers `NotAtHand`.
    fn status_now(&self, user: &UserId) -> StatusLookup;

    /// The user's active authenticators with their sync state.
    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError>;

    /// Add `pending` to the user's pending enrollments, in one atomic
    /// operation: first drop those created before `limits.expired_before`;
    /// then, if fewer than `limits.max` remain, add `pending` (the others
    /// stay as they are) and return [`PutPending::Stored`]; else change
    /// nothing and return [`PutPending::TooMany`].
    ///
    /// Each pending enrollment belongs to the session that started it (the
    /// session keeps its id): several may wait at once, and none replaces
    /// another.
    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError>;

    /// The pending enrollment `id` of the user, if it exists. Expiry is the
    /// engine's business (by `created_at`).
    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError>;

    /// One atomic operation: read the pending enrollment `id` (what
    /// [`pending`](Self::pending) answers) and, only if it exists and its
    /// codes have exactly `digits` digits, apply [`ThrottleState::begin`]
    /// to the user's throttle state (the charge of
    /// [`ThrottleStore::begin_attempt`]) and return its answer in
    /// [`ConfirmationStart::attempt`]. Otherwise (no such pending
    /// enrollment, `digits` is `None` for a malformed code, or another
    /// count) nothing changes and `attempt` is `None`.
    ///
    /// Expiry is the engine's business, as for `pending`: a pending
    /// enrollment past its time is read, and charged, like any other, and
    /// the engine then refuses it. It writes only when it charges; a store
    /// may still take its write lock for every call.
    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError>;

    /// Forget the pending enrollment `id` (its session starts another one);
    /// the user's other pending enrollments stay.
    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError>;

    /// One atomic operation:
    ///
    /// 1. no pending enrollment `activation.pending_id`:
    ///    [`Activated::NoPending`], nothing changes;
    /// 2. `first_only` and the user has an active authenticator:
    ///    [`Activated::AlreadyEnrolled`], nothing changes;
    /// 3. the user has `max_authenticators` active ones, not counting the
    ///    one the pending enrollment replaces: [`Activated::TooMany`],
    ///    nothing changes;
    /// 4. otherwise the pending enrollment becomes an active authenticator
    ///    (last used step `step`, so the confirming code cannot be replayed;
    ///    offset `offset`; created at `now`), the authenticator it replaces
    ///    is removed, this pending enrollment is removed (the user's others
    ///    stay), the epoch increases, the throttle failures are cleared,
    ///    and, if the user had no active authenticator before or has no
    ///    recovery codes left, the recovery codes are replaced by
    ///    `activation.recovery`: [`Activated::Done`].
    ///
    /// One call, so that there is never an active authenticator without
    /// recovery codes, nor codes issued for an activation that lost a race.
    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError>;

    /// Remove one authenticator and increase the epoch:
    /// [`RevokeOutcome::Revoked`]; [`RevokeOutcome::NotFound`], changing
    /// nothing, if the user has no authenticator `id`. When it was the
    /// user's last active one, the user's recovery codes are deleted in the
    /// same atomic operation (they belong to the authenticators: the next
    /// first enrollment issues a fresh set).
    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Replace the sealed secret of an authenticator (key rotation), leaving
    /// its sync state alone: [`ResealOutcome::Resealed`];
    /// [`ResealOutcome::NotFound`], changing nothing, if the user has no
    /// authenticator `id`.
    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: crate::seal::SealedSecret,
    ) -> Result<ResealOutcome, StoreError>;

    /// Remove all authenticators, all pending enrollments and the recovery
    /// codes; increase the epoch; and record `now` as the time at or before
    /// which every session of the user is over
    /// ([`UserStatus::sessions_ended_at`]). The throttle state is kept.
    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError>;
}

/// The hot state of verification: which steps were used, and drift.
#[async_trait]
pub trait StepStore: Send + Sync + std::fmt::Debug + 'static {
    /// One atomic operation, the first of a login code: read the user's
    /// status (what [`EnrollmentStore::status`] answers) and active
    /// authenticators with their sync state (what
    /// [`EnrollmentStore::authenticators`] answers) and, only if some
    /// active authenticator has exactly `digits` digits, apply
    /// [`ThrottleState::begin`] to the user's throttle state (the charge
    /// of [`ThrottleStore::begin_attempt`]) and return its answer in
    /// [`VerificationStart::attempt`]. Otherwise (not enrolled, `digits` is
    /// `None` for a malformed code, or no authenticator with that many
    /// digits) nothing changes and `attempt` is `None`.
    ///
    /// The read and the charge are one operation so that a code costs one
    /// round trip before its decision, and so that of many concurrent
    /// calls exactly as many are allowed as the throttle allows. The store
    /// never sees the code, only its digit count: a malformed code is
    /// refused uncharged without the store parsing anything.
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError>;

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

    /// Record a rejected code: called once for every invalid code of an
    /// enrolled user, after the throttle charge. `Some((id, candidate))`
    /// keeps `candidate` on authenticator `id` (a code that matched outside
    /// the window, waiting for the code of the next step to resynchronise
    /// the device); `None` leaves every candidate as it is.
    ///
    /// Both forms must do the same work in the backend (the same statement,
    /// script or lock), so that no response time tells a guess that matched
    /// a step outside the window from a plain miss.
    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
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
    /// not need it: [`StepStore::consume_step`] already clears them, and so
    /// does [`EnrollmentStore::activate_pending`]; a used recovery code does.
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

    /// Atomically remove the code with this hash:
    /// [`RecoveryOutcome::Consumed`] if it was there, else
    /// [`RecoveryOutcome::NoMatch`]. Comparisons are constant-time where
    /// the backend allows it.
    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError>;

    /// How many unused recovery codes the user has.
    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError>;
}

/// A complete store: all four kinds of state.
pub trait TotpStore: EnrollmentStore + StepStore + ThrottleStore + RecoveryStore {}

impl<T> TotpStore for T where T: EnrollmentStore + StepStore + ThrottleStore + RecoveryStore {}
