//! Failures and the data the store leaves in Redis: a stopped, frozen or
//! restarted server, damaged data, key layout and expiry.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::code::{CodeParams, Secret};
use tower_totp::recovery::RecoveryCodes;
use tower_totp::seal::Keyring;
use tower_totp::store::{
    Activated, Activation, AuthenticatorId, ConsumeOutcome, EnrollmentStore, PendingEnrollment,
    PendingLimits, PutPending, RecoveryStore, StepStore, StoreError, ThrottleStore,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy};
use tower_totp_redis::redis::AsyncCommands;
use tower_totp_redis::redis::aio::ConnectionManager;
use tower_totp_redis::{RESPONSE_TIMEOUT, RedisStore};
use tower_totp_testkit::server::redis::RedisServer;

/// No call may take longer than this, whatever the server does: the
/// connection settings promise about three seconds at worst.
const BOUND: Duration = Duration::from_secs(5);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {BOUND:?}"));
    (out, start.elapsed())
}

fn unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: want Unavailable, got {r:?}"
    );
}

fn corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "{what}: want Corrupt, got {r:?}"
    );
}

/// Enrol `user` with one authenticator whose last step is `step`.
async fn enroll(store: &RedisStore, user: &UserId, step: u64) -> AuthenticatorId {
    let keys = Keyring::ephemeral().unwrap();
    let id = AuthenticatorId::generate().unwrap();
    let pending = PendingEnrollment {
        id: id.clone(),
        name: "phone".to_owned(),
        secret: keys.seal(user, &Secret::generate()).unwrap(),
        params: CodeParams::default(),
        created_at: UnixTime::from_secs(1_000),
        replaces: None,
    };
    assert_eq!(
        store.put_pending(user, pending, ROOMY).await.unwrap(),
        PutPending::Stored
    );
    let outcome = store
        .activate_pending(user, &activation(&id, step))
        .await
        .unwrap();
    assert!(matches!(outcome, Activated::Done { .. }), "{outcome:?}");
    id
}

/// No pruning, no cap to speak of.
const ROOMY: PendingLimits = PendingLimits {
    expired_before: UnixTime::EPOCH,
    max: 1_000,
};

/// An activation of `id` at `step` without caps or recovery codes.
fn activation(id: &AuthenticatorId, step: u64) -> Activation {
    Activation {
        pending_id: id.clone(),
        step,
        offset: 0,
        now: UnixTime::from_secs(1_001),
        first_only: false,
        max_authenticators: 1_000,
        recovery: Vec::new(),
    }
}

