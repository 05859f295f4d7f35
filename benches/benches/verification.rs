//! Code generation and verification, measured against the raw primitive.
//!
//! ```text
//! cargo bench -p tower-totp-benches -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! One module per scenario:
//!
//! - [`generation`]: one code from a keyed generator, per algorithm;
//! - [`verification`]: `TwoFactor::verify` with a correct and a wrong code,
//!   windows 0, 1, 2 and 10, each algorithm; generic over the store (the
//!   memory store here);
//! - [`malformed`]: input refused by the input rule;
//! - [`breakdown`]: the parts one verification is made of, to explain it;
//! - [`raw`]: a keyed HMAC-SHA1 of one 8-byte counter (key once, clone per
//!   iteration), and the keying itself;
//! - [`ratio`]: after criterion's groups, a short manual timing loop of the
//!   two sides of the issue's goal, printing
//!   `verify(window 1) / (3 × raw HMAC + 1 keying)` (goal ≤ 1.3), and the
//!   same for the decision alone (keying, 3 codes, constant-time compare,
//!   without store, unsealing or parsing). Criterion does not compute
//!   ratios, so the bench does it in the same run; each round times both
//!   sides back to back, so a busy machine skews them alike.
//!
//! Set-up (enrollment, the codes of future steps) stays outside the timed
//! closures. The engine's futures are polled by a no-op-waker executor: the
//! memory store never waits, and a runtime would only add its own cost.

// A bench binary: `pub` only shares items between its modules.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use criterion::{Criterion, criterion_group};

/// What every scenario shares: an engine with one enrolled user.
mod support {
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use tower_totp::clock::{ManualClock, UnixTime};
    use tower_totp::code::{Algorithm, Code, CodeParams, Hotp, Secret};
    use tower_totp::store::TotpStore;
    use tower_totp::throttle::ThrottlePolicy;
    use tower_totp::verify::Window;
    use tower_totp::{TotpConfig, TwoFactor, UserId};

    pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];
    pub const WINDOWS: [u32; 4] = [0, 1, 2, 10];
    const T0: u64 = 1_700_000_010;

    /// Run a future that never waits on I/O (the memory store's) to the end.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
    }

    /// The decision alone, as `TwoFactor::verify` makes it for window 1
    /// once it holds the secret: key HMAC-SHA1, compute the codes of the 3
    /// steps around `step` and compare each in constant time.
    pub fn decide(secret: &Secret, code: &Code, step: u64) -> Option<u64> {
        let hotp = Hotp::new(secret, CodeParams::default());
        let mut found = subtle::Choice::from(0);
        let mut matched = 0u64;
        for candidate in Window::default().steps(step, 0) {
            let hit = code.ct_matches(hotp.code(candidate));
            matched =
                subtle::ConditionallySelectable::conditional_select(&matched, &candidate, hit);
            found |= hit;
        }
        bool::from(found).then_some(matched)
    }

    /// The window `±width`, with the default maximum drift of 10 steps.
    pub fn window(width: u32) -> Window {
        Window::new(width, width, 10.max(width)).unwrap()
    }

    /// An engine over `store` with one user enrolled with `algorithm`.
    pub struct Fixture {
        pub tfa: TwoFactor,
        pub clock: ManualClock,
        pub user: UserId,
        pub hotp: Hotp,
        pub params: CodeParams,
        next_step: Cell<u64>,
    }

    impl Fixture {
        pub fn new(store: impl TotpStore, algorithm: Algorithm, window: Window) -> Self {
            let params = CodeParams::new(algorithm, 6, 30).unwrap();
            // A throttle that never locks, so wrong codes keep taking the
            // full path instead of being refused early.
            let never_locks =
                ThrottlePolicy::new(u32::MAX, Duration::from_secs(1), Duration::from_secs(1))
                    .unwrap();
            let config = TotpConfig::new("Bench")
                .unwrap()
                .with_params(params)
                .with_window(window)
                .with_throttle(never_locks);
            let clock = ManualClock::new(UnixTime::from_secs(T0));
            let tfa = TwoFactor::builder(config)
                .clock(clock.clone())
                .store(store)
                .build()
                .unwrap();
            let user = UserId::new("bench-user");
            let enrollment = block_on(tfa.start_enrollment(&user, "bench", "phone", None))
                .unwrap()
                .unwrap();
            let hotp = Hotp::new(enrollment.secret(), params);
            let step = params.step_at(UnixTime::from_secs(T0));
            let confirmed = block_on(tfa.confirm_enrollment(
                &user,
                enrollment.id(),
                &hotp.code_string(step),
                tower_totp::ConfirmAs::FirstAuthenticator,
            ))
            .unwrap();
            assert!(confirmed.is_confirmed());
            Self {
                tfa,
                clock,
                user,
                hotp,
                params,
                next_step: Cell::new(step + 1),
            }
        }

        /// The start of the next unused step and its code (set-up work).
        pub fn next_code(&self) -> (UnixTime, String) {
            let step = self.next_step.get();
            self.next_step.set(step + 1);
            (self.params.step_start(step), self.hotp.code_string(step))
        }

        /// Move the clock to `at` and verify `code` (the timed work).
        pub fn verify_at(&self, at: UnixTime, code: &str) -> tower_totp::Verdict {
            self.clock.set(at);
            block_on(self.tfa.verify(&self.user, code)).unwrap()
        }

        /// A well-formed code matching no step within the maximum drift of
        /// the clock's current step (nor far beyond it).
        pub fn wrong_code(&self) -> String {
            let now = self
                .params
                .step_at(tower_totp::clock::Clock::now(&self.clock));
            let near: Vec<u32> = (now - 50..=now + 50).map(|s| self.hotp.code(s)).collect();
            let value = (0..).find(|v| !near.contains(v)).unwrap();
            format!("{value:06}")
        }
    }
}

