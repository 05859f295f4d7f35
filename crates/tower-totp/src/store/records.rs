use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::code::CodeParams;
use crate::seal::SealedSecret;

/// The id of one authenticator (or pending enrollment): 16 random hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthenticatorId(String);

impl AuthenticatorId {
    /// A new random id.
    ///
    /// # Errors
    ///
    /// [`crate::seal::SealError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, crate::seal::SealError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|_| crate::seal::SealError::Random)?;
        Ok(Self(data_encoding::HEXLOWER.encode(&raw)))
    }

    /// An id read back from storage or a URL.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthenticatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for AuthenticatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A code that matched outside the window, waiting for its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncCandidate {
    /// The step it matched.
    pub step: u64,
    /// Its offset from the server's step at the time.
    pub offset: i64,
}

/// An authenticator's synchronisation with the server (RFC 6238 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// The newest step accepted; no code for it or an older step is accepted again.
    pub last_step: Option<u64>,
    /// The learned offset of the device's clock, in steps.
    pub offset: i64,
    /// A pending resynchronisation.
    pub resync: Option<ResyncCandidate>,
}

/// An active authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticator {
    /// Its id.
    pub id: AuthenticatorId,
    /// The name the user gave it ("Pixel 8", "Authy on iPad").
    pub name: String,
    /// The sealed shared secret.
    pub secret: SealedSecret,
    /// The code parameters.
    pub params: CodeParams,
    /// When it was activated.
    pub created_at: UnixTime,
    /// Replay and drift state.
    pub sync: SyncState,
}

/// An enrollment waiting for its first code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEnrollment {
    /// The id the authenticator will have.
    pub id: AuthenticatorId,
    /// Its name.
    pub name: String,
    /// The sealed shared secret.
    pub secret: SealedSecret,
    /// The code parameters.
    pub params: CodeParams,
    /// When the enrollment started.
    pub created_at: UnixTime,
    /// The authenticator it replaces when confirmed (a new phone).
    pub replaces: Option<AuthenticatorId>,
}

/// What the layer needs per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserStatus {
    /// Increases with every change to the user's authenticators.
    pub epoch: u64,
    /// Whether at least one authenticator is active.
    pub enrolled: bool,
}

/// The result of [`StepStore::consume_step`](super::StepStore::consume_step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The step was newer and is now used.
    Consumed,
    /// The step (or a newer one) was already used.
    Replayed,
    /// No such authenticator (revoked meanwhile).
    NotFound,
}
