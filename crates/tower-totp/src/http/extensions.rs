//! What the layer puts into request extensions for the application.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::user::UserId;

/// How the second step was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepMethod {
    /// A code from an authenticator app.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// The first code of a new enrollment.
    Enrollment,
    /// A "remember this device" cookie.
    RememberedDevice,
}

impl StepMethod {
    #[cfg(test)]
    pub(crate) const ALL: [Self; 4] = [
        Self::Totp,
        Self::RecoveryCode,
        Self::Enrollment,
        Self::RememberedDevice,
    ];

    /// The snake-case name, as serde writes it (`totp`, `recovery_code`,
    /// `enrollment`, `remembered_device`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Enrollment => "enrollment",
            Self::RememberedDevice => "remembered_device",
        }
    }
}

/// The second step is done: inserted into the request extensions of every
/// request the layer lets through for a verified session.
///
/// Plain hyper services read it with
/// `req.extensions().get::<TotpVerified>()`; axum handlers take it as an
/// extractor (feature `axum`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpVerified {
    /// Who.
    pub user: UserId,
    /// How.
    pub method: StepMethod,
    /// When.
    pub verified_at: UnixTime,
}

/// The second factor for this request: inserted for every
/// password-authenticated request the layer lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondFactor {
    /// The policy does not ask this user for a second factor now.
    NotRequired {
        /// Who.
        user: UserId,
        /// Whether the user has an authenticator all the same. Then a code
        /// can still be asked for, and [`StepUp`](super::StepUp) asks for
        /// one: a policy switched off must not switch off the step-up of
        /// an administrator who has a phone.
        enrolled: bool,
        /// How and when a second step was done in this session since the
        /// user's authenticators last changed, if one was.
        last_step: Option<(StepMethod, UnixTime)>,
    },
    /// The second step is done.
    Verified(TotpVerified),
}

impl SecondFactor {
    /// The user, whichever way they got through.
    pub fn user(&self) -> &UserId {
        match self {
            Self::NotRequired { user, .. } => user,
            Self::Verified(v) => &v.user,
        }
    }
}
