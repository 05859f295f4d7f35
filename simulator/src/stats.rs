//! What a run counts, shard by shard, and the report made from the merged
//! counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::driver::Outcome;

/// Counts of one shard, or of several merged. Integers only where an
/// order of addition could change the result, so that a run gives the same
/// numbers whatever the number of threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Users whose enrollment was confirmed.
    pub enrolled: u64,
    /// Users whose enrollment code was refused.
    pub enroll_failures: u64,
    /// Legitimate logins, finished (accepted or given up).
    pub logins: u64,
    /// Logins accepted on their first attempt.
    pub first_try: u64,
    /// Logins accepted within the retry budget.
    pub eventual: u64,
    /// Legitimate attempts (driver calls by users).
    pub attempts: u64,
    /// Correctly typed codes the server decided on (accepted or refused, not throttled).
    pub correct_checked: u64,
    /// Correctly typed codes refused.
    pub false_rejects: u64,
    /// Logins that met the throttle at least once.
    pub legit_lockouts: u64,
    /// Accepted logins whose acceptance resynchronised (learned offset moved
    /// by more than the window).
    pub offset_jumps: u64,
    /// Accepted logins whose matched step the driver could see.
    pub steps_seen: u64,
    /// Of those, logins whose code matched a step other than the server's:
    /// the server answered them with a clock hint (`clock_hint_s`).
    pub clock_hints: u64,
    /// Users shown at least one clock hint.
    pub clock_hint_users: u64,
    /// Clock hints to phones less than half a step from true time (a code
    /// read just before its step ended, typed after): the hint overstates.
    pub clock_hints_on_time_phones: u64,
    /// Accepted logins of phones a step or more off true time that got no
    /// hint.
    pub clock_hints_missed: u64,
    /// Replays submitted.
    pub replays_attempted: u64,
    /// Replays accepted for the victim's own step.
    pub replays_accepted: u64,
    /// Replays accepted for another step (a code collision, like a lucky guess).
    pub replay_collisions: u64,
    /// Replays refused by the throttle.
    pub replays_throttled: u64,
    /// Guesses the server checked.
    pub guesses: u64,
    /// Guesses refused by the throttle before any check.
    pub guesses_throttled: u64,
    /// Guesses accepted.
    pub guess_successes: u64,
    /// Shoulder surfer's tries submitted.
    pub surfer_attempts: u64,
    /// Shoulder surfer's tries accepted.
    pub surfer_successes: u64,
    /// Enrollments the co-enroller attacked.
    pub co_enroll_attempts: u64,
    /// Attacked enrollments whose secret an attacker session was shown.
    pub co_enroll_secrets_seen: u64,
    /// Attacked enrollments where a secret the attacker knows was accepted.
    pub co_enroll_takeovers: u64,
    /// Cross-origin requests submitted through victims' sessions.
    pub cross_origin_attempts: u64,
    /// Cross-origin requests not refused with 403.
    pub cross_origin_accepted: u64,
    /// Calls to the driver, all kinds.
    pub driver_calls: u64,
    /// Sum of |learned offset − true offset| over accepted logins, in ms.
    pub drift_err_ms: u128,
    /// Accepted logins whose learned offset was known.
    pub drift_err_n: u64,
    /// Acceptance by clock-offset bin (bin index = round(offset / bin width)).
    pub by_offset: BTreeMap<i64, OffsetBin>,
    /// Learned against true offsets of the sampled users.
    pub drift_samples: Vec<DriftSample>,
    /// Attacked accounts: guesses checked and the first success.
    pub attacked: Vec<AttackedAccount>,
    /// Accepted attacks (guesses and replays), in time order per shard.
    pub breaches: Vec<Breach>,
    /// Guesses checked per day of the run.
    pub guesses_by_day: Vec<u64>,
}

/// Logins whose user's clock offset fell in one bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetBin {
    /// Logins.
    pub logins: u64,
    /// Accepted on the first attempt.
    pub first_try: u64,
    /// Accepted at all.
    pub eventual: u64,
}

/// One accepted login of a sampled user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftSample {
    /// The user's global index.
    pub user: u32,
    /// Days since day 0.
    pub day: f64,
    /// The phone's true offset, seconds.
    pub true_offset_s: f64,
    /// The server's learned offset, in seconds (steps × period).
    pub learned_offset_s: f64,
}

/// A brute-forced account.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttackedAccount {
    /// The user's global index.
    pub user: u32,
    /// Guesses checked.
    pub guesses: u64,
    /// When the first guess was accepted, days since the campaign began.
    pub success_day: Option<f64>,
}

