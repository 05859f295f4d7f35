//! The SQLite store against the store conformance suite, on files and in
//! memory, and the same atomicity across two connections to one file.

mod common;

use std::sync::Arc;

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryCodes;
use tower_totp::store::{
    Activated, ConsumeOutcome, EnrollmentStore, PutPending, RecoveryOutcome, RecoveryStore,
    StepStore, ThrottleStore,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy};
use tower_totp_sqlite::SqliteStore;

/// Each case on its own file; the directory lives until the case ends.
mod file_store {
    use tower_totp_sqlite::SqliteStore;

    tower_totp::store_conformance_tests!(
        keep dir = tempfile::tempdir().expect("temp dir");
        make = SqliteStore::open(dir.path().join("totp.sqlite3")).expect("open")
    );
}

mod in_memory_store {
    use tower_totp_sqlite::SqliteStore;

    tower_totp::store_conformance_tests!(make = SqliteStore::open_in_memory().expect("open"));
}

/// How many tasks race through the two connections.
const RACERS: usize = 16;

/// Two stores on one file are two connections, as two processes would
/// have: SQLite's locks, not our mutex, must keep the operations atomic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_to_one_file_keep_operations_atomic() {
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
        if t.await.expect("task").expect("use") == RecoveryOutcome::Consumed {
            used += 1;
        }
    }
    assert_eq!(used, 1, "one recovery code used through two connections");
    assert_eq!(stores[0].recovery_codes_left(&u).await.expect("left"), 1);
}

/// Activations through two connections to one file (two processes): of
/// many first-only activations of several pending enrollments, exactly one
/// wins, with its recovery codes; a refused one issues none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_to_one_file_have_one_first_activation() {
    const PENDINGS: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.sqlite3");
    let stores = [
        Arc::new(SqliteStore::open(&path).expect("open first")),
        Arc::new(SqliteStore::open(&path).expect("open second")),
    ];
    let u = UserId::new("zoe");
    let mut ids = Vec::new();
    for i in 0..PENDINGS {
        let p = common::pending(&u, &format!("session {i}"));
        ids.push(p.id.clone());
        let stored = stores[i % 2]
            .put_pending(&u, p, common::ROOMY)
            .await
            .expect("put");
        assert_eq!(stored, PutPending::Stored);
    }
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            let u = u.clone();
            let mut act = common::activation(&ids[i % PENDINGS], 5);
            act.first_only = true;
            act.recovery = RecoveryCodes::generate(3).expect("codes").hashes(&u);
            tokio::spawn(async move { (store.activate_pending(&u, &act).await, act.recovery) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (outcome, recovery) = t.await.expect("task");
        match outcome.expect("activate") {
            Activated::Done {
                recovery_issued, ..
            } => {
                assert!(recovery_issued, "a first activation issues the codes");
                winners.push(recovery);
            }
            Activated::NoPending | Activated::AlreadyEnrolled => {}
            Activated::TooMany => panic!("no cap was set"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "one first activation through two connections"
    );
    assert_eq!(stores[1].authenticators(&u).await.expect("list").len(), 1);
    assert_eq!(stores[0].recovery_codes_left(&u).await.expect("left"), 3);
    assert_eq!(
        stores[1]
            .consume_recovery_code(&u, &winners[0][0])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed,
        "the codes kept are the winner's"
    );
}
