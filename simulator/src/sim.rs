//! The discrete-event engine: one event queue per shard, ordered by time
//! and then by insertion, advancing a [`Timeline`] before each event.
//!
//! Every random draw comes from a ChaCha8 stream chosen by what it is for
//! and by the user's global index (see [`rng_for`]), never from a shared
//! generator, so a user's life is the same whichever shard runs it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;

use indicatif::ProgressBar;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::code::Hotp;

use crate::driver::{Account, CodeText, Driver, DriverError, Outcome, Refusal};
use crate::scenario::{DAY_MS, Enrollment, Model};
use crate::stats::{
    AttackedAccount, AttemptRecord, Breach, BreachKind, DriftSample, OffsetBin, Stats,
};
use crate::wire::CodeAnswer;
use crate::{co_enroll, cross_origin, surfer};

/// Moves the server's "now" to the time of the next event.
///
/// The discrete-event mode sets a [`ManualClock`] ([`ManualTimeline`]); the
/// real-time mode against a running server
/// ([`WallTimeline`](crate::target::WallTimeline)) waits until the wall
/// clock reaches the event instead.
pub trait Timeline: Send {
    /// Make `at` the current time before the event at `at` is handled, and
    /// say when the event really happens: `at` itself, or later when the
    /// timeline runs late (a wall clock behind a slow server). `None` ends
    /// the run (a deadline passed).
    fn advance_to(&mut self, at: UnixTime) -> impl Future<Output = Option<UnixTime>> + Send;
}

/// The discrete-event timeline: jumps a shared [`ManualClock`].
#[derive(Debug, Clone)]
pub struct ManualTimeline(pub ManualClock);

impl Timeline for ManualTimeline {
    async fn advance_to(&mut self, at: UnixTime) -> Option<UnixTime> {
        self.0.set(at);
        Some(at)
    }
}

const STREAM_USER: u64 = 1 << 56;
const STREAM_SCHEDULE: u64 = 2 << 56;
const STREAM_ATTEMPT: u64 = 3 << 56;
const STREAM_GUESS: u64 = 4 << 56;
const STREAM_REPLAY: u64 = 5 << 56;
const STREAM_SURF: u64 = 6 << 56;

/// How often a cross-origin victim's own login is tried before the lure is
/// given up (its code refused as a replay of a login in the same step, or
/// throttled).
const LURE_TRIES: u32 = 3;

/// A generator for draw number `index` of stream `stream`: the ChaCha8
/// stream `stream` of the run's seed, at word `index × 2^16`.
pub fn rng_for(seed: &[u8; 32], stream: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(*seed);
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(index) << 16);
    rng
}

/// The 32-byte key of every stream of a run seeded with `seed`.
pub fn seed_key(seed: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut key);
    key
}

/// Which shard a user belongs to, and its index there.
pub fn shard_of(user: u32, shards: u32) -> (u32, u32) {
    (user % shards, user / shards)
}

const TYPO: u8 = 1;
const THROTTLED: u8 = 2;

#[derive(Debug, Clone, Copy)]
struct Submit {
    user: u32,
    login: u32,
    attempt: u32,
    typed: u32,
    pause_ms: u32,
    flags: u8,
    phone_step: u64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Enroll {
        user: u32,
    },
    Login {
        user: u32,
    },
    Submit(Submit),
    Guess {
        session: u32,
    },
    Replay {
        user: u32,
        code: u32,
        step: Option<u64>,
    },
    Surf {
        user: u32,
        newest: u64,
        index: u32,
    },
    Lure {
        user: u32,
        tries: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: u64,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug)]
struct User {
    global: u32,
    account: Account,
    phone: Option<Hotp>,
    offset0_ms: f64,
    drift_per_ms: f64,
    day: u32,
    left: u32,
    pos: f64,
    draws: u64,
    logins: u32,
    learned: i64,
    last_step: Option<u64>,
    sampled: bool,
    replay_victim: bool,
    surf_victim: bool,
    co_victim: bool,
    lure_victim: bool,
    /// Whether the server has answered one of this user's codes with a
    /// clock hint.
    hinted: bool,
}

#[derive(Debug)]
struct Session {
    account: usize,
    sent: u64,
    stream: u64,
}

#[derive(Debug)]
struct Attacked {
    user: u32,
    guesses: u64,
    success_at: Option<u64>,
    done: bool,
}

