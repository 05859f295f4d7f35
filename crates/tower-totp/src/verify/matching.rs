//! Constant-time matching of a code against a run of steps.

use subtle::{Choice, ConditionallySelectable};

use crate::code::{Code, Hotp};
#[cfg(doc)]
use crate::verify::Window;

/// Compare `code` with every step in `steps`, in constant time: all codes
/// are computed and compared whatever matches, and the match is selected
/// with `subtle`, so the time taken does not tell which step matched.
/// Where two steps match (a code collision, about one login in 10^6 per
/// extra step), the first in `steps` wins: with [`Window::steps`] the one
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
    use crate::verify::Window;

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
            find_step(
                &hotp,
                &code,
                Window::new(0, span, span).unwrap().steps(a, 0)
            ),
            Some(a)
        );
        // Centred on the newer one, it picks the newer.
        assert_eq!(
            find_step(
                &hotp,
                &code,
                Window::new(span, 0, span).unwrap().steps(b, 0)
            ),
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
        assert_eq!(
            find_step(&hotp, &code, Window::default().steps(40, 0)),
            Some(41)
        );
        assert_eq!(
            find_step(&hotp, &code, Window::default().steps(45, 0)),
            None
        );
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
            let steps = Window::new(2, 2, 2)
                .unwrap()
                .steps(40, 0)
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
                let steps = window
                    .steps(centre, 0)
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
