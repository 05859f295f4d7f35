//! The login decision as a pure function: which step a code matches, in the
//! window or as a resynchronisation, from plain inputs.
//!
//! [`decide`] reads no store and no clock; the engine gives it each
//! authenticator's code generator, the parsed code, the server's step and
//! the device's [`SyncState`], and carries out the [`Decision`]
//! (a compare-and-set, or one `record_miss`).

use crate::code::{Code, Hotp};
use crate::store::{ResyncCandidate, SyncState};
use crate::verify::Window;
use crate::verify::matching::{find_eligible_step, find_step};
use crate::verify::window::offset_of;

/// One authenticator's inputs to a decision.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// Its code generator (keyed with its secret).
    pub(crate) hotp: Hotp,
    /// The code typed, parsed for its digit count.
    pub(crate) code: Code,
    /// The server's step now, in its period.
    pub(crate) now_step: u64,
    /// What the store knows of the device: last used step, learned offset,
    /// pending resynchronisation.
    pub(crate) sync: SyncState,
}

/// What the engine is to do with a code. `index` is the position of the
/// authenticator in the candidates given to [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The code matched `step` inside the window: consume it (the store's
    /// compare-and-set refuses a used step) and learn `offset`, clamped to
    /// the maximum drift.
    InWindow {
        /// The authenticator.
        index: usize,
        /// The matched step.
        step: u64,
        /// The learned offset to record.
        offset: i64,
    },
    /// The code matched the step right after the kept resync candidate, at
    /// the same offset: consume it and resynchronise the device.
    Resync {
        /// The authenticator.
        index: usize,
        /// The matched step.
        step: u64,
        /// The new offset.
        offset: i64,
    },
    /// No acceptance. `candidate` is the first match outside the window, to
    /// keep for the next code; `None` for a plain miss. Both cost the store
    /// the same work.
    Miss {
        /// The resync candidate to keep, and whose it is.
        candidate: Option<(usize, ResyncCandidate)>,
    },
}