/// What a shard hands back.
#[derive(Debug, Default)]
pub struct ShardOutput {
    /// Its counts.
    pub stats: Stats,
    /// Every legitimate attempt, when traced.
    pub trace: Vec<AttemptRecord>,
}

/// Options of one shard's run.
#[derive(Debug, Clone, Default)]
pub struct ShardOptions {
    /// Record every legitimate attempt.
    pub trace: bool,
    /// Advanced by one per simulated hour.
    pub progress: Option<ProgressBar>,
}

/// Run shard `shard` of `shards` of `model`: its users (global index ≡
/// `shard` mod `shards`) and the attackers of those users, through `driver`.
///
/// # Errors
///
/// The first [`DriverError`]; the run stops there.
pub async fn simulate_shard<D: Driver, T: Timeline>(
    model: &Model,
    shard: u32,
    shards: u32,
    driver: D,
    timeline: T,
    options: ShardOptions,
) -> Result<ShardOutput, DriverError> {
    let mut sim = Shard::new(model, shard, shards, driver, timeline, options);
    sim.setup();
    sim.run().await?;
    Ok(sim.finish())
}

struct Shard<'m, D, T> {
    m: &'m Model,
    driver: D,
    timeline: T,
    seed: [u8; 32],
    queue: BinaryHeap<Reverse<Event>>,
    seq: u64,
    users: Vec<User>,
    sessions: Vec<Session>,
    attacked: Vec<Attacked>,
    stats: Stats,
    trace: Option<Vec<AttemptRecord>>,
    progress: Option<ProgressBar>,
    next_tick: u64,
    period_ms: u64,
    digits: u8,
    modulus: u32,
    end_ms: u64,
    attack_window: (u64, u64),
    window_reach: i64,
}

impl<'m, D: Driver, T: Timeline> Shard<'m, D, T> {
    fn new(
        m: &'m Model,
        shard: u32,
        shards: u32,
        driver: D,
        timeline: T,
        options: ShardOptions,
    ) -> Self {
        let params = m.params();
        let shards = shards.max(1);
        let count = m.users.saturating_sub(shard).div_ceil(shards);
        let users = (0..count)
            .map(|local| {
                let global = shard + local * shards;
                User {
                    global,
                    account: Account::simulated(global),
                    phone: None,
                    offset0_ms: 0.0,
                    drift_per_ms: 0.0,
                    day: 0,
                    left: 0,
                    pos: 0.0,
                    draws: 0,
                    logins: 0,
                    learned: 0,
                    last_step: None,
                    sampled: is_sampled(global, m.sample_users, m.users),
                    replay_victim: m
                        .replay
                        .as_ref()
                        .is_some_and(|r| r.victims.contains(&global)),
                    surf_victim: m
                        .shoulder_surfer
                        .as_ref()
                        .is_some_and(|r| r.victims.contains(&global)),
                    co_victim: m
                        .co_enroller
                        .as_ref()
                        .is_some_and(|r| r.victims.contains(&global)),
                    lure_victim: m
                        .cross_origin
                        .as_ref()
                        .is_some_and(|r| r.victims.contains(&global)),
                    hinted: false,
                }
            })
            .collect();
        let attack_window = m.brute_force.as_ref().map_or((0, 0), |b| {
            (
                m.start_ms.saturating_add(b.start_ms),
                m.start_ms.saturating_add(b.end_ms),
            )
        });
        let window = m.config.window();
        Self {
            m,
            driver,
            timeline,
            seed: seed_key(m.seed),
            queue: BinaryHeap::with_capacity(count as usize * 2 + 16),
            seq: 0,
            users,
            sessions: Vec::new(),
            attacked: Vec::new(),
            stats: Stats {
                guesses_by_day: vec![0; m.days as usize + 1],
                ..Stats::default()
            },
            trace: options.trace.then(Vec::new),
            progress: options.progress,
            next_tick: m.start_ms.saturating_add(3_600_000),
            period_ms: m.period_ms(),
            digits: params.digits(),
            modulus: 10u32.pow(u32::from(params.digits())),
            end_ms: m.end_ms(),
            attack_window,
            window_reach: i64::from(window.reach()),
        }
    }

    fn push(&mut self, at: u64, kind: Kind) {
        self.seq += 1;
        self.queue.push(Reverse(Event {
            at,
            seq: self.seq,
            kind,
        }));
    }

