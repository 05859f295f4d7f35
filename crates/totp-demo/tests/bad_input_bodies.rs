//! Bad bodies on every route of the demo, and bodies of the wrong shape
//! on the login: refused, and nothing stored changes.
//!
//! In process, with a manual clock and a temporary SQLite file; the
//! harness is `tests/common/bad_input.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::bad_input::{FORM, JSON, Probe, World, probe, world};
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;
use totp_demo::BODY_LIMIT;

/// A bad body: its name, content type, bytes, and the status it must get.
type BadBody = (
    &'static str,
    Option<&'static [u8]>,
    Vec<u8>,
    Option<StatusCode>,
);

/// Bodies that are bad for every route that reads one, with the status
/// they must get (`None`: some 4xx; the demo's own routes and the
/// library's endpoints word some of these differently).
fn bad_bodies() -> Vec<BadBody> {
    let over = BODY_LIMIT + 1;
    let mut huge_json = vec![b' '; over];
    huge_json.extend_from_slice(b"{}");
    let mut huge_form = b"code=".to_vec();
    huge_form.resize(over + 5, b'1');
    let deep = format!("{}{}", "[".repeat(4000), "]".repeat(4000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(2000), "}".repeat(2000));
    vec![
        ("empty, no type", None, Vec::new(), None),
        ("text, no type", None, b"code=123456".to_vec(), None),
        (
            "text/plain",
            Some(b"text/plain"),
            b"123456".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "xml",
            Some(b"application/xml"),
            b"<code>123456</code>".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "multipart",
            Some(b"multipart/form-data; boundary=x"),
            b"--x\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n123456\r\n--x--\r\n"
                .to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "content type not UTF-8",
            Some(b"application/json\xff"),
            b"{}".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "empty JSON",
            Some(JSON.as_bytes()),
            Vec::new(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "truncated JSON",
            Some(JSON.as_bytes()),
            b"{\"code".to_vec(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "JSON not UTF-8",
            Some(JSON.as_bytes()),
            b"{\"code\":\"\xff\xfe\"}".to_vec(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "JSON with a NUL outside strings",
            Some(JSON.as_bytes()),
            b"{\0}".to_vec(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "JSON array",
            Some(JSON.as_bytes()),
            b"[\"123456\"]".to_vec(),
            None,
        ),
        (
            "JSON number",
            Some(JSON.as_bytes()),
            b"123456".to_vec(),
            None,
        ),
        (
            "JSON string",
            Some(JSON.as_bytes()),
            b"\"123456\"".to_vec(),
            None,
        ),
        ("JSON null", Some(JSON.as_bytes()), b"null".to_vec(), None),
        ("JSON true", Some(JSON.as_bytes()), b"true".to_vec(), None),
        (
            "JSON nested 4000 deep",
            Some(JSON.as_bytes()),
            deep.into_bytes(),
            None,
        ),
        (
            "JSON objects nested 2000 deep",
            Some(JSON.as_bytes()),
            deep_object.into_bytes(),
            None,
        ),
        (
            "form not UTF-8",
            Some(FORM.as_bytes()),
            b"code=\xff\xfe".to_vec(),
            None,
        ),
        (
            "huge JSON",
            Some(JSON.as_bytes()),
            huge_json,
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ),
        (
            "huge form",
            Some(FORM.as_bytes()),
            huge_form,
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ),
    ]
}

/// The routes that read a body, each from a session that reaches the code
/// reading it.
fn body_routes(w: &World) -> Vec<(Method, String, &str)> {
    vec![
        (Method::POST, "/login".into(), ""),
        (Method::POST, "/login".into(), w.jsmith_pending.as_str()),
        (Method::POST, "/2fa".into(), w.jsmith_pending.as_str()),
        (Method::POST, "/2fa".into(), w.jsmith_verified.as_str()),
        (
            Method::POST,
            "/2fa/enroll".into(),
            w.portal_enrolling.as_str(),
        ),
        (
            Method::POST,
            "/2fa/enroll".into(),
            w.jsmith_verified.as_str(),
        ),
        (Method::PUT, "/admin/settings".into(), w.admin.as_str()),
        (Method::POST, "/admin/settings".into(), w.admin.as_str()),
        (Method::PUT, "/admin/users/jsmith".into(), w.admin.as_str()),
        (Method::POST, "/admin/users/jsmith".into(), w.admin.as_str()),
    ]
}

#[tokio::test]
async fn bad_bodies_on_every_route_change_nothing() {
    let w = world().await;
    let sessions = w.sessions().await;
    for (method, path, session) in body_routes(&w) {
        for (name, content_type, body, status) in bad_bodies() {
            for browser in [false, true] {
                let mut p = probe(&method, &path, session);
                p.body = body.clone();
                p.content_type = content_type.map(|ct| HeaderValue::from_bytes(ct).unwrap());
                if browser {
                    p = p.browser();
                }
                let a = w.refused_unchanged(&p).await;
                if let Some(status) = status {
                    assert_eq!(a.status, status, "{name}: {}: {}", p.describe(), a.text());
                }
            }
        }
        // Over the limit by its Content-Length: refused before any handler.
        let mut p = probe(&method, &path, session).json(vec![b' '; BODY_LIMIT + 1]);
        p = p.with_content_length();
        w.refused_as(&p, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            .await;
        let a = w.refused_unchanged(&p.clone().browser()).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(w.sessions().await, sessions, "a session moved");
}

#[tokio::test]
async fn the_login_refuses_bodies_of_the_wrong_shape() {
    let w = world().await;
    let json_cases = [
        (json!({ "username": 1, "password": 2 }), 422, "invalid_body"),
        (
            json!({ "username": "jsmith", "password": 123 }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": ["jsmith"], "password": "demo" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": { "name": "jsmith" }, "password": "demo" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": "jsmith", "password": null }),
            422,
            "invalid_body",
        ),
        (json!({ "username": "jsmith" }), 422, "invalid_body"),
        (json!({ "password": "demo" }), 422, "invalid_body"),
        (json!({}), 422, "invalid_body"),
        // The right password with a member too many: still refused, no login.
        (
            json!({ "username": "jsmith", "password": "demo", "admin": true }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": "jsmith", "password": "demo", "code": "123456" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": "jsmith\u{0}", "password": "demo" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "ｊｓｍｉｔｈ", "password": "demo" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "jsmith", "password": "demo\u{0}" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "j".repeat(5000), "password": "demo" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "jsmith", "password": "p".repeat(5000) }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "", "password": "" }),
            401,
            "bad_credentials",
        ),
    ];
    for (body, status, why) in json_cases {
        let p = Probe::post("/login").json_value(&body);
        w.refused_as(&p, StatusCode::from_u16(status).unwrap(), why)
            .await;
    }
    // The same text twice: the JSON parser refuses duplicate members.
    let p =
        Probe::post("/login").json(r#"{"username":"admin","password":"demo","username":"jsmith"}"#);
    w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        .await;
    for form in [
        &b"username=jsmith"[..],
        b"password=demo",
        b"username=jsmith&password=demo&username=admin",
        b"username=%FF&password=demo",
        b"username=jsmith&password=%FF",
        b"username=jsmith&password=wrong",
    ] {
        let p = Probe::post("/login").form(form);
        w.refused_unchanged(&p).await;
        w.refused_unchanged(&p.clone().browser()).await;
    }
}
