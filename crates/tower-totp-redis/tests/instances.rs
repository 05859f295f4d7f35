//! Two instances of one service sharing one Redis: each a complete
//! in-process stack (tower-sessions over `RedisSessionStore`, login, the
//! `/2fa` endpoints, a hello route behind `TotpLayer`) with its own engine
//! and its own connection, as two processes behind a load balancer would
//! be. A client's session cookie goes to whichever instance the test
//! names. Time is a shared manual clock; Redis is a real `redis-server`.

#![allow(clippy::unwrap_used)]

mod stack;

use std::sync::Arc;
use std::time::Duration;

use http::{StatusCode, header};
use stack::{Instance, Shared};
use tokio::sync::Barrier;
use tower_totp::TotpConfig;
use tower_totp::store::{EnrollmentStore, ThrottleStore};
use tower_totp::throttle::ThrottlePolicy;
use tower_totp_redis::redis;
use tower_totp_testkit::server::redis::RedisServer;

/// How long a stopped Redis may hold up one request: one refused
/// connection and one retry, at most half a second apart.
const QUICK_FAILURE: Duration = Duration::from_secs(3);

fn assert_refused(what: &str, r: &stack::Reply, status: StatusCode, reason: &str) {
    assert_eq!(r.status(), status, "{what}: {}", r.text());
    assert_eq!(r.problem_reason(), reason, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_on_one_instance_and_finish_on_the_other() {
    let server = RedisServer::start();
    let shared = Shared::standard();
    let a = shared.instance("A", &server).await;
    let b = shared.instance("B", &server).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;

    let mut browser = stack::client();
    assert_eq!(browser.on(&a).login(&alice).await, "totp");
    let before = browser.session.clone();
    assert!(before.is_some(), "login sets a session cookie");
    // B knows the session A made: the second step is asked for on both.
    for inst in [&a, &b] {
        let r = browser.on(inst).hello().await;
        assert_refused(
            inst.name,
            &r,
            StatusCode::UNAUTHORIZED,
            "second_step_required",
        );
    }

    let r = browser.on(&b).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.next(), "done");
    assert_ne!(browser.session, before, "the session id cycles on B");

    for inst in [&a, &b] {
        assert_eq!(
            browser.on(inst).hello().await.hello_factor(),
            "verified",
            "{}",
            inst.name
        );
    }
    assert_eq!((a.hits(), b.hits()), (1, 1));

    // The id from before the second step is gone on both instances: whoever
    // holds it is not logged in at all (the layer lets the application's
    // own auth decide, so hello answers, but with no second factor).
    let mut stale = stack::client();
    stale.session.clone_from(&before);
    for inst in [&a, &b] {
        assert_eq!(
            stale.on(inst).hello().await.hello_factor(),
            "none",
            "{}",
            inst.name
        );
    }
}

/// 32 sessions of one user, half on A and half on B, send the same valid
/// code at once: exactly one is accepted, whichever instance it reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_code_is_accepted_once_across_instances() {
    const REQUESTS: usize = 32;
    let server = RedisServer::start();
    // Enough free attempts that the throttle stays out of the race (each
    // submission is charged before the code is checked).
    let policy = ThrottlePolicy::new(64, Duration::from_secs(1), Duration::from_secs(900)).unwrap();
    let shared = Shared::new(TotpConfig::new("Acme").unwrap().with_throttle(policy));
    let a = shared.instance("A", &server).await;
    let b = shared.instance("B", &server).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;

    let instance = |i: usize| {
        if i.is_multiple_of(2) {
            a.clone()
        } else {
            b.clone()
        }
    };
    let mut clients = Vec::new();
    for i in 0..REQUESTS {
        let mut c = stack::client();
        assert_eq!(c.on(&instance(i)).login(&alice).await, "totp");
        clients.push(c);
    }

    let code = phone.code();
    let start = Arc::new(Barrier::new(REQUESTS));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let to: Instance = instance(i);
            let code = code.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let reply = client.on(&to).submit(&code).await;
                (to.name, reply, client)
            })
        })
        .collect();

    let mut accepted = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        let (name, reply, client) = task.await.unwrap();
        if reply.status() == StatusCode::OK {
            assert_eq!(reply.next(), "done", "{}", reply.text());
            accepted.push((name, client));
        } else {
            assert_refused(name, &reply, StatusCode::UNAUTHORIZED, "replayed");
            replayed.push(client);
        }
    }
    assert_eq!(
        accepted.len(),
        1,
        "accepted on {:?}",
        accepted.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert_eq!(replayed.len(), REQUESTS - 1);

    // The winner is verified on both instances; the others are still asked
    // for a code, and never reached hello.
    let (_, mut winner) = accepted.pop().unwrap();
    for inst in [&a, &b] {
        assert_eq!(winner.on(inst).hello().await.hello_factor(), "verified");
    }
    let mut loser = replayed.pop().unwrap();
    for inst in [&a, &b] {
        let r = loser.on(inst).hello().await;
        assert_refused(
            inst.name,
            &r,
            StatusCode::UNAUTHORIZED,
            "second_step_required",
        );
    }
    assert_eq!((a.hits(), b.hits()), (1, 1));
}

