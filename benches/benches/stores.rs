//! The stores' atomic step consumption (`StepStore::consume_step`, the
//! compare-and-set every accepted code costs, which also clears the user's
//! throttle in the same call), and the two store operations of an accepted
//! code, on the memory store, SQLite (a temporary file, WAL,
//! `synchronous = FULL`), Redis and PostgreSQL.
//!
//! ```text
//! cargo bench -p tower-totp-benches --bench stores -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Group `consume_step/<store>`:
//!
//! - `single`: one caller, one call at a time, on a current-thread tokio
//!   runtime;
//! - `concurrent_8`: 8 callers at once on a multi-thread runtime (the
//!   machine's cores): 8 futures, each consuming the next step of its own
//!   user, joined in one task. The stores overlap them where they can
//!   (SQLite runs each on the blocking pool, where they queue for its one
//!   connection; Redis pipelines them on its multiplexed connection; the
//!   memory store finishes each before the next starts). One iteration is
//!   the batch of 8, so criterion's throughput line is calls per second.
//!   (Spawning 8 tasks instead measured mostly the runtime's thread
//!   wake-ups, which on this busy 2-core machine varied by 2x run to run.)
//!
//! `consume_step/baseline` is the same two shapes with no store call (a
//! poll; 8 ready futures joined): the runtime's share.
//!
//! Group `code/<store>`, `single`: what an accepted login code costs the
//! store, its two operations one after the other on the current-thread
//! runtime: `begin_verification` (status, authenticators and the throttle
//! charge) then `consume_step` (which clears the charge again, so every
//! iteration is allowed).
//!
//! Every call consumes a new step (a counter far above the enrolment step),
//! so every call is a successful compare-and-set that writes. The users
//! enrol through the engine before any timing.
//!
//! Redis: the bench starts its own `redis-server` on a free loopback port
//! (no persistence) and kills it at the end; without `redis-server` on the
//! `PATH` it prints a note and measures the others.
//!
//! PostgreSQL: the bench starts its own server (the testkit's
//! `PostgresServer`: a temporary cluster on a free loopback port, `fsync`
//! off, so the numbers are round trips and the server's work, not the
//! disk; SQLite's above include an `fsync` per write) and stops it at the
//! end; without PostgreSQL installed it prints a note and measures the
//! others. The store runs on `pool_options()` (10 connections), whose
//! pool pings a connection before each store call takes it (sqlx's
//! `test_before_acquire`, so a connection broken while idle is replaced
//! first); `code/postgres_no_ping` is the same without that ping.

// A bench binary: `pub` only shares items between its modules.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use criterion::{Criterion, criterion_group, criterion_main};
use tower_totp_testkit::server::postgres::PostgresServer;
use tower_totp_testkit::server::redis::RedisServer;

/// Enrolled users over any store.
mod support {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tower_totp::clock::{ManualClock, UnixTime};
    use tower_totp::store::{AuthenticatorId, ConsumeOutcome, TotpStore};
    use tower_totp::{TotpConfig, TwoFactor, UserId};
    use tower_totp_testkit::phone::Phone;

    /// How many callers the concurrent scenario runs.
    pub const CALLERS: usize = 8;

    /// A user and their one authenticator.
    pub type Target = Arc<(UserId, AuthenticatorId)>;

    /// Steps handed out to the timed calls: all far above any real step.
    pub struct Steps(AtomicU64);

    impl Steps {
        pub fn new() -> Self {
            Self(AtomicU64::new(1 << 40))
        }

        pub fn next(&self) -> u64 {
            self.0.fetch_add(1, Ordering::Relaxed)
        }
    }

