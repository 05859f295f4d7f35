//! The Redis store on a real Redis Cluster (six `redis-server` processes:
//! three masters, a replica each): the conformance suite, sessions, the
//! slot of every key, and failover. A step the store reports consumed has
//! reached a replica (`WAIT`), so the replica promoted after `kill -9` of
//! its master still refuses the code as a replay; without a replica's
//! acknowledgement the answer is 503 and the code is not accepted.

#![allow(clippy::unwrap_used)]

mod stack;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http::StatusCode;
use stack::Shared;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_totp::clock::UnixTime;
use tower_totp::code::{CodeParams, Secret};
use tower_totp::seal::Keyring;
use tower_totp::store::{
    Activated, Activation, AuthenticatorId, ConsumeOutcome, EnrollmentStore, PendingEnrollment,
    PendingLimits, PutPending, StepStore, StoreError, ThrottleStore,
};
use tower_totp::throttle::ThrottlePolicy;
use tower_totp::{TotpConfig, UserId};
use tower_totp_redis::{RedisStore, redis};
use tower_totp_testkit::app::{Client, Reply};
use tower_totp_testkit::server::redis::fresh_prefix;
use tower_totp_testkit::server::redis_cluster::RedisCluster;

/// One cluster for the conformance cases that run at the same time: a
/// case takes the running one or starts one, and the last case to finish
/// drops it (which kills its nodes). Statics are never dropped, so the
/// cluster is held only by the cases.
fn shared_cluster() -> Arc<RedisCluster> {
    static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
    let mut slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let c = Arc::new(RedisCluster::start());
    *slot = Arc::downgrade(&c);
    c
}

tower_totp::store_conformance_tests!(
    keep cluster = shared_cluster();
    make = cluster.store().await
);

/// No request waits longer than this, failover or not: each store call
/// is bounded by `CLUSTER_CALL_TIMEOUT` (2 s) and a request fails at the
/// first that fails.
const BOUND: Duration = Duration::from_secs(15);

fn client() -> Client {
    Client::new().bounded(BOUND)
}

/// A refusal's reason, or nothing for an answer that is no problem.
fn reason(r: &Reply) -> String {
    if r.content_type() == "application/problem+json" {
        r.problem_reason()
    } else {
        String::new()
    }
}

fn unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}

/// Enrol `user` directly through the store: one authenticator, its last
/// step `step`.
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
    let roomy = PendingLimits {
        expired_before: UnixTime::EPOCH,
        max: 1_000,
    };
    assert_eq!(
        store.put_pending(user, pending, roomy).await.unwrap(),
        PutPending::Stored
    );
    let activation = Activation {
        pending_id: id.clone(),
        step,
        offset: 0,
        now: UnixTime::from_secs(1_001),
        first_only: false,
        max_authenticators: 1_000,
        recovery: Vec::new(),
    };
    let outcome = store.activate_pending(user, &activation).await.unwrap();
    assert!(matches!(outcome, Activated::Done { .. }), "{outcome:?}");
    id
}

