//! How cost grows with the number of enrolled users in the memory store:
//! memory used and the time of one verification, at 1 thousand,
//! 100 thousand, 1 million and 10 million users (`docs/performance.md`).
//!
//! ```text
//! cargo run --release -p tower-totp-benches --bin scale            # all four sizes
//! cargo run --release -p tower-totp-benches --bin scale -- 250000  # one size
//! ```
//!
//! Ten million users take about 3.5 GiB and, at about 17 µs an enrolment,
//! minutes: the enrolment runs on every core (`SCALE_THREADS` sets how
//! many), each thread enrolling its own users through the same engine, and
//! progress goes to standard error.
//!
//! Each size runs in a fresh process (this program runs itself once per
//! size), so memory freed by a smaller run cannot hide a larger one's. A
//! run first enrols a baseline fleet of 1,000 users in an engine of its
//! own, then reads the resident set size (`VmRSS` in `/proc/self/status`),
//! enrols N users through another engine (`start_enrollment`, then
//! `confirm_enrollment`, which also stores ten hashed recovery codes per
//! user: the real enrolment, only on several threads), and reads it again.
//! Then, in each of seven passes, it verifies the current code of 20,000
//! users spread evenly over the population (all of them below 20,000),
//! each once, and asks `status` (what the layer asks per request) for
//! them; and the same number of verifications of the baseline's 1,000
//! users (twenty rounds, one step apart), before or after, in turn. The
//! mean over each chunk of 100 calls is one figure; the median chunk is
//! reported (a loaded machine's scheduler takes tens of milliseconds from
//! some chunks, never from most), and the ratio is N's over the
//! baseline's of the same process. The codes are computed before the
//! timing.

use std::future::Future;
use std::pin::pin;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::{Hotp, Secret};
use tower_totp::{KeyCacheConfig, TotpConfig, TwoFactor, UserId};
use tower_totp_benches::{median, rss_kib};

const SIZES: [usize; 4] = [1_000, 100_000, 1_000_000, 10_000_000];
const SAMPLE: usize = 20_000;
const PASSES: usize = 7;
/// Calls timed together: one figure of the median.
const CHUNK: usize = 100;
/// The fleet every size's process also times, as the ratios' baseline.
const BASELINE: usize = 1_000;

/// Drive a future of the memory store (which never waits) to its end.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn user(i: usize) -> UserId {
    UserId::new(format!("user-{i:07}"))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Enrol user `i` through the engine; its phone's secret.
fn enrol(engine: &TwoFactor, clock: &ManualClock, i: usize) -> Result<Secret, BoxError> {
    let id = user(i);
    let e = block_on(engine.start_enrollment(&id, id.as_str(), "Phone", None))?
        .map_err(|reason| format!("enrollment of {id} refused: {reason:?}"))?;
    let params = e.params();
    let code = Hotp::new(e.secret(), params).code_string(params.step_at(clock.now()));
    let confirm_as = tower_totp::ConfirmAs::FirstAuthenticator;
    if !block_on(engine.confirm_enrollment(&id, e.id(), &code, confirm_as))?.is_confirmed() {
        return Err(format!("enrollment of {id} refused").into());
    }
    Ok(e.secret().clone())
}

/// Enrol users `0..n` on `threads` threads (thread `t` takes every
/// `threads`-th user from `t`), printing progress to standard error; the
/// secrets of every `every`-th user.
fn enrol_all(
    engine: &TwoFactor,
    clock: &ManualClock,
    n: usize,
    every: usize,
    threads: usize,
) -> Result<Vec<(UserId, Secret)>, BoxError> {
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let report = (n / 20).max(1);
    let mut sampled: Vec<(usize, Secret)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let done = &done;
                scope.spawn(move || -> Result<Vec<(usize, Secret)>, BoxError> {
                    let mut mine = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let secret = enrol(engine, clock, i)?;
                        if i.is_multiple_of(every) {
                            mine.push((i, secret));
                        }
                        let so_far = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if so_far.is_multiple_of(report) && n >= 1_000_000 {
                            eprintln!(
                                "scale: {n} users: {so_far} enrolled after {:.0} s",
                                started.elapsed().as_secs_f64()
                            );
                        }
                    }
                    Ok(mine)
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().map_err(|_| "an enrolling thread panicked")??);
        }
        Ok::<_, BoxError>(all)
    })?;
    sampled.sort_by_key(|(i, _)| *i);
    Ok(sampled.into_iter().map(|(i, s)| (user(i), s)).collect())
}

