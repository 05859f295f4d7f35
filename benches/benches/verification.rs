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
//! - [`raw`]: a keyed HMAC of one 8-byte counter (key once, clone per
//!   iteration), and the keying itself, per algorithm;
//! - [`totp_rs_check`]: totp-rs's `check` with skew 1, the reference;
//! - [`ratio`]: after criterion's groups, a short manual timing loop of the
//!   issue's goals for each algorithm, printing
//!   `verify(window 1) / (3 × raw HMAC + 1 keying)` (goal ≤ 1.5), the same
//!   for the decision alone (keying, 3 codes, constant-time compare, without
//!   store, unsealing or parsing; goal ≤ 1.10), and
//!   `totp-rs check(wrong code) / verify(correct code)` (goal ≥ 1.3).
//!   Criterion does not compute ratios, so the bench does it in the same
//!   run; each round times every case back to back, so a busy machine skews
//!   them alike.
//!
//! `VERIFY_ONLY=<case>/<algorithm>:<n>` (cases `verify`, `verify_uncached`
//! (the key cache off), `verify_wrong`,
//! `decision`, `hmac`, `keying`, `totp_rs_wrong`, `setup`; algorithms
//! `SHA1`, `SHA256`, `SHA512`) runs `n` iterations of one case and exits,
//! for callgrind: the difference between two values of `n`, divided by the
//! difference of the `n`s, is the instructions per call
//! (`docs/verification.md`, "What it costs").
//!
//! `BENCH_METRICS=1` installs a Prometheus recorder first, so that every
//! counter and histogram the engine records costs what it costs in a
//! service that exports them (without it, the `metrics` facade finds no
//! recorder and each record is an atomic load).
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
    use tower_totp::{KeyCacheConfig, TotpConfig, TwoFactor, UserId};

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
    /// once it holds the secret: key the HMAC of `params`, compute the codes of the 3
    /// steps around `step` and compare each in constant time.
    pub fn decide(secret: &Secret, params: CodeParams, code: &Code, step: u64) -> Option<u64> {
        let hotp = Hotp::new(secret, params);
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
        /// With the key cache on, kept for a year: the bench's clock moves
        /// 30 seconds per code, and its codes (160,000 in the ratio loop,
        /// 55 days) would outlive the default ten minutes every 20 codes.
        /// The hit path is what is measured; [`Fixture::uncached`]
        /// measures the miss path.
        pub fn new(store: impl TotpStore, algorithm: Algorithm, window: Window) -> Self {
            let year = KeyCacheConfig::new(16, Duration::from_secs(365 * 24 * 3600));
            Self::with_cache(store, algorithm, window, year)
        }

        /// With the key cache off: every code unseals and keys.
        pub fn uncached(store: impl TotpStore, algorithm: Algorithm, window: Window) -> Self {
            Self::with_cache(store, algorithm, window, KeyCacheConfig::disabled())
        }

        fn with_cache(
            store: impl TotpStore,
            algorithm: Algorithm,
            window: Window,
            cache: KeyCacheConfig,
        ) -> Self {
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
                .key_cache(cache)
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
                crate::support::decide(black_box(&secret), CodeParams::default(), &code, step)
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
    use hmac::digest::KeyInit;
    use hmac::{Hmac, Mac};
    use sha1::Sha1;
    use sha2::{Sha256, Sha512};
    use tower_totp::code::Algorithm;

    /// The RFC 6238 test secrets: 20, 32 and 64 bytes, the hash's own size.
    pub fn key(algorithm: Algorithm) -> &'static [u8] {
        match algorithm {
            Algorithm::Sha256 => b"12345678901234567890123456789012",
            Algorithm::Sha512 => {
                b"1234567890123456789012345678901234567890123456789012345678901234"
            }
            _ => b"12345678901234567890",
        }
    }

    /// A keyed HMAC of the hmac crate, per algorithm.
    #[derive(Clone)]
    pub enum Keyed {
        Sha1(Hmac<Sha1>),
        Sha256(Hmac<Sha256>),
        Sha512(Hmac<Sha512>),
    }

    fn new<M: KeyInit>(key: &[u8]) -> M {
        <M as KeyInit>::new_from_slice(key).unwrap()
    }

    /// Key the HMAC of `algorithm` with `key`.
    pub fn keying(algorithm: Algorithm, key: &[u8]) -> Keyed {
        match algorithm {
            Algorithm::Sha256 => Keyed::Sha256(new(key)),
            Algorithm::Sha512 => Keyed::Sha512(new(key)),
            _ => Keyed::Sha1(new(key)),
        }
    }

    fn mac<M: Mac + Clone>(keyed: &M, counter: u64) -> u8 {
        let mut mac = keyed.clone();
        mac.update(&counter.to_be_bytes());
        // One byte of the tag, so the work cannot be optimised away.
        black_box(mac.finalize().into_bytes())[0]
    }

    /// The HMAC of one 8-byte counter from an already keyed state.
    pub fn hmac(keyed: &Keyed, counter: u64) -> u8 {
        match keyed {
            Keyed::Sha1(m) => mac(m, counter),
            Keyed::Sha256(m) => mac(m, counter),
            Keyed::Sha512(m) => mac(m, counter),
        }
    }

    pub fn bench(c: &mut Criterion) {
        let mut group = c.benchmark_group("raw");
        for algorithm in crate::support::ALGORITHMS {
            let keyed = keying(algorithm, key(algorithm));
            let mut counter = 0u64;
            group.bench_function(format!("HMAC-{} of a counter", algorithm.as_str()), |b| {
                b.iter(|| {
                    counter = counter.wrapping_add(1);
                    hmac(&keyed, black_box(counter))
                });
            });
            group.bench_function(format!("HMAC-{} keying", algorithm.as_str()), |b| {
                b.iter(|| keying(algorithm, black_box(key(algorithm))));
            });
        }
        group.finish();
    }
}