    fn setup(&mut self) {
        let fleet = &self.m.fleet;
        let enroll_from = self.m.start_ms.saturating_sub(3_600_000);
        for local in 0..self.users.len() {
            let global = self.users[local].global;
            let mut rng = rng_for(&self.seed, STREAM_USER | u64::from(global), 0);
            let offset_s = fleet.clock_offset_s.sample(&mut rng);
            // A clock running at less than half or more than one and a half
            // times real speed is no phone clock: drift is cut at 12 h a day.
            let drift_s_per_day = fleet
                .drift_s_per_day
                .sample(&mut rng)
                .clamp(-43_200.0, 43_200.0);
            let enroll_at = enroll_from + (rng.random::<f64>() * 3_600_000.0) as u64;
            let first_day = logins_on_a_day(fleet.logins_per_day, &mut rng);
            let u = &mut self.users[local];
            u.offset0_ms = offset_s * 1000.0;
            u.drift_per_ms = drift_s_per_day * 1000.0 / DAY_MS as f64;
            u.left = first_day;
            self.push(enroll_at, Kind::Enroll { user: local as u32 });
        }
        if let Some(c) = &self.m.cross_origin {
            let at = self.m.start_ms.saturating_add(c.at_ms);
            for local in 0..self.users.len() {
                if self.users[local].lure_victim {
                    let user = local as u32;
                    self.push(at, Kind::Lure { user, tries: 1 });
                }
            }
        }
        if let Some(b) = &self.m.brute_force {
            let (start, _) = self.attack_window;
            for local in 0..self.users.len() {
                let global = self.users[local].global;
                if !b.accounts.contains(&global) {
                    continue;
                }
                let account = self.attacked.len();
                self.attacked.push(Attacked {
                    user: local as u32,
                    guesses: 0,
                    success_at: None,
                    done: false,
                });
                for s in 0..b.sessions {
                    let session = self.sessions.len() as u32;
                    self.sessions.push(Session {
                        account,
                        sent: 0,
                        stream: STREAM_GUESS | (u64::from(global) << 20) | u64::from(s),
                    });
                    self.push(start + u64::from(s), Kind::Guess { session });
                }
            }
        }
    }

    async fn run(&mut self) -> Result<(), DriverError> {
        while let Some(Reverse(ev)) = self.queue.pop() {
            if ev.at >= self.next_tick {
                self.tick(ev.at);
            }
            let Some(now) = self.timeline.advance_to(UnixTime::from_millis(ev.at)).await else {
                break;
            };
            let now = now.as_millis().max(ev.at);
            match ev.kind {
                Kind::Enroll { user } => self.enroll(user, now).await?,
                Kind::Login { user } => self.login(user, now),
                Kind::Submit(s) => self.submit(s, now).await?,
                Kind::Guess { session } => self.guess(session, now).await?,
                Kind::Replay { user, code, step } => self.replay(user, code, step, now).await?,
                Kind::Surf {
                    user,
                    newest,
                    index,
                } => self.surf(user, newest, index, now).await?,
                Kind::Lure { user, tries } => self.lure(user, tries, now).await?,
            }
        }
        if let Some(bar) = &self.progress {
            let left = self.end_ms.saturating_sub(self.next_tick) / 3_600_000 + 1;
            bar.inc(left);
        }
        Ok(())
    }

    fn tick(&mut self, at: u64) {
        let hours = (at - self.next_tick) / 3_600_000 + 1;
        self.next_tick += hours * 3_600_000;
        if let Some(bar) = &self.progress {
            bar.inc(hours);
        }
    }

    fn finish(mut self) -> ShardOutput {
        let start = self.attack_window.0;
        self.stats.attacked = self
            .attacked
            .iter()
            .map(|a| AttackedAccount {
                user: self.users[a.user as usize].global,
                guesses: a.guesses,
                success_day: a
                    .success_at
                    .map(|t| t.saturating_sub(start) as f64 / DAY_MS as f64),
            })
            .collect();
        self.stats.canonical_order();
        ShardOutput {
            stats: self.stats,
            trace: self.trace.unwrap_or_default(),
        }
    }

    /// The phone's offset from the true time at `t`, in ms.
    fn offset_ms(&self, user: &User, t: u64) -> f64 {
        let elapsed = t as f64 - self.m.start_ms as f64;
        user.offset0_ms + user.drift_per_ms * elapsed
    }

    fn phone_step(&self, user: &User, t: u64) -> u64 {
        let phone = (t as f64 + self.offset_ms(user, t)).floor().max(0.0) as u64;
        phone / self.period_ms
    }

