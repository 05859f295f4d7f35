//! The decision: which step a code matches, inside the window centred on the
//! user's learned offset, or outside it within the maximum drift.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::{Choice, ConditionallySelectable};

use crate::code::{Code, Hotp};
use crate::error::ConfigError;
use crate::store::AuthenticatorId;

/// Steps accepted around the expected one, and how far drift may be learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    behind: u32,
    ahead: u32,
    max_drift: u32,
}

impl Default for Window {
    /// One step behind and one ahead; drift learned up to 10 steps.
    fn default() -> Self {
        Self {
            behind: 1,
            ahead: 1,
            max_drift: 10,
        }
    }
}

impl Window {
    /// A window of `behind` and `ahead` steps around the learned offset,
    /// which may grow to `max_drift` steps either way.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Window`] if `behind` or `ahead` exceeds `max_drift`.
    pub fn new(behind: u32, ahead: u32, max_drift: u32) -> Result<Self, ConfigError> {
        if behind > max_drift || ahead > max_drift {
            return Err(ConfigError::Window {
                behind,
                ahead,
                max_drift,
            });
        }
        Ok(Self {
            behind,
            ahead,
            max_drift,
        })
    }

    /// Steps accepted behind the expected step.
    pub fn behind(&self) -> u32 {
        self.behind
    }

    /// Steps accepted ahead of the expected step.
    pub fn ahead(&self) -> u32 {
        self.ahead
    }

    /// The largest offset, in steps, learned for a device.
    pub fn max_drift(&self) -> u32 {
        self.max_drift
    }

    /// How many steps one guess can match: `behind + ahead + 1`.
    pub fn width(&self) -> u32 {
        self.behind + self.ahead + 1
    }

    /// Clamp a learned offset to `±max_drift`.
    pub(crate) fn clamp_offset(&self, offset: i64) -> i64 {
        let max = i64::from(self.max_drift);
        offset.clamp(-max, max)
    }
}

/// The outcome of checking a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The code matched and its step is now used.
    Accepted {
        /// The authenticator whose code it was.
        authenticator: AuthenticatorId,
        /// The step it matched.
        step: u64,
        /// The device's offset in steps (matched step minus the server's step).
        offset: i64,
        /// Whether this acceptance resynchronised a drifted device.
        resynchronised: bool,
    },
    /// The code was refused.
    Rejected(RejectReason),
}

impl Verdict {
    /// Whether the code was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// Why a code was refused (or, for the last three, an enrollment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Not a code of the expected shape (see the input rule).
    Malformed,
    /// No step in the window matched.
    Invalid,
    /// It matched a step already used.
    Replayed,
    /// Too many failures: locked out for this long.
    Throttled {
        /// Time until the next attempt is let through.
        retry_after: Duration,
    },
    /// The user has no active authenticator.
    NotEnrolled,
    /// No pending enrollment with the id given (the caller's session has
    /// none, it expired, or it was confirmed or replaced meanwhile).
    NoPendingEnrollment,
    /// This session may add the first authenticator only, and the user has
    /// one already: adding another needs a recent second step.
    AlreadyEnrolled,
    /// The user has the maximum number of active authenticators.
    TooManyAuthenticators,
    /// The user has the maximum number of pending enrollments (one per
    /// session that started one); they expire after the pending time.
    TooManyPendingEnrollments,
}

impl RejectReason {
    /// A short machine-readable name (`malformed`, `invalid`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::Replayed => "replayed",
            Self::Throttled { .. } => "throttled",
            Self::NotEnrolled => "not_enrolled",
            Self::NoPendingEnrollment => "no_pending_enrollment",
            Self::AlreadyEnrolled => "already_enrolled",
            Self::TooManyAuthenticators => "too_many_authenticators",
            Self::TooManyPendingEnrollments => "too_many_pending_enrollments",
        }
    }
}

/// The steps `centre - behind ..= centre + ahead`, nearest to `centre`
/// first (at equal distance the older step first), clipped at step 0 and at
/// `u64::MAX`.
pub(crate) fn window_steps(centre: i128, behind: u32, ahead: u32) -> impl Iterator<Item = u64> {
    let reach = i128::from(behind.max(ahead));
    (0..=reach)
        .flat_map(move |d| {
            let older = (d <= i128::from(behind)).then_some(centre - d);
            let newer = (d > 0 && d <= i128::from(ahead)).then_some(centre + d);
            older.into_iter().chain(newer)
        })
        .filter_map(|s| u64::try_from(s).ok())
}