/// The default policy: 3 free attempts, then 1 s doubling. Two wrong codes
/// on A and two on B are four attempts against one counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_both_instances_count_toward_one_throttle() {
    let server = RedisServer::start();
    let shared = Shared::standard();
    let a = shared.instance("A", &server).await;
    let b = shared.instance("B", &server).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;

    let mut browser = stack::client();
    assert_eq!(browser.on(&a).login(&alice).await, "totp");
    for inst in [&a, &a, &b, &b] {
        let r = browser.on(inst).submit(&phone.wrong_code()).await;
        assert_refused(inst.name, &r, StatusCode::UNAUTHORIZED, "invalid");
    }
    // The fourth attempt locked the user for 1 s, on both instances: even
    // the right code waits.
    for inst in [&a, &b] {
        let r = browser.on(inst).submit(&phone.code()).await;
        assert_refused(inst.name, &r, StatusCode::TOO_MANY_REQUESTS, "throttled");
        assert_eq!(r.header(header::RETRY_AFTER), Some("1"), "{}", inst.name);
    }
    let state = b.store.throttle_state(&alice).await.unwrap();
    assert_eq!(state.attempts, 4, "locked attempts are not charged");

    // After the lockout, a fifth failure on B locks for 2 s, seen on A.
    shared.clock.advance(Duration::from_secs(1));
    let r = browser.on(&b).submit(&phone.wrong_code()).await;
    assert_refused("B", &r, StatusCode::UNAUTHORIZED, "invalid");
    let r = browser.on(&a).submit(&phone.code()).await;
    assert_refused("A", &r, StatusCode::TOO_MANY_REQUESTS, "throttled");
    assert_eq!(r.header(header::RETRY_AFTER), Some("2"));

    // Once it ends, the right code works and clears the counter for both.
    shared.clock.advance(Duration::from_secs(2));
    let r = browser.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(b.store.throttle_state(&alice).await.unwrap().attempts, 0);
    assert_eq!(browser.on(&b).hello().await.hello_factor(), "verified");
}

/// The user's phone runs 5 steps ahead: outside the window (one step either
/// side) but within the maximum drift (10). Two consecutive codes on A
/// resynchronise it; B then accepts the next code at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_learned_on_one_instance_is_used_by_the_other() {
    let server = RedisServer::start();
    let shared = Shared::standard();
    let a = shared.instance("A", &server).await;
    let b = shared.instance("B", &server).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await.drifted(5);
    // A phone that drifted 5 steps did so over time: a day after its
    // first code, the 4-step change past the window is plausible (the
    // window's drift-rate rule, `docs/verification.md`).
    shared.clock.advance(std::time::Duration::from_secs(86_400));

    let mut first = stack::client();
    assert_eq!(first.on(&a).login(&alice).await, "totp");
    let r = first.on(&a).submit(&phone.code()).await;
    assert_refused("A, first code", &r, StatusCode::UNAUTHORIZED, "invalid");
    shared.next_step();
    let r = first.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "A, second code: {}", r.text());

    // B's own connection reads the offset A learned.
    let learned = b.store.authenticators(&alice).await.unwrap();
    assert_eq!(learned[0].sync.offset, 5);

    shared.next_step();
    let mut second = stack::client();
    assert_eq!(second.on(&b).login(&alice).await, "totp");
    let r = second.on(&b).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "B, first try: {}", r.text());
    assert_eq!(r.next(), "done");
    assert_eq!(second.on(&b).hello().await.hello_factor(), "verified");
}

