//! The load run's baseline build (feature `load-baseline`): `GET /api/me`
//! without the TOTP layer answers for a password login alone, and nothing
//! else loses its guard; the load accounts log in and must sync an app.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, START, config};
use http::StatusCode;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::seal::SealingKey;

fn demo(baseline: bool, load_users: u32) -> (totp_demo::Demo, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let key = SealingKey::generate().unwrap();
    let cfg = config(&dir.path().join("demo.sqlite3"), &key, &clock)
        .load_baseline(baseline)
        .load_users(load_users);
    (totp_demo::app(cfg).unwrap(), dir)
}

#[tokio::test]
async fn the_baseline_answers_api_me_after_the_password_alone() {
    let (demo, _dir) = demo(true, 0);
    let mut client = Client::new(&demo);
    // Without a login: refused, as behind the layer.
    let anonymous = client.get("/api/me").await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text()
    );

    assert_eq!(client.login("jsmith", "demo").await, "enroll");
    let me = client.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "jsmith");
    assert_eq!(me.json()["display_name"], "John Smith");
    assert_eq!(me.json()["second_factor"], "not_required");

    // Every other protected route keeps the layer.
    for path in ["/", "/admin", "/admin/users"] {
        let page = client.get(path).await;
        assert_ne!(
            page.status,
            StatusCode::OK,
            "{path} is unguarded: {}",
            page.text()
        );
    }
}

#[tokio::test]
async fn without_the_baseline_api_me_stays_behind_the_layer() {
    let (demo, _dir) = demo(false, 0);
    let mut client = Client::new(&demo);
    assert_eq!(client.login("jsmith", "demo").await, "enroll");
    let me = client.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text());
    assert_eq!(me.problem().1.as_deref(), Some("enroll"));
}

#[tokio::test]
async fn load_users_exist_once_and_must_sync_an_app() {
    let (demo, dir) = demo(false, 3);
    let names: Vec<String> = demo
        .users()
        .list()
        .iter()
        .map(|u| u.username.clone())
        .collect();
    for name in ["load-1", "load-2", "load-3"] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "load-4"));
    let mut client = Client::new(&demo);
    assert_eq!(client.login("load-2", "demo").await, "enroll");

    // A restart on the same file keeps them and adds none twice.
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let again = totp_demo::app(
        config(
            &dir.path().join("demo.sqlite3"),
            &SealingKey::generate().unwrap(),
            &clock,
        )
        .load_users(3),
    )
    .unwrap();
    assert_eq!(again.users().list().len(), names.len());
}
