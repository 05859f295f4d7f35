//! Bad JSON, forms, paths, queries and methods on the demo's admin routes
//! and endpoints, and what logout and health ignore: refused with a 4xx
//! problem, and nothing stored changes.
//!
//! In process, with a manual clock and a temporary SQLite file; the
//! harness is `tests/common/bad_input.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::bad_input::{Probe, Snapshot, probe, send, set_session_cookies, world};
use http::{Method, StatusCode};
use serde_json::json;
use totp_demo::BODY_LIMIT;

#[tokio::test]
async fn admin_routes_refuse_bad_json_forms_paths_and_queries() {
    let w = world().await;
    let admin = w.admin.as_str();
    for body in [
        json!({ "enable": true }),
        json!({ "enabled": true, "extra": 1 }),
        json!({ "enabled": "yes" }),
        json!({ "enabled": "true" }),
        json!({ "enabled": 0 }),
        json!({ "enabled": [false] }),
        json!({ "enabled": { "value": false } }),
        json!({ "internal_users": false, "external_users": "off" }),
        json!([{ "enabled": false }]),
        json!(false),
    ] {
        let p = Probe::new(Method::PUT, "/admin/settings")
            .session(admin)
            .json_value(&body);
        w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
            .await;
    }
    let p = Probe::new(Method::PUT, "/admin/settings")
        .session(admin)
        .json(r#"{"enabled":true,"enabled":false}"#);
    w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        .await;
    for body in [
        json!({}),
        json!({ "require_2fa": null }),
        json!({ "require_2fa": 0 }),
        json!({ "require_2fa": "false" }),
        json!({ "require_2fa": [false] }),
        json!({ "require_2fa": false, "is_admin": true }),
        json!({ "require": false }),
    ] {
        let p = Probe::new(Method::PUT, "/admin/users/jsmith")
            .session(admin)
            .json_value(&body);
        w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
            .await;
    }
    // The forms: the page always sends both radio groups and the checkbox
    // only when checked. Anything else is not from the page.
    // Values the page never sends: 422; forms that do not parse (a field
    // twice, bytes that are not UTF-8): 400.
    for (form, status) in [
        (&b""[..], 422),
        (b"enabled=on", 422),
        (b"enabled=on&internal_users=on", 422),
        (b"enabled=on&internal_users=maybe&external_users=off", 422),
        (b"enabled=banana&internal_users=on&external_users=off", 422),
        (b"enabled=&internal_users=on&external_users=off", 422),
        (b"enabled=on&internal_users=on&external_users=%FF", 422),
        (
            b"enabled=on&internal_users=on&external_users=off&internal_users=off",
            400,
        ),
        (b"enabled=on&internal_users=on&external_users=\xff", 400),
    ] {
        let p = Probe::post("/admin/settings").session(admin).form(form);
        let a = w.refused_unchanged(&p).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
        let a = w.refused_unchanged(&p.clone().browser()).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
    }
    for (form, status) in [
        (&b"require_2fa=maybe"[..], 422),
        (b"require_2fa=%FF", 422),
        (b"require_2fa=on&require_2fa=off", 400),
        (b"require_2fa=\xff", 400),
    ] {
        let p = Probe::post("/admin/users/jsmith").session(admin).form(form);
        let a = w.refused_unchanged(&p).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
        let a = w.refused_unchanged(&p.clone().browser()).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
    }
    // Paths and queries.
    for path in [
        "/admin/users/nobody",
        "/admin/users/%FF",
        "/admin/users/%C3%28",
        "/admin/users/jsmith%00",
        "/admin/users/%2E%2E",
        "/admin/users/jsmith/extra",
        "/admin/users/",
    ] {
        for method in [Method::GET, Method::PUT, Method::POST] {
            let p = Probe::new(method.clone(), path)
                .session(admin)
                .json_value(&json!({ "require_2fa": false }));
            w.refused_unchanged(&p).await;
            let p = Probe::new(method, path)
                .session(admin)
                .form("require_2fa=on")
                .browser();
            w.refused_unchanged(&p).await;
        }
    }
    for path in [
        "/admin/settings?saved=1&saved=2",
        "/admin/users/jsmith?saved=1&saved=2",
        "/admin/settings?saved=%FF",
    ] {
        // Not refused: a query is only a notice on the page.
        let a = send(&w.router, &Probe::get(path).session(admin).browser()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
        assert!(a.content_type().starts_with("text/html"));
    }
}

/// Every route, with the methods it does not take.
#[tokio::test]
async fn wrong_methods_are_405_problems() {
    let w = world().await;
    let cases = [
        (Method::DELETE, "/login", ""),
        (Method::PUT, "/login", ""),
        (Method::GET, "/logout", ""),
        (Method::POST, "/health", ""),
        (Method::PATCH, "/api/me", w.jsmith_verified.as_str()),
        (Method::POST, "/api/me", w.admin.as_str()),
        (Method::DELETE, "/admin/settings", w.admin.as_str()),
        (Method::PATCH, "/admin/users/jsmith", w.admin.as_str()),
        (Method::POST, "/admin/users", w.admin.as_str()),
        (Method::PUT, "/2fa", w.jsmith_pending.as_str()),
        (Method::DELETE, "/2fa/enroll", w.portal_enrolling.as_str()),
        (
            Method::POST,
            "/2fa/enroll/qr.png",
            w.portal_enrolling.as_str(),
        ),
        (
            Method::PUT,
            "/2fa/enroll/qr.svg",
            w.portal_enrolling.as_str(),
        ),
        (
            Method::PUT,
            "/2fa/authenticators",
            w.jsmith_verified.as_str(),
        ),
        (
            Method::GET,
            "/2fa/recovery-codes",
            w.jsmith_verified.as_str(),
        ),
    ];
    for (method, path, session) in cases {
        for browser in [false, true] {
            let mut p = probe(&method, path, session);
            if browser {
                p = p.browser();
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", p.describe());
        }
    }
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    let p = Probe::new(Method::GET, revoke).session(&w.jsmith_verified);
    w.refused_as(&p, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        .await;
}

/// The library's endpoints with paths and queries that name nothing.
#[tokio::test]
async fn endpoints_refuse_unknown_ids_and_paths() {
    let w = world().await;
    let v = w.jsmith_verified.as_str();
    for (method, path) in [
        (Method::POST, "/2fa/authenticators/nope/revoke"),
        (Method::DELETE, "/2fa/authenticators/nope"),
        (Method::POST, "/2fa/authenticators/%FF/revoke"),
        (Method::POST, "/2fa/authenticators/%00/revoke"),
        (Method::DELETE, "/2fa/authenticators/..%2F..%2Fadmin"),
        (Method::GET, "/2fa/enroll?replace=nope"),
        (Method::GET, "/2fa/enroll?replace=%FF&name=x"),
        (Method::GET, "/2fa/authenticators/x/y/z"),
        (Method::GET, "/2fa/enroll/qr.gif"),
        (Method::GET, "/2fa/%FF"),
    ] {
        for browser in [false, true] {
            let mut p = Probe::new(method.clone(), path).session(v);
            if browser {
                p = p.browser();
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", p.describe());
        }
    }
    // Another user's authenticator id is not found for portal.
    let p = Probe::post(format!("/2fa/authenticators/{}/revoke", w.authenticator))
        .session(&w.portal_enrolling);
    w.refused_unchanged(&p).await;
}

/// The two routes that read no body and need no session: logging out and
/// the health check. Whatever comes with them, they answer the same and
/// change nothing; only a body declared too large is refused first.
#[tokio::test]
async fn logout_and_health_ignore_what_they_do_not_read() {
    let w = world().await;
    let junk: Vec<Probe> = vec![
        Probe::post("/logout"),
        Probe::post("/logout").session("AAAAAAAAAAAAAAAAAAAAAA"),
        Probe::post("/logout").raw_cookie(b"\xff\xfe"),
        Probe::post("/logout").typed(b"text/plain", "x".repeat(BODY_LIMIT * 2)),
        Probe::post("/logout").json("[not json"),
        Probe::get("/health").session("not-a-session-id"),
        Probe::get("/health")
            .session(&w.admin)
            .json("{\"code\":\"٣\"}"),
    ];
    for p in junk {
        let before = Snapshot::take(&w.t).await;
        let a = send(&w.router, &p).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", p.describe(), a.text());
        assert!(
            set_session_cookies(&a).iter().all(String::is_empty),
            "{}",
            p.describe()
        );
        assert_eq!(Snapshot::take(&w.t).await, before, "{}", p.describe());
    }
    for path in ["/logout", "/health"] {
        let method = if path == "/health" {
            Method::GET
        } else {
            Method::POST
        };
        let p = Probe::new(method, path)
            .session(&w.admin)
            .json(vec![b' '; BODY_LIMIT + 1])
            .with_content_length();
        w.refused_as(&p, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            .await;
    }
    // The admin is still logged in: nothing above logged anybody out.
    let me = send(&w.router, &Probe::get("/api/me").session(&w.admin)).await;
    assert_eq!(me.status, StatusCode::OK);
}