/// The `auth` key of `user` under `store`'s prefix (all the user's keys
/// share its slot).
fn auth_key(store: &RedisStore, user: &UserId) -> String {
    format!("{{{}{}}}:auth", store.prefix(), user.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_urls_is_a_cluster_and_acknowledged_by_default() {
    let cluster = shared_cluster();
    let store = RedisStore::connect_nodes(&cluster.urls()).await.unwrap();
    assert!(store.is_cluster());
    assert_eq!(
        store.replica_ack(),
        Some(tower_totp_redis::ReplicaAck::CLUSTER_DEFAULT)
    );
    assert!(store.connection().is_none());
    assert!(store.cluster_connection().is_some());
    // One URL: one server, no acknowledgement asked (the first node is a
    // cluster node, which serves its own slots as any server would).
    let single = RedisStore::connect_nodes(&[cluster.url(0)]).await.unwrap();
    assert!(!single.is_cluster());
    assert_eq!(single.replica_ack(), None);
    let none: &[&str] = &[];
    unavailable("no URL", RedisStore::connect_nodes(none).await.map(drop));
}

/// Every key a user's operations leave behind sits in one slot, on one
/// master: the scripts (which the cluster would refuse with `CROSSSLOT`
/// otherwise, as the conformance suite above shows) and `status`'s
/// `MULTI` touch one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_a_user_is_in_one_slot() {
    let cluster = shared_cluster();
    let store = cluster.store().await;
    let alice = UserId::new("alice");
    let id = enroll(&store, &alice, 10).await;
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(2_000);
    store
        .begin_verification(&alice, now, &policy, Some(6))
        .await
        .unwrap();
    store.record_miss(&alice, None).await.unwrap();
    store.reset(&alice, now).await.unwrap();
    let _ = id;

    let slot = cluster.slot_of(&auth_key(&store, &alice));
    let master = cluster.master_of_key(&auth_key(&store, &alice));
    let pattern = format!("{{{}alice}}*", store.prefix());
    let mut found = Vec::new();
    for i in 0..cluster.urls().len() {
        let client = redis::Client::open(cluster.url(i)).unwrap();
        let mut conn = client.get_connection().unwrap();
        let role: String = redis::cmd("ROLE")
            .query::<Vec<redis::Value>>(&mut conn)
            .map(|r| match &r[0] {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            })
            .unwrap();
        if role != "master" {
            continue;
        }
        let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
        if !keys.is_empty() {
            assert_eq!(i, master, "keys of alice on node {i}: {keys:?}");
        }
        found.extend(keys);
    }
    // epoch, sessions_ended and the throttle at least survive the reset.
    assert!(found.len() >= 3, "{found:?}");
    for k in &found {
        assert_eq!(cluster.slot_of(k), slot, "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_live_on_the_cluster() {
    let cluster = shared_cluster();
    let store = cluster.store().await;
    let sessions = store.session_store().with_prefix(fresh_prefix());
    let other = cluster
        .store()
        .await
        .session_store()
        .with_prefix(sessions.prefix().to_owned());
    // Sessions spread over the masters: enough of them to touch every one.
    let mut ids = Vec::new();
    for n in 0..16 {
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("n".to_owned(), serde_json::json!(n))]),
            expiry_date: tower_sessions::cookie::time::OffsetDateTime::now_utc()
                + tower_sessions::cookie::time::Duration::hours(1),
        };
        sessions.create(&mut record).await.unwrap();
        ids.push((record.id, n));
    }
    for (id, n) in &ids {
        // Another connection sees each session: they are shared.
        let loaded = other.load(id).await.unwrap().expect("the session");
        assert_eq!(loaded.data["n"], serde_json::json!(n));
    }
    let (gone, _) = ids[0];
    other.delete(&gone).await.unwrap();
    assert!(sessions.load(&gone).await.unwrap().is_none());
}

