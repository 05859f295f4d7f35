//! Audit events, all on one `tracing` target, [`TARGET`].
//!
//! Each event carries the user id and the outcome, never a code, a secret or
//! a recovery code: the functions here take nothing that could hold one.

use crate::user::UserId;

/// The `tracing` target of every audit event.
pub const TARGET: &str = "tower_totp::audit";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// An enrollment started (QR code shown).
    EnrollmentStarted,
    /// An authenticator was activated by its first code.
    Enrolled,
    /// A code was accepted.
    Verified,
    /// A code was refused as wrong or malformed.
    Failed,
    /// An attempt was refused because of the throttle.
    Throttled,
    /// A code for a used step was refused.
    ReplayRefused,
    /// A device drifted out of the window and was resynchronised.
    Resynchronised,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// New recovery codes were issued.
    RecoveryCodesIssued,
    /// An authenticator was revoked.
    Revoked,
    /// All of a user's authenticators were removed.
    Reset,
    /// An administrator reset a user's second factor and ended their
    /// sessions ([`emit_admin`] names both).
    AdminReset,
    /// An enrollment was refused: not started (a cap), or not confirmed
    /// (not this session's, already enrolled, a cap).
    EnrollmentRefused,
}

impl AuditEvent {
    /// The event's name in the log (`verified`, `failed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnrollmentStarted => "enrollment_started",
            Self::Enrolled => "enrolled",
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Throttled => "throttled",
            Self::ReplayRefused => "replay_refused",
            Self::Resynchronised => "resynchronised",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesIssued => "recovery_codes_issued",
            Self::Revoked => "revoked",
            Self::Reset => "reset",
            Self::AdminReset => "admin_reset",
            Self::EnrollmentRefused => "enrollment_refused",
        }
    }
}

/// Emit `event` for `user` with a short outcome detail.
pub fn emit(event: AuditEvent, user: &UserId, detail: &'static str) {
    match event {
        AuditEvent::Failed
        | AuditEvent::Throttled
        | AuditEvent::ReplayRefused
        | AuditEvent::EnrollmentRefused => {
            tracing::warn!(target: TARGET, event = event.as_str(), user.id = %user, outcome = detail);
        }
        _ => {
            tracing::info!(target: TARGET, event = event.as_str(), user.id = %user, outcome = detail)
        }
    }
}

/// Emit `event`, done by the administrator `admin` to `user`.
pub fn emit_admin(event: AuditEvent, admin: &UserId, user: &UserId, detail: &'static str) {
    tracing::warn!(
        target: TARGET,
        event = event.as_str(),
        admin.id = %admin,
        user.id = %user,
        outcome = detail
    );
}
