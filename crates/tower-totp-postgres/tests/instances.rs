//! Two instances of a service on one database and schema, each with a pool
//! of its own (as two processes have): one code consumed once across them,
//! and one throttle for both.

mod common;

use std::sync::Arc;

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::store::{ConsumeOutcome, StepStore, ThrottleStore};
use tower_totp::throttle::{Attempt, ThrottlePolicy};
use tower_totp_postgres::PostgresStore;
use tower_totp_testkit::server::postgres::PostgresServer;

/// Two stores on the same schema, through two pools.
async fn two_instances(server: &PostgresServer) -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let a = common::store(server).await;
    let b = PostgresStore::new(common::pool(&server.url()).await)
        .with_schema(a.schema())
        .expect("plain name");
    b.migrate().await.expect("migrate, again");
    (Arc::new(a), Arc::new(b))
}

/// Enrol `user` through the engine on `store`; the authenticator's id.
async fn enrolled(store: &PostgresStore, user: &UserId) -> tower_totp::store::AuthenticatorId {
    use tower_totp::clock::ManualClock;
    use tower_totp::{ConfirmAs, TotpConfig, TwoFactor};
    use tower_totp_testkit::phone::Phone;

    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
    let engine = TwoFactor::builder(TotpConfig::new("Instances").expect("config"))
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .expect("engine");
    let e = engine
        .start_enrollment(user, user.as_str(), "Phone", None)
        .await
        .expect("start")
        .expect("under the caps");
    let code = Phone::new(e.secret(), e.params(), clock).code();
    let confirmed = engine
        .confirm_enrollment(user, e.id(), &code, ConfirmAs::FirstAuthenticator)
        .await
        .expect("confirm");
    assert!(confirmed.is_confirmed());
    e.id().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_is_consumed_once_across_instances() {
    let server = PostgresServer::shared();
    let (a, b) = two_instances(&server).await;
    let alice = UserId::new("alice");
    let id = enrolled(&a, &alice).await;
    let step = 1 << 40;

    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let (alice, id) = (alice.clone(), id.clone());
            tokio::spawn(async move { store.consume_step(&alice, &id, step, 0).await })
        })
        .collect();
    let mut consumed = 0;
    for t in tasks {
        match t.await.expect("task").expect("consume_step") {
            ConsumeOutcome::Consumed => consumed += 1,
            ConsumeOutcome::Replayed => {}
            ConsumeOutcome::NotFound => panic!("the authenticator exists"),
        }
    }
    assert_eq!(consumed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_on_both_instances_count_toward_one_throttle() {
    let server = PostgresServer::shared();
    let (a, b) = two_instances(&server).await;
    let alice = UserId::new("alice");
    enrolled(&a, &alice).await;
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_800_000_000);

    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let alice = alice.clone();
            tokio::spawn(async move {
                store
                    .begin_verification(&alice, now, &policy, Some(6))
                    .await
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        let start = t.await.expect("task").expect("begin_verification");
        if start.attempt == Some(Attempt::Allowed) {
            allowed += 1;
        }
    }
    // The free attempts, and the one that starts the first delay.
    assert_eq!(allowed, policy.free_attempts() + 1);
    let seen_by_b = b.throttle_state(&alice).await.expect("state");
    assert_eq!(seen_by_b, a.throttle_state(&alice).await.expect("state"));
    assert_eq!(seen_by_b.attempts, policy.free_attempts() + 1);
}
