//! An administrator resets a user's second factor, through HTTP with
//! several sessions: `PUT /admin/users/{username}` with `{"reset_2fa":
//! true}` (and the User ID page's button) removes the user's apps and
//! recovery codes, ends every session of the user, and is audited naming
//! the administrator and the user. Only administrators may, unknown users
//! are 404, bad input is a 4xx problem that resets nothing.
//!
//! The administrator here always syncs an app first (its Require flag is
//! set in the test's database), so the tests hold whether or not the
//! demo's admin needs a code by default.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Capture, Client, TestDemo, app_code};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tower_totp::UserId;

/// Log `user` in as a script and sync an app: the secret and the recovery
/// codes shown.
async fn enroll(demo: &TestDemo, client: &mut Client, user: &str) -> (String, Vec<Value>) {
    assert_eq!(client.login(user, "demo").await, "enroll");
    let page = client.get("/2fa/enroll").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let secret = page.json()["secret"].as_str().unwrap().to_owned();
    let done = client
        .post_json(
            "/2fa/enroll",
            json!({ "code": app_code(&secret, &demo.clock) }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let codes = done.json()["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// The admin, with an app synced in this session just now (a fresh second
/// step, whatever the demo's default for the admin's Require flag).
async fn admin(demo: &TestDemo) -> Client {
    demo.demo
        .users()
        .set_require_2fa("admin", true)
        .await
        .unwrap();
    let mut c = demo.client();
    enroll(demo, &mut c, "admin").await;
    c
}

async fn enrolled(demo: &TestDemo, user: &str) -> bool {
    demo.demo
        .auth()
        .engine()
        .status(&UserId::new(user))
        .await
        .unwrap()
        .enrolled
}

#[tokio::test]
async fn a_reset_ends_every_session_and_the_next_login_syncs_a_new_app() {
    let demo = TestDemo::start();
    // jsmith in two sessions: one that synced the app, one with a code.
    let mut a = demo.client();
    let (old_secret, old_codes) = enroll(&demo, &mut a, "jsmith").await;
    demo.clock.advance(Duration::from_secs(30));
    let mut b = demo.client();
    assert_eq!(b.login("jsmith", "demo").await, "totp");
    let ok = b
        .post_json(
            "/2fa",
            json!({ "code": app_code(&old_secret, &demo.clock) }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    for s in [&mut a, &mut b] {
        assert_eq!(s.get("/api/me").await.status, StatusCode::OK);
    }
    let mut admin = admin(&demo).await;

    let capture = Capture::default();
    let subscriber = capture.subscriber();
    let reset = {
        let _guard = tracing::subscriber::set_default(subscriber);
        admin
            .put_json("/admin/users/jsmith", json!({ "reset_2fa": true }))
            .await
    };
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    assert_eq!(reset.json()["enrolled"], false);
    assert_eq!(reset.json()["require_2fa"], true, "the flag is left alone");

    // The audit event names both, and nothing secret.
    let log = capture.text();
    let event = log
        .lines()
        .find(|l| l.contains("admin_reset"))
        .unwrap_or_else(|| panic!("no admin_reset audit event in:\n{log}"));
    assert!(event.contains("tower_totp::audit"), "{event}");
    assert!(event.contains("admin.id=admin"), "{event}");
    assert!(event.contains("user.id=jsmith"), "{event}");
    assert!(!log.contains(&old_secret));
    for code in &old_codes {
        assert!(!log.contains(code.as_str().unwrap()));
    }

    // Both of jsmith's sessions are logged out; the admin's is not.
    for s in [&mut a, &mut b] {
        let me = s.get("/api/me").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text());
        assert_eq!(me.problem().1.as_deref(), Some("login"));
    }
    assert_eq!(admin.get("/admin/users").await.status, StatusCode::OK);
    let engine = demo.demo.auth().engine();
    let jsmith = UserId::new("jsmith");
    assert!(engine.authenticators(&jsmith).await.unwrap().is_empty());
    assert_eq!(engine.recovery_codes_left(&jsmith).await.unwrap(), 0);

    // The next login syncs a new app and shows a fresh set of codes.
    demo.clock.advance(Duration::from_secs(1));
    let mut c = demo.client();
    let (new_secret, new_codes) = enroll(&demo, &mut c, "jsmith").await;
    assert_ne!(new_secret, old_secret);
    assert!(new_codes.iter().all(|code| !old_codes.contains(code)));
    // The old app's codes and the old recovery codes count for nothing.
    demo.clock.advance(Duration::from_secs(30));
    let mut d = demo.client();
    assert_eq!(d.login("jsmith", "demo").await, "totp");
    let old = d
        .post_json(
            "/2fa",
            json!({ "code": app_code(&old_secret, &demo.clock) }),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.text());
    let old = d
        .post_json("/2fa", json!({ "recovery_code": old_codes[0] }))
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.text());
}

#[tokio::test]
async fn the_user_page_has_the_reset_button_and_it_leaves_the_flag_alone() {
    let demo = TestDemo::start();
    let mut j = demo.client();
    enroll(&demo, &mut j, "jsmith").await;
    let mut admin = admin(&demo).await;
    let page = admin.browse("/admin/users/jsmith").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("id=\"reset_2fa\""), "{html}");
    assert!(html.contains("Reset Two Factor Authentication"), "{html}");

    // The button's form, as the browser sends it.
    let done = admin
        .submit("/admin/users/jsmith", &[("reset_2fa", "on")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.location(), "/admin/users/jsmith?reset=1");
    let page = admin.browse(done.location()).await;
    assert!(page.text().contains("was reset"), "{}", page.text());
    assert!(!enrolled(&demo, "jsmith").await);
    assert!(demo.demo.users().get("jsmith").unwrap().require_2fa);

    // `reset_2fa: false` resets nothing; with the flag, both apply.
    demo.clock.advance(Duration::from_secs(1));
    let mut j = demo.client();
    enroll(&demo, &mut j, "jsmith").await;
    let a = admin
        .put_json("/admin/users/jsmith", json!({ "reset_2fa": false }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(enrolled(&demo, "jsmith").await);
    let a = admin
        .put_json(
            "/admin/users/jsmith",
            json!({ "reset_2fa": true, "require_2fa": false }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(!enrolled(&demo, "jsmith").await);
    assert_eq!(a.json()["require_2fa"], false);
}

#[tokio::test]
async fn only_administrators_reset_and_only_users_that_exist() {
    let demo = TestDemo::start();
    let mut admin = admin(&demo).await;
    let mut j = demo.client();
    enroll(&demo, &mut j, "jsmith").await;
    // jsmith, verified, is no administrator: not even for himself.
    for target in ["admin", "jsmith"] {
        let a = j
            .put_json(
                &format!("/admin/users/{target}"),
                json!({ "reset_2fa": true }),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());
        assert_eq!(a.problem().0, "forbidden");
        let form = j
            .submit(&format!("/admin/users/{target}"), &[("reset_2fa", "on")])
            .await;
        assert_eq!(form.status, StatusCode::FORBIDDEN);
    }
    // portal: logged in, no second factor required, not an administrator.
    let mut portal = demo.client();
    assert_eq!(portal.login("portal", "demo").await, "done");
    let a = portal
        .put_json("/admin/users/jsmith", json!({ "reset_2fa": true }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Nobody logged in.
    let a = demo
        .client()
        .put_json("/admin/users/jsmith", json!({ "reset_2fa": true }))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(enrolled(&demo, "admin").await);
    assert!(enrolled(&demo, "jsmith").await);
    assert_eq!(j.get("/api/me").await.status, StatusCode::OK);

    // Unknown users: 404 problem.
    for path in [
        "/admin/users/nobody",
        "/admin/users/jsmith%20",
        "/admin/users/%FF",
    ] {
        let a = admin.put_json(path, json!({ "reset_2fa": true })).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.text());
        assert_eq!(a.problem().0, "not_found");
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_and_resets_nothing() {
    let demo = TestDemo::start();
    let mut admin = admin(&demo).await;
    let mut j = demo.client();
    enroll(&demo, &mut j, "jsmith").await;
    let bodies: [(&str, &str, StatusCode, &str); 7] = [
        (
            "application/json",
            "{\"reset_2fa\": tru",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "application/json",
            "{\"reset_2fa\": \"yes\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "application/json",
            "{\"reset_2fa\": 1}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "application/json",
            "{\"reset_2fa\": true, \"all\": true}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "application/json",
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "application/json",
            "[true]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "text/plain",
            "reset_2fa=true",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, status, reason) in bodies {
        let a = admin
            .request(
                Method::PUT,
                "/admin/users/jsmith",
                Some(content_type),
                "application/json",
                body.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(a.status, status, "{body}: {}", a.text());
        assert_eq!(a.problem().0, reason, "{body}");
    }
    // A form whose reset value is not on or off.
    let a = admin
        .request(
            Method::POST,
            "/admin/users/jsmith",
            Some("application/x-www-form-urlencoded"),
            "application/json",
            b"reset_2fa=maybe".to_vec(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text());
    assert!(enrolled(&demo, "jsmith").await);
    assert_eq!(j.get("/api/me").await.status, StatusCode::OK);
}
