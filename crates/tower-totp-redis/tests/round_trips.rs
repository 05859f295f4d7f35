//! Store operations per code on Redis, counted by the test kit's wrapper:
//! a correct code 2, a wrong one 2, a malformed one 1 and no charge, a
//! locked-out one 1, a confirmed enrollment 2; over HTTP, the whole
//! `POST /2fa` of a correct code 2. And the server's own count: each of
//! those operations is one `EVALSHA`, and nothing else is sent.

#![allow(clippy::unwrap_used)]

use http::StatusCode;
use tower_totp::UserKind;
use tower_totp_redis::redis;
use tower_totp_redis::redis::aio::ConnectionManager;
use tower_totp_testkit::app::App;
use tower_totp_testkit::round_trips;
use tower_totp_testkit::server::redis::RedisServer;
use tower_totp_testkit::store::TestStore;

#[tokio::test]
async fn through_the_engine() {
    let server = RedisServer::start();
    round_trips::through_the_engine(TestStore::new(server.store().await)).await;
}

#[tokio::test]
async fn over_http() {
    let server = RedisServer::start();
    round_trips::over_http(TestStore::new(server.store().await)).await;
}

/// The server's command counts (`INFO commandstats`) that a store call
/// from outside a script shows up in: `EVALSHA` (one per script run; the
/// commands a script runs are counted under their own names, so they are
/// not compared), `EVAL` and `SCRIPT` (a script loaded again), `MULTI`
/// (the pipelined `status`).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Sent {
    evalsha: u64,
    eval: u64,
    script: u64,
    multi: u64,
}

async fn sent(admin: &mut ConnectionManager) -> Sent {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(admin)
        .await
        .unwrap();
    let calls = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    Sent {
        evalsha: calls("evalsha"),
        eval: calls("eval"),
        script: calls("script"),
        multi: calls("multi"),
    }
}

/// The round trips a `POST /2fa` makes, as Redis counted them: a correct
/// code 2 `EVALSHA`, a wrong one 2, as many as the wrapper counted
/// operations, and no other command a store sends outside a script.
#[tokio::test]
async fn a_code_is_two_scripts_on_the_server() {
    let server = RedisServer::start();
    let mut admin = server.manager().await;
    let store = TestStore::new(server.store().await);
    let app = App::setup().store(store.clone()).build();
    let alice = app.user("alice", UserKind::Internal, true);
    let phone = app.enroll_directly(&alice).await;
    // Every script this test runs is loaded once before it counts.
    app.next_step();
    let mut warm = app.client();
    assert_eq!(warm.login(&alice).await, "totp");
    warm.submit(&phone.wrong_code()).await;
    app.advance(std::time::Duration::from_secs(1));
    warm.login_verified(&alice, &phone).await;
    app.next_step();

    let mut browser = app.client();
    assert_eq!(browser.login(&alice).await, "totp");
    for (what, code, status) in [
        ("wrong", phone.wrong_code(), StatusCode::UNAUTHORIZED),
        ("correct", phone.code(), StatusCode::OK),
    ] {
        if what == "correct" {
            app.advance(std::time::Duration::from_secs(1));
        }
        let ops = store.calls();
        let before = sent(&mut admin).await;
        let r = browser.submit(&code).await;
        let after = sent(&mut admin).await;
        assert_eq!(r.status(), status, "{what}: {}", r.text());
        let ops = store.calls() - ops;
        assert_eq!(ops, 2, "{what}: store operations");
        assert_eq!(
            Sent {
                evalsha: after.evalsha - before.evalsha,
                eval: after.eval - before.eval,
                script: after.script - before.script,
                multi: after.multi - before.multi,
            },
            Sent {
                evalsha: 2,
                eval: 0,
                script: 0,
                multi: 0,
            },
            "{what}: commands the server received"
        );
    }
}
