//! `verify_loop <mode> <n>`: `n` verifications of one kind on the memory
//! store, and nothing else worth counting, for instruction counts under
//! callgrind (`docs/performance.md`, "Store round trips"): run it for two
//! values of `n` and divide the difference by the difference of `n`, so
//! that set-up cancels out.
//!
//! Modes: `correct` (the code of the next step, each accepted), `wrong`
//! (a wrong code, with a throttle that never locks), `malformed` (five
//! digits), `codegen` (the codes of `correct` generated but not verified:
//! subtract it from `correct`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::Hotp;
use tower_totp::throttle::ThrottlePolicy;
use tower_totp::{ConfirmAs, TotpConfig, TwoFactor, UserId};

/// The memory store never waits: poll once.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the memory store never waits"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("a mode");
    let n: u64 = args.next().expect("a count").parse().expect("a count");
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
    let policy = ThrottlePolicy::new(
        1_000_000_000,
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .expect("a policy");
    let config = TotpConfig::new("Acme").unwrap().with_throttle(policy);
    let tfa = TwoFactor::builder(config)
        .clock(clock.clone())
        .build()
        .unwrap();
    let user = UserId::new("alice");
    let e = block_on(tfa.start_enrollment(&user, "alice", "Phone", None))
        .unwrap()
        .unwrap();
    let phone = Hotp::new(e.secret(), e.params());
    let step = |c: &ManualClock| e.params().step_at(c.now());
    let confirmed = block_on(tfa.confirm_enrollment(
        &user,
        e.id(),
        &phone.code_string(step(&clock)),
        ConfirmAs::FirstAuthenticator,
    ))
    .unwrap();
    assert!(confirmed.is_confirmed());
    let wrong = format!("{:06}", (phone.code(step(&clock)) + 1) % 1_000_000);
    let mut accepted = 0u64;
    for _ in 0..n {
        match mode.as_str() {
            "correct" => {
                clock.advance(Duration::from_secs(30));
                let code = phone.code_string(step(&clock));
                accepted += u64::from(block_on(tfa.verify(&user, &code)).unwrap().is_accepted());
            }
            "codegen" => {
                clock.advance(Duration::from_secs(30));
                let code = phone.code_string(step(&clock));
                accepted += u64::from(std::hint::black_box(code).len() == 6);
            }
            "wrong" => {
                std::hint::black_box(block_on(tfa.verify(&user, &wrong)).unwrap());
            }
            "malformed" => {
                std::hint::black_box(block_on(tfa.verify(&user, "12345")).unwrap());
            }
            other => panic!("unknown mode {other}"),
        }
    }
    if mode == "correct" || mode == "codegen" {
        assert_eq!(accepted, n, "every code accepted");
    }
}
