//! What we keep in the application's tower-sessions session.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::clock::UnixTime;
use crate::user::UserId;

/// The session key under which our state lives.
pub(crate) const SESSION_KEY: &str = "tower_totp";

/// How the second step was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code from an authenticator app.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// The first code of a new enrollment.
    Enrollment,
    /// A "remember this device" cookie.
    RememberedDevice,
}

/// Where a password-authenticated session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub(crate) enum Stage {
    /// The password is checked; the second step is not done.
    Pending,
    /// The second step is done, bound to the user's epoch at that time.
    Verified {
        epoch: u64,
        method: Method,
        at: UnixTime,
    },
}

/// Our state in the session, written once the application's password check
/// succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionState {
    pub(crate) user: UserId,
    /// When the password was checked.
    pub(crate) since: UnixTime,
    pub(crate) stage: Stage,
}

impl SessionState {
    pub(crate) async fn load(
        session: &Session,
    ) -> Result<Option<Self>, tower_sessions::session::Error> {
        match session.get::<Self>(SESSION_KEY).await {
            Ok(state) => Ok(state),
            // A value we cannot read (an older format, tampering is impossible
            // with server-side sessions) is treated as no login at all.
            Err(tower_sessions::session::Error::SerdeJson(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn save(
        &self,
        session: &Session,
    ) -> Result<(), tower_sessions::session::Error> {
        session.insert(SESSION_KEY, self).await
    }

    pub(crate) async fn clear(session: &Session) -> Result<(), tower_sessions::session::Error> {
        session.remove_value(SESSION_KEY).await.map(|_| ())
    }

    /// The verification, if it is still bound to `epoch`.
    pub(crate) fn verified_at(&self, epoch: u64) -> Option<(Method, UnixTime)> {
        match self.stage {
            Stage::Verified {
                epoch: e,
                method,
                at,
            } if e == epoch => Some((method, at)),
            _ => None,
        }
    }
}
