//! The decision: which step a code matches, inside the window centred on the
//! user's learned offset, or outside it within the maximum drift.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::{Choice, ConditionallySelectable};

use crate::code::{Code, Hotp};
use crate::error::ConfigError;
use crate::store::AuthenticatorId;

/// Steps accepted around the expected one, how far drift may be learned,
/// and how fast a device's offset may change.
///
/// ```
/// use tower_totp::verify::Window;
///
/// let window = Window::new(1, 1, 10)?.with_max_drift_rate(5_000)?;
/// assert_eq!(window.max_drift_rate(), 5_000);
/// // A phone last used 3 steps ago cannot suddenly run 3 steps slow...
/// assert!(!window.allows_offset_change(0, Some(100), 103, -3));
/// // ...but one last used a week ago (20,160 steps) can.
/// assert!(window.allows_offset_change(0, Some(100), 100 + 20_160, -3));
/// # Ok::<(), tower_totp::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowFields")]
pub struct Window {
    behind: u32,
    ahead: u32,
    max_drift: u32,
    max_drift_rate: u32,
}

/// The default [`Window::max_drift_rate`]: 1% (10,000 ppm), one step of
/// offset change per 100 steps (50 minutes at 30 s). Quartz clocks drift
/// by about 78 ppm (median) and rarely over 500 ppm, so this is 20 times
/// the worst of them: a phone that really drifts is never refused. What it
/// refuses is a jump of several steps within the hour after a code was
/// accepted: a clock set by hand in that hour (which the window still
/// absorbs up to a step), or a shoulder surfer's codes.
pub const DEFAULT_MAX_DRIFT_RATE: u32 = 10_000;

/// Parts per million: the unit of [`Window::max_drift_rate`].
const PPM: i128 = 1_000_000;

/// The serialised form, read through [`Window::new`] and
/// [`Window::with_max_drift_rate`] so a deserialised window is checked too.
#[derive(Deserialize)]
struct WindowFields {
    behind: u32,
    ahead: u32,
    max_drift: u32,
    #[serde(default = "default_max_drift_rate")]
    max_drift_rate: u32,
}

fn default_max_drift_rate() -> u32 {
    DEFAULT_MAX_DRIFT_RATE
}

impl TryFrom<WindowFields> for Window {
    type Error = ConfigError;

    fn try_from(f: WindowFields) -> Result<Self, ConfigError> {
        Window::new(f.behind, f.ahead, f.max_drift)?.with_max_drift_rate(f.max_drift_rate)
    }
}

impl Default for Window {
    /// One step behind and one ahead; drift learned up to 10 steps, at
    /// most [`DEFAULT_MAX_DRIFT_RATE`] fast.
    fn default() -> Self {
        Self {
            behind: 1,
            ahead: 1,
            max_drift: 10,
            max_drift_rate: DEFAULT_MAX_DRIFT_RATE,
        }
    }
}