    /// The first true moment, not before `not_before`, at which the phone
    /// shows `step` or a later one.
    fn when_phone_shows(&self, user: &User, step: u64, not_before: u64) -> u64 {
        let target = step.saturating_mul(self.period_ms) as f64;
        // t + o0 + drift (t − start) = target, solved for t.
        let t = (target - user.offset0_ms + user.drift_per_ms * self.m.start_ms as f64)
            / (1.0 + user.drift_per_ms);
        let mut t = t.ceil().max(0.0) as u64;
        for _ in 0..16 {
            if self.phone_step(user, t) >= step {
                break;
            }
            t += 1;
        }
        t.max(not_before)
    }

    fn schedule_next_login(&mut self, local: u32) {
        let lpd = self.m.fleet.logins_per_day;
        let (days, start) = (self.m.days, self.m.start_ms);
        let seed = self.seed;
        let u = &mut self.users[local as usize];
        let mut rng = rng_for(&seed, STREAM_SCHEDULE | u64::from(u.global), u.draws);
        u.draws += 1;
        loop {
            if u.left > 0 {
                // The next of `left` uniform moments in the rest of the day:
                // the minimum of `left` uniforms on [pos, 1).
                let v: f64 = rng.random();
                u.pos += (1.0 - u.pos) * (1.0 - v.powf(1.0 / f64::from(u.left)));
                u.left -= 1;
                let at = start
                    + u64::from(u.day) * DAY_MS
                    + ((u.pos * DAY_MS as f64) as u64).min(DAY_MS - 1);
                self.push(at, Kind::Login { user: local });
                return;
            }
            u.day += 1;
            if u.day >= days {
                return;
            }
            u.left = logins_on_a_day(lpd, &mut rng);
            u.pos = 0.0;
        }
    }

    async fn enroll(&mut self, local: u32, now: u64) -> Result<(), DriverError> {
        if self.users[local as usize].co_victim {
            return self.co_enroll(local, now).await;
        }
        let account = self.users[local as usize].account.clone();
        let enrolled = self.driver.enroll(&account).await?;
        let phone = Hotp::new(&enrolled.secret, enrolled.params);
        let step = match self.m.fleet.enrollment {
            Enrollment::Synced => now / self.period_ms,
            Enrollment::Phone => self.phone_step(&self.users[local as usize], now),
        };
        let code = CodeText::new(phone.code(step), self.digits);
        self.stats.driver_calls += 1;
        match self.driver.confirm(&account, code.as_str()).await? {
            Outcome::Accepted {
                learned_offset,
                step,
            } => {
                let u = &mut self.users[local as usize];
                u.phone = Some(phone);
                u.learned = learned_offset.unwrap_or(0);
                u.last_step = step;
                self.stats.enrolled += 1;
                self.schedule_next_login(local);
            }
            _ => self.stats.enroll_failures += 1,
        }
        Ok(())
    }

    fn login(&mut self, local: u32, now: u64) {
        self.schedule_next_login(local);
        let u = &mut self.users[local as usize];
        u.logins += 1;
        let login = u.logins;
        self.start_attempt(local, login, 1, now, 0);
    }

    fn start_attempt(&mut self, local: u32, login: u32, attempt: u32, read_at: u64, flags: u8) {
        let fleet = &self.m.fleet;
        let u = &self.users[local as usize];
        let Some(phone) = &u.phone else { return };
        let mut rng = rng_for(
            &self.seed,
            STREAM_ATTEMPT | u64::from(u.global),
            (u64::from(login) << 8) | u64::from(attempt),
        );
        let phone_step = self.phone_step(u, read_at);
        let code = phone.code(phone_step);
        let typo = rng.random::<f64>() < fleet.typo_rate;
        let typed = if typo {
            mistype(code, self.digits, &mut rng)
        } else {
            code
        };
        let delay_ms = secs_to_ms(fleet.reaction_delay_s.sample(&mut rng));
        let pause_ms = secs_to_ms(fleet.retry_pause_s.sample(&mut rng)).min(u64::from(u32::MAX));
        let flags = if typo { flags | TYPO } else { flags & !TYPO };
        self.push(
            read_at.saturating_add(delay_ms),
            Kind::Submit(Submit {
                user: local,
                login,
                attempt,
                typed,
                pause_ms: pause_ms as u32,
                flags,
                phone_step,
            }),
        );
    }