    /// Enrol `CALLERS` users in `store` through the engine.
    pub async fn enrolled<S: TotpStore + Clone>(store: &S) -> Vec<Target> {
        let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
        let engine = TwoFactor::builder(TotpConfig::new("Bench").unwrap())
            .clock(clock.clone())
            .store(store.clone())
            .build()
            .unwrap();
        let mut targets = Vec::new();
        for i in 0..CALLERS {
            let user = UserId::new(format!("bench-user-{i}"));
            let e = engine
                .start_enrollment(&user, user.as_str(), "Phone", None)
                .await
                .unwrap()
                .unwrap();
            let code = Phone::new(e.secret(), e.params(), clock.clone()).code();
            assert!(
                engine
                    .confirm_enrollment(
                        &user,
                        e.id(),
                        &code,
                        tower_totp::ConfirmAs::AnotherAuthenticator
                    )
                    .await
                    .unwrap()
                    .is_confirmed()
            );
            targets.push(Arc::new((user, e.id().clone())));
        }
        // The first timed call must succeed like every later one.
        let (user, id) = &*targets[0];
        let outcome = store.consume_step(user, id, 1 << 39, 0).await.unwrap();
        assert_eq!(outcome, ConsumeOutcome::Consumed);
        targets
    }
}

/// `consume_step`, generic over the store.
mod consume_step {
    use std::hint::black_box;
    use std::sync::Arc;

    use criterion::{Criterion, Throughput};
    use futures_util::future::join_all;
    use tokio::runtime::Runtime;
    use tower_totp::store::TotpStore;

    use super::support::{CALLERS, Steps, enrolled};

    /// `stores`: the store as used on the `single` runtime and on the
    /// `multi` one (a Redis connection lives on the runtime that made it).
    pub fn scenario<S: TotpStore + Clone>(
        c: &mut Criterion,
        name: &str,
        stores: (&S, &S),
        single: &Runtime,
        multi: &Runtime,
    ) {
        let (store, multi_store) = stores;
        let targets = single.block_on(enrolled(store));
        let steps = Arc::new(Steps::new());
        let mut g = c.benchmark_group(format!("consume_step/{name}"));

        g.throughput(Throughput::Elements(1));
        g.bench_function("single", |b| {
            let (user, id) = &*targets[0];
            b.to_async(single).iter(|| async {
                black_box(store.consume_step(user, id, steps.next(), 0).await.unwrap())
            });
        });

        g.throughput(Throughput::Elements(CALLERS as u64));
        g.bench_function(format!("concurrent_{CALLERS}"), |b| {
            b.to_async(multi).iter(|| async {
                let step = steps.next();
                let calls = targets
                    .iter()
                    .map(|t| multi_store.consume_step(&t.0, &t.1, step, 0));
                for outcome in join_all(calls).await {
                    black_box(outcome.unwrap());
                }
            });
        });
        g.finish();
    }

    /// The same two shapes around no store at all: what the runtime costs
    /// (a poll; 8 ready futures joined).
    pub fn baseline(c: &mut Criterion, single: &Runtime, multi: &Runtime) {
        let steps = Steps::new();
        let mut g = c.benchmark_group("consume_step/baseline");
        g.throughput(Throughput::Elements(1));
        g.bench_function("single", |b| {
            b.to_async(single)
                .iter(|| async { black_box(steps.next()) });
        });
        g.throughput(Throughput::Elements(CALLERS as u64));
        g.bench_function(format!("concurrent_{CALLERS}"), |b| {
            b.to_async(multi).iter(|| async {
                let step = steps.next();
                let calls = (0..CALLERS).map(|_| async move { step });
                for outcome in join_all(calls).await {
                    black_box(outcome);
                }
            });
        });
        g.finish();
    }
}

/// The two store operations of an accepted code, generic over the store.
mod code {
    use std::hint::black_box;
    use std::sync::Arc;

    use criterion::{Criterion, Throughput};
    use tokio::runtime::Runtime;
    use tower_totp::clock::UnixTime;
    use tower_totp::store::{ConsumeOutcome, TotpStore};
    use tower_totp::throttle::{Attempt, ThrottlePolicy};