/// Accept a code over HTTP, `kill -9` the master of the user's slot at
/// once, and while its replica takes over keep sending codes from other
/// sessions: each answer is a login, a refusal or a 503, and no code is
/// accepted twice. Once the replica is promoted (and the killed node is
/// back as its replica), the first code is refused as a replay: the
/// consumed step survived the failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_after_accept_refuses_the_replay() {
    const USERS: usize = 3;
    const SESSIONS: usize = 2;
    // Submissions per session at most: each 503 takes up to the call
    // timeout, each refusal is quick.
    const TRIES: usize = 200;
    let mut cluster = RedisCluster::start();
    // Enough free attempts that the throttle stays out of the way.
    let policy =
        ThrottlePolicy::new(1000, Duration::from_secs(1), Duration::from_secs(900)).unwrap();
    let shared = Shared::new(TotpConfig::new("Acme").unwrap().with_throttle(policy));
    let a = shared.cluster_instance("A", &cluster).await;
    let b = shared.cluster_instance("B", &cluster).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;
    let key = shared.user_key(&alice);
    let master = cluster.master_of_key(&key);

    // Others waiting for their second step, logged in before the kill:
    // two on the master that dies, one elsewhere.
    let (mut on_master, mut elsewhere) = (Vec::new(), Vec::new());
    for n in 0.. {
        if on_master.len() >= USERS - 1 && !elsewhere.is_empty() {
            break;
        }
        let name = format!("user{n}");
        let there = cluster.master_of_key(&shared.user_key(&UserId::new(name.as_str()))) == master;
        match there {
            true if on_master.len() < USERS - 1 => on_master.push(name),
            false if elsewhere.is_empty() => elsewhere.push(name),
            _ => {}
        }
    }
    let mut users = Vec::new();
    for name in on_master.iter().chain(&elsewhere) {
        let user = shared.user(name);
        let phone = b.enroll(&user, &shared.clock).await;
        users.push((user, phone));
    }
    let mut waiting = Vec::new();
    for (u, (user, _)) in users.iter().enumerate() {
        for s in 0..SESSIONS {
            let mut c = client();
            let inst = if s % 2 == 0 { &a } else { &b };
            assert_eq!(c.on(inst).login(user).await, "totp");
            waiting.push((u, s, c));
        }
    }
    let mut later = client();
    assert_eq!(later.on(&b).login(&alice).await, "totp");
    let mut during = client();
    assert_eq!(during.on(&a).login(&alice).await, "totp");

    let mut first = client();
    assert_eq!(first.on(&a).login(&alice).await, "totp");
    let code = phone.code();
    let r = first.on(&a).submit(&code).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    cluster.kill(master);
    let killed = std::time::Instant::now();

    // Requests in flight during the failover.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (u, s, mut c) in waiting {
        let stop = Arc::clone(&stop);
        let inst = if s % 2 == 0 { a.clone() } else { b.clone() };
        let code = users[u].1.code();
        tasks.push(tokio::spawn(async move {
            // Until the code is answered other than 503: accepted, or
            // refused (a replay when the other session won).
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && seen.len() < TRIES {
                let r = c.on(&inst).submit(&code).await;
                seen.push((r.status(), reason(&r)));
                if r.status() != StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
            }
            (u, c, seen)
        }));
    }
    let replayer = {
        let stop = Arc::clone(&stop);
        let inst = b.clone();
        let code = code.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && seen.len() < TRIES {
                let r = during.on(&inst).submit(&code).await;
                seen.push((r.status(), reason(&r)));
            }
            seen
        })
    };

    let cluster = tokio::task::spawn_blocking(move || {
        let promoted = cluster.wait_promoted(&key, master);
        eprintln!(
            "failover: replica promoted {:?} after the kill",
            killed.elapsed()
        );
        cluster.restart(master);
        cluster.wait_replicated(promoted);
        cluster
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);

    let mut accepted = vec![0; USERS];
    let mut unavailable = 0;
    for t in tasks {
        let (u, mut c, seen) = t.await.unwrap();
        for (status, reason) in &seen {
            match *status {
                StatusCode::OK => accepted[u] += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(reason, "store_unavailable");
                    unavailable += 1;
                }
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("user{u}: answered {other} ({reason})"),
            }
        }
        // Verified exactly when one of its submissions was accepted.
        let verified = seen.iter().any(|(s, _)| *s == StatusCode::OK);
        // After the failover: served again. A 503 says nothing either way
        // (a loaded machine): ask again, a few times.
        let mut hello = c.on(&a).hello().await;
        for _ in 0..5 {
            if hello.status() != StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
            hello = c.on(&a).hello().await;
        }
        let is_verified = hello.status() == StatusCode::OK && hello.hello_factor() == "verified";
        assert_eq!(
            is_verified,
            verified,
            "user{u}: {seen:?}; hello: {} {}",
            hello.status(),
            hello.text()
        );
    }
    for (u, n) in accepted.iter().enumerate() {
        assert!(*n <= 1, "user{u}'s code accepted {n} times");
    }
    let seen = replayer.await.unwrap();
    assert!(!seen.is_empty());
    for (status, reason) in &seen {
        assert_ne!(*status, StatusCode::OK, "the used code accepted again");
        assert!(
            matches!(
                *status,
                StatusCode::UNAUTHORIZED
                    | StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{status} ({reason})"
        );
    }
    let replays_503 = seen
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    eprintln!(
        "failover: {unavailable} answers were 503, accepted per user {accepted:?}; \
         the used code: {} answers, {replays_503} of them 503",
        seen.len()
    );

    // After the failover: the same code, from a session that waited all
    // along, on either instance.
    for inst in [&a, &b] {
        // A 503 (a replica slow to acknowledge the charge) is refused too;
        // ask again for the answer that names the replay.
        let mut r = later.on(inst).submit(&code).await;
        for _ in 0..5 {
            if r.status() != StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
            r = later.on(inst).submit(&code).await;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
        assert_eq!(r.problem_reason(), "replayed", "on {}", inst.name);
    }
    shared.next_step();
    let r = later.on(&b).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    drop(cluster);
}

/// The replicas of the user's master frozen: the code is answered 503 and
/// not accepted; with the replicas back, a fresh code logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_step_is_503() {
    let mut cluster = RedisCluster::start();
    let shared = Shared::standard();
    let a = shared.cluster_instance("A", &cluster).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;
    let key = shared.user_key(&alice);
    let master = cluster.master_of_key(&key);
    let replicas = cluster.replicas_of(master);
    assert!(!replicas.is_empty());

    let mut browser = client();
    assert_eq!(browser.on(&a).login(&alice).await, "totp");
    for &r in &replicas {
        cluster.pause(r);
    }
    let r = browser.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.problem_reason(), "store_unavailable");
    assert!(
        r.took < Duration::from_secs(3),
        "WAIT is bounded: {:?}",
        r.took
    );
    for &r in &replicas {
        cluster.resume(r);
    }
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_replicated(master);
        cluster
    })
    .await
    .unwrap();
    // Not accepted: the session still waits for its second step.
    let r = browser.on(&a).hello().await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.problem_reason(), "second_step_required");
    shared.next_step();
    let r = browser.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(browser.on(&a).hello().await.hello_factor(), "verified");
    drop(cluster);
}