    /// Count the clock hint the server gives an accepted code of `local`
    /// that matched `step` at `now` (ms), as the scenario's
    /// [`ClockHintRule`](tower_totp::http::ClockHintRule) decides.
    fn count_clock_hint(&mut self, local: u32, step: u64, now: u64) {
        self.stats.steps_seen += 1;
        let offset = i128::from(step) - i128::from(now / self.period_ms);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let off_ms = self.offset_ms(&self.users[local as usize], now).abs();
        if self.m.clock_hint.hint(offset, 1).is_none() {
            if off_ms >= self.period_ms as f64 {
                self.stats.clock_hints_missed += 1;
            }
            return;
        }
        self.stats.clock_hints += 1;
        if off_ms < self.period_ms as f64 / 2.0 {
            self.stats.clock_hints_on_time_phones += 1;
        }
        let u = &mut self.users[local as usize];
        if !u.hinted {
            u.hinted = true;
            self.stats.clock_hint_users += 1;
        }
    }

    /// Record an acceptance for `local` in the simulator's mirror of the
    /// server state; whether the learned offset jumped beyond the window.
    fn accepted(&mut self, local: u32, learned: Option<i64>, step: Option<u64>) -> bool {
        let reach = self.window_reach;
        let u = &mut self.users[local as usize];
        let before = u.learned;
        if let Some(l) = learned {
            u.learned = l;
        }
        if let Some(s) = step {
            u.last_step = Some(u.last_step.map_or(s, |l| l.max(s)));
        }
        (u.learned - before).abs() > reach
    }

    async fn submit(&mut self, s: Submit, now: u64) -> Result<(), DriverError> {
        let code = CodeText::new(s.typed, self.digits);
        let (learned_before, last_step_before) = {
            let u = &self.users[s.user as usize];
            (u.learned, u.last_step)
        };
        let outcome = self
            .driver
            .login(&self.users[s.user as usize].account, code.as_str())
            .await?;
        self.stats.attempts += 1;
        self.stats.driver_calls += 1;
        let typo = s.flags & TYPO != 0;
        if let Some(trace) = &mut self.trace {
            trace.push(AttemptRecord {
                user: self.users[s.user as usize].global,
                login: s.login,
                attempt: s.attempt,
                at_ms: now,
                typo,
                phone_step: s.phone_step,
                server_step: now / self.period_ms,
                learned_before,
                last_step_before,
                outcome,
            });
        }
        match outcome {
            Outcome::Accepted {
                learned_offset,
                step,
            } => {
                if !typo {
                    self.stats.correct_checked += 1;
                }
                if self.accepted(s.user, learned_offset, step) {
                    self.stats.offset_jumps += 1;
                }
                if let Some(step) = step {
                    self.count_clock_hint(s.user, step, now);
                }
                self.finish_login(s.user, s.attempt == 1, true, s.flags, now);
                if let Some(l) = learned_offset {
                    self.record_drift(s.user, l, now);
                }
                self.maybe_replay(s, step, now);
                self.maybe_surf(s, now);
            }
            Outcome::Rejected(reason) => {
                if !typo {
                    self.stats.correct_checked += 1;
                    self.stats.false_rejects += 1;
                }
                if s.attempt < self.m.fleet.max_attempts && reason != Refusal::NotEnrolled {
                    let mut read_at = now.saturating_add(u64::from(s.pause_ms));
                    if self.m.fleet.wait_for_next_code {
                        let u = &self.users[s.user as usize];
                        read_at = self.when_phone_shows(u, s.phone_step + 1, read_at);
                    }
                    self.start_attempt(s.user, s.login, s.attempt + 1, read_at, s.flags);
                } else {
                    self.finish_login(s.user, false, false, s.flags, now);
                }
            }
            Outcome::Throttled { retry_after } => {
                let flags = s.flags | THROTTLED;
                if s.attempt < self.m.fleet.max_attempts {
                    let wait = duration_ms(retry_after).max(u64::from(s.pause_ms));
                    self.start_attempt(s.user, s.login, s.attempt + 1, now + wait, flags);
                } else {
                    self.finish_login(s.user, false, false, flags, now);
                }
            }
        }
        Ok(())
    }

    fn finish_login(&mut self, local: u32, first: bool, accepted: bool, flags: u8, now: u64) {
        let st = &mut self.stats;
        st.logins += 1;
        st.first_try += u64::from(first);
        st.eventual += u64::from(accepted);
        st.legit_lockouts += u64::from(flags & THROTTLED != 0);
        let offset_s = self.offset_ms(&self.users[local as usize], now) / 1000.0;
        let bin = (offset_s / self.m.offset_bin_s).round() as i64;
        let b: &mut OffsetBin = self.stats.by_offset.entry(bin).or_default();
        b.logins += 1;
        b.first_try += u64::from(first);
        b.eventual += u64::from(accepted);
    }

