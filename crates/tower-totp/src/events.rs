//! Security events for the user to see: a sink the service implements
//! ([`SecurityEvents`]) and gives the engine
//! ([`TwoFactorBuilder::security_events`](crate::TwoFactorBuilder::security_events)).
//!
//! The engine calls the sink after the change is stored, and only then: an
//! event always describes something that happened. The sink cannot fail a
//! request (it returns nothing: a sink that cannot keep an event logs it
//! and drops it), and nothing that is refused waits for it except the one
//! lockout event, which comes once per lockout. A sink that does slow work
//! (a mail, a push) should hand it to a task of its own.
//!
//! An event holds the time, the user and what happened, never a code, a
//! secret or a recovery code.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tower_totp::events::{SecurityEvent, SecurityEvents};
//!
//! #[derive(Debug, Default)]
//! struct Kept(Mutex<Vec<SecurityEvent>>);
//!
//! #[async_trait::async_trait]
//! impl SecurityEvents for Kept {
//!     async fn record(&self, event: SecurityEvent) {
//!         self.0.lock().unwrap().push(event);
//!     }
//! }
//!
//! let kept = Arc::new(Kept::default());
//! let engine = tower_totp::TwoFactor::builder(tower_totp::TotpConfig::new("Acme").unwrap())
//!     .security_events(kept.clone())
//!     .build()
//!     .unwrap();
//! # let _ = engine;
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::store::AuthenticatorId;
use crate::user::UserId;

/// Where security events go. Implemented by the service: a table the
/// user's activity page reads, a mail, a webhook.
#[async_trait]
pub trait SecurityEvents: Send + Sync + fmt::Debug + 'static {
    /// Keep or send `event`. Called after the change is stored; must not
    /// panic, and should not take long (the request that caused the event
    /// waits for it).
    async fn record(&self, event: SecurityEvent);
}

#[async_trait]
impl<T: SecurityEvents + ?Sized> SecurityEvents for Arc<T> {
    async fn record(&self, event: SecurityEvent) {
        (**self).record(event).await;
    }
}

/// One thing that happened to a user's second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityEvent {
    /// When, by the engine's clock.
    pub at: UnixTime,
    /// Whose second factor.
    pub user: UserId,
    /// What happened.
    pub kind: SecurityEventKind,
}

/// What happened, with what the user may be told (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityEventKind {
    /// An authenticator was activated by its first code.
    EnrollmentCompleted {
        /// Its id.
        authenticator: AuthenticatorId,
        /// The name the user gave it.
        name: String,
        /// Whether it replaced another authenticator (a new phone).
        replaced: bool,
    },
    /// An authenticator was revoked.
    AuthenticatorRevoked {
        /// Its id.
        authenticator: AuthenticatorId,
    },
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRegenerated {
        /// How many codes the new set has.
        count: usize,
    },
    /// A recovery code was used to log in.
    RecoveryCodeUsed {
        /// Unused codes left.
        remaining: usize,
    },
    /// An administrator removed the user's authenticators and recovery
    /// codes and ended their sessions.
    SecondFactorReset {
        /// The administrator.
        admin: UserId,
    },
    /// The throttle locked the account after failed codes.
    AccountLocked {
        /// When the lockout ends.
        until: UnixTime,
    },
}

impl SecurityEventKind {
    /// A short machine-readable name: `enrollment_completed`,
    /// `authenticator_revoked`, `recovery_codes_regenerated`,
    /// `recovery_code_used`, `second_factor_reset`, `account_locked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EnrollmentCompleted { .. } => "enrollment_completed",
            Self::AuthenticatorRevoked { .. } => "authenticator_revoked",
            Self::RecoveryCodesRegenerated { .. } => "recovery_codes_regenerated",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
            Self::SecondFactorReset { .. } => "second_factor_reset",
            Self::AccountLocked { .. } => "account_locked",
        }
    }
}

/// A sentence for the user (`Authenticator app synced: "Phone"`).
impl fmt::Display for SecurityEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnrollmentCompleted {
                name,
                replaced: false,
                ..
            } => write!(f, "Authenticator app synced: \"{name}\""),
            Self::EnrollmentCompleted {
                name,
                replaced: true,
                ..
            } => write!(
                f,
                "Authenticator app synced: \"{name}\", in place of an older one"
            ),
            Self::AuthenticatorRevoked { .. } => f.write_str("Authenticator app removed"),
            Self::RecoveryCodesRegenerated { count } => {
                write!(
                    f,
                    "{count} new recovery codes made; the old ones no longer work"
                )
            }
            Self::RecoveryCodeUsed { remaining } => {
                write!(f, "Recovery code used to log in; {remaining} left")
            }
            Self::SecondFactorReset { admin } => write!(
                f,
                "Two-factor authentication reset by the administrator {admin}"
            ),
            Self::AccountLocked { .. } => {
                f.write_str("Codes refused for a while after several wrong ones")
            }
        }
    }
}