mod generation {
    use std::hint::black_box;

    use criterion::Criterion;
    use tower_totp::code::{CodeParams, Hotp, Secret};

    use crate::support::ALGORITHMS;

    pub fn bench(c: &mut Criterion) {
        let mut group = c.benchmark_group("generate");
        let secret = Secret::generate();
        for algorithm in ALGORITHMS {
            let hotp = Hotp::new(&secret, CodeParams::new(algorithm, 6, 30).unwrap());
            let mut counter = 0u64;
            group.bench_function(algorithm.as_str(), |b| {
                b.iter(|| {
                    counter = counter.wrapping_add(1);
                    hotp.code(black_box(counter))
                });
            });
        }
        group.finish();
    }
}

mod verification {
    use std::hint::black_box;

    use criterion::{BatchSize, BenchmarkId, Criterion};
    use tower_totp::store::{MemoryStore, TotpStore};

    use crate::support::{ALGORITHMS, Fixture, WINDOWS, window};

    pub fn bench(c: &mut Criterion) {
        bench_store(c, "memory", MemoryStore::new);
    }

    /// Correct and wrong codes on stores made by `make`.
    fn bench_store<S: TotpStore>(c: &mut Criterion, store: &str, make: impl Fn() -> S) {
        let mut group = c.benchmark_group(format!("verify/{store}/correct"));
        for algorithm in ALGORITHMS {
            for width in WINDOWS {
                let f = Fixture::new(make(), algorithm, window(width));
                let (at, code) = f.next_code();
                assert!(f.verify_at(at, &code).is_accepted());
                group.bench_function(
                    BenchmarkId::new(algorithm.as_str(), format!("window {width}")),
                    |b| {
                        b.iter_batched(
                            || f.next_code(),
                            |(at, code)| black_box(f.verify_at(at, &code)),
                            BatchSize::SmallInput,
                        );
                    },
                );
                let (at, code) = f.next_code();
                assert!(f.verify_at(at, &code).is_accepted(), "still accepting");
            }
        }
        group.finish();

        let mut group = c.benchmark_group(format!("verify/{store}/wrong"));
        for algorithm in ALGORITHMS {
            for width in WINDOWS {
                let f = Fixture::new(make(), algorithm, window(width));
                let (at, _) = f.next_code();
                f.clock.set(at);
                let wrong = f.wrong_code();
                assert!(!f.verify_at(at, &wrong).is_accepted());
                group.bench_function(
                    BenchmarkId::new(algorithm.as_str(), format!("window {width}")),
                    |b| b.iter(|| black_box(f.verify_at(at, black_box(&wrong)))),
                );
            }
        }
        group.finish();
    }
}

mod malformed {
    use std::hint::black_box;

    use criterion::Criterion;
    use tower_totp::code::Algorithm;
    use tower_totp::store::MemoryStore;

    use crate::support::{Fixture, window};