/// totp-rs, the crate most services use, as a reference: its `check` with
/// skew 1 (window 1) keys the HMAC anew for each of the three steps and
/// does no replay, throttle or store work at all.
mod totp_rs_check {
    use tower_totp::code::Algorithm;

    /// totp-rs with `algorithm`, 6 digits, 30 seconds, skew 1, over `secret`.
    pub fn totp(algorithm: Algorithm, secret: &[u8]) -> totp_rs::Totp {
        let algorithm = match algorithm {
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
            _ => totp_rs::Algorithm::SHA1,
        };
        totp_rs::Builder::new()
            .with_algorithm(algorithm)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(secret.to_vec())
            .build()
            .unwrap()
    }
}

/// The issue's goals, measured in the same run by a manual timing loop, and
/// the per-case loop that callgrind counts (`VERIFY_ONLY`).
///
/// Each round times a batch of every measured operation back to back, so
/// that a busy machine slows both sides of a ratio alike; the ratios are
/// computed per round and the median round is reported.
mod ratio {
    use std::hint::black_box;
    use std::time::Instant;

    use tower_totp::clock::UnixTime;
    use tower_totp::code::{Algorithm, Code, CodeParams, Secret, parse_code};
    use tower_totp::store::MemoryStore;

    use crate::support::{ALGORITHMS, Fixture, decide, window};
    use crate::{raw, totp_rs_check};

    const ROUNDS: usize = 31;
    const ITERS: usize = 5_000;

    /// Everything one algorithm's figures need, set up outside any timing.
    pub struct Cases {
        algorithm: Algorithm,
        correct: Fixture,
        uncached: Fixture,
        wrong_fixture: Fixture,
        wrong_at: UnixTime,
        wrong: String,
        secret: Secret,
        params: CodeParams,
        typed: Code,
        keyed: raw::Keyed,
        totp: totp_rs::Totp,
        totp_wrong: String,
        totp_at: u64,
        counter: u64,
    }

