//! Two demo instances behind one (imaginary) load balancer: two routers
//! built by `app`, on the same SQLite file, the same sealing key and the
//! same Redis (a real `redis-server` on a free port), driven in process
//! with a shared manual clock. A client keeps its cookie while its
//! requests go to either instance.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, START, config};
use http::StatusCode;
use serde_json::json;
use tempfile::TempDir;
use totp_demo::{Demo, app, connect_redis};
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::seal::SealingKey;
use tower_totp_testkit::server::redis::RedisServer;

/// Instances A and B and what they share.
struct Pair {
    a: Demo,
    b: Demo,
    clock: ManualClock,
    _dir: TempDir,
    /// Last: killed after the instances are gone.
    _redis: RedisServer,
}

impl Pair {
    async fn start() -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.sqlite3");
        let key = SealingKey::generate().unwrap();
        let clock = ManualClock::new(UnixTime::from_secs(START));
        // Each instance with its own Redis connection, as two processes.
        let mut instances = Vec::new();
        for _ in 0..2 {
            let store = connect_redis(&redis.url()).await.unwrap();
            instances.push(app(config(&db, &key, &clock).redis(store)).unwrap());
        }
        let b = instances.pop().unwrap();
        let a = instances.pop().unwrap();
        assert!(a.seeded(), "A creates the demo users");
        assert!(!b.seeded(), "B finds them in the shared file");
        Self {
            a,
            b,
            clock,
            _dir: dir,
            _redis: redis,
        }
    }

    /// The code an authenticator app shows now for `secret`.
    fn code_now(&self, secret: &str) -> String {
        common::app_code(secret, &self.clock)
    }

    /// jsmith syncs an app, all on A, and logs out; the app's secret. The
    /// clock then moves one step on, so the confirming code is history.
    async fn enroll_jsmith(&self) -> String {
        let mut c = Client::new(&self.a);
        assert_eq!(c.login("jsmith", "demo").await, "enroll");
        let secret = c.get("/2fa/enroll").await.json()["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let done = c
            .post_json("/2fa/enroll", json!({ "code": self.code_now(&secret) }))
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        c.post_json("/logout", json!({})).await;
        self.clock.advance(Duration::from_secs(30));
        secret
    }
}

#[tokio::test]
async fn a_login_started_on_a_finishes_on_b() {
    let pair = Pair::start().await;
    let mut c = Client::new(&pair.a);

    // Enrollment: the password and the QR code on A, the code on B.
    assert_eq!(c.login("jsmith", "demo").await, "enroll");
    let page = c.get("/2fa/enroll").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let secret = page.json()["secret"].as_str().unwrap().to_owned();
    // B shows the same pending enrollment (it is in Redis, not in A).
    let again = c.on(&pair.b).get("/2fa/enroll").await;
    assert_eq!(again.json()["secret"], secret.as_str());
    let code = pair.code_now(&secret);
    let done = c.post_json("/2fa/enroll", json!({ "code": code })).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(done.json()["next"], "done");
    for demo in [&pair.a, &pair.b] {
        let me = c.on(demo).get("/api/me").await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        assert_eq!(me.json()["username"], "jsmith");
        assert_eq!(me.json()["second_factor"], "enrollment");
    }
    c.post_json("/logout", json!({})).await;

    // The second step: the password on A, the code on B.
    assert_eq!(c.on(&pair.a).login("jsmith", "demo").await, "totp");
    pair.clock.advance(Duration::from_secs(30));
    let ok = c
        .on(&pair.b)
        .post_json("/2fa", json!({ "code": pair.code_now(&secret) }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.json()["next"], "done");
    for demo in [&pair.a, &pair.b] {
        let me = c.on(demo).get("/api/me").await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        assert_eq!(me.json()["second_factor"], "totp");
    }
}

#[tokio::test]
async fn one_code_sent_to_both_instances_is_accepted_once() {
    let pair = Pair::start().await;
    let secret = pair.enroll_jsmith().await;
    // Two sessions at the second screen, one on each instance (a stolen
    // code replayed on the other instance, or a double submit).
    let mut on_a = Client::new(&pair.a);
    let mut on_b = Client::new(&pair.b);
    assert_eq!(on_a.login("jsmith", "demo").await, "totp");
    assert_eq!(on_b.login("jsmith", "demo").await, "totp");
    let code = pair.code_now(&secret);
    let (a, b) = tokio::join!(
        on_a.post_json("/2fa", json!({ "code": code })),
        on_b.post_json("/2fa", json!({ "code": code })),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::UNAUTHORIZED],
        "A: {} B: {}",
        a.text(),
        b.text()
    );
    let passed = [on_a.get("/api/me").await, on_b.get("/api/me").await]
        .iter()
        .filter(|me| me.status == StatusCode::OK)
        .count();
    assert_eq!(passed, 1);
}