impl Window {
    /// A window of `behind` and `ahead` steps around the learned offset,
    /// which may grow to `max_drift` steps either way, at most
    /// [`DEFAULT_MAX_DRIFT_RATE`] fast (see [`Window::with_max_drift_rate`]).
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
            max_drift_rate: DEFAULT_MAX_DRIFT_RATE,
        })
    }

    /// How fast, in parts per million of elapsed steps, a device's offset
    /// may change beyond what the window absorbs: the resynchronisation
    /// rule of [`Window::allows_offset_change`]. `0` turns
    /// resynchronisation off (the window alone follows a drifting device);
    /// `1_000_000` (one step per step) lets `max_drift` alone decide.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DriftRate`] above `1_000_000`.
    pub fn with_max_drift_rate(mut self, ppm: u32) -> Result<Self, ConfigError> {
        if i128::from(ppm) > PPM {
            return Err(ConfigError::DriftRate(ppm));
        }
        self.max_drift_rate = ppm;
        Ok(self)
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

    /// How fast a device's offset may change, in parts per million of
    /// elapsed steps (default [`DEFAULT_MAX_DRIFT_RATE`]).
    pub fn max_drift_rate(&self) -> u32 {
        self.max_drift_rate
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

    /// Whether a resynchronisation from `learned_offset` to `new_offset` is
    /// plausible at server step `now_step`, for a device whose last accepted
    /// code was for its step `last_step`.
    ///
    /// A real device's offset was exact at its last accepted code, and its
    /// clock drifts slowly after it; two codes that imply a jump right after
    /// a login are someone else's (a shoulder surfer who saw the codes the
    /// phone showed after the user's). So the change may exceed what the
    /// window absorbs in its direction (`behind` for a slower device,
    /// `ahead` for a faster one) by at most `elapsed × max_drift_rate`,
    /// where `elapsed` is the server's steps since that code:
    /// `now_step - (last_step - learned_offset)`, the server step at which
    /// it was accepted (approximately, if the offset was clamped), and
    /// never negative. A device with no accepted code has no reference
    /// point, and only `max_drift` bounds it.
    ///
    /// Exact integer arithmetic (no rounding in anyone's favour), and no
    /// overflow or panic for any input.
    pub fn allows_offset_change(
        &self,
        learned_offset: i64,
        last_step: Option<u64>,
        now_step: u64,
        new_offset: i64,
    ) -> bool {
        let Some(last_step) = last_step else {
            return true;
        };
        // i128 holds every intermediate value: steps and offsets are 64-bit,
        // the products below at most about 2^86.
        let change = i128::from(new_offset) - i128::from(learned_offset);
        let absorbed = if change < 0 { self.behind } else { self.ahead };
        let excess = (change.abs() - i128::from(absorbed)).max(0);
        let accepted_at = i128::from(last_step) - i128::from(learned_offset);
        let elapsed = (i128::from(now_step) - accepted_at).max(0);
        excess * PPM <= elapsed * i128::from(self.max_drift_rate)
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
    find_eligible_step(hotp, code, steps.map(|s| (s, true)))
}

/// [`find_step`] over steps of which only the eligible may match: the code
/// of every step is computed and compared all the same, so the work does
/// not depend on which steps are eligible (how long ago the device was last
/// used) any more than on which one matched.
pub(crate) fn find_eligible_step(
    hotp: &Hotp,
    code: &Code,
    steps: impl Iterator<Item = (u64, bool)>,
) -> Option<u64> {
    let mut found = Choice::from(0);
    let mut step = 0u64;
    for (candidate, eligible) in steps {
        let hit = code.ct_matches(hotp.code(candidate)) & Choice::from(u8::from(eligible));
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
    fn max_drift_rate_is_checked_and_defaults_to_one_percent() {
        assert_eq!(Window::default().max_drift_rate(), 10_000);
        assert_eq!(Window::new(1, 1, 10).unwrap(), Window::default());
        assert!(Window::default().with_max_drift_rate(0).is_ok());
        assert!(Window::default().with_max_drift_rate(1_000_000).is_ok());
        assert_eq!(
            Window::default().with_max_drift_rate(1_000_001),
            Err(ConfigError::DriftRate(1_000_001))
        );
    }

    /// Deserialising goes through the checked constructors; a window
    /// written before the rate existed gets the default rate.
    #[test]
    fn serde_goes_through_the_checks() {
        let w = Window::new(2, 1, 5)
            .unwrap()
            .with_max_drift_rate(500)
            .unwrap();
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<Window>(&json).unwrap(), w);
        let old: Window = serde_json::from_str(r#"{"behind":1,"ahead":1,"max_drift":10}"#).unwrap();
        assert_eq!(old, Window::default());
        for bad in [
            r#"{"behind":3,"ahead":1,"max_drift":2}"#,
            r#"{"behind":1,"ahead":1,"max_drift":10,"max_drift_rate":2000000}"#,
        ] {
            assert!(serde_json::from_str::<Window>(bad).is_err(), "{bad}");
        }
    }

    /// The allowance is `elapsed × rate` beyond what the window absorbs in
    /// the direction of the change: at 1%, one step per 100 elapsed steps.
    #[test]
    fn offset_change_boundaries() {
        let w = Window::default();
        // Last accepted at server step 1,000 with offset 0.
        let ok = |now: u64, new: i64| w.allows_offset_change(0, Some(1_000), now, new);
        // What the window absorbs is always allowed, even at once.
        assert!(ok(1_000, 1) && ok(1_000, -1) && ok(1_000, 0));
        // One step beyond it needs 100 elapsed steps, not 99.
        assert!(!ok(1_099, 2) && !ok(1_099, -2));
        assert!(ok(1_100, 2) && ok(1_100, -2));
        // Nine beyond (the whole default drift) needs 900.
        assert!(!ok(1_899, -10) && ok(1_900, -10) && ok(1_900, 10));
        // The surfer's pair: 2 to 10 steps after the login, never.
        for elapsed in 2..=12 {
            for new in [-10, -5, -2, 2, 5, 10] {
                assert!(!ok(1_000 + elapsed, new), "{elapsed} {new}");
            }
        }
        // A phone 3 steps slow after a week; 10 after months.
        assert!(ok(1_000 + 7 * 2_880, -3));
        assert!(ok(1_000 + 90 * 2_880, 10));
    }

    #[test]
    fn offset_change_uses_the_window_side_of_its_direction() {
        let w = Window::new(3, 0, 10).unwrap();
        let ok = |new: i64| w.allows_offset_change(0, Some(500), 500, new);
        assert!(ok(-3) && !ok(-4));
        assert!(ok(0) && !ok(1));
    }

    /// Elapsed time is counted from the server step of the last accepted
    /// code, `last_step - learned_offset`, whatever the sign of the offset.
    #[test]
    fn offset_change_counts_from_the_server_step_of_the_last_code() {
        let w = Window::default();
        // A phone 5 steps fast last showed step 1,005, at server step 1,000.
        assert!(!w.allows_offset_change(5, Some(1_005), 1_099, 7));
        assert!(w.allows_offset_change(5, Some(1_005), 1_100, 7));
        assert!(w.allows_offset_change(5, Some(1_005), 1_100, 3));
        // A phone 5 steps slow last showed step 995, at server step 1,000.
        assert!(!w.allows_offset_change(-5, Some(995), 1_099, -7));
        assert!(w.allows_offset_change(-5, Some(995), 1_100, -7));
        assert!(w.allows_offset_change(-5, Some(995), 1_100, -3));
        // The server clock behind that step counts as no time at all.
        assert!(!w.allows_offset_change(0, Some(1_000), 10, 2));
        assert!(w.allows_offset_change(0, Some(1_000), 10, 1));
    }

    #[test]
    fn offset_change_without_a_last_step_is_bounded_by_max_drift_only() {
        let w = Window::default();
        assert!(w.allows_offset_change(0, None, 0, 10));
        assert!(w.allows_offset_change(0, None, 0, -10));
    }

    #[test]
    fn offset_change_rates_zero_and_one() {
        let off = Window::default().with_max_drift_rate(0).unwrap();
        assert!(off.allows_offset_change(0, Some(0), u64::MAX, 1));
        assert!(!off.allows_offset_change(0, Some(0), u64::MAX, 2));
        let any = Window::default().with_max_drift_rate(1_000_000).unwrap();
        assert!(any.allows_offset_change(0, Some(0), 9, 10));
        assert!(!any.allows_offset_change(0, Some(0), 8, 10));
    }

    /// Extreme values neither overflow nor panic, and still decide sensibly.
    #[test]
    fn offset_change_saturates_at_extreme_values() {
        let any = Window::default().with_max_drift_rate(1_000_000).unwrap();
        for w in [Window::default(), any] {
            for learned in [i64::MIN, -1, 0, 1, i64::MAX] {
                for new in [i64::MIN, 0, i64::MAX] {
                    for last in [None, Some(0), Some(u64::MAX)] {
                        for now in [0, u64::MAX] {
                            let _ = w.allows_offset_change(learned, last, now, new);
                        }
                    }
                }
            }
        }
        let w = Window::default();
        assert!(!w.allows_offset_change(i64::MIN, Some(0), 0, i64::MAX));
        assert!(!w.allows_offset_change(i64::MAX, Some(u64::MAX), 0, i64::MIN));
        // 2^64 - 1 steps at 1%: about 1.8 × 10^17 steps of change allowed.
        assert!(w.allows_offset_change(0, Some(0), u64::MAX, i64::MAX / 100));
        assert!(!w.allows_offset_change(0, Some(0), u64::MAX, i64::MAX));
        assert!(w.allows_offset_change(i64::MIN, Some(0), u64::MAX, i64::MIN));
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

    /// An ineligible step never matches, yet its code is computed: the
    /// count of steps taken is the same whichever are eligible.
    #[test]
    fn find_eligible_step_skips_ineligible_steps_at_the_same_cost() {
        use std::cell::Cell;

        let hotp = Hotp::new(
            &Secret::from_bytes(b"12345678901234567890").unwrap(),
            CodeParams::default(),
        );
        let code = parse_code(&hotp.code_string(41), 6).unwrap();
        for (eligible, expected) in [(true, Some(41)), (false, None)] {
            let taken = Cell::new(0usize);
            let steps = window_steps(40, 2, 2)
                .map(|s| (s, s != 41 || eligible))
                .inspect(|_| taken.set(taken.get() + 1));
            assert_eq!(find_eligible_step(&hotp, &code, steps), expected);
            assert_eq!(taken.get(), 5);
        }
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
