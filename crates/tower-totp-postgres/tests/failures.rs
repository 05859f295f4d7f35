//! A PostgreSQL server that stops: every call fails with
//! `StoreError::Unavailable`, quickly, never a panic and never a success;
//! after the server starts again on the same data, the same store serves
//! again by itself, with everything it had committed.

use std::time::{Duration, Instant};

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::store::{
    AuthenticatorId, EnrollmentStore, RecoveryStore, StepStore, StoreError, ThrottleStore,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy};
use tower_totp_postgres::{ACQUIRE_TIMEOUT, PostgresStore};
use tower_totp_testkit::server::postgres::PostgresServer;

/// How long a failing call may take: the pool's acquire timeout, and room
/// for a slow machine.
const BOUND: Duration = Duration::from_secs(5);

/// `call` fails with `Unavailable` within [`BOUND`].
async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
    assert!(took < BOUND, "{what} failed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable_and_the_store_recovers_after_it_starts_again() {
    assert!(ACQUIRE_TIMEOUT < BOUND);
    let mut server = PostgresServer::start();
    let store = PostgresStore::connect(&server.url())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let alice = UserId::new("alice");
    let now = UnixTime::from_secs(1_000);
    let policy = ThrottlePolicy::default();
    let codes = vec![RecoveryHash::from_bytes([7; 32])];
    store
        .replace_recovery_codes(&alice, codes)
        .await
        .expect("codes");
    assert_eq!(
        store
            .begin_attempt(&alice, now, &policy)
            .await
            .expect("attempt"),
        Attempt::Allowed
    );

    server.stop();

    let id = AuthenticatorId::new("0123456789abcdef");
    let hash = RecoveryHash::from_bytes([7; 32]);
    assert_unavailable("status", store.status(&alice)).await;
    assert_unavailable(
        "begin_verification",
        store.begin_verification(&alice, now, &policy, Some(6)),
    )
    .await;
    assert_unavailable("consume_step", store.consume_step(&alice, &id, 99, 0)).await;
    assert_unavailable(
        "consume_recovery_code",
        store.consume_recovery_code(&alice, &hash),
    )
    .await;
    assert_unavailable("begin_attempt", store.begin_attempt(&alice, now, &policy)).await;
    assert_unavailable("migrate", store.migrate()).await;

    server.start_again();

    // The very next call works: broken connections are replaced.
    assert_eq!(
        store
            .throttle_state(&alice)
            .await
            .expect("served again")
            .attempts,
        1,
        "the attempt charged before the stop, and none while it was down"
    );
    assert_eq!(store.recovery_codes_left(&alice).await.expect("codes"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_server_that_is_not_there_fails_unavailable() {
    let mut server = PostgresServer::start();
    let url = server.url();
    server.stop();
    assert_unavailable("connect", PostgresStore::connect(&url)).await;
}
