//! Who is logging in: user ids and what the application tells us of them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The application's id for a user, opaque to us.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Arc<str>);

impl UserId {
    /// A user id from the application's own id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for UserId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for UserId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Internal staff or external users (customers, partners): the admin
/// switches them separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UserKind {
    /// Staff of the organisation.
    Internal,
    /// Customers, partners and other outside users.
    External,
}

impl UserKind {
    /// Its name as serialised: `internal` or `external`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::External => "external",
        }
    }
}

/// What the policy needs to know about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Internal or external.
    pub kind: UserKind,
    /// The per-user "Require Two Factor Authentication" flag.
    pub require_2fa: bool,
    /// Shown on pages and in the authenticator app's account label.
    pub display_name: String,
}