/// `SCALE_THREADS`, else every core.
fn enrol_threads() -> usize {
    std::env::var("SCALE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1)
}

/// A fleet enrolled in one engine, and the phones of its sample.
struct Fleet {
    engine: TwoFactor,
    phones: Vec<(UserId, Hotp)>,
    /// `VmRSS` before and after the enrolment, KiB (the sample's phones
    /// are keyed after it).
    rss_kib: (u64, u64),
    enrol_time: Duration,
}

impl Fleet {
    /// One pass of `SAMPLE` accepted verifications and as many `status`
    /// calls, timed in chunks of `CHUNK` calls: the mean time of a call in
    /// each chunk, for `verify` and for `status`. A fleet smaller than the
    /// sample goes round several times, each round one step (30 s of the
    /// shared manual clock) later so that every code is fresh; the codes
    /// are computed outside the timing. Chunks of a fifth of a millisecond,
    /// and the median over many of them, keep the chunks during which the
    /// scheduler ran someone else (milliseconds at a time on a loaded
    /// machine) from moving the figure.
    fn pass(&self, clock: &ManualClock) -> Result<(Vec<f64>, Vec<f64>), BoxError> {
        let params = tower_totp::code::CodeParams::default();
        let rounds = SAMPLE.div_ceil(self.phones.len());
        let (mut verify, mut status) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            clock.advance(Duration::from_secs(30));
            let step = params.step_at(clock.now());
            for chunk in self.phones.chunks(CHUNK) {
                let codes: Vec<String> = chunk.iter().map(|(_, h)| h.code_string(step)).collect();
                let started = Instant::now();
                for ((id, _), code) in chunk.iter().zip(&codes) {
                    if !block_on(self.engine.verify(id, code))?.is_accepted() {
                        return Err(format!("code of {id} refused").into());
                    }
                }
                verify.push(started.elapsed().as_nanos() as f64 / chunk.len() as f64);
                let started = Instant::now();
                for (id, _) in chunk {
                    std::hint::black_box(block_on(self.engine.status(id))?);
                }
                status.push(started.elapsed().as_nanos() as f64 / chunk.len() as f64);
            }
        }
        Ok((verify, status))
    }
}

/// Enrol `n` users into a new engine on `clock`, sampling `SAMPLE` of them.
fn fleet(clock: &ManualClock, n: usize) -> Result<Fleet, BoxError> {
    // The key cache off in both fleets: it holds 10,000 keyed states by
    // default, all of the baseline's 1,000 but a fraction of a large
    // sample, so with it on the ratio would compare cache hits with
    // unsealing rather than the store at one size with the store at another.
    let engine = TwoFactor::builder(TotpConfig::new("Scale")?)
        .clock(clock.clone())
        .key_cache(KeyCacheConfig::disabled())
        .build()?;
    let sample = SAMPLE.min(n);
    let rss_before = rss_kib().ok_or("no /proc/self/status")?;
    let started = Instant::now();
    let mut phones = enrol_all(&engine, clock, n, n / sample, enrol_threads())?;
    let enrol_time = started.elapsed();
    let rss_after = rss_kib().ok_or("no /proc/self/status")?;
    phones.truncate(sample);
    let params = tower_totp::code::CodeParams::default();
    let phones = phones
        .into_iter()
        .map(|(id, s)| (id, Hotp::new(&s, params)))
        .collect();
    Ok(Fleet {
        engine,
        phones,
        rss_kib: (rss_before, rss_after),
        enrol_time,
    })
}

/// One size, in this process; prints one line of the table.
///
/// A fleet of `BASELINE` users is enrolled first, before the memory is
/// read, and each of the passes times it right before the big fleet:
/// the ratio of the two comes from the same process and the same minutes,
/// which keeps it meaningful on a machine others are loading.
fn measure(n: usize) -> Result<(), BoxError> {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
    let baseline = fleet(&clock, BASELINE)?;

    let big = fleet(&clock, n)?;
    let ((rss_before, rss_after), enrol_time) = (big.rss_kib, big.enrol_time);

    // The two fleets' passes alternate, each first every other time, so
    // that neither always follows the other; the median chunk is reported.
    let (mut verify, mut status, mut base_verify, mut base_status) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for pass in 0..PASSES {
        let base_first = pass % 2 == 0;
        let mut first = if base_first { &baseline } else { &big }.pass(&clock)?;
        let mut second = if base_first { &big } else { &baseline }.pass(&clock)?;
        if !base_first {
            std::mem::swap(&mut first, &mut second);
        }
        base_verify.extend(first.0);
        base_status.extend(first.1);
        verify.extend(second.0);
        status.extend(second.1);
    }

    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "{n} {rss_before} {rss_after} {:.0} {:.0} {:.0} {:.0} {:.0} {:.1} {}",
        grown as f64 * 1024.0 / n as f64,
        median(verify),
        median(base_verify),
        median(status),
        median(base_status),
        enrol_time.as_secs_f64() * 1e6 / n as f64,
        enrol_threads(),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [n] = args.as_slice() {
        let Ok(n) = n.parse::<usize>() else {
            eprintln!("scale: the argument is a number of users");
            return ExitCode::FAILURE;
        };
        return match measure(n.max(1)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scale: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("scale: cannot find my own executable");
        return ExitCode::FAILURE;
    };
    println!(
        "| users | RSS before (KiB) | RSS after (KiB) | bytes per user | verify (ns/call) | at 1,000 | ratio | status (ns/call) | at 1,000 | ratio | enrolment (µs/user, wall) | enrolling threads |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in SIZES {
        // Progress on standard error goes straight through.
        let child = Command::new(&me)
            .arg(n.to_string())
            .stderr(Stdio::inherit())
            .output();
        let out = match child {
            Ok(out) if out.status.success() => out,
            Ok(_) => {
                eprintln!("scale: {n} users failed");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("scale: cannot run myself: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [
            _,
            before,
            after,
            per_user,
            verify,
            base_verify,
            status,
            base_status,
            enrol,
            threads,
        ] = f[..]
        else {
            eprintln!("scale: unexpected output {line:?}");
            return ExitCode::FAILURE;
        };
        println!(
            "| {n} | {before:.0} | {after:.0} | {per_user:.0} | {verify:.0} | {base_verify:.0} | {:.2} | {status:.0} | {base_status:.0} | {:.2} | {enrol:.1} | {threads:.0} |",
            verify / base_verify,
            status / base_status,
        );
    }
    ExitCode::SUCCESS
}