    use super::support::{Steps, enrolled};

    pub fn scenario<S: TotpStore + Clone>(c: &mut Criterion, name: &str, store: &S, rt: &Runtime) {
        let targets = rt.block_on(enrolled(store));
        let steps = Arc::new(Steps::new());
        let policy = ThrottlePolicy::default();
        let now = UnixTime::from_secs(1_700_000_040);
        let mut g = c.benchmark_group(format!("code/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("single", |b| {
            let (user, id) = &*targets[0];
            b.to_async(rt).iter(|| async {
                let start = store
                    .begin_verification(user, now, &policy, Some(6))
                    .await
                    .unwrap();
                assert_eq!(start.attempt, Some(Attempt::Allowed));
                let outcome = store.consume_step(user, id, steps.next(), 0).await.unwrap();
                assert_eq!(outcome, ConsumeOutcome::Consumed);
                black_box(start);
            });
        });
        g.finish();
    }
}

fn stores(c: &mut Criterion) {
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    consume_step::baseline(c, &single, &multi);

    let memory = tower_totp::store::MemoryStore::new();
    consume_step::scenario(c, "memory", (&memory, &memory), &single, &multi);
    code::scenario(c, "memory", &tower_totp::store::MemoryStore::new(), &single);

    let dir = tempfile::tempdir().unwrap();
    let sqlite = tower_totp_sqlite::SqliteStore::open(dir.path().join("bench.sqlite3")).unwrap();
    consume_step::scenario(c, "sqlite", (&sqlite, &sqlite), &single, &multi);
    let sqlite = tower_totp_sqlite::SqliteStore::open(dir.path().join("code.sqlite3")).unwrap();
    code::scenario(c, "sqlite", &sqlite, &single);

    match RedisServer::try_start() {
        Ok(server) => {
            // A connection per runtime: its driver task lives on the runtime
            // that made it. Same server and prefix, so the same data.
            let url = server.url();
            let connect = || tower_totp_redis::RedisStore::connect(&url);
            let redis_single = single.block_on(connect()).unwrap();
            let redis_multi = multi.block_on(connect()).unwrap();
            consume_step::scenario(c, "redis", (&redis_single, &redis_multi), &single, &multi);
            let code_store = redis_single.with_prefix("bench-code:");
            code::scenario(c, "redis", &code_store, &single);
            drop(server);
        }
        Err(e) => println!("note: Redis not measured: {e}"),
    }

    match PostgresServer::try_start() {
        Ok(server) => {
            // A pool per runtime, as for Redis: its connections live on the
            // runtime that made them. Same database and schema.
            let url = server.url();
            let connect = || async {
                let store = tower_totp_postgres::PostgresStore::connect(&url)
                    .await
                    .unwrap();
                store.migrate().await.unwrap();
                store
            };
            let pg_single = single.block_on(connect());
            let pg_multi = multi.block_on(connect());
            consume_step::scenario(c, "postgres", (&pg_single, &pg_multi), &single, &multi);
            let code_store = pg_single.clone().with_schema("bench_code").unwrap();
            single.block_on(code_store.migrate()).unwrap();
            code::scenario(c, "postgres", &code_store, &single);
            // The same without sqlx's ping before each acquire (one round
            // trip per store call less; a connection broken while idle then
            // fails one call instead of being replaced first).
            let unpinged = single.block_on(async {
                let pool = tower_totp_postgres::pool_options()
                    .test_before_acquire(false)
                    .connect(&url)
                    .await
                    .unwrap();
                let store = tower_totp_postgres::PostgresStore::new(pool)
                    .with_schema("bench_code_unpinged")
                    .unwrap();
                store.migrate().await.unwrap();
                store
            });
            code::scenario(c, "postgres_no_ping", &unpinged, &single);
            drop((pg_single, pg_multi));
            drop(server);
        }
        Err(e) => println!("note: PostgreSQL not measured: {e}"),
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
