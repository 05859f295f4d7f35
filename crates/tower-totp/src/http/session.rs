//! What we keep in the application's tower-sessions session.
//!
//! The layer reads this state on every request, so it is one compact
//! string, not an object (why: `docs/performance.md`, bench `layer`). The
//! form:
//!
//! ```text
//! 1 P <since> <user>                              password checked
//! 1 V <since> <epoch> <method> <at> <user>        second step done
//! ```
//!
//! Times are Unix milliseconds, `<method>` is [`StepMethod`]'s snake-case name,
//! and the user id comes last, whole, so it may hold spaces. A value that
//! does not parse (another version's form) reads as no login.

use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tower_sessions::Session;

use super::extensions::StepMethod;
use crate::clock::UnixTime;
use crate::store::{StoreError, UserStatus};
use crate::user::UserId;

/// The session key under which our state lives.
pub(crate) const SESSION_KEY: &str = "tower_totp";

/// A failing session store is a failing store: refused with a 503.
pub(crate) fn session_error(e: tower_sessions::session::Error) -> crate::Error {
    crate::Error::Store(StoreError::unavailable(e))
}

/// Where a password-authenticated session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The password is checked; the second step is not done.
    Pending,
    /// The second step is done, bound to the user's epoch at that time.
    Verified {
        epoch: u64,
        method: StepMethod,
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
    stage: Stage,
}

/// How the two stages' forms start: the version tag (`1`) and the stage.
const PENDING: &str = "1 P ";
const VERIFIED: &str = "1 V ";

