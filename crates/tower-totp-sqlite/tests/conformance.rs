//! The SQLite store against the store conformance suite, on files and in
//! memory, and the same atomicity across two connections to one file.

mod common;

use std::sync::Arc;

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryCodes;
use tower_totp::store::{ConsumeOutcome, RecoveryStore, StepStore, ThrottleStore, conformance};
use tower_totp::throttle::{Attempt, ThrottlePolicy};
use tower_totp_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_passes_the_conformance_suite() {
    // Each case gets its own file; the directories live until the end.
    let mut dirs = Vec::new();
    conformance::run_all(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("totp.sqlite3")).expect("open");
        dirs.push(dir);
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_store_passes_the_conformance_suite() {
    conformance::run_all(|| async { SqliteStore::open_in_memory().expect("open") }).await;
}

/// Two stores on one file are two connections, as two processes would
/// have: SQLite's locks, not our mutex, must keep the operations atomic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_to_one_file_keep_operations_atomic() {
    const RACERS: usize = 16;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.sqlite3");
    let stores = [
        Arc::new(SqliteStore::open(&path).expect("open first")),
        Arc::new(SqliteStore::open(&path).expect("open second")),
    ];
    let u = UserId::new("mallory");
    let id = common::enroll(&*stores[0], &u, "phone", 1).await;

    // One step, submitted through both connections at once: one winner.
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, u, id) = (Arc::clone(&stores[i % 2]), u.clone(), id.clone());
            tokio::spawn(async move { store.consume_step(&u, &id, 2, 0).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task").expect("consume") {
            ConsumeOutcome::Consumed => wins += 1,
            ConsumeOutcome::Replayed => {}
            ConsumeOutcome::NotFound => panic!("the authenticator vanished"),
        }
    }
    assert_eq!(wins, 1, "one step consumed through two connections");

    // Attempts through both connections are all charged.
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_800_000_000);
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, u) = (Arc::clone(&stores[i % 2]), u.clone());
            tokio::spawn(async move { store.begin_attempt(&u, now, &policy).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.expect("task").expect("attempt") == Attempt::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, policy.free_attempts() + 1);

    // One recovery code used through both connections: one winner.
    let hashes = RecoveryCodes::generate(2).expect("codes").hashes(&u);
    stores[1]
        .replace_recovery_codes(&u, hashes.clone())
        .await
        .expect("replace");
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, u, h) = (Arc::clone(&stores[i % 2]), u.clone(), hashes[0]);
            tokio::spawn(async move { store.consume_recovery_code(&u, &h).await })
        })
        .collect();
    let mut used = 0;
    for t in tasks {
        if t.await.expect("task").expect("use") {
            used += 1;
        }
    }
    assert_eq!(used, 1, "one recovery code used through two connections");
    assert_eq!(stores[0].recovery_codes_left(&u).await.expect("left"), 1);
}