#[tokio::test]
async fn an_admin_change_on_a_applies_on_bs_next_request() {
    let pair = Pair::start().await;
    let mut admin = Client::new(&pair.a);
    admin.login_and_sync("admin", &pair.clock).await;
    // B has served requests (its copies are warm) before the change.
    let mut jsmith = Client::new(&pair.b);
    assert_eq!(jsmith.login("jsmith", "demo").await, "enroll");

    // TFA for Internal Users OFF on A: jsmith's next login on B needs only
    // the password, and the admin sees the switch on B.
    let off = admin
        .put_json("/admin/settings", json!({ "internal_users": false }))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert_eq!(jsmith.login("jsmith", "demo").await, "done");
    assert_eq!(
        jsmith.get("/api/me").await.json()["second_factor"],
        "not_required"
    );
    assert_eq!(
        admin.on(&pair.b).get("/admin/settings").await.json(),
        json!({ "enabled": true, "internal_users": false, "external_users": false, "grace_days": 0 })
    );

    // Back ON, from B this time: jsmith's open session on B is stopped at
    // its next request, and A applies it too.
    admin
        .put_json("/admin/settings", json!({ "internal_users": true }))
        .await;
    let me = jsmith.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.problem().1.as_deref(), Some("enroll"));
    assert_eq!(Client::new(&pair.a).login("jsmith", "demo").await, "enroll");

    // A user's flag: TFA for External Users ON and portal's Require Two
    // Factor Authentication cleared, both on A; portal logs in on B.
    let mut portal = Client::new(&pair.b);
    assert_eq!(portal.login("portal", "demo").await, "done");
    admin
        .on(&pair.a)
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    assert_eq!(portal.login("portal", "demo").await, "enroll");
    let cleared = admin
        .put_json("/admin/users/portal", json!({ "require_2fa": false }))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text());
    assert_eq!(portal.login("portal", "demo").await, "done");
    let users = admin.on(&pair.b).get("/admin/users/portal").await.json();
    assert_eq!(users["require_2fa"], false);
}

#[tokio::test]
async fn changes_to_different_switches_on_both_instances_both_stay() {
    let pair = Pair::start().await;
    let mut on_a = Client::new(&pair.a);
    let mut on_b = Client::new(&pair.b);
    let secret = on_a.login_and_sync("admin", &pair.clock).await;
    // The admin's second session, on B: the next code of the same app.
    pair.clock.advance(Duration::from_secs(30));
    assert_eq!(on_b.login("admin", "demo").await, "totp");
    let verified = on_b.send_code(&secret, &pair.clock).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
    // Each instance changes one switch at once; neither undoes the other.
    let (a, b) = tokio::join!(
        on_a.put_json("/admin/settings", json!({ "internal_users": false })),
        on_b.put_json("/admin/settings", json!({ "external_users": true })),
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    let both = json!({ "enabled": true, "internal_users": false, "external_users": true, "grace_days": 0 });
    assert_eq!(on_a.get("/admin/settings").await.json(), both);
    assert_eq!(on_b.get("/admin/settings").await.json(), both);
}

#[tokio::test]
async fn a_logout_on_a_is_a_logout_on_b() {
    let pair = Pair::start().await;
    let mut c = Client::new(&pair.a);
    c.login_and_sync("admin", &pair.clock).await;
    assert_eq!(c.on(&pair.b).get("/api/me").await.status, StatusCode::OK);
    let cookie = c.cookie.clone();

    let out = c.on(&pair.a).post_json("/logout", json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    // The old cookie, as a second tab (or a thief) would still send it.
    c.cookie = cookie;
    for demo in [&pair.b, &pair.a] {
        let me = c.on(demo).get("/api/me").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        assert_eq!(me.problem(), ("not_logged_in".into(), Some("login".into())));
    }
}

#[tokio::test]
async fn instances_started_together_on_a_new_file_create_the_users_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite3");
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mut configs = Vec::new();
    for _ in 0..4 {
        let store = connect_redis(&redis.url()).await.unwrap();
        configs.push(config(&db, &key, &clock).redis(store));
    }
    let start = std::sync::Barrier::new(configs.len());
    let demos: Vec<Demo> = std::thread::scope(|s| {
        let threads: Vec<_> = configs
            .into_iter()
            .map(|c| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    app(c).unwrap()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(demos.iter().filter(|d| d.seeded()).count(), 1);
    for demo in &demos {
        assert_eq!(demo.users().list().len(), 3);
        // The admin has to sync an app (nobody has yet): every instance
        // sees the same users and the same (empty) TOTP store.
        assert_eq!(Client::new(demo).login("admin", "demo").await, "enroll");
    }
}
