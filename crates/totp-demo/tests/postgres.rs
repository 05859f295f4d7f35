//! The demo on PostgreSQL (a real server on a free port, from the testkit):
//! two instances built by `app_async` on one database and one sealing key,
//! each with its own pool as two processes would have, driven in process
//! with a shared manual clock; one instance whose server is stopped under
//! it and started again; and one whose server goes silent (a relay holds
//! the bytes, as a cut network would) and comes back.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Answer, Client, START};
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use totp_demo::{
    Database, Demo, DemoConfig, DemoError, PasswordCost, app_async, connect_postgres,
    open_or_create_key_for_postgres,
};
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::seal::{Keyring, SealingKey};
use tower_totp_testkit::server::postgres::PostgresServer;

/// An instance on its own pool to the database at `url`.
async fn instance(url: &str, key: &SealingKey, clock: &ManualClock) -> Demo {
    let pool = connect_postgres(url).await.unwrap();
    let config = DemoConfig::new(Database::Postgres(pool), Keyring::new(1, key.clone()))
        .password_cost(PasswordCost::Minimal)
        .clock(clock.clone());
    app_async(config).await.unwrap()
}

/// A 503 `store_unavailable`, as a problem for scripts.
fn assert_unavailable(a: &Answer, what: &str) {
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        a.text()
    );
    assert_eq!(a.problem().0, "store_unavailable", "{what}");
}

#[tokio::test]
async fn two_instances_on_one_postgres_act_as_one() {
    let server = PostgresServer::start();
    let url = server.create_database("demo");
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let a = instance(&url, &key, &clock).await;
    let b = instance(&url, &key, &clock).await;
    assert!(a.seeded(), "A creates the demo users");
    assert!(!b.seeded(), "B finds them in the shared database");
    assert_eq!(b.users().list().len(), 3);

    // A session made on A is valid on B; the password hashes A wrote are
    // checked on B.
    let mut admin = Client::new(&a);
    let secret = admin.login_and_sync("admin", &clock).await;
    let me = admin.on(&b).get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "admin");
    // The security activity A kept (`totp_demo.security_events`) is read on B.
    let activity = admin.get("/api/me/activity").await;
    assert_eq!(activity.status, StatusCode::OK, "{}", activity.text());
    assert_eq!(
        activity.json()[0]["kind"],
        "enrollment_completed",
        "{}",
        activity.text()
    );
    assert_eq!(
        Client::new(&b).try_login("admin", "wrong").await.status,
        StatusCode::UNAUTHORIZED
    );

    // An admin switch flipped on A (B's copies are warm) is seen on B at
    // its next request, and a user's flag too.
    let mut jsmith = Client::new(&b);
    assert_eq!(jsmith.login("jsmith", "demo").await, "enroll");
    let off = admin
        .on(&a)
        .put_json("/admin/settings", json!({ "internal_users": false }))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert_eq!(
        admin.on(&b).get("/admin/settings").await.json(),
        json!({ "enabled": true, "internal_users": false, "external_users": false, "grace_days": 0 })
    );
    assert_eq!(jsmith.login("jsmith", "demo").await, "done");
    let on = admin
        .on(&b)
        .put_json("/admin/settings", json!({ "internal_users": true }))
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text());
    let stopped = jsmith.on(&a).get("/api/me").await;
    assert_eq!(
        stopped.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        stopped.text()
    );
    let mut portal = Client::new(&b);
    admin
        .on(&a)
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    assert_eq!(portal.login("portal", "demo").await, "enroll");
    let cleared = admin
        .put_json("/admin/users/portal", json!({ "require_2fa": false }))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text());
    assert_eq!(portal.login("portal", "demo").await, "done");

    // A code accepted on A is a replay on B: the admin at the second
    // screen on both, the same code to each.
    clock.advance(Duration::from_secs(30));
    let mut on_a = Client::new(&a);
    let mut on_b = Client::new(&b);
    assert_eq!(on_a.login("admin", "demo").await, "totp");
    assert_eq!(on_b.login("admin", "demo").await, "totp");
    let accepted = on_a.send_code(&secret, &clock).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let replay = on_b.send_code(&secret, &clock).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
    assert_eq!(on_b.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(on_a.on(&b).get("/api/me").await.status, StatusCode::OK);

    // A logout on B is a logout on A.
    let cookie = on_a.cookie.clone();
    on_a.post_json("/logout", json!({})).await;
    on_a.cookie = cookie;
    let out = on_a.on(&a).get("/api/me").await;
    assert_eq!(out.problem().0, "not_logged_in");
}