/// Every kind of call, each within the bound, each `Unavailable`.
async fn all_calls_fail_unavailable(store: &RedisStore, user: &UserId, id: &AuthenticatorId) {
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(2_000_000_000);
    let hash = RecoveryCodes::generate(1).unwrap().hashes(user)[0];
    let (r, _) = bounded("status", store.status(user)).await;
    unavailable("status", r);
    let (r, _) = bounded("authenticators", store.authenticators(user)).await;
    unavailable("authenticators", r);
    let (r, _) = bounded("consume_step", store.consume_step(user, id, 7, 0)).await;
    unavailable("consume_step", r);
    let (r, _) = bounded("begin_attempt", store.begin_attempt(user, now, &policy)).await;
    unavailable("begin_attempt", r);
    let (r, _) = bounded(
        "consume_recovery_code",
        store.consume_recovery_code(user, &hash),
    )
    .await;
    unavailable("consume_recovery_code", r);
    let (r, _) = bounded("reset", store.reset(user, now)).await;
    unavailable("reset", r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_gives_unavailable_quickly() {
    let mut server = RedisServer::start();
    let store = server.store().await;
    let user = UserId::new("alice");
    let id = enroll(&store, &user, 5).await;
    assert!(store.status(&user).await.unwrap().enrolled);

    server.stop();
    all_calls_fail_unavailable(&store, &user, &id).await;
    // And again, now that the manager knows the connection is gone.
    all_calls_fail_unavailable(&store, &user, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_times_out_instead_of_hanging() {
    let server = RedisServer::start();
    let store = server.store().await;
    let user = UserId::new("bob");
    let id = enroll(&store, &user, 5).await;

    server.pause();
    let (r, took) = bounded("status", store.status(&user)).await;
    unavailable("status on a frozen server", r);
    assert!(
        took >= RESPONSE_TIMEOUT.saturating_sub(Duration::from_millis(100)),
        "failed before the response timeout: {took:?}"
    );
    let (r, _) = bounded("consume_step", store.consume_step(&user, &id, 6, 0)).await;
    unavailable("consume_step on a frozen server", r);

    server.resume();
    let mut ok = None;
    for _ in 0..30 {
        if let Ok(outcome) = store.consume_step(&user, &id, 7, 0).await {
            ok = Some(outcome);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The timed-out script may or may not have run before the freeze; 7 is
    // newer either way.
    assert_eq!(ok, Some(ConsumeOutcome::Consumed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_used_again_by_the_same_store() {
    let mut server = RedisServer::start();
    let store = server.store().await;
    let user = UserId::new("carol");
    enroll(&store, &user, 5).await;

    server.restart();
    // The first call may still see the dead connection; the manager
    // reconnects by itself within a few tries.
    let mut status = None;
    for _ in 0..30 {
        match store.status(&user).await {
            Ok(s) => {
                status = Some(s);
                break;
            }
            Err(StoreError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected error after restart: {e:?}"),
        }
    }
    let status = status.expect("the store works again after the restart");
    // The test server keeps nothing across a restart.
    assert!(!status.enrolled);

    // Scripts were flushed with the server: EVALSHA falls back to loading them.
    let id = enroll(&store, &user, 10).await;
    assert_eq!(
        store.consume_step(&user, &id, 11, 0).await.unwrap(),
        ConsumeOutcome::Consumed
    );
    assert_eq!(
        store
            .begin_attempt(&user, UnixTime::from_secs(1), &ThrottlePolicy::default())
            .await
            .unwrap(),
        Attempt::Allowed
    );
}

/// Longer than the connection manager's own reconnect attempt after a
/// failed call (two refused connects at most 500 ms apart).
const RECONNECT_GIVES_UP: Duration = Duration::from_millis(1500);

/// A call made while Redis is down leaves the connection manager trying to
/// reconnect; once that attempt is refused too, the manager holds the
/// refusal, and the first call after Redis is back would get it. The store
/// sends such a call once more (it never reached Redis), so it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_an_outage_works() {
    let mut server = RedisServer::start();
    let store = server.store().await;
    let user = UserId::new("erin");
    let id = enroll(&store, &user, 5).await;

    server.stop();
    for _ in 0..2 {
        let (r, _) = bounded("status", store.status(&user)).await;
        unavailable("status while stopped", r);
    }
    // An outage longer than a second or two, as outages are.
    tokio::time::sleep(RECONNECT_GIVES_UP).await;
    server.restart();
    let (r, _) = bounded("status", store.status(&user)).await;
    // The test server keeps nothing across a restart.
    assert!(!r.unwrap().enrolled, "the first call after the restart");
    let (r, _) = bounded("consume_step", store.consume_step(&user, &id, 6, 0)).await;
    assert_eq!(r.unwrap(), ConsumeOutcome::NotFound);

    // The same for the session store on the same connection.
    server.stop();
    let sessions = store.session_store();
    let id = tower_sessions::session::Id::default();
    assert!(
        tower_sessions::SessionStore::load(&sessions, &id)
            .await
            .is_err()
    );
    tokio::time::sleep(RECONNECT_GIVES_UP).await;
    server.restart();
    let loaded = tower_sessions::SessionStore::load(&sessions, &id).await;
    assert!(matches!(loaded, Ok(None)), "{loaded:?}");
}

#[tokio::test]
async fn connect_to_nothing_fails_with_unavailable() {
    let port = tower_totp_testkit::server::free_port();
    let (r, _) = bounded(
        "connect",
        RedisStore::connect(&format!("redis://127.0.0.1:{port}/")),
    )
    .await;
    unavailable("connect to a closed port", r);
    let (r, _) = bounded("connect", RedisStore::connect("not a url")).await;
    unavailable("connect to a bad URL", r);
}

async fn raw(server: &RedisServer) -> ConnectionManager {
    server.manager().await
}

#[tokio::test]
async fn damaged_data_is_corrupt_not_a_panic() {
    let server = RedisServer::start();
    let mut conn = raw(&server).await;
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(2_000_000_000);

    // A damaged epoch.
    let store = server.store().await;
    let p = store.prefix().to_owned();
    let u = UserId::new("u");
    conn.set::<_, _, ()>(format!("{{{p}u}}:epoch"), "twelve")
        .await
        .unwrap();
    corrupt("status", store.status(&u).await);
    corrupt("reset", store.reset(&u, now).await);

    // A damaged last step, sealed secret, offset and unknown field.
    let store = server.store().await;
    let p = store.prefix().to_owned();
    let id = enroll(&store, &u, 5).await;
    let auth = format!("{{{p}u}}:auth");
    conn.hset::<_, _, _, ()>(&auth, format!("last:{id}"), "12")
        .await
        .unwrap();
    // A failure charged first: the script that finds the damaged step
    // replies before its first write, so it must not clear the throttle.
    assert_eq!(
        store.begin_attempt(&u, now, &policy).await.unwrap(),
        Attempt::Allowed
    );
    corrupt("consume_step", store.consume_step(&u, &id, 6, 0).await);
    assert_eq!(
        store.throttle_state(&u).await.unwrap().attempts,
        1,
        "a corrupt consume_step must leave the throttle key"
    );
    conn.hset::<_, _, _, ()>(&auth, format!("last:{id}"), "00000000000000000005")
        .await
        .unwrap();
    assert_eq!(
        store.consume_step(&u, &id, 6, 0).await.unwrap(),
        ConsumeOutcome::Consumed
    );
    let throttle_key: bool = conn.exists(format!("{{{p}u}}:throttle")).await.unwrap();
    assert!(!throttle_key, "a consumed step deletes the throttle key");
    conn.hset::<_, _, _, ()>(&auth, format!("secret:{id}"), "short")
        .await
        .unwrap();
    corrupt("authenticators (secret)", store.authenticators(&u).await);
    let store = server.store().await;
    let p = store.prefix().to_owned();
    let id = enroll(&store, &u, 5).await;
    let auth = format!("{{{p}u}}:auth");
    conn.hset::<_, _, _, ()>(&auth, format!("offset:{id}"), "1.5")
        .await
        .unwrap();
    corrupt("authenticators (offset)", store.authenticators(&u).await);
    conn.hset::<_, _, _, ()>(&auth, format!("offset:{id}"), "0")
        .await
        .unwrap();
    conn.hset::<_, _, _, ()>(&auth, "colour:x", "blue")
        .await
        .unwrap();
    corrupt(
        "authenticators (unknown field)",
        store.authenticators(&u).await,
    );

    // A damaged throttle state changes nothing and says so.
    let store = server.store().await;
    let p = store.prefix().to_owned();
    let throttle = format!("{{{p}u}}:throttle");
    conn.hset::<_, _, _, ()>(&throttle, "until", "soon")
        .await
        .unwrap();
    corrupt(
        "begin_attempt (until)",
        store.begin_attempt(&u, now, &policy).await,
    );
    corrupt("throttle_state", store.throttle_state(&u).await);
    conn.hset_multiple::<_, _, _, ()>(
        &throttle,
        &[("until", "00000000000000000000"), ("attempts", "-1")],
    )
    .await
    .unwrap();
    corrupt(
        "begin_attempt (attempts)",
        store.begin_attempt(&u, now, &policy).await,
    );
    let attempts: String = conn.hget(&throttle, "attempts").await.unwrap();
    assert_eq!(attempts, "-1", "a refused script must not write");

    // Keys of the wrong type.
    let store = server.store().await;
    let p = store.prefix().to_owned();
    conn.set::<_, _, ()>(format!("{{{p}u}}:auth"), "x")
        .await
        .unwrap();
    conn.set::<_, _, ()>(format!("{{{p}u}}:pending"), "x")
        .await
        .unwrap();
    conn.set::<_, _, ()>(format!("{{{p}u}}:recovery"), "x")
        .await
        .unwrap();
    corrupt(
        "authenticators (wrong type)",
        store.authenticators(&u).await,
    );
    corrupt(
        "pending (wrong type)",
        store.pending(&u, &AuthenticatorId::new("abc")).await,
    );
    corrupt(
        "recovery_codes_left (wrong type)",
        store.recovery_codes_left(&u).await,
    );
    let hash = RecoveryCodes::generate(1).unwrap().hashes(&u)[0];
    corrupt(
        "consume_recovery_code (wrong type)",
        store.consume_recovery_code(&u, &hash).await,
    );
    corrupt(
        "consume_step (wrong type)",
        store.consume_step(&u, &id, 9, 0).await,
    );

    // A pending enrollment missing its secret, and one missing its name.
    let store = server.store().await;
    let p = store.prefix().to_owned();
    let pending_key = format!("{{{p}u}}:pending");
    let abc = AuthenticatorId::new("abc");
    conn.hset_multiple::<_, _, _, ()>(
        &pending_key,
        &[("name:abc", "x"), ("created:abc", "00000000000000001000")],
    )
    .await
    .unwrap();
    corrupt("pending (no secret)", store.pending(&u, &abc).await);
    corrupt(
        "activate_pending (no secret)",
        store.activate_pending(&u, &activation(&abc, 1)).await,
    );
    conn.hset::<_, _, _, ()>(&pending_key, "secret:def", "x")
        .await
        .unwrap();
    corrupt(
        "pending (no name)",
        store.pending(&u, &AuthenticatorId::new("def")).await,
    );
    // A damaged creation time: put_pending (which prunes by it) refuses
    // before writing anything.
    conn.hset::<_, _, _, ()>(&pending_key, "created:abc", "soon")
        .await
        .unwrap();
    let fresh = PendingEnrollment {
        id: AuthenticatorId::new("fff"),
        name: "phone".to_owned(),
        secret: Keyring::ephemeral()
            .unwrap()
            .seal(&u, &Secret::generate())
            .unwrap(),
        params: CodeParams::default(),
        created_at: UnixTime::from_secs(1_000),
        replaces: None,
    };
    corrupt(
        "put_pending (creation time)",
        store.put_pending(&u, fresh, ROOMY).await,
    );
    let fields: i64 = conn.hlen(&pending_key).await.unwrap();
    assert_eq!(fields, 3, "a refused put_pending must not write");
}

#[tokio::test]
async fn keys_share_the_user_hash_tag_and_only_the_throttle_expires() {
    let server = RedisServer::start();
    let mut conn = raw(&server).await;
    let store = server.store().await;
    let p = store.prefix().to_owned();
    let u = UserId::new("dave{weird}");
    enroll(&store, &u, 5).await;
    store
        .replace_recovery_codes(&u, RecoveryCodes::generate(2).unwrap().hashes(&u))
        .await
        .unwrap();
    // Another session's enrollment, still pending.
    let waiting = PendingEnrollment {
        id: AuthenticatorId::generate().unwrap(),
        name: "tablet".to_owned(),
        secret: Keyring::ephemeral()
            .unwrap()
            .seal(&u, &Secret::generate())
            .unwrap(),
        params: CodeParams::default(),
        created_at: UnixTime::from_secs(1_500),
        replaces: None,
    };
    store.put_pending(&u, waiting, ROOMY).await.unwrap();
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(2_000_000_000);
    // Three free attempts, then a 1 s lockout.
    for _ in 0..4 {
        assert_eq!(
            store.begin_attempt(&u, now, &policy).await.unwrap(),
            Attempt::Allowed
        );
    }

    let mut keys: Vec<String> = conn.keys(format!("{p}*")).await.unwrap();
    let mut tagged: Vec<String> = conn.keys(format!("{{{p}*")).await.unwrap();
    keys.append(&mut tagged);
    keys.sort();
    let tag = format!("{{{p}dave%7Bweird%7D}}");
    let want: Vec<String> = ["auth", "epoch", "pending", "recovery", "throttle"]
        .iter()
        .map(|s| format!("{tag}:{s}"))
        .collect();
    assert_eq!(keys, want);

    for k in ["auth", "epoch", "pending", "recovery"] {
        let ttl: i64 = conn.pttl(format!("{tag}:{k}")).await.unwrap();
        assert_eq!(ttl, -1, "{k} must not expire");
    }
    // The lockout (1 s) plus the retention for the default policy.
    let ttl: i64 = conn.pttl(format!("{tag}:throttle")).await.unwrap();
    let want = 1_000 + 10_677_000;
    assert!(
        (want - 5_000..=want).contains(&ttl),
        "throttle TTL {ttl} ms, want about {want}"
    );

    // A success clears it.
    store.clear_throttle(&u).await.unwrap();
    let exists: bool = conn.exists(format!("{tag}:throttle")).await.unwrap();
    assert!(!exists);

    // A reset leaves the epoch and the end of the sessions, neither expiring.
    store.reset(&u, now).await.unwrap();
    let mut keys: Vec<String> = conn.keys(format!("{{{p}*")).await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [format!("{tag}:epoch"), format!("{tag}:sessions_ended")]
    );
    let ttl: i64 = conn.pttl(format!("{tag}:sessions_ended")).await.unwrap();
    assert_eq!(ttl, -1, "the end of the sessions must not expire");
}

/// One server asked for a replica's acknowledgement it cannot give (it
/// has none): a consumed step is refused as unavailable, quickly (the
/// `WAIT` timeout), and stays consumed, so it is a replay next time; a
/// call that writes nothing needs no replica.
#[tokio::test]
async fn a_replica_ack_without_replicas_fails_closed() {
    use std::num::NonZeroU32;
    use tower_totp_redis::ReplicaAck;

    let server = RedisServer::start();
    let plain = server.store().await;
    assert_eq!(plain.replica_ack(), None, "off by default on one server");
    let user = UserId::new("alice");
    let id = enroll(&plain, &user, 10).await;
    let acked = plain
        .clone()
        .with_replica_ack(ReplicaAck::new(NonZeroU32::MIN, Duration::from_millis(50)));
    let (r, took) = bounded("consume", acked.consume_step(&user, &id, 11, 0)).await;
    unavailable("consume without a replica", r);
    assert!(took >= Duration::from_millis(50), "WAIT waited: {took:?}");
    assert!(
        took < RESPONSE_TIMEOUT,
        "bounded by the WAIT timeout: {took:?}"
    );
    assert_eq!(
        acked.consume_step(&user, &id, 11, 0).await.unwrap(),
        ConsumeOutcome::Replayed,
        "the step stays consumed: refused, never accepted twice"
    );
    // The plain store, without the acknowledgement, goes on as before.
    assert_eq!(
        plain.consume_step(&user, &id, 12, 0).await.unwrap(),
        ConsumeOutcome::Consumed
    );
}
