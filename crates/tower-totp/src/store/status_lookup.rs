//! [`StatusLookup`]: the answer of [`EnrollmentStore::status_now`](super::EnrollmentStore::status_now).

use super::UserStatus;

/// A user's status when the store has it at hand without waiting, as
/// [`EnrollmentStore::status_now`](super::EnrollmentStore::status_now)
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLookup {
    /// The status, the same answer [`status`](super::EnrollmentStore::status)
    /// would give now.
    Found(UserStatus),
    /// Not known without waiting (a round trip, a stale copy, a failing
    /// backend): ask [`status`](super::EnrollmentStore::status), which
    /// answers or fails.
    NotAtHand,
}
