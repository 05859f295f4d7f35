//! [`Guarded`]: the mark [`Totp`](super::Totp) leaves on a request it lets
//! through without a verified second step (no password login, or 2FA does
//! not apply), so that what runs inside can tell "the layer ran" from "no
//! layer around me" and fail closed on the second, can read the
//! [`SecondFactor`] of a user to whom 2FA does not apply, and can refuse the
//! way the layer would.

use super::auth::TotpAuth;
use super::extensions::SecondFactor;
#[cfg(feature = "axum")]
use super::{
    negotiate::Format,
    refusal::{Next, Refusal, RefusalReason},
    respond::FullResponse,
};

/// In the extensions of every request the layer passes without a verified
/// second step; a verified request carries
/// [`TotpVerified`](super::TotpVerified) instead. One value per request:
/// each insert costs a boxed value and a hash-table slot, and the fourth
/// entry (after tower-cookies' and tower-sessions') grows the table
/// (`docs/performance.md`, bench `layer`). With the `axum` feature it holds
/// the handle, for the extractor's refusals.
#[derive(Clone, Debug)]
pub(crate) struct Guarded {
    #[cfg(feature = "axum")]
    auth: TotpAuth,
    /// [`SecondFactor::NotRequired`] for a password login to which 2FA
    /// does not apply, [`SecondFactor::Grace`] for one in the enrollment
    /// grace period; `None` without a password login.
    factor: Option<SecondFactor>,
}

impl Guarded {
    #[cfg_attr(not(feature = "axum"), allow(unused_variables))]
    pub(crate) fn new(auth: &TotpAuth, factor: Option<SecondFactor>) -> Self {
        Self {
            #[cfg(feature = "axum")]
            auth: auth.clone(),
            factor,
        }
    }

    /// The second factor of a password login to which 2FA does not apply
    /// (or not yet: the grace period); `None` without a password login.
    pub(crate) fn factor(&self) -> Option<&SecondFactor> {
        self.factor.as_ref()
    }

    /// The layer's refusal for `reason`, pointing to `next`, for a client
    /// that reads `format`.
    #[cfg(feature = "axum")]
    pub(crate) fn refuse(
        &self,
        reason: RefusalReason,
        next: Option<Next>,
        format: Format,
    ) -> FullResponse {
        self.auth.refuse(Refusal::new(reason, next), format)
    }
}

/// The layer's [`TotpVerified`](super::TotpVerified) for these extensions:
/// `None` when a [`Guarded`] mark is there, because then the layer let the
/// request through *without* a verified step, and a `TotpVerified` beside
/// it was put there by someone else (application code before the layer, a
/// reused request) and must not outvote the layer's own decision. The
/// layer inserts exactly one of the two on every request it passes.
pub(crate) fn layer_verified(extensions: &http::Extensions) -> Option<&super::TotpVerified> {
    if extensions.get::<Guarded>().is_some() {
        return None;
    }
    extensions.get::<super::TotpVerified>()
}