/// Decide which step, of which authenticator, `candidates`' codes match.
///
/// Every step of every window is computed and compared in constant time,
/// and the first authenticator (in the order given) that matches in its
/// window wins. Only when none does are the resync ranges looked at, again
/// every step of every authenticator, until a code follows its device's
/// resync candidate.
///
/// In the resync range, steps at or before the device's last used one
/// count for nothing: a code typed a minute ago (seen over a shoulder) must
/// not start a resynchronisation, nor finish one. (In the window, the
/// store's compare-and-set refuses them.) Nor do steps whose offset implies
/// a jump no clock makes in the time since the device's last accepted code
/// ([`Window::allows_offset_change`]): two codes the phone showed right
/// after the user's login look like a slow phone, but a real one was exact
/// a moment ago. Either way the code is a plain miss, and the code of every
/// step is still computed, so the work does not tell how recently the
/// device was used.
pub(crate) fn decide(window: &Window, candidates: &[Candidate]) -> Decision {
    // Every window is computed, whichever matches first: the time taken
    // does not tell which authenticator a code was for.
    let mut in_window = None;
    for (index, c) in candidates.iter().enumerate() {
        if let Some(step) = find_step(&c.hotp, &c.code, window.steps(c.now_step, c.sync.offset)) {
            in_window.get_or_insert((index, step));
        }
    }
    if let Some((index, step)) = in_window {
        let offset = window.clamp_offset(offset_of(step, candidates[index].now_step));
        return Decision::InWindow {
            index,
            step,
            offset,
        };
    }

    let mut candidate = None;
    for (index, c) in candidates.iter().enumerate() {
        let sync = &c.sync;
        let eligible = |s: u64| {
            !sync.is_used(s)
                && window.allows_offset_change(
                    sync.offset,
                    sync.last_step,
                    c.now_step,
                    offset_of(s, c.now_step),
                )
        };
        let steps = window
            .resync_steps(c.now_step, sync.offset)
            .map(|s| (s, eligible(s)));
        let Some(step) = find_eligible_step(&c.hotp, &c.code, steps) else {
            continue;
        };
        let offset = offset_of(step, c.now_step);
        let follows = sync.resync.is_some_and(|r| {
            r.offset == offset && !sync.is_used(r.step) && r.step.checked_add(1) == Some(step)
        });
        if follows {
            return Decision::Resync {
                index,
                step,
                offset,
            };
        }
        // The first match outside the window is the candidate, and the
        // other authenticators are still computed: stopping here would
        // answer a match sooner than a miss.
        candidate.get_or_insert((index, ResyncCandidate { step, offset }));
    }
    Decision::Miss { candidate }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::{CodeParams, Secret, parse_code};

    const NOW: u64 = 10_000;

    fn hotp(seed: u8) -> Hotp {
        Hotp::new(
            &Secret::from_bytes(&[seed; 20]).unwrap(),
            CodeParams::default(),
        )
    }

    /// A device whose code for `step` was typed, with sync state `sync`.
    fn typed(seed: u8, step: u64, sync: SyncState) -> Candidate {
        let hotp = hotp(seed);
        let code = parse_code(&hotp.code_string(step), 6).unwrap();
        Candidate {
            hotp,
            code,
            now_step: NOW,
            sync,
        }
    }

    /// The code of another device's step: it matches nothing of `seed`'s
    /// near `NOW` (checked).
    fn stranger(seed: u8) -> Candidate {
        let mut c = typed(seed, NOW, SyncState::default());
        let foreign = hotp(seed.wrapping_add(100));
        let miss = (0u64..)
            .map(|s| foreign.code(s))
            .find(|code| (NOW - 20..=NOW + 20).all(|s| c.hotp.code(s) != *code))
            .unwrap();
        c.code = parse_code(&format!("{miss:06}"), 6).unwrap();
        c
    }

    fn used_at(last_step: u64) -> SyncState {
        SyncState {
            last_step: Some(last_step),
            ..SyncState::default()
        }
    }

    #[test]
    fn a_code_in_the_window_is_accepted_at_its_offset() {
        let w = Window::default();
        for offset in w.offsets() {
            let step = NOW.checked_add_signed(offset).unwrap();
            assert_eq!(
                decide(&w, &[typed(1, step, SyncState::default())]),
                Decision::InWindow {
                    index: 0,
                    step,
                    offset
                }
            );
        }
    }

    /// The window follows the learned offset; the recorded offset is
    /// clamped to the maximum drift.
    #[test]
    fn the_window_sits_on_the_learned_offset() {
        let w = Window::new(1, 1, 3).unwrap();
        let sync = SyncState {
            offset: 3,
            ..SyncState::default()
        };
        assert_eq!(
            decide(&w, &[typed(1, NOW + 4, sync)]),
            Decision::InWindow {
                index: 0,
                step: NOW + 4,
                offset: 3
            }
        );
    }

    /// A match in any window wins over a match outside another's, and
    /// the first authenticator matching in its window is the one.
    #[test]
    fn the_window_comes_before_resync_and_the_first_device_first() {
        let w = Window::default();
        let outside = typed(1, NOW + 5, SyncState::default());
        let inside = typed(2, NOW, SyncState::default());
        let also_inside = typed(2, NOW + 1, SyncState::default());
        assert_eq!(
            decide(&w, &[outside, inside, also_inside]),
            Decision::InWindow {
                index: 1,
                step: NOW,
                offset: 0
            }
        );
    }

    #[test]
    fn a_match_outside_the_window_is_kept_as_a_candidate() {
        let w = Window::default();
        assert_eq!(
            decide(&w, &[stranger(1), typed(2, NOW - 4, SyncState::default())]),
            Decision::Miss {
                candidate: Some((
                    1,
                    ResyncCandidate {
                        step: NOW - 4,
                        offset: -4
                    }
                ))
            }
        );
        assert_eq!(
            decide(&w, &[stranger(1)]),
            Decision::Miss { candidate: None }
        );
    }

    #[test]
    fn the_code_after_the_candidate_resynchronises() {
        let w = Window::default();
        let mut sync = used_at(NOW - 10_000);
        sync.resync = Some(ResyncCandidate {
            step: NOW - 5,
            offset: -4,
        });
        // The next step at the same offset (the server moved on by one).
        let mut next = typed(1, NOW - 4, sync);
        next.now_step = NOW;
        assert_eq!(
            decide(&w, &[next]),
            Decision::Resync {
                index: 0,
                step: NOW - 4,
                offset: -4
            }
        );
        // At another offset, it is a new candidate.
        let other = typed(1, NOW - 6, sync);
        assert_eq!(
            decide(&w, &[other]),
            Decision::Miss {
                candidate: Some((
                    0,
                    ResyncCandidate {
                        step: NOW - 6,
                        offset: -6
                    }
                ))
            }
        );
    }

    /// Used steps count for nothing outside the window: they neither
    /// start nor finish a resynchronisation.
    #[test]
    fn used_steps_are_masked() {
        let w = Window::default().with_max_drift_rate(1_000_000).unwrap();
        let old = typed(1, NOW - 4, used_at(NOW - 3));
        assert_eq!(decide(&w, &[old]), Decision::Miss { candidate: None });
        // A candidate at or before the last used step is not followed.
        let mut sync = used_at(NOW - 4);
        sync.resync = Some(ResyncCandidate {
            step: NOW - 4,
            offset: -3,
        });
        let next = typed(1, NOW - 3, sync);
        assert!(matches!(
            decide(&w, &[next]),
            Decision::Miss { candidate: Some(_) }
        ));
    }

    /// A jump no clock makes since the last accepted code is a plain miss.
    #[test]
    fn implausible_offset_changes_are_masked() {
        let w = Window::default();
        let recent = typed(1, NOW - 5, used_at(NOW - 2));
        assert_eq!(decide(&w, &[recent]), Decision::Miss { candidate: None });
        let long_ago = typed(1, NOW - 5, used_at(NOW - 2_000));
        assert!(matches!(
            decide(&w, &[long_ago]),
            Decision::Miss { candidate: Some(_) }
        ));
    }

    #[test]
    fn beyond_the_maximum_drift_nothing_matches() {
        let w = Window::default();
        let far = typed(1, NOW + 11, SyncState::default());
        assert_eq!(decide(&w, &[far]), Decision::Miss { candidate: None });
        assert_eq!(decide(&w, &[]), Decision::Miss { candidate: None });
    }
}
