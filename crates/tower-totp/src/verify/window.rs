//! The window: which steps are accepted around the expected one, which a
//! resynchronisation looks at, and how fast a device's offset may change.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

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

    /// How far the window reaches from the expected step on its wider
    /// side: `max(behind, ahead)`.
    pub fn reach(&self) -> u32 {
        self.behind.max(self.ahead)
    }

    /// The offsets from the expected step the window accepts:
    /// `-behind ..= ahead`.
    pub fn offsets(&self) -> RangeInclusive<i64> {
        -i64::from(self.behind)..=i64::from(self.ahead)
    }

    /// The steps accepted at server step `now_step` from a device whose
    /// learned offset is `offset`: from `behind` before to `ahead` after
    /// the expected step `now_step + offset`, nearest it first (at equal
    /// distance the older step first), clipped at step 0 and at `u64::MAX`.
    ///
    /// Nearest first is what settles a code collision: the matching takes
    /// the first step that matches, so the learned offset does not jump.
    ///
    /// ```
    /// use tower_totp::verify::Window;
    ///
    /// let window = Window::new(1, 2, 10)?;
    /// assert_eq!(window.steps(100, 0).collect::<Vec<_>>(), [100, 99, 101, 102]);
    /// assert_eq!(window.steps(100, -3).collect::<Vec<_>>(), [97, 96, 98, 99]);
    /// # Ok::<(), tower_totp::ConfigError>(())
    /// ```
    pub fn steps(&self, now_step: u64, offset: i64) -> impl Iterator<Item = u64> + use<> {
        spread(centre(now_step, offset), self.behind, self.ahead)
    }

    /// The steps a resynchronisation looks at, at server step `now_step`
    /// for a device whose learned offset is `offset`: every step within
    /// `max_drift` of `now_step` (nearest it first) that
    /// [`steps`](Self::steps) does not yield.
    ///
    /// ```
    /// use tower_totp::verify::Window;
    ///
    /// let window = Window::new(1, 1, 3)?;
    /// assert_eq!(window.resync_steps(100, 0).collect::<Vec<_>>(), [98, 102, 97, 103]);
    /// assert_eq!(window.resync_steps(100, 2).collect::<Vec<_>>(), [100, 99, 98, 97]);
    /// # Ok::<(), tower_totp::ConfigError>(())
    /// ```
    pub fn resync_steps(&self, now_step: u64, offset: i64) -> impl Iterator<Item = u64> + use<> {
        let expected = centre(now_step, offset);
        let first = expected - i128::from(self.behind);
        let last = expected + i128::from(self.ahead);
        spread(i128::from(now_step), self.max_drift, self.max_drift).filter(move |s| {
            let s = i128::from(*s);
            s < first || s > last
        })
    }
}

/// `step - now_step`: the offset of a device that showed the code of `step`
/// at server step `now_step`, saturating.
pub(crate) fn offset_of(step: u64, now_step: u64) -> i64 {
    let diff = i128::from(step) - i128::from(now_step);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}

/// The expected step `now_step + offset`, exact: an `i128` holds it.
fn centre(now_step: u64, offset: i64) -> i128 {
    i128::from(now_step) + i128::from(offset)
}