    impl Cases {
        pub fn new(algorithm: Algorithm) -> Self {
            let correct = Fixture::new(MemoryStore::new(), algorithm, window(1));
            let uncached = Fixture::uncached(MemoryStore::new(), algorithm, window(1));
            let wrong_fixture = Fixture::new(MemoryStore::new(), algorithm, window(1));
            let (wrong_at, _) = wrong_fixture.next_code();
            wrong_fixture.clock.set(wrong_at);
            let wrong = wrong_fixture.wrong_code();
            let key = raw::key(algorithm);
            let totp = totp_rs_check::totp(algorithm, key);
            let totp_at = 1_700_000_010;
            // A code none of the three steps totp-rs checks gives.
            let near: Vec<String> = (0..3)
                .map(|d| totp.generate(totp_at - 30 + d * 30).to_string())
                .collect();
            let totp_wrong = (0..)
                .map(|v| format!("{v:06}"))
                .find(|c| !near.contains(c))
                .unwrap();
            assert_eq!(totp.check(&totp_wrong, totp_at), None);
            assert!(totp.check(&near[1], totp_at).is_some());
            Self {
                algorithm,
                correct,
                uncached,
                wrong_fixture,
                wrong_at,
                wrong,
                secret: Secret::from_bytes(key).unwrap(),
                params: CodeParams::new(algorithm, 6, 30).unwrap(),
                typed: parse_code("123456", 6).unwrap(),
                keyed: raw::keying(algorithm, key),
                totp,
                totp_wrong,
                totp_at,
                counter: 0,
            }
        }

        /// The codes of the next `n` steps of the correct fixtures, cached
        /// and not (set-up).
        pub fn next_codes(&self, n: usize) -> Vec<[(UnixTime, String); 2]> {
            (0..n)
                .map(|_| [self.correct.next_code(), self.uncached.next_code()])
                .collect()
        }

        /// Run case `name` once; `codes[i]` feeds the correct-code case.
        pub fn run(&mut self, name: &str, i: usize, codes: &[[(UnixTime, String); 2]]) {
            match name {
                "verify" => {
                    let (at, code) = &codes[i][0];
                    black_box(self.correct.verify_at(*at, code));
                }
                "verify_uncached" => {
                    let (at, code) = &codes[i][1];
                    black_box(self.uncached.verify_at(*at, code));
                }
                "verify_wrong" => {
                    black_box(
                        self.wrong_fixture
                            .verify_at(self.wrong_at, black_box(&self.wrong)),
                    );
                }
                "decision" => {
                    black_box(decide(
                        black_box(&self.secret),
                        self.params,
                        &self.typed,
                        1_000 + i as u64,
                    ));
                }
                "hmac" => {
                    self.counter = self.counter.wrapping_add(1);
                    black_box(raw::hmac(&self.keyed, black_box(self.counter)));
                }
                "keying" => {
                    black_box(raw::keying(
                        self.algorithm,
                        black_box(raw::key(self.algorithm)),
                    ));
                }
                "totp_rs_wrong" => {
                    black_box(
                        self.totp
                            .check(black_box(&self.totp_wrong), black_box(self.totp_at)),
                    );
                }
                "setup" => {}
                other => panic!("no case {other}"),
            }
        }

        pub fn still_accepting(&self) {
            for f in [&self.correct, &self.uncached] {
                let (at, code) = f.next_code();
                assert!(f.verify_at(at, &code).is_accepted(), "still accepting");
            }
            let opens = self.correct.tfa.key_cache_stats().opens;
            assert_eq!(opens, 1, "the cached fixture opened its secret once");
        }
    }

    const CASES: [&str; 7] = [
        "verify",
        "verify_uncached",
        "verify_wrong",
        "decision",
        "hmac",
        "keying",
        "totp_rs_wrong",
    ];

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