/// Redis stops mid-test (killed, as in a crash) and comes back on the same
/// port. It runs with an append-only file fsynced before every reply
/// (`appendonly yes`, `appendfsync always`): everything it acknowledged,
/// enrollments, used steps and sessions, is there after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_every_guarded_request_fails_closed_and_service_resumes() {
    let mut server = RedisServer::start_persistent();
    let shared = Shared::standard();
    let a = shared.instance("A", &server).await;
    let b = shared.instance("B", &server).await;
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;

    let mut verified = stack::client();
    assert_eq!(verified.on(&a).login(&alice).await, "totp");
    let used = phone.code();
    let r = verified.on(&b).submit(&used).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    for inst in [&a, &b] {
        assert_eq!(verified.on(inst).hello().await.hello_factor(), "verified");
    }
    let mut pending = stack::client();
    assert_eq!(pending.on(&b).login(&alice).await, "totp");
    let cookies = (verified.session.clone(), pending.session.clone());
    assert_eq!((a.hits(), b.hits()), (1, 1));

    server.stop();
    for inst in [&a, &b] {
        let replies = [
            ("hello, verified", verified.on(inst).hello().await),
            ("hello, pending", pending.on(inst).hello().await),
            ("GET /2fa", pending.on(inst).get("/2fa").await),
            ("POST /2fa", pending.on(inst).submit(&phone.code()).await),
            (
                "POST /2fa, used code",
                verified.on(inst).submit(&used).await,
            ),
        ];
        for (what, r) in &replies {
            let what = format!("{what} on {}", inst.name);
            assert_refused(
                &what,
                r,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
            );
            assert!(!r.sets_session_cookie(), "{what} touched the cookie");
            assert!(r.took < QUICK_FAILURE, "{what} took {:?}", r.took);
        }
        // The login handler gets the store error from password_verified.
        let r = stack::client().on(inst).try_login(&alice).await;
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "login on {}",
            inst.name
        );
    }
    assert_eq!(
        (a.hits(), b.hits()),
        (1, 1),
        "hello reached with Redis down"
    );
    assert_eq!((verified.session.clone(), pending.session.clone()), cookies);

    server.restart();
    // Same stacks, same connections: the managers reconnect by themselves.
    for inst in [&a, &b] {
        let r = verified.on(inst).hello().await;
        assert_eq!(
            r.hello_factor(),
            "verified",
            "{} after the restart",
            inst.name
        );
    }
    assert_eq!((a.hits(), b.hits()), (2, 2));
    // The used step survived: still a replay. The pending session survived:
    // the next code finishes it.
    let r = pending.on(&a).submit(&used).await;
    assert_refused(
        "used code after the restart",
        &r,
        StatusCode::UNAUTHORIZED,
        "replayed",
    );
    shared.next_step();
    let r = pending.on(&b).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    // The enrollment survived: a new login asks for a code, not enrollment.
    shared.next_step();
    let mut again = stack::client();
    assert_eq!(again.on(&b).login(&alice).await, "totp");
    let r = again.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(again.on(&b).hello().await.hello_factor(), "verified");
}

/// When the session store fails to save. Loading happens inside our layer
/// and endpoints (a 503 of ours, before the inner service); tower-sessions
/// only talks to the store on its own to *save* a changed session after the
/// inner service answered, and answers a failed save with a bare 500 and no
/// cookie, which `TotpAuth::session_guard` (outside the sessions) turns
/// into a 503 problem. Here the sessions' Redis user loses the right to
/// `SET` (as a separate session Redis that is out of memory would refuse
/// writes) while reads, deletes and the TOTP store keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_save_is_a_503_and_grants_nothing() {
    let server = RedisServer::start();
    let mut admin = server.manager().await;
    let acl = |rules: &[&str]| {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg("web");
        for r in rules {
            cmd.arg(*r);
        }
        cmd
    };
    acl(&["on", ">secret", "~*", "+@all"])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let shared = Shared::standard();
    let a = shared.instance_on(
        "A",
        server.manager().await,
        server.manager_as("web", "secret").await,
    );
    let alice = shared.user("alice");
    let phone = a.enroll(&alice, &shared.clock).await;
    let mut verified = stack::client();
    assert_eq!(verified.on(&a).login(&alice).await, "totp");
    let r = verified.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    shared.next_step();
    let mut browser = stack::client();
    assert_eq!(browser.on(&a).login(&alice).await, "totp");
    let before = browser.session.clone();

    acl(&["-set"]).query_async::<()>(&mut admin).await.unwrap();

    // A verified session needs no write: hello works.
    assert_eq!(verified.on(&a).hello().await.hello_factor(), "verified");
    assert_eq!(a.hits(), 1);

    // The code is right and spent; the endpoint marks the session verified
    // under a new id (deleting the old one) and answers 200; then
    // tower-sessions fails to store the new session and answers a bare 500
    // instead, which the session guard turns into a 503 problem.
    let r = browser.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("store_unavailable"), "{}", r.text());
    assert!(!r.sets_session_cookie());
    assert_eq!(browser.session, before);
    // Nothing was granted: the old session is gone, so this browser is not
    // logged in at all, and the code cannot be used again.
    assert_eq!(browser.on(&a).hello().await.hello_factor(), "none");
    acl(&["+set"]).query_async::<()>(&mut admin).await.unwrap();
    let mut retry = stack::client();
    assert_eq!(retry.on(&a).login(&alice).await, "totp");
    let r = retry.on(&a).submit(&phone.code()).await;
    assert_refused("the spent code", &r, StatusCode::UNAUTHORIZED, "replayed");
}