    pub fn bench(c: &mut Criterion) {
        let mut group = c.benchmark_group("verify/memory/malformed");
        let f = Fixture::new(MemoryStore::new(), Algorithm::Sha1, window(1));
        let (at, _) = f.next_code();
        let long = "1".repeat(300);
        for (name, input) in [
            ("too short", "12345"),
            ("letters", "12a456"),
            ("300 bytes", long.as_str()),
        ] {
            assert!(!f.verify_at(at, input).is_accepted());
            group.bench_function(name, |b| {
                b.iter(|| black_box(f.verify_at(at, black_box(input))));
            });
        }
        group.finish();
    }
}

/// The parts of one verification, to see where its time goes.
mod breakdown {
    use std::hint::black_box;

    use criterion::Criterion;
    use tower_totp::UserId;
    use tower_totp::clock::UnixTime;
    use tower_totp::code::{CodeParams, Hotp, Secret, parse_code};
    use tower_totp::seal::Keyring;
    use tower_totp::store::{EnrollmentStore, MemoryStore, StepStore, ThrottleStore};
    use tower_totp::throttle::ThrottlePolicy;

    use crate::support::block_on;

    pub fn bench(c: &mut Criterion) {
        let mut group = c.benchmark_group("breakdown");
        group.bench_function("parse_code", |b| {
            b.iter(|| parse_code(black_box("123456"), 6));
        });

        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("bench-user");
        let secret = Secret::generate();
        let sealed = keys.seal(&user, &secret).unwrap();
        group.bench_function("open sealed secret", |b| {
            b.iter(|| keys.open(black_box(&user), black_box(&sealed)).unwrap());
        });
        group.bench_function("key HMAC-SHA1 (Hotp::new)", |b| {
            b.iter(|| Hotp::new(black_box(&secret), CodeParams::default()));
        });
        let code = parse_code("123456", 6).unwrap();
        let mut step = 1_000u64;
        group.bench_function("decision: key + window of 3 + compare", |b| {
            b.iter(|| {
                step += 1;
                crate::support::decide(black_box(&secret), &code, step)
            });
        });

        // A memory store holding one enrolled user.
        let store = MemoryStore::new();
        let f = crate::support::Fixture::new(
            store.clone(),
            tower_totp::code::Algorithm::Sha1,
            crate::support::window(1),
        );
        let id = block_on(store.authenticators(&f.user)).unwrap()[0]
            .id
            .clone();
        group.bench_function("store: authenticators", |b| {
            b.iter(|| block_on(store.authenticators(black_box(&f.user))).unwrap());
        });
        let policy = ThrottlePolicy::default();
        let now = UnixTime::from_secs(1_700_000_010);
        group.bench_function("store: begin_attempt + clear_throttle", |b| {
            b.iter(|| {
                block_on(store.begin_attempt(&f.user, now, &policy)).unwrap();
                block_on(store.clear_throttle(&f.user)).unwrap();
            });
        });
        let mut step = 1u64 << 40;
        group.bench_function("store: consume_step", |b| {
            b.iter(|| {
                step += 1;
                block_on(store.consume_step(&f.user, &id, step, 0)).unwrap()
            });
        });
        group.finish();
    }
}

mod raw {
    use std::hint::black_box;

    use criterion::Criterion;
    use hmac::{Hmac, Mac};
    use sha1::Sha1;

    pub const KEY: [u8; 20] = *b"12345678901234567890";

