//! The demo's routes in process (`oneshot`), with a manual clock: the JSON
//! contract for scripts, the pages' labels and redirects, admin rights,
//! persistence across a restart, and bad input.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, TestDemo};
use http::{Method, StatusCode, header};
use serde_json::json;

/// Log `user` in as a script and sync an app: the app's secret.
async fn enroll(demo: &TestDemo, client: &mut Client, user: &str) -> String {
    assert_eq!(client.login(user, "demo").await, "enroll");
    let page = client.get("/2fa/enroll").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let secret = page.json()["secret"].as_str().unwrap().to_owned();
    assert!(
        page.json()["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let code = common::app_code(&secret, &demo.clock);
    let done = client
        .post_json("/2fa/enroll", json!({ "code": code }))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(done.json()["next"], "done");
    assert_eq!(done.json()["recovery_codes"].as_array().unwrap().len(), 10);
    secret
}

#[tokio::test]
async fn health_answers_without_a_session() {
    let demo = TestDemo::start();
    let a = demo.client().get("/health").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({ "status": "ok" }));
    assert!(a.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_new_database_gets_the_demo_users_and_default_switches() {
    let demo = TestDemo::start();
    assert!(demo.demo.seeded());
    let s = demo.demo.settings().get();
    assert!(s.enabled && s.internal_users && !s.external_users);
    let users = demo.demo.users().list();
    let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["admin", "jsmith", "portal"]);
    let jsmith = demo.demo.users().get("jsmith").unwrap();
    assert_eq!(jsmith.display_name, "John Smith");
    assert!(jsmith.require_2fa && !jsmith.is_admin);
    assert!(demo.demo.users().get("admin").unwrap().is_admin);
    let portal = demo.demo.users().get("portal").unwrap();
    assert_eq!(portal.kind, tower_totp::UserKind::External);
    assert!(portal.require_2fa);
}

#[tokio::test]
async fn wrong_credentials_are_a_401_problem() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    for (user, pw) in [("jsmith", "hunter2"), ("nobody", "demo"), ("", "")] {
        let a = c
            .post_json("/login", json!({ "username": user, "password": pw }))
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.problem(),
            ("bad_credentials".into(), Some("login".into()))
        );
        assert!(!a.text().contains("hunter2"));
    }
    assert!(c.cookie.is_none(), "no session for a failed login");
}

#[tokio::test]
async fn jsmith_syncs_an_app_then_logs_in_with_a_code() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    assert_eq!(c.login("jsmith", "demo").await, "enroll");
    // Nothing behind the layer before the app is synced.
    let me = c.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.problem().1.as_deref(), Some("enroll"));

    let mut c = demo.client();
    let secret = enroll(&demo, &mut c, "jsmith").await;
    let me = c.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(
        me.json(),
        json!({ "username": "jsmith", "display_name": "John Smith", "kind": "internal", "second_factor": "enrollment" })
    );

    let out = c.post_json("/logout", json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.json()["next"], "login");
    let me = c.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.problem(), ("not_logged_in".into(), Some("login".into())));

    assert_eq!(c.login("jsmith", "demo").await, "totp");
    let me = c.get("/api/me").await;
    assert_eq!(me.problem().1.as_deref(), Some("totp"));
    // The code that confirmed the app is used up; the next one, typed
    // with a space, logs in.
    let replay = c
        .post_json(
            "/2fa",
            json!({ "code": common::app_code(&secret, &demo.clock) }),
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
    demo.clock.advance(Duration::from_secs(30));
    let code = common::app_code(&secret, &demo.clock);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let ok = c.post_json("/2fa", json!({ "code": spaced })).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.json()["next"], "done");
    let me = c.get("/api/me").await;
    assert_eq!(me.json()["second_factor"], "totp");
    // `/` for a script is the same answer.
    assert_eq!(c.get("/").await.json()["username"], "jsmith");
}

