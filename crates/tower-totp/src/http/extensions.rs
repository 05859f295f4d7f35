//! What the layer puts into request extensions for the application.

use serde::{Deserialize, Serialize};

use super::guarded::{Guarded, layer_verified};
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
/// request the layer lets through for a verified session (the only value
/// the layer inserts there).
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

/// The second factor of a password-authenticated request the layer let
/// through: read it with [`SecondFactor::of`] (or, with the `axum` feature,
/// take `Option<SecondFactor>` as an extractor).
///
/// It is not in the extensions as such: the layer inserts one value per
/// request, [`TotpVerified`] for a verified session and a private mark
/// otherwise (why: `docs/performance.md`, bench `layer`), and
/// [`SecondFactor::of`] reads either.
///
/// ```
/// use http::Extensions;
/// use tower_totp::UserId;
/// use tower_totp::clock::UnixTime;
/// use tower_totp::http::{SecondFactor, StepMethod, TotpVerified};
///
/// let mut ext = Extensions::new();
/// assert_eq!(SecondFactor::of(&ext), None, "no password login");
/// ext.insert(TotpVerified {
///     user: UserId::new("alice"),
///     method: StepMethod::Totp,
///     verified_at: UnixTime::from_secs(1_700_000_000),
/// });
/// let factor = SecondFactor::of(&ext).unwrap();
/// assert!(matches!(factor, SecondFactor::Verified(_)));
/// assert_eq!(factor.user().as_str(), "alice");
/// ```
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
    /// The user must enrol and has not, but is inside the enrollment grace
    /// period ([`PolicySettings::grace_days`](crate::policy::PolicySettings::grace_days)):
    /// the layer lets the password login through, **without a second
    /// factor**. The `TotpVerified` extractor refuses it
    /// (`enrollment_required`), and so does [`StepUp`](super::StepUp).
    Grace {
        /// Who.
        user: UserId,
        /// When the period ends: from then on enrolling is forced.
        until: UnixTime,
    },
}

impl SecondFactor {
    /// The second factor the layer found for the request with these
    /// extensions: [`SecondFactor::Verified`] when it holds a
    /// [`TotpVerified`], [`SecondFactor::NotRequired`] when 2FA does not
    /// apply, [`SecondFactor::Grace`] in the enrollment grace period, `None` without a password login (or without the layer).
    pub fn of(extensions: &http::Extensions) -> Option<Self> {
        if let Some(verified) = layer_verified(extensions) {
            return Some(Self::Verified(verified.clone()));
        }
        extensions.get::<Guarded>()?.factor().cloned()
    }

    /// The user, whichever way they got through.
    pub fn user(&self) -> &UserId {
        match self {
            Self::NotRequired { user, .. } | Self::Grace { user, .. } => user,
            Self::Verified(v) => &v.user,
        }
    }
}