    /// `VERIFY_ONLY=<case>/<algorithm>:<n>` (e.g. `verify/SHA1:2000`): set
    /// up every case of that algorithm, run `n` iterations of one, exit.
    /// Under callgrind, two values of `n` give the instructions per call
    /// (the set-up, which does not depend on `n`, cancels out).
    pub fn only(spec: &str) {
        let (case, n) = spec
            .split_once(':')
            .expect("VERIFY_ONLY=<case>/<algorithm>:<n>");
        let (case, algorithm) = case.split_once('/').unwrap_or((case, "SHA1"));
        let n: usize = n.parse().expect("a count");
        assert!(n <= ITERS, "at most {ITERS} iterations");
        let algorithm = ALGORITHMS
            .into_iter()
            .find(|a| a.as_str() == algorithm)
            .expect("SHA1, SHA256 or SHA512");
        let mut cases = Cases::new(algorithm);
        // Always the same set-up, whatever `n`.
        let codes = cases.next_codes(ITERS);
        for i in 0..n {
            cases.run(case, i, &codes);
        }
        cases.still_accepting();
    }

    pub fn report() {
        println!();
        println!("ratio: manual loop, median of {ROUNDS} rounds of {ITERS} iterations each");
        for algorithm in ALGORITHMS {
            report_one(algorithm);
        }
    }

    fn report_one(algorithm: Algorithm) {
        let mut cases = Cases::new(algorithm);
        let round = |cases: &mut Cases| {
            let codes = cases.next_codes(ITERS);
            CASES.map(|case| per_iter(|i| cases.run(case, i, &codes)))
        };
        round(&mut cases); // warm up
        let rounds: Vec<[f64; 7]> = (0..ROUNDS).map(|_| round(&mut cases)).collect();
        cases.still_accepting();

        let [verify, uncached, wrong, decision, hmac, keying, totp_rs] = [0, 1, 2, 3, 4, 5, 6];
        let med = |f: &dyn Fn(&[f64; 7]) -> f64| median(rounds.iter().map(f).collect());
        let budget = |r: &[f64; 7]| 3.0 * r[hmac] + r[keying];
        let a = algorithm.as_str();
        println!("  {a}");
        println!(
            "    raw HMAC of a counter              {:8.1} ns",
            med(&|r| r[hmac])
        );
        println!(
            "    raw HMAC keying                    {:8.1} ns",
            med(&|r| r[keying])
        );
        println!(
            "    3 x HMAC + 1 keying                {:8.1} ns",
            med(&budget)
        );
        println!(
            "    decision alone (key, 3, compare)   {:8.1} ns",
            med(&|r| r[decision])
        );
        println!(
            "    verify, window 1, correct          {:8.1} ns",
            med(&|r| r[verify])
        );
        println!(
            "    verify, correct, key cache off     {:8.1} ns",
            med(&|r| r[uncached])
        );
        println!(
            "    verify, window 1, wrong            {:8.1} ns",
            med(&|r| r[wrong])
        );
        println!(
            "    totp-rs check, skew 1, wrong       {:8.1} ns",
            med(&|r| r[totp_rs])
        );
        println!(
            "    verify / (3 x raw HMAC + 1 keying)          = {:.2}  (goal <= 1.5)",
            med(&|r| r[verify] / budget(r))
        );
        println!(
            "    verify, key cache off / (3 x HMAC + 1 key)  = {:.2}",
            med(&|r| r[uncached] / budget(r))
        );
        println!(
            "    decision alone / (3 x raw HMAC + 1 keying)  = {:.2}  (goal <= 1.10)",
            med(&|r| r[decision] / budget(r))
        );
        println!(
            "    totp-rs check(wrong) / verify(correct)      = {:.2}  (goal >= 1.3)",
            med(&|r| r[totp_rs] / r[verify])
        );
        // A wrong code is also looked for across the maximum drift: 21 steps.
        println!(
            "    verify(wrong) / (21 x raw HMAC + 1 keying)  = {:.2}",
            med(&|r| r[wrong] / (21.0 * r[hmac] + r[keying]))
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
    if std::env::var_os("BENCH_METRICS").is_some() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::set_global_recorder(recorder).expect("the first recorder");
        println!("BENCH_METRICS: a Prometheus recorder is installed");
    }
    if let Ok(spec) = std::env::var("VERIFY_ONLY") {
        ratio::only(&spec);
        return;
    }
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