    fn record_drift(&mut self, local: u32, learned: i64, now: u64) {
        let u = &self.users[local as usize];
        let true_ms = self.offset_ms(u, now);
        let learned_ms = learned as f64 * self.period_ms as f64;
        self.stats.drift_err_ms += (learned_ms - true_ms).abs().round() as u128;
        self.stats.drift_err_n += 1;
        if u.sampled {
            self.stats.drift_samples.push(DriftSample {
                user: u.global,
                day: now.saturating_sub(self.m.start_ms) as f64 / DAY_MS as f64,
                true_offset_s: true_ms / 1000.0,
                learned_offset_s: learned_ms / 1000.0,
            });
        }
    }

    fn maybe_replay(&mut self, s: Submit, step: Option<u64>, now: u64) {
        let Some(r) = &self.m.replay else { return };
        let u = &self.users[s.user as usize];
        if !u.replay_victim {
            return;
        }
        let mut rng = rng_for(
            &self.seed,
            STREAM_REPLAY | u64::from(u.global),
            (u64::from(s.login) << 8) | u64::from(s.attempt),
        );
        if rng.random::<f64>() >= r.observe_rate {
            return;
        }
        let delay = secs_to_ms(r.delay_s.sample(&mut rng));
        self.push(
            now.saturating_add(delay),
            Kind::Replay {
                user: s.user,
                code: s.typed,
                step,
            },
        );
    }

    async fn replay(
        &mut self,
        local: u32,
        code: u32,
        step: Option<u64>,
        now: u64,
    ) -> Result<(), DriverError> {
        let text = CodeText::new(code, self.digits);
        let outcome = self
            .driver
            .login(&self.users[local as usize].account, text.as_str())
            .await?;
        self.stats.driver_calls += 1;
        self.stats.replays_attempted += 1;
        match outcome {
            Outcome::Accepted {
                learned_offset,
                step: matched,
            } => {
                self.accepted(local, learned_offset, matched);
                if matched.is_none() || matched == step {
                    self.stats.replays_accepted += 1;
                    self.breach(local, BreachKind::Replay, now);
                } else {
                    self.stats.replay_collisions += 1;
                }
            }
            Outcome::Throttled { .. } => self.stats.replays_throttled += 1,
            Outcome::Rejected(_) => {}
        }
        Ok(())
    }

    /// The victim's enrollment, raced by the co-enroller
    /// ([`crate::co_enroll`]); the victim then lives on with what it
    /// confirmed.
    async fn co_enroll(&mut self, local: u32, now: u64) -> Result<(), DriverError> {
        let m = self.m;
        let Some(plan) = &m.co_enroller else {
            return Ok(());
        };
        let server = now / self.period_ms;
        let victim = match m.fleet.enrollment {
            Enrollment::Synced => server,
            Enrollment::Phone => self.phone_step(&self.users[local as usize], now),
        };
        let steps = co_enroll::Steps {
            victim,
            server,
            // The window is centred on the step the victim confirmed.
            login: victim + 1,
        };
        let account = self.users[local as usize].account.clone();
        let result = co_enroll::attack(&self.driver, &account, plan, steps).await?;
        self.stats.co_enroll_attempts += 1;
        self.stats.co_enroll_secrets_seen += u64::from(result.secret_seen);
        self.stats.co_enroll_takeovers += u64::from(result.takeover);
        if result.takeover {
            self.breach(local, BreachKind::CoEnroll, now);
        }
        match result.victim {
            Some((enrolled, CodeAnswer::Done)) => {
                let u = &mut self.users[local as usize];
                u.phone = Some(Hotp::new(&enrolled.secret, enrolled.params));
                u.learned = victim as i64 - server as i64;
                u.last_step = Some(victim.max(result.takeover_step.unwrap_or(0)));
                self.stats.enrolled += 1;
                self.schedule_next_login(local);
            }
            _ => self.stats.enroll_failures += 1,
        }
        Ok(())
    }

