//! Enrollment over HTTP: forced and voluntary, the QR code, and re-sync
//! to a new phone.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tower_totp::UserKind;
use tower_totp::http::Next;
use tower_totp_testkit::app::App;
use tower_totp_testkit::app::{assert_problem, assert_redirect};
use tower_totp_testkit::phone::Phone;

fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn forced_enrollment_leaves_only_the_endpoints() {
    let app = App::new();
    let bob = app.user("bob", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&bob).await, "enroll");

    // The application is out of reach.
    for path in ["/hello", "/sensitive", "/anything/else"] {
        let r = c.get(path).await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "enrollment_required",
            Some("enroll"),
        );
    }
    assert_eq!(app.hits(), 0);
    let r = c.get("/2fa").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    // Nothing to manage yet: the recent-step endpoints stay closed.
    let r = c.get("/2fa/authenticators").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "step_up_required",
        Some("totp"),
    );

    // A browser is sent to the enrollment page.
    let mut browser = app.browser();
    browser.session = c.session.clone();
    assert_redirect(&browser.get("/hello").await, "/2fa/enroll");
    assert_redirect(&browser.get("/2fa").await, "/2fa/enroll");

    // The enrollment, as JSON.
    let r = c.get("/2fa/enroll").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{v}");
    for key in ["otpauth_uri", "secret", "qr_png", "qr_svg"] {
        assert!(v[key].is_string(), "{key} in {v}");
    }
    assert_eq!(v["qr_png"], "/2fa/enroll/qr.png");
    assert_eq!(v["qr_svg"], "/2fa/enroll/qr.svg");
    let uri = v["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Acme:bob?secret="), "{uri}");
    assert!(uri.contains(v["secret"].as_str().unwrap()));
    // Asking again shows the same pending enrollment.
    assert_eq!(c.get("/2fa/enroll").await.json()["secret"], v["secret"]);

    // The QR codes.
    let png = c.get("/2fa/enroll/qr.png").await;
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.content_type(), "image/png");
    assert_eq!(decode_qr(&png.body), uri);
    let svg = c.get("/2fa/enroll/qr.svg").await;
    assert_eq!(svg.content_type(), "image/svg+xml");
    assert!(svg.text().contains("<svg"));

    // The page, for a browser.
    let page = browser.get("/2fa/enroll").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    let html = page.text();
    for label in [
        "Sync Authenticator App",
        "Two Factor Authorization Code",
        "Submit",
        "/2fa/enroll/qr.png",
    ] {
        assert!(html.contains(label), "{label}");
    }

    // A wrong first code, then the right one.
    let phone = Phone::from_enroll_json(&v, &app.clock);
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.wrong_code() }))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("enroll"));
    let r = browser
        .post_form("/2fa/enroll", &format!("code={}", phone.wrong_code()))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("That code is not valid"));
    assert!(r.text().contains("Sync Authenticator App"));
    assert_eq!(r.refusal().unwrap().next, Some(Next::Enroll));
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let done = r.json();
    assert_eq!(done["next"], "done");
    let codes = done["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.as_str().is_some_and(|s| s.len() >= 8))
    );

    // In, verified by the enrollment.
    let r = c.get("/hello").await;
    assert_eq!(r.hello_factor(), "verified");
    assert_eq!(r.json()["second_factor"]["method"], "Enrollment");
    assert_eq!(r.json()["totp_verified"], "bob");
    // The enrollment is used up.
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "no_pending_enrollment",
        Some("enroll"),
    );

    // The next login asks for a code.
    app.next_step();
    let mut again = app.client();
    assert_eq!(again.login(&bob).await, "totp");
}

/// A user to whom 2FA does not apply may enroll of their own will: within
/// 15 minutes of their password (an old session cannot add an
/// authenticator), without being logged out when it is later; and they may
/// manage the authenticator afterwards.
#[tokio::test]
async fn voluntary_enrollment() {
    let app = App::new();
    let eve = app.user("eve", UserKind::External, false);
    let mut c = app.client();
    assert_eq!(c.login(&eve).await, "done");
    app.advance(Duration::from_secs(3600));
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    let r = c.get("/2fa/enroll").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    assert_eq!(
        c.get("/hello").await.hello_factor(),
        "not_required",
        "still logged in"
    );
    assert_eq!(c.login(&eve).await, "done");
    let (phone, codes) = c.enroll(&app.clock).await;
    assert_eq!(codes.len(), 10);
    // Still in; 2FA still does not apply to external users by default.
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.advance(Duration::from_secs(3600));
    // Managing the authenticator needs a recent code, which the second
    // screen takes even though the policy does not ask for one.
    let r = c.get("/2fa/authenticators").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "step_up_required",
        Some("totp"),
    );
    let r = c.get("/2fa").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.next(), "totp");
    let r = c.submit(&phone.wrong_code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let r = c.get("/2fa/authenticators").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["authenticators"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn resync_to_a_new_phone() {
    let app = App::new();
    let sam = app.user("sam", UserKind::Internal, true);
    let old_phone = app.enroll_directly(&sam).await;
    app.next_step();
    let mut c = app.client();
    c.login_verified(&sam, &old_phone).await;
    let list = c.get("/2fa/authenticators").await.json();
    let old_id = list["authenticators"][0]["id"].as_str().unwrap().to_owned();

    let r = c.get("/2fa/enroll?replace=nonexistent").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = c
        .get(&format!("/2fa/enroll?replace={old_id}&name=New%20phone"))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let new_phone = Phone::from_enroll_json(&r.json(), &app.clock);

    // Until the new phone is confirmed, the old one still logs in.
    app.next_step();
    let mut other = app.client();
    other.login_verified(&sam, &old_phone).await;

    app.next_step();
    let r = c
        .post_json("/2fa/enroll", json!({ "code": new_phone.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["next"], "done");
    assert_eq!(
        v["recovery_codes"].as_array().map(Vec::len),
        Some(0),
        "the user still has recovery codes: no new set"
    );
    // This session is still in; the other one must log in again.
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    let r = other.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    let list = c.get("/2fa/authenticators").await.json();
    let names: Vec<&str> = list["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["New phone"]);

    // The old phone's next code is refused, the new phone's accepted.
    app.next_step();
    let mut d = app.client();
    d.login(&sam).await;
    let r = d.submit(&old_phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = d.submit(&new_phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}
