//! What the layer puts into request extensions for the application.

use crate::clock::UnixTime;
use crate::user::UserId;

pub use super::session::Method;

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
    pub method: Method,
    /// When.
    pub verified_at: UnixTime,
}

/// Put by [`Totp`](super::Totp) into every request it lets through without
/// a [`SecondFactor`] (no password login), so that
/// [`StepUp`](super::StepUp) can tell "no login" from "no `TotpLayer`
/// around me" and fail closed on the second. A request with a
/// `SecondFactor` went through the layer already: one insert fewer on the
/// verified path, where the fourth extension would make the table grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guarded;

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
        last_step: Option<(Method, UnixTime)>,
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