/// The step consumed while the replicas are frozen: `consume_step` fails
/// (unavailable) rather than report it consumed, and the write stays on
/// the master, so the same step is a replay afterwards, never accepted. A
/// store without the acknowledgement reports the same write consumed at
/// once, before any replica has it: what a failover right then would lose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_consume_fails_and_stays_consumed() {
    let mut cluster = RedisCluster::start();
    let acked = cluster.store().await;
    let bare = acked.clone().without_replica_ack();
    assert_eq!(bare.replica_ack(), None);
    let alice = UserId::new("alice");
    let id = enroll(&acked, &alice, 10).await;
    let master = cluster.master_of_key(&auth_key(&acked, &alice));
    let replicas = cluster.replicas_of(master);
    assert!(!replicas.is_empty());

    for &r in &replicas {
        cluster.pause(r);
    }
    unavailable(
        "consume, replicas frozen",
        acked.consume_step(&alice, &id, 11, 0).await,
    );
    assert_eq!(
        acked.consume_step(&alice, &id, 11, 0).await.unwrap(),
        ConsumeOutcome::Replayed,
        "the unacknowledged step stays consumed on the master: refused, never accepted"
    );
    assert_eq!(
        bare.consume_step(&alice, &id, 12, 0).await.unwrap(),
        ConsumeOutcome::Consumed,
        "without the acknowledgement nothing waits for the replicas"
    );
    for &r in &replicas {
        cluster.resume(r);
    }
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_replicated(master);
        cluster
    })
    .await
    .unwrap();
    // Replicas back: acknowledged again.
    assert_eq!(
        acked.consume_step(&alice, &id, 13, 0).await.unwrap(),
        ConsumeOutcome::Consumed
    );
    drop(cluster);
}

/// A store that sent nothing to a user's slot during a failover: its
/// slot map still names the old master's address, where the killed node
/// is back as a replica. Its very first calls after the failover follow
/// the `MOVED` replies and succeed, reads and writes alike (a `MULTI`
/// transaction would see only `EXECABORT` and fail until something else
/// refreshed the map, which is why `status` is a script on a cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_serves_again_after_a_failover() {
    let mut cluster = RedisCluster::start();
    let store = cluster.store().await;
    let alice = UserId::new("alice");
    let id = enroll(&store, &alice, 10).await;
    assert!(store.status(&alice).await.unwrap().enrolled);
    let key = auth_key(&store, &alice);
    let master = cluster.master_of_key(&key);
    cluster.kill(master);
    let cluster = tokio::task::spawn_blocking(move || {
        let promoted = cluster.wait_promoted(&key, master);
        cluster.restart(master);
        cluster.wait_replicated(promoted);
        cluster
    })
    .await
    .unwrap();

    let status = store.status(&alice).await.unwrap();
    assert!(status.enrolled, "the activation survived the failover");
    assert_eq!(store.authenticators(&alice).await.unwrap().len(), 1);
    assert_eq!(store.throttle_state(&alice).await.unwrap().attempts, 0);
    assert_eq!(
        store.consume_step(&alice, &id, 10, 0).await.unwrap(),
        ConsumeOutcome::Replayed,
        "the step of the activation survived the failover"
    );
    // A fresh step: consumed, or (a replica slow to answer on a loaded
    // machine) refused as unacknowledged and then a replay. Never
    // consumed twice.
    match store.consume_step(&alice, &id, 11, 0).await {
        Ok(ConsumeOutcome::Consumed) => {}
        Err(StoreError::Unavailable(_)) => assert_eq!(
            store.consume_step(&alice, &id, 11, 0).await.unwrap(),
            ConsumeOutcome::Replayed
        ),
        other => panic!("step 11: {other:?}"),
    }
    drop(cluster);
}
