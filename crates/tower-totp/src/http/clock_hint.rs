//! The clock hint: after an accepted code that matched a step away from
//! the server's, tell the user their phone's clock is off.
//!
//! The code still worked (the window and drift tracking took it), but a
//! phone whose clock is a step off today may be outside the window next
//! month. A hint is made only from an accepted code's offset, never from a
//! refusal: telling someone that a wrong code "would be right in 30 s"
//! would tell a guesser that it was a nearby step's code.
//!
//! JSON clients read it as `clock_hint_s` in the answer of `POST {prefix}`.
//! A browser is redirected to the application, so the hint waits in the
//! session, under a key of its own, until the landing page takes it
//! ([`ClockHint::take`]): shown once.

use std::fmt;

use tower_sessions::Session;

/// The session key of a hint waiting for the landing page.
const HINT_KEY: &str = "tower_totp.clock_hint";

/// How far off the phone's clock seemed at the last accepted code, in
/// seconds: positive when the phone is fast (its code was a later step's),
/// negative when slow.
///
/// Its [`Display`](fmt::Display) is the sentence to show:
///
/// ```
/// use tower_totp::http::ClockHint;
///
/// let hint = ClockHint::from_offset(1, 30).unwrap();
/// assert_eq!(hint.seconds(), 30);
/// assert_eq!(
///     hint.to_string(),
///     "Your phone's clock seems about 30 s fast. Codes still work, \
///      but set the phone to automatic time.",
/// );
/// // A code of the server's own step: nothing to say.
/// assert_eq!(ClockHint::from_offset(0, 30), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockHint {
    seconds: i64,
}

impl ClockHint {
    /// The hint for an accepted code `offset_steps` steps from the
    /// server's step, with steps of `period_secs`; `None` for an on-time
    /// code.
    pub fn from_offset(offset_steps: i64, period_secs: u32) -> Option<Self> {
        (offset_steps != 0).then(|| Self {
            seconds: offset_steps.saturating_mul(i64::from(period_secs)),
        })
    }

    /// How many seconds the phone seemed fast (negative: slow).
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Whether the phone seemed fast (else slow).
    pub fn is_fast(&self) -> bool {
        self.seconds > 0
    }

    /// The hint this session's last accepted code left, removed from the
    /// session so that it shows once. For the page a browser lands on
    /// after the second step.
    ///
    /// # Errors
    ///
    /// If the session store fails.
    pub async fn take(session: &Session) -> Result<Option<Self>, tower_sessions::session::Error> {
        Ok(match session.remove_value(HINT_KEY).await? {
            Some(value) => value.as_i64().map(|seconds| Self { seconds }),
            None => None,
        })
    }

    /// Leave `hint` for the landing page, or, for an on-time code, drop
    /// one an earlier code left: the newest code is what the page tells of.
    pub(crate) async fn keep(
        hint: Option<Self>,
        session: &Session,
    ) -> Result<(), tower_sessions::session::Error> {
        match hint {
            Some(hint) => session.insert(HINT_KEY, hint.seconds).await,
            None => Self::forget(session).await,
        }
    }

    /// No hint waits any more (the login ended, or a new one began).
    pub(crate) async fn forget(session: &Session) -> Result<(), tower_sessions::session::Error> {
        session.remove_value(HINT_KEY).await.map(|_| ())
    }
}