#[tokio::test]
async fn only_admins_reach_the_admin_routes() {
    let demo = TestDemo::start();
    // Not logged in: 401 with next login.
    let mut anon = demo.client();
    for path in ["/admin/settings", "/admin/users", "/admin/users/jsmith"] {
        let a = anon.get(path).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(a.problem().1.as_deref(), Some("login"));
    }
    // portal: external, TFA for external users is off: logged in, not admin.
    let mut portal = demo.client();
    assert_eq!(portal.login("portal", "demo").await, "done");
    assert_eq!(
        portal.get("/api/me").await.json()["second_factor"],
        "not_required"
    );
    for path in [
        "/admin",
        "/admin/settings",
        "/admin/users",
        "/admin/users/jsmith",
    ] {
        let a = portal.get(path).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(a.problem().0, "forbidden");
    }
    let a = portal
        .put_json("/admin/settings", json!({ "enabled": false }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = portal
        .put_json("/admin/users/portal", json!({ "require_2fa": false }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(demo.demo.settings().get().enabled);
    assert!(demo.demo.users().get("portal").unwrap().require_2fa);
    // A browser gets a 403 page.
    let page = portal.browse("/admin/settings").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.content_type().starts_with("text/html"));
}

#[tokio::test]
async fn admin_changes_apply_to_the_next_login() {
    let demo = TestDemo::start();
    let mut admin = demo.client();
    // The admin syncs an app at the first login, like jsmith.
    enroll(&demo, &mut admin, "admin").await;
    let s = admin.get("/admin/settings").await;
    assert_eq!(
        s.json(),
        json!({ "enabled": true, "internal_users": true, "external_users": false, "grace_days": 0 })
    );

    // TFA for Internal Users off: jsmith needs only the password.
    let a = admin
        .put_json("/admin/settings", json!({ "internal_users": false }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.json(),
        json!({ "enabled": true, "internal_users": false, "external_users": false, "grace_days": 0 })
    );
    let mut jsmith = demo.client();
    assert_eq!(jsmith.login("jsmith", "demo").await, "done");
    assert_eq!(
        jsmith.get("/api/me").await.json()["second_factor"],
        "not_required"
    );

    // Back on: the same session is stopped at once.
    admin
        .put_json("/admin/settings", json!({ "internal_users": true }))
        .await;
    let me = jsmith.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.problem().1.as_deref(), Some("enroll"));

    // TFA for External Users on: portal (required) must sync an app...
    admin
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    let mut portal = demo.client();
    assert_eq!(portal.login("portal", "demo").await, "enroll");
    // ...until the admin clears portal's Require Two Factor Authentication.
    let a = admin
        .put_json("/admin/users/portal", json!({ "require_2fa": false }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["require_2fa"], false);
    assert_eq!(a.json()["enrolled"], false);
    assert_eq!(portal.login("portal", "demo").await, "done");

    // Enable TOTP 2FA off: nobody is asked.
    admin
        .put_json("/admin/settings", json!({ "enabled": false }))
        .await;
    assert_eq!(demo.client().login("jsmith", "demo").await, "done");

    let users = admin.get("/admin/users").await.json();
    assert_eq!(users["users"].as_array().unwrap().len(), 3);
    let unknown = admin
        .put_json("/admin/users/nobody", json!({ "require_2fa": true }))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.problem().0, "not_found");
}

#[tokio::test]
async fn users_switches_and_apps_survive_a_restart() {
    let mut demo = TestDemo::start();
    let mut admin = demo.client();
    enroll(&demo, &mut admin, "admin").await;
    admin
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    admin
        .put_json("/admin/users/portal", json!({ "require_2fa": false }))
        .await;
    let mut jsmith = demo.client();
    let secret = enroll(&demo, &mut jsmith, "jsmith").await;

    demo.restart();
    assert!(!demo.demo.seeded());
    assert!(demo.demo.settings().get().external_users);
    assert!(!demo.demo.users().get("portal").unwrap().require_2fa);
    // Sessions do not survive (they live in memory); the synced app does,
    // and its secret opens with the same key.
    let mut c = demo.client();
    assert_eq!(c.login("jsmith", "demo").await, "totp");
    demo.clock.advance(Duration::from_secs(30));
    let ok = c
        .post_json(
            "/2fa",
            json!({ "code": common::app_code(&secret, &demo.clock) }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

#[tokio::test]
async fn the_pages_have_the_source_products_labels() {
    let demo = TestDemo::start();
    let mut b = demo.client();
    let login = b.browse("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    for label in ["User name", "Password", "Submit"] {
        assert!(login.text().contains(label), "{label}");
    }
    // Not logged in: the home page sends the browser to the login page.
    let home = b.browse("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/login");

    let wrong = b
        .submit("/login", &[("username", "jsmith"), ("password", "nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("Wrong user name or password."));
    assert!(wrong.text().contains("value=\"jsmith\""));

    let ok = b
        .submit("/login", &[("username", "jsmith"), ("password", "demo")])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/2fa/enroll");
    let enroll = b.browse("/2fa/enroll").await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.text());
    for label in [
        "User Preference",
        "Authenticator",
        "Sync Authenticator App",
        "Two Factor Authorization Code",
        "/2fa/enroll/qr.png",
    ] {
        assert!(enroll.text().contains(label), "{label}");
    }
    let qr = b.browse("/2fa/enroll/qr.png").await;
    assert_eq!(qr.status, StatusCode::OK);
    assert_eq!(qr.content_type(), "image/png");

    let mut admin = demo.client();
    let ok = admin
        .submit("/login", &[("username", "admin"), ("password", "demo")])
        .await;
    // The admin syncs an app at the first login (in JSON here; the
    // browser test does it on the pages).
    assert_eq!(ok.location(), "/2fa/enroll");
    admin.sync_app(&demo.clock).await;
    let home = admin.browse("/").await;
    for label in [
        "Welcome, Administrator",
        "Sync Authenticator App",
        "Log out",
        "Administration",
    ] {
        assert!(home.text().contains(label), "{label}");
    }
    let settings = admin.browse("/admin/settings").await;
    for label in [
        "Two Factor Auth",
        "Enable TOTP 2FA",
        "TFA for Internal Users",
        "TFA for External Users",
    ] {
        assert!(settings.text().contains(label), "{label}");
    }
    // The form: the checkbox on, internal OFF, external ON.
    let saved = admin
        .submit(
            "/admin/settings",
            &[
                ("enabled", "on"),
                ("internal_users", "off"),
                ("external_users", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), "/admin/settings?saved=1");
    let s = demo.demo.settings().get();
    assert!(s.enabled && !s.internal_users && s.external_users);
    assert!(
        admin
            .browse("/admin/settings?saved=1")
            .await
            .text()
            .contains("Saved.")
    );

    let user = admin.browse("/admin/users/portal").await;
    assert!(user.text().contains("Require Two Factor Authentication"));
    // An unchecked box is not sent: the flag goes off.
    let saved = admin.submit("/admin/users/portal", &[]).await;
    assert_eq!(saved.location(), "/admin/users/portal?saved=1");
    assert!(!demo.demo.users().get("portal").unwrap().require_2fa);

    let out = admin.submit("/logout", &[]).await;
    assert_eq!(out.location(), "/login");
    assert_eq!(admin.browse("/").await.location(), "/login");
}

#[tokio::test]
async fn enrolled_users_get_the_second_screen() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    enroll(&demo, &mut c, "jsmith").await;
    let mut b = demo.client();
    let ok = b
        .submit("/login", &[("username", "jsmith"), ("password", "demo")])
        .await;
    assert_eq!(ok.location(), "/2fa");
    let page = b.browse("/2fa").await;
    for label in [
        "User Authenticator app",
        "Two Factor Authorization Code",
        "Submit",
    ] {
        assert!(page.text().contains(label), "{label}");
    }
    assert_eq!(b.browse("/").await.location(), "/2fa");
}

#[tokio::test]
async fn bad_input_is_a_4xx_never_a_500() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    /// Method, path, content type, body, expected status.
    type Case<'a> = (Method, &'a str, Option<&'a str>, Vec<u8>, StatusCode);
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/login",
            Some("application/json"),
            b"{".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/login",
            Some("application/json"),
            b"[1]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/login",
            Some("application/json"),
            br#"{"username":"jsmith"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/login",
            Some("text/plain"),
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/login",
            None,
            Vec::new(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/login",
            Some("application/x-www-form-urlencoded"),
            b"username=%FF".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/login",
            Some("application/json"),
            vec![b' '; 64 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::DELETE,
            "/login",
            None,
            Vec::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/no/such/page",
            None,
            Vec::new(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/2fa/no-such-endpoint",
            None,
            Vec::new(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, ct, body, expected) in cases {
        let a = c
            .request(method.clone(), path, ct, "application/json", body)
            .await;
        assert_eq!(a.status, expected, "{method} {path} {ct:?}: {}", a.text());
    }

    // Admin routes: unknown members, wrong types, wrong media types.
    enroll(&demo, &mut c, "admin").await;
    for (path, body, expected) in [
        (
            "/admin/settings",
            json!({ "enable": true }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/admin/settings",
            json!({ "enabled": "yes" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/admin/users/jsmith",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/admin/users/jsmith",
            json!({ "require_2fa": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let a = c.put_json(path, body.clone()).await;
        assert_eq!(a.status, expected, "{path} {body}: {}", a.text());
        assert_eq!(a.content_type(), "application/problem+json");
    }
    let a = c
        .request(
            Method::PUT,
            "/admin/settings",
            Some("text/csv"),
            "application/json",
            b"a,b".to_vec(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing changed.
    let s = demo.demo.settings().get();
    assert!(s.enabled && s.internal_users && !s.external_users);
}