    /// HMAC-SHA1 of one 8-byte counter from an already keyed state.
    pub fn hmac(keyed: &Hmac<Sha1>, counter: u64) -> [u8; 20] {
        let mut mac = keyed.clone();
        mac.update(&counter.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn keying(key: &[u8]) -> Hmac<Sha1> {
        Hmac::<Sha1>::new_from_slice(key).unwrap()
    }

    pub fn bench(c: &mut Criterion) {
        let mut group = c.benchmark_group("raw");
        let keyed = keying(&KEY);
        let mut counter = 0u64;
        group.bench_function("HMAC-SHA1 of a counter", |b| {
            b.iter(|| {
                counter = counter.wrapping_add(1);
                hmac(&keyed, black_box(counter))
            });
        });
        group.bench_function("HMAC-SHA1 keying", |b| {
            b.iter(|| keying(black_box(&KEY)));
        });
        group.finish();
    }
}

/// The issue's goal, measured in the same run by a manual timing loop.
///
/// Each round times a batch of every measured operation back to back, so
/// that a busy machine slows both sides of a ratio alike; the ratios are
/// computed per round and the median round is reported.
mod ratio {
    use std::hint::black_box;
    use std::time::Instant;

    use tower_totp::code::{Algorithm, Secret, parse_code};
    use tower_totp::store::MemoryStore;

    use crate::raw;
    use crate::support::{Fixture, decide, window};

    const ROUNDS: usize = 31;
    const ITERS: usize = 5_000;

    /// Nanoseconds per iteration of `f` over `ITERS` iterations.
    fn per_iter(mut f: impl FnMut(usize)) -> f64 {
        let start = Instant::now();
        for i in 0..ITERS {
            f(i);
        }
        start.elapsed().as_nanos() as f64 / ITERS as f64
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    /// Nanoseconds of one round's operations.
    struct Round {
        verify: f64,
        verify_wrong: f64,
        decision: f64,
        hmac: f64,
        keying: f64,
    }

    pub fn report() {
        let correct = Fixture::new(MemoryStore::new(), Algorithm::Sha1, window(1));
        let wrong_fixture = Fixture::new(MemoryStore::new(), Algorithm::Sha1, window(1));
        let (wrong_at, _) = wrong_fixture.next_code();
        wrong_fixture.clock.set(wrong_at);
        let wrong = wrong_fixture.wrong_code();
        let secret = Secret::generate();
        let typed = parse_code("123456", 6).unwrap();
        let keyed = raw::keying(&raw::KEY);
        let mut counter = 0u64;

        let mut round = || {
            // Set-up outside the timed loops: the codes of the next steps.
            let codes: Vec<_> = (0..ITERS).map(|_| correct.next_code()).collect();
            let verify = per_iter(|i| {
                let (at, code) = &codes[i];
                black_box(correct.verify_at(*at, code));
            });
            let verify_wrong = per_iter(|_| {
                black_box(wrong_fixture.verify_at(wrong_at, black_box(&wrong)));
            });
            let decision = per_iter(|i| {
                black_box(decide(black_box(&secret), &typed, 1_000 + i as u64));
            });
            let hmac = per_iter(|_| {
                counter = counter.wrapping_add(1);
                black_box(raw::hmac(&keyed, black_box(counter)));
            });
            let keying = per_iter(|_| {
                black_box(raw::keying(black_box(&raw::KEY)));
            });
            Round {
                verify,
                verify_wrong,
                decision,
                hmac,
                keying,
            }
        };
        round(); // warm up
        let rounds: Vec<Round> = (0..ROUNDS).map(|_| round()).collect();
        let (at, code) = correct.next_code();
        assert!(
            correct.verify_at(at, &code).is_accepted(),
            "still accepting"
        );

        let med = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        let budget = |r: &Round| 3.0 * r.hmac + r.keying;
        println!();
        println!("ratio: manual loop, median of {ROUNDS} rounds of {ITERS} iterations each");
        println!(
            "  raw HMAC-SHA1 of a counter        {:8.1} ns",
            med(&|r| r.hmac)
        );
        println!(
            "  raw HMAC-SHA1 keying              {:8.1} ns",
            med(&|r| r.keying)
        );
        println!(
            "  3 x HMAC + 1 keying               {:8.1} ns",
            med(&budget)
        );
        println!(
            "  decision alone (key, 3, compare)  {:8.1} ns",
            med(&|r| r.decision)
        );
        println!(
            "  verify, window 1, SHA1, correct   {:8.1} ns",
            med(&|r| r.verify)
        );
        println!(
            "  verify, window 1, SHA1, wrong     {:8.1} ns",
            med(&|r| r.verify_wrong)
        );
        println!(
            "  verify(window 1) / (3 x raw HMAC + 1 keying)  = {:.2}  (goal <= 1.3)",
            med(&|r| r.verify / budget(r))
        );
        println!(
            "  decision alone   / (3 x raw HMAC + 1 keying)  = {:.2}",
            med(&|r| r.decision / budget(r))
        );
        // A wrong code is also looked for across the maximum drift: 21 steps.
        println!(
            "  verify(wrong)    / (21 x raw HMAC + 1 keying) = {:.2}",
            med(&|r| r.verify_wrong / (21.0 * r.hmac + r.keying))
        );
    }
}

criterion_group!(
    benches,
    generation::bench,
    verification::bench,
    malformed::bench,
    breakdown::bench,
    raw::bench
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each benchmark once with `--test`, `--list`
    // only lists them, and `--profile-time` is for a profiler: no ratio then.
    let quick =
        std::env::args().any(|a| matches!(a.as_str(), "--test" | "--list" | "--profile-time"));
    if !quick {
        ratio::report();
    }
}