/// When an accepted code's offset earns a [`ClockHint`]: how many steps
/// fast, and how many slow, a code must be.
///
/// A code that matched a later step than the server's comes from a phone
/// that is fast: the time the user takes to type it only makes a code
/// older. A code one step *behind* is, most of the time, no sign of a slow
/// phone: a code read in the last seconds of its step and typed in the
/// next is one step behind on a phone that keeps perfect time. The
/// simulator measured it (`docs/simulator.md`, "The clock hint"): with a
/// median of 6 s between reading and sending, 21% of the logins of phones
/// within half a second of true time match one step behind, and every one
/// of a thousand users would be told within a month that their phone is
/// 30 s slow. Two steps behind needs a phone at least a step minus the
/// typing time slow. So the default hints at one step fast or two slow;
/// [`ClockHintRule::every_step`] hints at any step away.
///
/// ```
/// use tower_totp::http::ClockHintRule;
///
/// let rule = ClockHintRule::default();
/// assert_eq!(rule.hint(1, 30).map(|h| h.seconds()), Some(30));
/// assert_eq!(rule.hint(-1, 30), None);
/// assert_eq!(rule.hint(-2, 30).map(|h| h.seconds()), Some(-60));
/// assert_eq!(ClockHintRule::every_step().hint(-1, 30).map(|h| h.seconds()), Some(-30));
/// assert_eq!(ClockHintRule::never().hint(5, 30), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockHintRule {
    fast_steps: u32,
    slow_steps: u32,
}

impl ClockHintRule {
    /// Hint when a code is `fast_steps` or more steps ahead of the
    /// server's, or `slow_steps` or more behind; 0 never hints that way.
    pub const fn new(fast_steps: u32, slow_steps: u32) -> Self {
        Self {
            fast_steps,
            slow_steps,
        }
    }

    /// Steps fast a code must be for a hint (0: never).
    pub const fn fast_steps(&self) -> u32 {
        self.fast_steps
    }

    /// Steps slow a code must be for a hint (0: never).
    pub const fn slow_steps(&self) -> u32 {
        self.slow_steps
    }

    /// Hint at any code a step or more from the server's, either way.
    pub const fn every_step() -> Self {
        Self::new(1, 1)
    }

    /// Never hint.
    pub const fn never() -> Self {
        Self::new(0, 0)
    }

    /// The hint an accepted code `offset_steps` from the server's step
    /// earns, with steps of `period_secs`.
    pub fn hint(&self, offset_steps: i64, period_secs: u32) -> Option<ClockHint> {
        let earned = match offset_steps {
            0 => false,
            ahead if ahead > 0 => {
                self.fast_steps > 0 && ahead.unsigned_abs() >= u64::from(self.fast_steps)
            }
            behind => self.slow_steps > 0 && behind.unsigned_abs() >= u64::from(self.slow_steps),
        };
        earned
            .then(|| ClockHint::from_offset(offset_steps, period_secs))
            .flatten()
    }
}

impl Default for ClockHintRule {
    /// A step fast, or two steps slow (see the type's documentation).
    fn default() -> Self {
        Self::new(1, 2)
    }
}

impl fmt::Display for ClockHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = if self.is_fast() { "fast" } else { "slow" };
        write!(
            f,
            "Your phone's clock seems about {} s {way}. Codes still work, \
             but set the phone to automatic time.",
            self.seconds.unsigned_abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_phone_is_told_so() {
        let hint = ClockHint::from_offset(-2, 30).unwrap();
        assert_eq!(hint.seconds(), -60);
        assert!(!hint.is_fast());
        assert!(hint.to_string().contains("about 60 s slow"));
    }

    #[test]
    fn rules_count_steps_either_way() {
        let rule = ClockHintRule::new(2, 3);
        let seconds = |offset| rule.hint(offset, 30).map(|h| h.seconds());
        assert_eq!(seconds(1), None);
        assert_eq!(seconds(2), Some(60));
        assert_eq!(seconds(-2), None);
        assert_eq!(seconds(-3), Some(-90));
        assert_eq!(seconds(i64::MIN), Some(i64::MIN));
        assert_eq!(ClockHintRule::new(0, 1).hint(9, 30), None);
        assert_eq!(ClockHintRule::new(1, 0).hint(-9, 30), None);
    }

    #[test]
    fn extreme_offsets_saturate() {
        let hint = ClockHint::from_offset(i64::MIN, 3600).unwrap();
        assert_eq!(hint.seconds(), i64::MIN);
        assert!(
            hint.to_string()
                .contains(&i64::MIN.unsigned_abs().to_string())
        );
    }
}
