//! What the engine returns when it cannot decide: store failures and
//! secrets that do not open. Configuration mistakes are
//! [`ConfigError`](crate::ConfigError), in their own module.

use crate::seal::SealError;
use crate::store::StoreError;

/// Why the engine could not reach a decision.
///
/// A wrong code is not an error: it is a [`Verdict`](crate::Verdict). These
/// are the cases where no answer can be trusted, and a service must fail
/// closed (the layer answers 503).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error("store failure")]
    Store(#[source] StoreError),
    /// A sealed secret could not be opened: a missing key or a damaged record.
    #[error("sealed secret could not be opened")]
    Seal(#[from] SealError),
}

/// Every TOTP store failure the engine meets comes through here (`?`), so
/// this is where it is counted
/// ([`metrics::STORE_ERRORS`](crate::metrics::STORE_ERRORS)). Session store
/// failures are built as `Error::Store` directly and are not counted: they
/// are not the TOTP store's.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        crate::metrics::store_error(&e);
        Self::Store(e)
    }
}
