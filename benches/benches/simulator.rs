//! The simulator's in-process throughput: full logins per second.
//!
//! ```text
//! cargo bench -p tower-totp-benches --bench simulator -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Group `simulator`:
//!
//! - `run_engine` and `run_http`: one iteration is a whole
//!   `totp_sim::run::run` of a fixed fleet (200 users for 5 days, 2 logins
//!   a day, the default typos and retries, no attackers) on one thread,
//!   through the `TwoFactor` engine called directly, and through the whole
//!   HTTP stack in process (tower-sessions, `TotpLayer`, the `/2fa`
//!   endpoints, a password login: the simulator's `HttpDriver`). Each run
//!   includes the enrolment of the fleet and the event queue. The set-up
//!   run counts the logins (the run is seeded, so every run has the same
//!   count); criterion's throughput line turns the time per run into logins
//!   per second, and the HTTP/engine ratio is the price of the HTTP stack;
//! - `http_logins`: one iteration is one accepted full login (the password
//!   request and the code request) through `totp_sim::bench::LoginBench`,
//!   1,000 users enrolled before any timing, no event queue.

// A bench binary: `pub` only shares items between its modules.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use criterion::{criterion_group, criterion_main};

mod logins {
    use std::hint::black_box;

    use criterion::{Criterion, Throughput};
    use totp_sim::bench::LoginBench;
    use totp_sim::run::{DriverKind, RunOptions, run};
    use totp_sim::scenario::Scenario;

    pub fn bench(c: &mut Criterion) {
        let scenario = Scenario {
            users: 200,
            days: 5,
            ..Scenario::default()
        };
        let model = scenario.model().unwrap();
        let mut g = c.benchmark_group("simulator");
        g.sample_size(10);
        for (name, driver) in [
            ("run_engine", DriverKind::Engine),
            ("run_http", DriverKind::Http),
        ] {
            let options = RunOptions {
                driver,
                ..RunOptions::default()
            };
            let first = run(&model, &options).unwrap();
            let logins = first.report.logins;
            assert!(logins > 0);
            assert_eq!(first.report.guesses, 0);
            println!(
                "simulator/{name}: {logins} logins ({} driver calls) per run",
                first.report.driver_calls
            );
            g.throughput(Throughput::Elements(logins));
            g.bench_function(name, |b| {
                b.iter(|| black_box(run(&model, &options).unwrap().report.logins));
            });
        }

        let mut bench = LoginBench::new(1_000).unwrap();
        g.sample_size(20);
        g.throughput(Throughput::Elements(1));
        g.bench_function("http_logins", |b| {
            b.iter_custom(|n| bench.logins(n).unwrap());
        });
        g.finish();
    }
}

criterion_group!(benches, logins::bench);
criterion_main!(benches);