#[tokio::test]
async fn postgres_stopped_answers_503_and_recovers() {
    let mut server = PostgresServer::start();
    let url = server.create_database("demo");
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let demo = instance(&url, &key, &clock).await;
    let mut admin = Client::new(&demo);
    let secret = admin.login_and_sync("admin", &clock).await;
    // A second session at the second screen, with the next code ready.
    clock.advance(Duration::from_secs(30));
    let mut waiting = Client::new(&demo);
    assert_eq!(waiting.login("admin", "demo").await, "totp");

    server.stop();
    // Guarded routes, the second step (a right code), the login and the
    // admin changes: 503 for all, nothing let through; each within the
    // pool's bounded wait for a connection (one second), not hanging.
    let asked = Instant::now();
    assert_unavailable(&admin.get("/api/me").await, "a verified session");
    let waited = asked.elapsed();
    assert!(waited < Duration::from_secs(3), "the 503 took {waited:?}");
    assert_unavailable(&admin.get("/admin/settings").await, "the admin page");
    assert_unavailable(
        &admin
            .put_json("/admin/settings", json!({ "enabled": false }))
            .await,
        "a switch",
    );
    assert_unavailable(&waiting.send_code(&secret, &clock).await, "a right code");
    assert_unavailable(
        &Client::new(&demo).try_login("jsmith", "demo").await,
        "a login",
    );
    let page = admin.browse("/").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.content_type().starts_with("text/html"),
        "{}",
        page.content_type()
    );
    // A load balancer asking `/health` hears it too.
    assert_unavailable(&Client::new(&demo).get("/health").await, "/health");

    server.start_again();
    // The pool replaces its broken connections by itself: the same
    // instance serves again, with the sessions and switches as they were.
    let mut back = None;
    for _ in 0..50 {
        let me = admin.get("/api/me").await;
        if me.status != StatusCode::SERVICE_UNAVAILABLE {
            back = Some(me);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let me = back.expect("the demo serves again after PostgreSQL is back");
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(admin.get("/health").await.status, StatusCode::OK);
    assert_eq!(
        admin.get("/admin/settings").await.json(),
        json!({ "enabled": true, "internal_users": true, "external_users": false, "grace_days": 0 })
    );
    // The code sent during the outage was not taken: the waiting session
    // is still at the second screen and the same code passes now.
    assert_eq!(
        waiting.get("/api/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let verified = waiting.send_code(&secret, &clock).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
    assert_eq!(Client::new(&demo).login("jsmith", "demo").await, "enroll");
}

/// A TCP relay to PostgreSQL on loopback that can hold every byte in both
/// directions (a network gone silent: no reset, no refusal, just nothing)
/// and let them go again. Stops with the test's runtime.
struct Relay {
    addr: SocketAddr,
    held: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (held, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = server.into_split();
                tokio::spawn(pump(client_in, server_out, watching.clone()));
                tokio::spawn(pump(server_in, client_out, watching.clone()));
            }
        });
        Self { addr, held }
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@{}/{database}", self.addr)
    }

    fn hold(&self, on: bool) {
        self.held.send_replace(on);
    }
}

/// Copy `from` to `to`, each chunk waiting while the relay holds.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if held.wait_for(|held| !*held).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::test]
async fn postgres_gone_silent_answers_503_in_bounded_time_and_recovers() {
    let server = PostgresServer::start();
    server.create_database("demo");
    let relay = Relay::start(server.port()).await;
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let demo = instance(&relay.url("demo"), &key, &clock).await;
    let mut admin = Client::new(&demo);
    admin.login_and_sync("admin", &clock).await;

    relay.hold(true);
    for (what, path) in [
        ("a verified session", "/api/me"),
        ("the admin page", "/admin/settings"),
    ] {
        let asked = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(10), admin.get(path))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"));
        assert_unavailable(&answer, what);
        let waited = asked.elapsed();
        // The store timeout (1 s by default), with room for a slow machine.
        assert!(
            waited < Duration::from_secs(4),
            "{what}: the 503 took {waited:?}"
        );
    }
    let asked = Instant::now();
    assert_unavailable(
        &Client::new(&demo).try_login("jsmith", "demo").await,
        "a login",
    );
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );

    relay.hold(false);
    let mut back = None;
    for _ in 0..50 {
        let me = admin.get("/api/me").await;
        if me.status != StatusCode::SERVICE_UNAVAILABLE {
            back = Some(me);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let me = back.expect("the demo serves again once PostgreSQL answers");
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(Client::new(&demo).login("jsmith", "demo").await, "enroll");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_started_together_on_a_new_postgres_create_the_users_once() {
    let server = PostgresServer::start();
    let url = server.create_database("demo");
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    // Each on its own pool, released at once on a runtime with several
    // threads (`tokio::spawn`: `app_async`'s future is `Send`): the
    // tables, the TOTP store's migrations, the demo users and the switches
    // are set up once.
    let pools = futures_util::future::join_all((0..4).map(|_| connect_postgres(&url))).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(pools.len()));
    let starting: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            let config = DemoConfig::new(
                Database::Postgres(pool.unwrap()),
                Keyring::new(1, key.clone()),
            )
            .password_cost(PasswordCost::Minimal)
            .clock(clock.clone());
            let start = std::sync::Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                app_async(config).await.unwrap()
            })
        })
        .collect();
    let mut demos = Vec::new();
    for s in starting {
        demos.push(s.await.unwrap());
    }
    assert_eq!(demos.iter().filter(|d| d.seeded()).count(), 1);
    for demo in &demos {
        assert_eq!(demo.users().list().len(), 3);
        assert_eq!(Client::new(demo).login("admin", "demo").await, "enroll");
    }
}

#[tokio::test]
async fn a_missing_key_file_is_made_only_for_a_new_database() {
    let server = PostgresServer::start();
    let url = server.create_database("demo");
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("demo.key");
    let pool = connect_postgres(&url).await.unwrap();
    // A new database: the key is made (and kept: the second look reads it).
    let (key, created) = open_or_create_key_for_postgres(&pool, &key_path)
        .await
        .unwrap();
    assert!(created);
    let (_, created) = open_or_create_key_for_postgres(&pool, &key_path)
        .await
        .unwrap();
    assert!(!created);
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let demo = instance(&url, &key, &clock).await;
    assert!(demo.seeded());
    // The database has users now: a lost key file is an error, not a new
    // key that could not open what is sealed there.
    std::fs::remove_file(&key_path).unwrap();
    let refused = open_or_create_key_for_postgres(&pool, &key_path).await;
    assert!(
        matches!(refused, Err(DemoError::KeyMissingPostgres { .. })),
        "{refused:?}"
    );
    assert!(!key_path.exists());
}