    /// After an accepted login of a watched user, maybe schedule the
    /// shoulder surfer's tries ([`crate::surfer`]).
    fn maybe_surf(&mut self, s: Submit, now: u64) {
        let Some(r) = &self.m.shoulder_surfer else {
            return;
        };
        let u = &self.users[s.user as usize];
        if !u.surf_victim {
            return;
        }
        let mut rng = rng_for(
            &self.seed,
            STREAM_SURF | u64::from(u.global),
            (u64::from(s.login) << 8) | u64::from(s.attempt),
        );
        if rng.random::<f64>() >= r.observe_rate {
            return;
        }
        let delay = secs_to_ms(r.delay_s.sample(&mut rng));
        let newest = self.phone_step(u, now).max(s.phone_step);
        self.push(
            now.saturating_add(delay),
            Kind::Surf {
                user: s.user,
                newest,
                index: 0,
            },
        );
    }

    async fn surf(
        &mut self,
        local: u32,
        newest: u64,
        index: u32,
        now: u64,
    ) -> Result<(), DriverError> {
        let m = self.m;
        let Some(r) = &m.shoulder_surfer else {
            return Ok(());
        };
        let tries = surfer::tries(r.observe_codes + r.observe_after, self.period_ms);
        let Some(now_try) = tries.get(index as usize) else {
            return Ok(());
        };
        let u = &self.users[local as usize];
        let Some(phone) = &u.phone else {
            return Ok(());
        };
        let (oldest, _) = surfer::seen_steps(newest, r.observe_codes, r.observe_after);
        let code = CodeText::new(phone.code(oldest + u64::from(now_try.code)), self.digits);
        let outcome = self.driver.login(&u.account, code.as_str()).await?;
        self.stats.driver_calls += 1;
        self.stats.surfer_attempts += 1;
        let next = match outcome {
            Outcome::Accepted {
                learned_offset,
                step,
            } => {
                self.stats.surfer_successes += 1;
                self.accepted(local, learned_offset, step);
                self.breach(local, BreachKind::ShoulderSurf, now);
                return Ok(());
            }
            Outcome::Rejected(Refusal::NotEnrolled) => return Ok(()),
            Outcome::Throttled { retry_after } => Some((index, duration_ms(retry_after).max(1))),
            Outcome::Rejected(_) => tries.get(index as usize + 1).map(|t| (index + 1, t.gap_ms)),
        };
        if let Some((index, gap)) = next {
            let user = local;
            self.push(
                now.saturating_add(gap),
                Kind::Surf {
                    user,
                    newest,
                    index,
                },
            );
        }
        Ok(())
    }

    /// The victim visits the cross-origin page ([`crate::cross_origin`]):
    /// logs in with its phone's code, then its browser submits the forms.
    async fn lure(&mut self, local: u32, tries: u32, now: u64) -> Result<(), DriverError> {
        let m = self.m;
        let Some(c) = &m.cross_origin else {
            return Ok(());
        };
        let u = &self.users[local as usize];
        let Some(phone) = &u.phone else {
            return Ok(());
        };
        let step = self.phone_step(u, now);
        let code = CodeText::new(phone.code(step), self.digits);
        let account = u.account.clone();
        match cross_origin::lure(&self.driver, &account, code.as_str(), &c.origin).await? {
            cross_origin::Lure::Submitted { attempts, accepted } => {
                self.accepted(local, None, Some(step));
                self.stats.cross_origin_attempts += attempts;
                self.stats.cross_origin_accepted += accepted;
            }
            cross_origin::Lure::NotVerified(_) if tries < LURE_TRIES => {
                let u = &self.users[local as usize];
                let at = self.when_phone_shows(u, step + 1, now.saturating_add(1000));
                let tries = tries + 1;
                self.push(at, Kind::Lure { user: local, tries });
            }
            cross_origin::Lure::NotVerified(_) | cross_origin::Lure::NotEnrolled => {}
        }
        Ok(())
    }

    fn breach(&mut self, local: u32, kind: BreachKind, now: u64) {
        self.stats.breaches.push(Breach {
            day: now.saturating_sub(self.m.start_ms) as f64 / DAY_MS as f64,
            user: self.users[local as usize].global,
            kind,
        });
    }

