//! How cost grows with the number of enrolled users in the memory store:
//! memory used and the time of one verification, at 1 thousand,
//! 100 thousand and 1 million users (`docs/performance.md`).
//!
//! ```text
//! cargo run --release -p tower-totp-benches --bin scale            # all three sizes
//! cargo run --release -p tower-totp-benches --bin scale -- 250000  # one size
//! ```
//!
//! Each size runs in a fresh process (this program runs itself once per
//! size), so memory freed by a smaller run cannot hide a larger one's. A
//! run enrols N users through the engine (`start_enrollment`, then
//! `confirm_enrollment`, which also stores ten hashed recovery codes per
//! user), reading the resident set size (`VmRSS` in `/proc/self/status`)
//! before and after. Then, in each of three passes one step (30 s of the
//! manual clock) apart, it verifies the current code of 20,000 users spread
//! evenly over the population (all of them below 20,000), each once, and
//! times one `TwoFactor::verify` (accepted) and one `TwoFactor::status`
//! (what the layer asks per request) as the mean over the pass; the median
//! pass is reported. The codes are computed before the timing. The first
//! size's times are the baseline of the ratios.

use std::future::Future;
use std::pin::pin;
use std::process::{Command, ExitCode};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::{Hotp, Secret};
use tower_totp::{TotpConfig, TwoFactor, UserId};
use tower_totp_benches::{median, rss_kib};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const SAMPLE: usize = 20_000;
const PASSES: usize = 3;

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

/// One size, in this process; prints one line of the table.
fn measure(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
    let engine = TwoFactor::builder(TotpConfig::new("Scale")?)
        .clock(clock.clone())
        .build()?;
    let sample = SAMPLE.min(n);
    let every = n / sample;
    let mut phones: Vec<(UserId, Secret)> = Vec::with_capacity(sample);

    let rss_before = rss_kib().ok_or("no /proc/self/status")?;
    let started = Instant::now();
    for i in 0..n {
        let id = user(i);
        let e = block_on(engine.start_enrollment(&id, id.as_str(), "Phone", None))?
            .map_err(|reason| format!("enrollment of {id} refused: {reason:?}"))?;
        let params = e.params();
        let code = Hotp::new(e.secret(), params).code_string(params.step_at(clock.now()));
        let confirm_as = tower_totp::ConfirmAs::FirstAuthenticator;
        if !block_on(engine.confirm_enrollment(&id, e.id(), &code, confirm_as))?.is_confirmed() {
            return Err(format!("enrollment of {id} refused").into());
        }
        if i % every == 0 && phones.len() < sample {
            phones.push((id, e.secret().clone()));
        }
    }
    let enrol_time = started.elapsed();
    let rss_after = rss_kib().ok_or("no /proc/self/status")?;

    // Each pass is one step (30 s of the manual clock) later, so every
    // sampled user's code is fresh; the codes are computed before the
    // timing. The median of the passes is reported.
    let params = tower_totp::code::CodeParams::default();
    let phones: Vec<(UserId, Hotp)> = phones
        .into_iter()
        .map(|(id, s)| (id, Hotp::new(&s, params)))
        .collect();
    let mut verify = Vec::new();
    let mut status = Vec::new();
    for _ in 0..PASSES {
        clock.advance(Duration::from_secs(30));
        let step = params.step_at(clock.now());
        let codes: Vec<String> = phones.iter().map(|(_, h)| h.code_string(step)).collect();
        let started = Instant::now();
        for ((id, _), code) in phones.iter().zip(&codes) {
            if !block_on(engine.verify(id, code))?.is_accepted() {
                return Err(format!("code of {id} refused").into());
            }
        }
        verify.push(started.elapsed().as_nanos() as f64 / phones.len() as f64);
        let started = Instant::now();
        for (id, _) in &phones {
            std::hint::black_box(block_on(engine.status(id))?);
        }
        status.push(started.elapsed().as_nanos() as f64 / phones.len() as f64);
    }
    let verify_ns = median(verify);
    let status_ns = median(status);

    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "{n} {rss_before} {rss_after} {:.0} {verify_ns:.0} {status_ns:.0} {:.1}",
        grown as f64 * 1024.0 / n as f64,
        enrol_time.as_secs_f64() * 1e6 / n as f64,
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
        "| users | RSS before (KiB) | RSS after (KiB) | bytes per user | verify (ns/call) | ratio | status (ns/call) | ratio | enrolment (µs/user) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut base: Option<(f64, f64)> = None;
    for n in SIZES {
        let out = match Command::new(&me).arg(n.to_string()).output() {
            Ok(out) if out.status.success() => out,
            Ok(out) => {
                eprintln!(
                    "scale: {n} users failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
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
        let [_, before, after, per_user, verify, status, enrol] = f[..] else {
            eprintln!("scale: unexpected output {line:?}");
            return ExitCode::FAILURE;
        };
        let (v0, s0) = *base.get_or_insert((verify, status));
        println!(
            "| {n} | {before:.0} | {after:.0} | {per_user:.0} | {verify:.0} | {:.2} | {status:.0} | {:.2} | {enrol:.1} |",
            verify / v0,
            status / s0,
        );
    }
    ExitCode::SUCCESS
}
