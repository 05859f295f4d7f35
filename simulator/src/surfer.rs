//! `[shoulder_surfer]`: which codes the surfer sees, and in which order and
//! at which moments it tries them.
//!
//! **What it sees.** Watching an accepted login, the surfer sees the
//! `observe_codes` newest codes the victim's phone showed up to the moment
//! the code was submitted: the phone's steps `p − observe_codes + 1 ..= p`,
//! `p` the phone's step at the submission. The typed code is among them
//! (unless the phone moved on `observe_codes` steps or more while the
//! victim typed); so is the next one when the phone turned over while the
//! victim typed. With `observe_after`, it also sees that many codes the
//! phone showed *after* the login (`p + 1 ..= p + observe_after`), never
//! typed: tried once they are outside the window (with the default delay
//! of 2 to 5 minutes), they can only get in through a resynchronisation,
//! which the drift-rate rule refuses. A code still inside the window would
//! be accepted by any TOTP verifier (that is what a window is), so a delay
//! that short measures nothing about this one.
//!
//! **What it tries**, starting `delay_s` after the login, one login
//! attempt each (password, then the code): every seen code alone, oldest
//! first, a second apart; then every pair of consecutive seen codes, the
//! older one second after the previous try and the newer exactly one period
//! after it: two codes of consecutive steps one step apart in real time,
//! at the same offset, which is what a resynchronisation asks for. It
//! stops at the first acceptance; a throttled try is tried again after the
//! `Retry-After`.

/// One try of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    /// Milliseconds after the previous try (the first: after the delay).
    pub gap_ms: u64,
    /// Which seen code: 0 is the oldest.
    pub code: u32,
}

/// The seen steps of a login submitted when the phone showed step
/// `phone_step`: the oldest and the newest (`observe_after` steps past it).
pub fn seen_steps(phone_step: u64, observe_codes: u32, observe_after: u32) -> (u64, u64) {
    let oldest = phone_step.saturating_sub(u64::from(observe_codes.saturating_sub(1)));
    (oldest, phone_step.saturating_add(u64::from(observe_after)))
}

/// The tries for `observe_codes` seen codes, with steps of `period_ms`.
pub fn tries(observe_codes: u32, period_ms: u64) -> Vec<Try> {
    let mut out: Vec<Try> = (0..observe_codes)
        .map(|code| Try {
            gap_ms: if code == 0 { 0 } else { 1000 },
            code,
        })
        .collect();
    for older in 0..observe_codes.saturating_sub(1) {
        out.push(Try {
            gap_ms: 1000,
            code: older,
        });
        out.push(Try {
            gap_ms: period_ms,
            code: older + 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_surfer_sees_the_codes_up_to_the_submission() {
        assert_eq!(seen_steps(100, 1, 0), (100, 100));
        assert_eq!(seen_steps(100, 3, 0), (98, 100));
        assert_eq!(seen_steps(1, 5, 0), (0, 1));
        assert_eq!(seen_steps(100, 2, 2), (99, 102));
    }

    #[test]
    fn singles_first_then_pairs_one_period_apart() {
        let t = tries(3, 30_000);
        let codes: Vec<u32> = t.iter().map(|t| t.code).collect();
        assert_eq!(codes, [0, 1, 2, 0, 1, 1, 2]);
        assert_eq!(t[4].gap_ms, 30_000);
        assert_eq!(t[6].gap_ms, 30_000);
        assert_eq!(tries(1, 30_000).len(), 1);
    }
}