/// What got an attacker in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreachKind {
    /// A guessed code.
    Guess,
    /// A replayed code.
    Replay,
    /// A code seen over the victim's shoulder.
    ShoulderSurf,
    /// A secret the co-enroller knows, active on the victim's account.
    CoEnroll,
}

/// An accepted attack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// Days since day 0.
    pub day: f64,
    /// The victim's global index.
    pub user: u32,
    /// Guess or replay.
    pub kind: BreachKind,
}

impl Stats {
    /// Add `other` into `self`.
    pub fn merge(&mut self, other: Self) {
        self.enrolled += other.enrolled;
        self.enroll_failures += other.enroll_failures;
        self.logins += other.logins;
        self.first_try += other.first_try;
        self.eventual += other.eventual;
        self.attempts += other.attempts;
        self.correct_checked += other.correct_checked;
        self.false_rejects += other.false_rejects;
        self.legit_lockouts += other.legit_lockouts;
        self.offset_jumps += other.offset_jumps;
        self.steps_seen += other.steps_seen;
        self.clock_hints += other.clock_hints;
        self.clock_hint_users += other.clock_hint_users;
        self.clock_hints_on_time_phones += other.clock_hints_on_time_phones;
        self.clock_hints_missed += other.clock_hints_missed;
        self.replays_attempted += other.replays_attempted;
        self.replays_accepted += other.replays_accepted;
        self.replay_collisions += other.replay_collisions;
        self.replays_throttled += other.replays_throttled;
        self.guesses += other.guesses;
        self.guesses_throttled += other.guesses_throttled;
        self.guess_successes += other.guess_successes;
        self.surfer_attempts += other.surfer_attempts;
        self.surfer_successes += other.surfer_successes;
        self.co_enroll_attempts += other.co_enroll_attempts;
        self.co_enroll_secrets_seen += other.co_enroll_secrets_seen;
        self.co_enroll_takeovers += other.co_enroll_takeovers;
        self.cross_origin_attempts += other.cross_origin_attempts;
        self.cross_origin_accepted += other.cross_origin_accepted;
        self.driver_calls += other.driver_calls;
        self.drift_err_ms += other.drift_err_ms;
        self.drift_err_n += other.drift_err_n;
        for (bin, b) in other.by_offset {
            let e = self.by_offset.entry(bin).or_default();
            e.logins += b.logins;
            e.first_try += b.first_try;
            e.eventual += b.eventual;
        }
        self.drift_samples.extend(other.drift_samples);
        self.attacked.extend(other.attacked);
        self.breaches.extend(other.breaches);
        if self.guesses_by_day.len() < other.guesses_by_day.len() {
            self.guesses_by_day.resize(other.guesses_by_day.len(), 0);
        }
        for (i, g) in other.guesses_by_day.into_iter().enumerate() {
            self.guesses_by_day[i] += g;
        }
        self.canonical_order();
    }