impl SessionState {
    /// The compact form of the module docs.
    fn encode(&self) -> String {
        let mut out = String::with_capacity(48 + self.user.as_str().len());
        // Writing to a `String` cannot fail.
        let _ = match self.stage {
            Stage::Pending => write!(out, "{PENDING}{}", self.since.as_millis()),
            Stage::Verified { epoch, method, at } => write!(
                out,
                "{VERIFIED}{} {epoch} {} {}",
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
        let (verified, mut rest) = if let Some(rest) = text.strip_prefix(VERIFIED) {
            (true, rest)
        } else {
            (false, text.strip_prefix(PENDING)?)
        };
        let since = UnixTime::from_millis(number_field(&mut rest)?);
        let stage = if verified {
            let epoch = number_field(&mut rest)?;
            let method = match next_field(&mut rest)? {
                "totp" => StepMethod::Totp,
                "recovery_code" => StepMethod::RecoveryCode,
                "enrollment" => StepMethod::Enrollment,
                "remembered_device" => StepMethod::RememberedDevice,
                _ => return None,
            };
            let at = UnixTime::from_millis(number_field(&mut rest)?);
            Stage::Verified { epoch, method, at }
        } else {
            Stage::Pending
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
        // The JSON value straight to `decode`, without serde's deserializer
        // around it (on every guarded request). A value we cannot read (an
        // older format; tampering is impossible with server-side sessions)
        // is treated as no login at all, as `Deserialize` does.
        Ok(match session.get_value(SESSION_KEY).await? {
            Some(serde_json::Value::String(text)) => Self::decode(&text),
            _ => None,
        })
    }

    pub(crate) async fn save(
        &self,
        session: &Session,
    ) -> Result<(), tower_sessions::session::Error> {
        session.insert(SESSION_KEY, self).await
    }

    /// Forget the login, and the pending enrollment it started.
    pub(crate) async fn clear(session: &Session) -> Result<(), tower_sessions::session::Error> {
        session.remove_value(SESSION_KEY).await?;
        super::clock_hint::ClockHint::forget(session).await?;
        super::own_enrollment::clear(session).await
    }

    /// Whether an administrator's reset ended this login: its password was
    /// checked at or before [`UserStatus::sessions_ended_at`].
    pub(crate) fn ended_by(&self, status: &UserStatus) -> bool {
        status.sessions_ended_at.is_some_and(|t| self.since <= t)
    }

    /// A password login of `user` checked at `since`, second step pending.
    pub(crate) fn pending(user: UserId, since: UnixTime) -> Self {
        Self {
            user,
            since,
            stage: Stage::Pending,
        }
    }

    /// This login with its second step done by `method` at `at`, bound to
    /// the user's `epoch`.
    pub(crate) fn verified(&self, epoch: u64, method: StepMethod, at: UnixTime) -> Self {
        Self {
            stage: Stage::Verified { epoch, method, at },
            ..self.clone()
        }
    }

    /// Whether the second step was done at all, at whichever epoch: without
    /// it, the endpoints hold the login to the pending-step time.
    pub(crate) fn is_verified(&self) -> bool {
        matches!(self.stage, Stage::Verified { .. })
    }

    /// The verification, if it is still bound to `epoch`.
    pub(crate) fn verified_at(&self, epoch: u64) -> Option<(StepMethod, UnixTime)> {
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

/// A decimal `u64` (digits only: no sign, no spaces) up to the next space,
/// which `rest` then skips; `None` for anything else, overflow included.
/// One pass: the digits are read while looking for the space, eight at a
/// time while there are eight (the times have thirteen), without overflow
/// checks, which only a number of 20 digits or more needs (19 nines fit in
/// a `u64`); such a number is read again, checked.
fn number_field(rest: &mut &str) -> Option<u64> {
    let bytes = rest.as_bytes();
    let mut n = 0u64;
    let mut at = 0;
    while let Some(value) = bytes
        .get(at..at + 8)
        .and_then(|chunk| eight_digits(chunk.try_into().ok()?))
    {
        n = n.wrapping_mul(100_000_000).wrapping_add(value);
        at += 8;
    }
    loop {
        let b = *bytes.get(at)?;
        if b == b' ' {
            break;
        }
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
        at += 1;
    }
    if at == 0 {
        return None;
    }
    if at > 19 {
        n = bytes[..at].iter().try_fold(0u64, |n, b| {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })?;
    }
    *rest = &rest[at + 1..];
    Some(n)
}

/// The value of eight ASCII digits, most significant first; `None` if any
/// of the bytes is not a digit. A few word operations instead of eight
/// rounds of the byte loop (the session is decoded on every guarded
/// request: `docs/performance.md`, bench `layer`).
fn eight_digits(chunk: [u8; 8]) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let word = u64::from_le_bytes(chunk);
    let digits = word.wrapping_sub(ONES * u64::from(b'0'));
    // A byte below '0' borrows, leaving a high nibble set somewhere; a byte
    // above '9' is 10 or more, and 16 or more once 6 is added (no byte can
    // carry: each is at most 0xcf here).
    if (digits | digits.wrapping_add(ONES * 6)) & (ONES * 0xf0) != 0 {
        return None;
    }
    // Pairs, then fours, then all eight (the first byte is the lowest).
    let pairs = (digits.wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let fours = (pairs.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    Some(fours.wrapping_mul(10_000 << 32 | 1) >> 32)
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
        for method in StepMethod::ALL {
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
                method: StepMethod::RecoveryCode,
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
    fn numbers_are_exact_up_to_u64_max() {
        let number = |text: &str| {
            let with_space = format!("{text} rest");
            let mut rest = with_space.as_str();
            let n = number_field(&mut rest);
            if n.is_some() {
                assert_eq!(rest, "rest");
            }
            n
        };
        for n in [
            0,
            1,
            9,
            10,
            1_700_000_010_123,
            u64::MAX / 10,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(number(&n.to_string()), Some(n));
        }
        assert_eq!(number("000000000000000000000000001"), Some(1));
        assert_eq!(number("18446744073709551616"), None);
        assert_eq!(number("99999999999999999999"), None);
        for bad in ["", "+1", "-1", "1a", "/", ":"] {
            assert_eq!(number(bad), None, "{bad:?}");
        }
        let mut no_space = "123";
        assert_eq!(number_field(&mut no_space), None);
    }

    #[test]
    fn eight_digits_at_once_read_what_the_byte_loop_reads() {
        let mut samples: Vec<[u8; 8]> = vec![*b"00000000", *b"99999999", *b"12345678"];
        // Every digit in every place, and each byte's neighbours outside
        // the digits ('/' and ':'), and bytes far outside.
        for place in 0..8 {
            for b in [b'/', b':', 0, b' ', 0x7f, 0xff, b'0', b'5', b'9'] {
                let mut chunk = *b"31415926";
                chunk[place] = b;
                samples.push(chunk);
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut chunk = x.to_le_bytes();
            // Mostly digits, so that the digit path is exercised too.
            for b in &mut chunk {
                if *b < 0xc0 {
                    *b = b'0' + *b % 10;
                }
            }
            samples.push(chunk);
        }
        for chunk in samples {
            let expected = chunk.iter().try_fold(0u64, |n, b| {
                b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
            });
            assert_eq!(eight_digits(chunk), expected, "{chunk:?}");
        }
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
            "1 V 5 1 totp 99999999999999999999 alice",
            "1 V 5 1 totp 100000000000000000000 alice",
            "1 P 5/ alice",
            "1 P 5: alice",
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