/// The steps `centre - behind ..= centre + ahead`, nearest to `centre`
/// first (at equal distance the older step first), clipped at step 0 and at
/// `u64::MAX`.
fn spread(centre: i128, behind: u32, ahead: u32) -> impl Iterator<Item = u64> {
    let reach = i128::from(behind.max(ahead));
    (0..=reach)
        .flat_map(move |d| {
            let older = (d <= i128::from(behind)).then_some(centre - d);
            let newer = (d > 0 && d <= i128::from(ahead)).then_some(centre + d);
            older.into_iter().chain(newer)
        })
        .filter_map(|s| u64::try_from(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for (bad, refusal) in [
            (
                r#"{"behind":3,"ahead":1,"max_drift":2}"#,
                ConfigError::Window {
                    behind: 3,
                    ahead: 1,
                    max_drift: 2,
                },
            ),
            (
                r#"{"behind":1,"ahead":1,"max_drift":10,"max_drift_rate":2000000}"#,
                ConfigError::DriftRate(2_000_000),
            ),
        ] {
            let err = serde_json::from_str::<Window>(bad).unwrap_err();
            assert!(
                err.to_string().contains(&refusal.to_string()),
                "{bad}: {err}"
            );
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
    fn spread_clips_at_both_ends() {
        assert_eq!(spread(0, 1, 1).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(spread(5, 2, 0).collect::<Vec<_>>(), [5, 4, 3]);
        let top = i128::from(u64::MAX);
        assert_eq!(
            spread(top, 1, 3).collect::<Vec<_>>(),
            [u64::MAX, u64::MAX - 1]
        );
        assert_eq!(spread(-5, 1, 1).count(), 0);
    }

    #[test]
    fn spread_goes_outward_from_the_centre() {
        assert_eq!(
            spread(100, 2, 3).collect::<Vec<_>>(),
            [100, 99, 101, 98, 102, 103]
        );
        assert_eq!(spread(100, 0, 0).collect::<Vec<_>>(), [100]);
    }

    /// The window's steps sit around `now_step + offset`, whatever the
    /// offset's sign, and stay clipped at the ends of the step range.
    #[test]
    fn steps_follow_the_learned_offset() {
        let w = Window::new(1, 1, 10).unwrap();
        assert_eq!(w.steps(100, 0).collect::<Vec<_>>(), [100, 99, 101]);
        assert_eq!(w.steps(100, 5).collect::<Vec<_>>(), [105, 104, 106]);
        assert_eq!(w.steps(100, -5).collect::<Vec<_>>(), [95, 94, 96]);
        assert_eq!(w.steps(0, -1).collect::<Vec<_>>(), [0]);
        assert_eq!(w.steps(u64::MAX, 1).collect::<Vec<_>>(), [u64::MAX]);
        assert_eq!(w.steps(3, i64::MIN).count(), 0);
        assert_eq!(w.steps(100, 0).count(), w.width() as usize);
    }

    /// The resync range is the maximum drift around the server's step, less
    /// the window's steps; together they cover the drift range once.
    #[test]
    fn resync_steps_are_the_drift_range_outside_the_window() {
        let w = Window::new(1, 2, 4).unwrap();
        for offset in [-6, -4, -1, 0, 1, 3, 4, 9] {
            let mut all: Vec<u64> = w
                .resync_steps(100, offset)
                .chain(w.steps(100, offset).filter(|s| s.abs_diff(100) <= 4))
                .collect();
            all.sort_unstable();
            assert_eq!(all, (96..=104).collect::<Vec<_>>(), "offset {offset}");
            assert!(
                w.resync_steps(100, offset)
                    .all(|s| !w.steps(100, offset).any(|t| t == s)),
                "offset {offset}"
            );
        }
        // Nearest the server's step first.
        assert_eq!(
            w.resync_steps(100, 0).collect::<Vec<_>>(),
            [98, 97, 103, 96, 104]
        );
        assert_eq!(w.resync_steps(1, 0).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn reach_and_offsets() {
        let w = Window::new(3, 1, 5).unwrap();
        assert_eq!(w.reach(), 3);
        assert_eq!(w.offsets(), -3..=1);
        assert_eq!(w.offsets().count(), w.width() as usize);
        assert_eq!(Window::default().offsets(), -1..=1);
    }

    #[test]
    fn offset_of_saturates() {
        assert_eq!(offset_of(10, 7), 3);
        assert_eq!(offset_of(7, 10), -3);
        assert_eq!(offset_of(u64::MAX, 0), i64::MAX);
        assert_eq!(offset_of(0, u64::MAX), i64::MIN);
    }
}
