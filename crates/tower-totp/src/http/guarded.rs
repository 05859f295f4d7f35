//! [`Guarded`]: the mark [`Totp`](super::Totp) leaves on a request it lets
//! through without a verified second step, so that what runs inside can
//! tell "the layer ran" from "no layer around me" and fail closed on the
//! second, and can refuse the way the layer would.

use super::auth::TotpAuth;
use super::negotiate::Format;
use super::refusal::{Next, Refusal, RefusalReason};
use super::respond::FullResponse;

/// In the extensions of every request the layer passes without a
/// [`SecondFactor::Verified`](super::SecondFactor::Verified): no password
/// login, or 2FA does not apply. A verified request carries
/// [`TotpVerified`](super::TotpVerified) instead (one insert fewer on the
/// hot path).
#[derive(Clone, Debug)]
pub(crate) struct Guarded {
    auth: TotpAuth,
}

impl Guarded {
    pub(crate) fn new(auth: TotpAuth) -> Self {
        Self { auth }
    }

    /// The layer's refusal for `reason`, pointing to `next`, for a client
    /// that reads `format`.
    pub(crate) fn refuse(
        &self,
        reason: RefusalReason,
        next: Option<Next>,
        format: Format,
    ) -> FullResponse {
        self.auth.refuse(Refusal::new(reason, next), format)
    }
}
