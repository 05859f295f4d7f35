//! `GET /health` reads the stores, bounded by the store timeout: 200 while
//! they answer, 503 `store_unavailable` while they do not (Redis frozen
//! with SIGSTOP: connections open, nothing answers), and 200 again once
//! they answer, without a restart. The guarded routes fail closed within
//! the same bound.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Client, START, TestDemo, config};
use http::StatusCode;
use serde_json::json;
use totp_demo::{STORE_TIMEOUT, app, connect_redis};
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::seal::SealingKey;
use tower_totp_testkit::server::redis::RedisServer;

/// Short, so the test is quick; far below the Redis store's own one-second
/// response timeout, so a 503 in time shows the demo's bound at work.
const TIMEOUT: Duration = Duration::from_millis(300);

/// What a request may take beyond the timeout (scheduling on a busy
/// machine).
const MARGIN: Duration = Duration::from_millis(400);

/// `path` on `c`, and how long it took.
async fn timed_get(c: &mut Client, path: &str) -> (Answer, Duration) {
    let started = Instant::now();
    let answer = c.get(path).await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn health_is_ok_when_the_database_answers() {
    let demo = TestDemo::start();
    let ok = demo.client().get("/health").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.json(), json!({ "status": "ok" }));
    assert_eq!(
        STORE_TIMEOUT,
        Duration::from_secs(1),
        "the documented default"
    );
}

#[tokio::test]
async fn paused_redis_is_503_within_the_store_timeout_and_recovers() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let store = connect_redis(&redis.url()).await.unwrap();
    let demo = app(config(&dir.path().join("demo.sqlite3"), &key, &clock)
        .redis(store)
        .store_timeout(TIMEOUT))
    .unwrap();
    let mut admin = Client::new(&demo);
    admin.login_and_sync("admin", &clock).await;
    assert_eq!(admin.get("/api/me").await.status, StatusCode::OK);
    let mut probe = Client::new(&demo);
    assert_eq!(probe.get("/health").await.status, StatusCode::OK);

    redis.pause();
    for path in ["/health", "/api/me", "/admin/settings", "/health"] {
        let client = if path == "/health" {
            &mut probe
        } else {
            &mut admin
        };
        let (answer, took) = timed_get(client, path).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            answer.text()
        );
        assert_eq!(answer.problem().0, "store_unavailable", "{path}");
        assert!(
            took < TIMEOUT + MARGIN,
            "{path} took {took:?}, the store timeout is {TIMEOUT:?}"
        );
    }
    // The liveness probe reads no store: the process is alive, and a
    // restart would not bring Redis back.
    let live = probe.get("/health/live").await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text());
    assert_eq!(live.json(), json!({ "status": "ok" }));
    // A password login reads the password throttle in the same store.
    let mut jsmith = Client::new(&demo);
    let started = Instant::now();
    let login = jsmith.try_login("jsmith", "demo").await;
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        login.text()
    );
    assert!(
        started.elapsed() < TIMEOUT + MARGIN,
        "{:?}",
        started.elapsed()
    );

    redis.resume();
    // The replies to the calls given up on arrive now; the next calls are
    // answered on the same connection. Bounded: a few tries.
    let mut healthy = false;
    for _ in 0..20 {
        if probe.get("/health").await.status == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "GET /health stays 503 after Redis is back");
    let me = admin.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "admin");
}