/// Compare `code` with every step in `steps`, in constant time: all codes
/// are computed and compared whatever matches, and the match is selected
/// with `subtle`, so the time taken does not tell which step matched.
/// Where two steps match (a code collision, about one login in 10^6 per
/// extra step), the first in `steps` wins: with [`window_steps`] the one
/// nearest the expected step, so a collision does not make the learned
/// offset jump.
pub(crate) fn find_step(hotp: &Hotp, code: &Code, steps: impl Iterator<Item = u64>) -> Option<u64> {
    let mut found = Choice::from(0);
    let mut step = 0u64;
    for candidate in steps {
        let hit = code.ct_matches(hotp.code(candidate));
        step = u64::conditional_select(&step, &candidate, hit & !found);
        found |= hit;
    }
    bool::from(found).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::{CodeParams, Secret, parse_code};

    #[test]
    fn window_must_fit_in_max_drift() {
        assert!(Window::new(2, 1, 1).is_err());
        assert!(Window::new(0, 0, 0).is_ok());
        assert_eq!(Window::default().width(), 3);
        assert_eq!(Window::default().clamp_offset(-50), -10);
    }

    #[test]
    fn window_steps_clip_at_both_ends() {
        assert_eq!(window_steps(0, 1, 1).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(window_steps(5, 2, 0).collect::<Vec<_>>(), [5, 4, 3]);
        let top = i128::from(u64::MAX);
        assert_eq!(
            window_steps(top, 1, 3).collect::<Vec<_>>(),
            [u64::MAX, u64::MAX - 1]
        );
        assert_eq!(window_steps(-5, 1, 1).count(), 0);
    }

    #[test]
    fn window_steps_go_outward_from_the_centre() {
        assert_eq!(
            window_steps(100, 2, 3).collect::<Vec<_>>(),
            [100, 99, 101, 98, 102, 103]
        );
        assert_eq!(window_steps(100, 0, 0).collect::<Vec<_>>(), [100]);
    }

    /// Two steps whose codes collide: the one nearest the centre wins,
    /// whichever comes later in time.
    #[test]
    fn a_collision_resolves_to_the_nearest_step() {
        let hotp = Hotp::new(
            &Secret::from_bytes(b"12345678901234567890").unwrap(),
            CodeParams::default(),
        );
        // Find two steps within 10 of each other with the same code.
        let (a, b) = (0u64..2_000_000)
            .find_map(|s| {
                let c = hotp.code(s);
                (1..=10)
                    .map(|d| s + d)
                    .find(|t| hotp.code(*t) == c)
                    .map(|t| (s, t))
            })
            .expect("a 6-digit collision within 10 steps exists among 2 million steps");
        let code = parse_code(&hotp.code_string(a), 6).unwrap();
        let span = u32::try_from(b - a).unwrap();
        // Centred on the older step, the window reaching the newer one picks the older.
        assert_eq!(
            find_step(&hotp, &code, window_steps(i128::from(a), 0, span)),
            Some(a)
        );
        // Centred on the newer one, it picks the newer.
        assert_eq!(
            find_step(&hotp, &code, window_steps(i128::from(b), span, 0)),
            Some(b)
        );
    }

    #[test]
    fn find_step_returns_the_matching_step() {
        let hotp = Hotp::new(
            &Secret::from_bytes(b"12345678901234567890").unwrap(),
            CodeParams::default(),
        );
        let code = parse_code(&hotp.code_string(41), 6).unwrap();
        assert_eq!(find_step(&hotp, &code, window_steps(40, 1, 1)), Some(41));
        assert_eq!(find_step(&hotp, &code, window_steps(45, 1, 1)), None);
    }

    /// Constant work: `find_step` computes one code (one HMAC) per step it
    /// takes from the iterator and takes every step, so a window of width W
    /// costs W codes whether the match is at the first, middle or last step,
    /// or nowhere. Counting the steps taken counts the HMACs.
    #[test]
    fn find_step_computes_every_candidate_whatever_matches() {
        use std::cell::Cell;

        let hotp = Hotp::new(
            &Secret::from_bytes(b"12345678901234567890").unwrap(),
            CodeParams::default(),
        );
        let centre: u64 = 1_000;
        for (behind, ahead) in [(0, 0), (1, 1), (2, 0), (0, 3), (5, 5)] {
            let window = Window::new(behind, ahead, 10).unwrap();
            let width = window.width() as usize;
            let lo = centre - u64::from(behind);
            let hi = centre + u64::from(ahead);
            // A step far outside whose code matches nothing in the window.
            let outside = (hi + 100..)
                .find(|s| (lo..=hi).all(|w| hotp.code(w) != hotp.code(*s)))
                .unwrap();
            for (target, expected) in [
                (lo, Some(lo)),
                (centre, Some(centre)),
                (hi, Some(hi)),
                (outside, None),
            ] {
                let code = parse_code(&hotp.code_string(target), 6).unwrap();
                let taken = Cell::new(0usize);
                let steps = window_steps(i128::from(centre), behind, ahead)
                    .inspect(|_| taken.set(taken.get() + 1));
                assert_eq!(find_step(&hotp, &code, steps), expected);
                assert_eq!(
                    taken.get(),
                    width,
                    "window -{behind}/+{ahead}, match at {target}: {} codes computed",
                    taken.get()
                );
            }
        }
    }
}
