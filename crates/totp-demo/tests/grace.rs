//! The enrollment grace period in the demo: the admin sets "Grace period
//! (days)" (`grace_days` of `GET`/`PUT /admin/settings`, and the Two
//! Factor Auth tab's field); a required user without an app then logs in
//! with the password alone, answered `{"next":"done","grace_until"}` and,
//! in a browser, shown the grace page ("Sync now", "Later"); once the days
//! have passed on the demo's manual clock, the login answers
//! `{"next":"enroll"}`. The days and the time the period started survive a
//! restart, and an old database file gets the new column.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{START, TestDemo};
use http::StatusCode;
use serde_json::json;
use tower_totp::clock::{Clock as _, UnixTime};

const DAY: u64 = 86_400;

/// The admin, logged in with an app synced just now (a fresh second step
/// for the admin pages).
async fn admin(demo: &TestDemo) -> common::Client {
    let mut admin = demo.client();
    admin.login_and_sync("admin", &demo.clock).await;
    admin
}

#[tokio::test]
async fn the_admin_sets_grace_days_and_a_required_user_logs_in_without_an_app_until_they_pass() {
    let mut demo = TestDemo::start();
    let mut admin = admin(&demo).await;
    assert_eq!(admin.get("/admin/settings").await.json()["grace_days"], 0);
    // Zero: today's behaviour.
    let mut before = demo.client();
    assert_eq!(before.login("jsmith", "demo").await, "enroll");

    let a = admin
        .put_json("/admin/settings", json!({ "grace_days": 3 }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.json(),
        json!({ "enabled": true, "internal_users": true, "external_users": false, "grace_days": 3 })
    );
    assert_eq!(admin.get("/admin/settings").await.json()["grace_days"], 3);

    // jsmith's first login that had to enrol was `before`'s, at START.
    let until = UnixTime::from_secs(START + 3 * DAY).to_rfc3339();
    demo.clock.advance(Duration::from_secs(3600));
    let mut script = demo.client();
    let r = script.try_login("jsmith", "demo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({ "next": "done", "grace_until": until }));
    let me = script.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["second_factor"], "grace");

    // A browser is sent to the grace page, which offers both ways on.
    let mut browser = demo.client();
    let r = browser
        .submit("/login", &[("username", "jsmith"), ("password", "demo")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/2fa/grace");
    let page = browser.browse("/2fa/grace").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("3 days"), "{html}");
    assert!(html.contains(&until), "{html}");
    assert!(html.contains("href=\"/2fa/enroll\"") && html.contains("Sync now"));
    assert!(html.contains("href=\"/\"") && html.contains("Later"));
    // "Later": the home page opens.
    assert_eq!(browser.browse("/").await.status, StatusCode::OK);

    // The grace session has no second factor: the admin pages (a step-up)
    // refuse jsmith as a user who must sync an app, not as a stranger.
    let r = script.get("/admin/settings").await;
    assert_ne!(r.status, StatusCode::OK);

    // Survives a restart: the days and the start are in the database.
    demo.restart();
    let mut again = demo.client();
    let r = again.try_login("jsmith", "demo").await;
    assert_eq!(r.json(), json!({ "next": "done", "grace_until": until }));

    // The last second, then over.
    demo.clock.set(UnixTime::from_secs(START + 3 * DAY - 1));
    let mut last = demo.client();
    assert_eq!(last.login("jsmith", "demo").await, "done");
    demo.clock.advance(Duration::from_secs(1));
    let mut late = demo.client();
    let r = late.try_login("jsmith", "demo").await;
    assert_eq!(r.json(), json!({ "next": "enroll" }));
    let me = last.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.problem().1.as_deref(), Some("enroll"));
    // Syncing now works as always, and ends the question.
    late.sync_app(&demo.clock).await;
    assert_ne!(late.get("/api/me").await.json()["second_factor"], "grace");
}

#[tokio::test]
async fn the_two_factor_auth_tab_has_the_field_and_saves_it() {
    let demo = TestDemo::start();
    let mut admin = admin(&demo).await;
    let page = admin.browse("/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("Grace period (days)"), "{html}");
    assert!(html.contains("name=\"grace_days\""));
    let form = [
        ("enabled", "on"),
        ("internal_users", "on"),
        ("external_users", "off"),
        ("grace_days", "14"),
    ];
    let r = admin.submit("/admin/settings", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(admin.get("/admin/settings").await.json()["grace_days"], 14);
    assert!(
        admin
            .browse("/admin/settings")
            .await
            .text()
            .contains("value=\"14\"")
    );
    let mut jsmith = demo.client();
    let r = jsmith.try_login("jsmith", "demo").await;
    assert_eq!(
        r.json()["grace_until"],
        UnixTime::from_secs(demo.clock.now().as_secs() + 14 * DAY).to_rfc3339()
    );

    // Bad days are refused and change nothing, in the form and in JSON:
    // 422, as a bad switch is.
    for bad in ["-1", "366", "1.5", "x", "", "99999999999"] {
        let mut form = form;
        form[3].1 = bad;
        let r = admin.submit("/admin/settings", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
    }
    for bad in [json!(366), json!(-1), json!("7"), json!(2.5), json!(null)] {
        let r = admin
            .put_json("/admin/settings", json!({ "grace_days": bad }))
            .await;
        if bad.is_null() {
            // `null`: leave it as it is, like a missing member.
            assert_eq!(r.status, StatusCode::OK, "{bad}");
        } else {
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
    }
    assert_eq!(admin.get("/admin/settings").await.json()["grace_days"], 14);
    // A form without the field (an older page) keeps the days.
    let r = admin.submit("/admin/settings", &form[..3]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(admin.get("/admin/settings").await.json()["grace_days"], 14);
    // Back to zero: enrolling is forced again at once.
    admin
        .put_json("/admin/settings", json!({ "grace_days": 0 }))
        .await;
    let mut late = demo.client();
    assert_eq!(late.login("jsmith", "demo").await, "enroll");
}

/// A database file from before the grace period: its settings table has
/// no `grace_days` column. The demo adds it (0) and keeps the switches.
#[test]
fn an_older_database_file_gets_the_column() {
    let mut demo = TestDemo::start();
    {
        // The table as the demo made it before the grace period.
        let conn = rusqlite::Connection::open(demo.db_path()).unwrap();
        conn.execute_batch(
            "DROP TABLE demo_settings;
             CREATE TABLE demo_settings (
                 id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
                 enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
                 internal_users INTEGER NOT NULL CHECK (internal_users IN (0, 1)),
                 external_users INTEGER NOT NULL CHECK (external_users IN (0, 1))
             ) STRICT;
             INSERT INTO demo_settings VALUES (1, 1, 1, 1);",
        )
        .unwrap();
    }
    demo.restart();
    let settings = demo.demo.settings().get();
    assert!(settings.external_users, "the old switches were lost");
    assert_eq!(settings.grace_days, 0);
    let conn = rusqlite::Connection::open(demo.db_path()).unwrap();
    let days: i64 = conn
        .query_row(
            "SELECT grace_days FROM demo_settings WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(days, 0);
    // And a second start finds it there.
    drop(conn);
    demo.restart();
    assert_eq!(demo.demo.settings().get().grace_days, 0);
}

/// On PostgreSQL: a database whose settings table predates the grace
/// period gets the column; the days and the start of a user's period are
/// shared by two instances (set on A, counted from a login on B).
#[tokio::test]
async fn on_postgres_the_column_is_added_and_two_instances_share_the_period() {
    use totp_demo::{Database, Demo, DemoConfig, PasswordCost, app_async, connect_postgres};
    use tower_totp::clock::ManualClock;
    use tower_totp::seal::{Keyring, SealingKey};
    use tower_totp_testkit::server::postgres::PostgresServer;

    async fn instance(url: &str, key: &SealingKey, clock: &ManualClock) -> Demo {
        let pool = connect_postgres(url).await.unwrap();
        let config = DemoConfig::new(Database::Postgres(pool), Keyring::new(1, key.clone()))
            .password_cost(PasswordCost::Minimal)
            .clock(clock.clone());
        app_async(config).await.unwrap()
    }

    let server = PostgresServer::start();
    let url = server.create_database("grace");
    {
        // The settings table as the demo made it before the grace period.
        let pool = connect_postgres(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE SCHEMA totp_demo;
             CREATE TABLE totp_demo.settings (
                 id             integer NOT NULL PRIMARY KEY CHECK (id = 1),
                 enabled        boolean NOT NULL,
                 internal_users boolean NOT NULL,
                 external_users boolean NOT NULL
             );
             INSERT INTO totp_demo.settings VALUES (1, true, true, true);",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let a = instance(&url, &key, &clock).await;
    let b = instance(&url, &key, &clock).await;
    let s = a.settings().get();
    assert!(s.external_users, "the old switches were lost");
    assert_eq!(s.grace_days, 0);

    let mut admin = common::Client::new(&a);
    admin.login_and_sync("admin", &clock).await;
    let r = admin
        .put_json("/admin/settings", json!({ "grace_days": 2 }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // B's first login of jsmith starts the period; A counts from it.
    let mut on_b = common::Client::new(&b);
    let until = UnixTime::from_secs(START + 2 * DAY).to_rfc3339();
    let r = on_b.try_login("jsmith", "demo").await;
    assert_eq!(r.json(), json!({ "next": "done", "grace_until": until }));
    clock.advance(Duration::from_secs(DAY));
    let mut on_a = common::Client::new(&a);
    let r = on_a.try_login("jsmith", "demo").await;
    assert_eq!(r.json(), json!({ "next": "done", "grace_until": until }));
    clock.advance(Duration::from_secs(DAY));
    let r = on_a.try_login("jsmith", "demo").await;
    assert_eq!(r.json(), json!({ "next": "enroll" }));
    let r = on_b.get("/api/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
