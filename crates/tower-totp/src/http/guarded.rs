//! [`Guarded`]: the mark [`Totp`](super::Totp) leaves on a request it lets
//! through without a password login (and, for the axum extractor, without
//! a verified second step), so that what runs inside can tell "the layer
//! ran" from "no layer around me" and fail closed on the second, and can
//! refuse the way the layer would.

use super::auth::TotpAuth;
#[cfg(feature = "axum")]
use super::{
    negotiate::Format,
    refusal::{Next, Refusal, RefusalReason},
    respond::FullResponse,
};

/// In the extensions of every request the layer passes without a password
/// login, and (feature `axum`, for the extractor) of those to which 2FA
/// does not apply. A verified request carries
/// [`TotpVerified`](super::TotpVerified) instead: one insert fewer on the
/// hot path. With the `axum` feature it holds the handle, for the
/// extractor's refusals.
#[derive(Clone, Debug)]
pub(crate) struct Guarded {
    #[cfg(feature = "axum")]
    auth: TotpAuth,
}

impl Guarded {
    #[cfg_attr(not(feature = "axum"), allow(unused_variables))]
    pub(crate) fn new(auth: &TotpAuth) -> Self {
        Self {
            #[cfg(feature = "axum")]
            auth: auth.clone(),
        }
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