    async fn guess(&mut self, session: u32, now: u64) -> Result<(), DriverError> {
        let Some(b) = &self.m.brute_force else {
            return Ok(());
        };
        let (interval, stop) = (b.interval_ms, b.stop_on_success);
        let s = &mut self.sessions[session as usize];
        let account = s.account;
        if self.attacked[account].done || now >= self.attack_window.1 {
            return Ok(());
        }
        let mut rng = rng_for(&self.seed, s.stream, s.sent);
        s.sent += 1;
        let code = rng.random_range(0..self.modulus);
        let local = self.attacked[account].user;
        let text = CodeText::new(code, self.digits);
        let outcome = self
            .driver
            .login(&self.users[local as usize].account, text.as_str())
            .await?;
        self.stats.driver_calls += 1;
        let next = match outcome {
            Outcome::Throttled { retry_after } => {
                self.stats.guesses_throttled += 1;
                now + duration_ms(retry_after).max(1)
            }
            checked => {
                self.stats.guesses += 1;
                let day = (now.saturating_sub(self.m.start_ms) / DAY_MS) as usize;
                if let Some(g) = self.stats.guesses_by_day.get_mut(day) {
                    *g += 1;
                }
                let a = &mut self.attacked[account];
                a.guesses += 1;
                if let Outcome::Accepted {
                    learned_offset,
                    step,
                } = checked
                {
                    self.stats.guess_successes += 1;
                    a.success_at.get_or_insert(now);
                    a.done = stop;
                    self.accepted(local, learned_offset, step);
                    self.breach(local, BreachKind::Guess, now);
                }
                now + interval
            }
        };
        if !self.attacked[account].done && next < self.attack_window.1 {
            self.push(next, Kind::Guess { session });
        }
        Ok(())
    }
}

/// Whether user `global` is one of `k` users spread evenly over `n`:
/// exactly `min(k, n)` users satisfy `global × k mod n < k`.
fn is_sampled(global: u32, k: u32, n: u32) -> bool {
    k >= n || (u64::from(global) * u64::from(k)) % u64::from(n.max(1)) < u64::from(k)
}

/// Logins on one day: the whole part of `per_day`, plus one with the
/// chance of its fraction.
fn logins_on_a_day<R: Rng + ?Sized>(per_day: f64, rng: &mut R) -> u32 {
    let whole = per_day.floor();
    let extra = rng.random::<f64>() < per_day - whole;
    (whole as u32).saturating_add(u32::from(extra))
}

/// `code` with one digit replaced by another.
fn mistype<R: Rng + ?Sized>(code: u32, digits: u8, rng: &mut R) -> u32 {
    let pos = rng.random_range(0..u32::from(digits));
    let unit = 10u32.pow(pos);
    let digit = code / unit % 10;
    let other = (digit + rng.random_range(1..10)) % 10;
    code - digit * unit + other * unit
}

fn secs_to_ms(s: f64) -> u64 {
    // Negative and NaN draws count as 0; anything past a year is cut there.
    (s.max(0.0) * 1000.0).min(365.0 * DAY_MS as f64) as u64
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_changes_exactly_one_digit() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for code in [0u32, 123_456, 999_999, 500_000] {
            for _ in 0..100 {
                let t = mistype(code, 6, &mut rng);
                assert_ne!(t, code);
                assert!(t < 1_000_000);
                let (a, b) = (format!("{code:06}"), format!("{t:06}"));
                let diff = a.chars().zip(b.chars()).filter(|(x, y)| x != y).count();
                assert_eq!(diff, 1);
            }
        }
    }

    #[test]
    fn streams_are_independent_of_each_other() {
        let key = seed_key(1);
        let a = rng_for(&key, STREAM_USER | 7, 0).next_u64();
        let b = rng_for(&key, STREAM_USER | 7, 1).next_u64();
        let c = rng_for(&key, STREAM_SCHEDULE | 7, 0).next_u64();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, rng_for(&key, STREAM_USER | 7, 0).next_u64());
    }

    #[test]
    fn sampled_users_are_spread_evenly() {
        for (k, n) in [(8, 1000), (3, 10), (7, 7), (10, 3), (0, 5), (6, 1001)] {
            let picked: Vec<u32> = (0..n).filter(|g| is_sampled(*g, k, n)).collect();
            assert_eq!(picked.len() as u32, k.min(n), "{k} of {n}: {picked:?}");
        }
        let picked: Vec<u32> = (0..1000).filter(|g| is_sampled(*g, 8, 1000)).collect();
        assert_eq!(picked, [0, 125, 250, 375, 500, 625, 750, 875]);
    }

    #[test]
    fn fractional_logins_per_day_average_out() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n: u32 = (0..10_000).map(|_| logins_on_a_day(0.25, &mut rng)).sum();
        assert!((2300..2700).contains(&n), "{n}");
    }
}
