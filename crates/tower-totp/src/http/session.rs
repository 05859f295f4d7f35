//! What we keep in the application's tower-sessions session.
//!
//! The layer reads this state on every request, and tower-sessions clones
//! a session's values twice per read (out of its store, then out of the
//! record) before they are deserialised. So the state is one JSON string,
//! not an object: a clone is one allocation, and reading it is a split on
//! spaces rather than serde's buffering of an internally tagged enum
//! (measured in `benches/benches/layer.rs`: the object form cost about
//! 2 µs per request on the verified path). The form:
//!
//! ```text
//! 1 P <since> <user>                              password checked
//! 1 V <since> <epoch> <method> <at> <user>        second step done
//! ```
//!
//! Times are Unix milliseconds, `<method>` is [`Method`]'s snake-case name,
//! and the user id comes last, whole, so it may hold spaces. A value that
//! does not parse (another version's form) reads as no login.

use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

impl Method {
    #[cfg(test)]
    const ALL: [Self; 4] = [
        Self::Totp,
        Self::RecoveryCode,
        Self::Enrollment,
        Self::RememberedDevice,
    ];

    /// The snake-case name, as serde writes it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Enrollment => "enrollment",
            Self::RememberedDevice => "remembered_device",
        }
    }
}

/// Where a password-authenticated session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
/// succeeds. Stored in the compact form of the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionState {
    pub(crate) user: UserId,
    /// When the password was checked.
    pub(crate) since: UnixTime,
    pub(crate) stage: Stage,
}

/// The version tag that starts the compact form.
const FORM: &str = "1";

impl SessionState {
    /// The compact form of the module docs.
    fn encode(&self) -> String {
        let mut out = String::with_capacity(48 + self.user.as_str().len());
        // Writing to a `String` cannot fail.
        let _ = match self.stage {
            Stage::Pending => write!(out, "{FORM} P {}", self.since.as_millis()),
            Stage::Verified { epoch, method, at } => write!(
                out,
                "{FORM} V {} {epoch} {} {}",
                self.since.as_millis(),
                method.as_str(),
                at.as_millis()
            ),
        };
        out.push(' ');
        out.push_str(self.user.as_str());
        out
    }

    /// Read the compact form; `None` for anything else.
    fn decode(text: &str) -> Option<Self> {
        let mut rest = text;
        if next_field(&mut rest)? != FORM {
            return None;
        }
        let kind = next_field(&mut rest)?;
        let since = UnixTime::from_millis(number(next_field(&mut rest)?)?);
        let stage = match kind {
            "P" => Stage::Pending,
            "V" => {
                let epoch = number(next_field(&mut rest)?)?;
                let method = match next_field(&mut rest)? {
                    "totp" => Method::Totp,
                    "recovery_code" => Method::RecoveryCode,
                    "enrollment" => Method::Enrollment,
                    "remembered_device" => Method::RememberedDevice,
                    _ => return None,
                };
                let at = UnixTime::from_millis(number(next_field(&mut rest)?)?);
                Stage::Verified { epoch, method, at }
            }
            _ => return None,
        };
        // The rest, spaces and all, is the user id.
        if rest.is_empty() {
            return None;
        }
        Some(Self {
            user: UserId::new(rest),
            since,
            stage,
        })
    }

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

/// The text up to the next space, which `rest` then skips; `None` when
/// there is no space. (A byte loop: the fields are a few characters, too
/// short for `split_once`'s searcher to pay off.)
fn next_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let at = rest.bytes().position(|b| b == b' ')?;
    let field = &rest[..at];
    *rest = &rest[at + 1..];
    Some(field)
}

/// A decimal `u64` of digits only (no sign, no spaces); `None` on overflow.
fn number(field: &str) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

impl Serialize for SessionState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for SessionState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = SessionState;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tower-totp session state")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SessionState, E> {
                SessionState::decode(text)
                    .ok_or_else(|| E::custom("not a tower-totp session state of this version"))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(user: &str, stage: Stage) -> SessionState {
        SessionState {
            user: UserId::new(user),
            since: UnixTime::from_millis(1_700_000_010_123),
            stage,
        }
    }

    #[test]
    fn every_stage_and_method_round_trips_through_json() {
        let mut states = vec![state("alice", Stage::Pending)];
        for method in Method::ALL {
            states.push(state(
                "bob",
                Stage::Verified {
                    epoch: u64::MAX,
                    method,
                    at: UnixTime::from_millis(u64::MAX),
                },
            ));
        }
        // User ids are opaque: spaces, the separator, unicode, digits.
        states.push(state(" a b  c ", Stage::Pending));
        states.push(state("1 V 2", Stage::Pending));
        states.push(state("ünï cödé", Stage::Pending));
        for s in states {
            let value = serde_json::to_value(&s).unwrap();
            assert!(value.is_string(), "{value}");
            assert_eq!(serde_json::from_value::<SessionState>(value).unwrap(), s);
        }
    }

    #[test]
    fn the_form_is_the_documented_one() {
        let verified = state(
            "carol smith",
            Stage::Verified {
                epoch: 3,
                method: Method::RecoveryCode,
                at: UnixTime::from_millis(5),
            },
        );
        assert_eq!(
            verified.encode(),
            "1 V 1700000010123 3 recovery_code 5 carol smith"
        );
        assert_eq!(
            state("alice", Stage::Pending).encode(),
            "1 P 1700000010123 alice"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "1",
            "1 P",
            "1 P 5",
            "1 P 5 ",
            "2 P 5 alice",
            "1 X 5 alice",
            "1 P -5 alice",
            "1 P five alice",
            "1 P +5 alice",
            "1  P 5 alice",
            "1 V 5 1 totp alice",
            "1 V 5 1 password 7 alice",
            "1 V 5 x totp 7 alice",
            "1 V 5 1 totp 18446744073709551616 alice",
        ] {
            assert_eq!(SessionState::decode(bad), None, "{bad:?}");
        }
        // The object form of earlier versions, and other JSON.
        for value in [
            serde_json::json!({"user": "alice", "since": 5, "stage": {"stage": "pending"}}),
            serde_json::json!(5),
            serde_json::json!(null),
        ] {
            assert!(serde_json::from_value::<SessionState>(value).is_err());
        }
    }
}