    /// Sort the lists so that merged shards compare equal whatever their
    /// number.
    pub fn canonical_order(&mut self) {
        self.drift_samples.sort_by(|a, b| {
            (a.user, a.day)
                .partial_cmp(&(b.user, b.day))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        self.attacked.sort_by_key(|a| a.user);
        self.breaches.sort_by(|a, b| {
            (a.day, a.user)
                .partial_cmp(&(b.day, b.user))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
}

/// One legitimate attempt, recorded when a run is traced (for tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptRecord {
    /// The user's global index.
    pub user: u32,
    /// The user's login number, from 1.
    pub login: u32,
    /// The attempt within the login, from 1.
    pub attempt: u32,
    /// When the server checked it, Unix ms.
    pub at_ms: u64,
    /// Whether the user mistyped it.
    pub typo: bool,
    /// The step the phone showed.
    pub phone_step: u64,
    /// The server's step when it checked.
    pub server_step: u64,
    /// The server's learned offset before this attempt, in steps, as the
    /// simulator saw it.
    pub learned_before: i64,
    /// The newest accepted step before this attempt.
    pub last_step_before: Option<u64>,
    /// The answer.
    pub outcome: Outcome,
}

/// `report.json`: the run's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Users.
    pub users: u32,
    /// Simulated days.
    pub days: u32,
    /// Seed.
    pub seed: u64,
    /// Shards run in parallel.
    pub threads: usize,
    /// Legitimate logins (each up to `max_attempts` attempts).
    pub logins: u64,
    /// Share of logins accepted on the first attempt.
    pub first_try_accept_rate: f64,
    /// Share of logins accepted within the retry budget.
    pub eventual_accept_rate: f64,
    /// Share of correctly typed codes the server checked and refused.
    pub false_reject_rate: f64,
    /// Logins that met the throttle at least once.
    pub legit_lockouts: u64,
    /// Replays submitted.
    pub replays_attempted: u64,
    /// Replays accepted for the victim's own step (must be 0).
    pub replays_accepted: u64,
    /// Brute-force guesses the server checked.
    pub guesses: u64,
    /// Guesses accepted.
    pub guess_successes: u64,
    /// Shoulder surfer's tries submitted (seen codes alone and in pairs).
    pub surfer_attempts: u64,
    /// Shoulder surfer's tries accepted (must be 0).
    pub surfer_successes: u64,
    /// Enrollments the co-enroller attacked (one per victim).
    pub co_enroll_attempts: u64,
    /// Attacked enrollments whose secret one of the attacker's sessions was
    /// shown (must be 0).
    pub co_enroll_secrets_seen: u64,
    /// Attacked enrollments where a secret the attacker knows was accepted
    /// on the victim's account (must be 0).
    pub co_enroll_takeovers: u64,
    /// Cross-origin requests submitted through victims' sessions.
    pub cross_origin_attempts: u64,
    /// Cross-origin requests not refused with 403 (must be 0).
    pub cross_origin_accepted: u64,
    /// Mean |learned offset − true offset| over accepted logins, seconds;
    /// null when the driver cannot see the learned offset.
    pub drift_mae_s: Option<f64>,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// Full logins (password step + code step: every driver login call, by
    /// users and attackers) per wall-clock second.
    pub logins_per_s: f64,
    /// The process's peak resident memory (`VmHWM` in `/proc/self/status`)
    /// when the run ended, in bytes: what a run of this size needs. Null
    /// where there is no `/proc` (not Linux). It covers the whole process,
    /// so a program that runs several runs sees the largest so far.
    pub peak_memory_bytes: Option<u64>,
    /// Users enrolled.
    pub enrolled: u64,
    /// Users whose enrollment failed.
    pub enroll_failures: u64,
    /// Legitimate attempts.
    pub attempts: u64,
    /// Driver calls of every kind.
    pub driver_calls: u64,
    /// Logins whose acceptance moved the learned offset by more than the window.
    pub offset_jumps: u64,
    /// Accepted logins answered with a clock hint (the code matched a step
    /// other than the server's: the phone is 30 s or more off); null when
    /// the driver cannot see the matched step.
    pub clock_hints: Option<u64>,
    /// Users shown at least one clock hint; null as `clock_hints`.
    pub clock_hint_users: Option<u64>,
    /// Clock hints to phones less than half a step from true time: a code
    /// read near the end of its step and checked in the next one (the
    /// reaction delay), so the hint says "about 30 s" of a phone that is
    /// nearly on time; null as `clock_hints`.
    pub clock_hints_on_time_phones: Option<u64>,
    /// Accepted logins of phones a step (30 s) or more off true time that
    /// got no hint (a slow phone's code typed quickly, one step behind);
    /// null as `clock_hints`.
    pub clock_hints_missed: Option<u64>,
    /// Replays accepted for another step (a code collision).
    pub replay_collisions: u64,
    /// Replays refused by the throttle.
    pub replays_throttled: u64,
    /// Guesses refused by the throttle.
    pub guesses_throttled: u64,
    /// Brute-forced accounts.
    pub attacked_accounts: u64,
    /// Attacked accounts with an accepted guess.
    pub compromised_accounts: u64,
    /// The analytic bound on one account's compromise over the campaign:
    /// `max_attempts_within(span) × window width / 10^digits`.
    pub guess_success_bound: Option<f64>,
    /// Acceptance by clock offset.
    pub by_offset: Vec<OffsetRow>,
}

/// The process's peak resident set size (`VmHWM`), in bytes; `None`
/// where `/proc/self/status` does not exist or does not say.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// One row of [`Report::by_offset`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OffsetRow {
    /// Centre of the bin, seconds.
    pub offset_s: f64,
    /// Logins.
    pub logins: u64,
    /// First-try acceptance.
    pub first_try_accept_rate: f64,
    /// Eventual acceptance.
    pub eventual_accept_rate: f64,
}

/// `n / d`, or 0 when `d` is 0.
pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_memory_is_read_from_vm_hwm_in_bytes() {
        let status = "Name:\ttotp-sim\nVmPeak:\t  9999 kB\nVmHWM:\t   1536 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1536 * 1024));
        assert_eq!(parse_vm_hwm("VmRSS:\t 1024 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t lots kB\n"), None);
    }

    #[test]
    fn this_process_has_a_peak_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_bytes().is_some_and(|b| b > 0));
        }
    }
}
