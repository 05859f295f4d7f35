//! A link on another site that opens the enrollment page in the victim's
//! browser: a top-level GET that carries the `SameSite=Lax` session cookie
//! (`Sec-Fetch-Site: cross-site`, `Sec-Fetch-Mode: navigate`), which the
//! same-origin layer lets through as every GET. With `?name=` or
//! `?replace=` it must not cancel the session's fresh pending enrollment
//! (the secret the victim has just scanned) nor start another one: a GET
//! changes nothing. Starting over is a POST, from the service's own pages.
//!
//! Several sessions of one user, the victim's own links in every order,
//! with the headers a browser sends.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};
use tower_totp::http::SameOriginLayer;
use tower_totp::{UserId, UserKind};
use tower_totp_testkit::app::{App, Client, Reply};
use tower_totp_testkit::phone::Phone;

const HOST: &str = "app.example";
const OWN_ORIGIN: &str = "http://app.example";

/// The reference application behind the same-origin layer, as deployed.
fn guarded_app() -> App {
    let app = App::new();
    app.with_outer_layer(SameOriginLayer::new())
}

/// The GET a foreign page's link makes the victim's browser send.
fn cross_site_get(path: &str, html: bool) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(header::HOST, HOST)
        .header(header::ACCEPT, if html { "text/html" } else { "*/*" })
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .body(Full::default())
        .unwrap()
}

/// `POST /2fa/enroll` with `body` (JSON) from `origin` (`Sec-Fetch-Site`
/// as a browser would say for it).
fn enroll_post(body: &Value, origin: &str, site: &str) -> Request<Full<Bytes>> {
    Request::post("/2fa/enroll")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, origin)
        .header("sec-fetch-site", site)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn secret_of(r: &Reply) -> String {
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    r.json()["secret"].as_str().unwrap().to_owned()
}

fn phone(app: &App, secret: &str) -> Phone {
    Phone::from_base32(secret, &app.clock)
}

async fn names(c: &mut Client) -> Vec<String> {
    let list = c.get("/2fa/authenticators").await;
    assert_eq!(list.status(), StatusCode::OK, "{}", list.text());
    list.json()["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The links a foreign page may put in front of the victim.
fn links(replace: &str) -> Vec<String> {
    vec![
        "/2fa/enroll?name=Call%20support".into(),
        format!("/2fa/enroll?replace={replace}"),
        format!("/2fa/enroll?replace={replace}&name=evil"),
        "/2fa/enroll?name=evil&replace=".into(),
        "/2fa/enroll/qr.png?name=evil".into(),
        "/2fa/enroll/qr.svg?replace=x".into(),
    ]
}

/// Every order of the links: forwards, backwards, and each alone between
/// the victim's own looks.
fn orders(links: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![links.to_vec(), links.iter().rev().cloned().collect()];
    out.extend(links.iter().map(|l| vec![l.clone()]));
    out
}

/// A first enrollment: the victim (session 0) and a second session of the
/// same user (someone who knows the password) each have their own pending
/// enrollment. Cross-site links through the victim's cookie, in every
/// order, leave both as they were; the victim's first code confirms the
/// secret it scanned, under the name it had.
#[tokio::test]
async fn cross_site_links_leave_a_first_enrollment_as_it_is() {
    // No authenticator to re-sync yet: `?replace=` names none (a 404).
    for order in orders(&links("x")) {
        let app = guarded_app();
        let ann = app.user("ann", UserKind::Internal, true);
        let mut victim = app.client();
        let mut other = app.client();
        assert_eq!(victim.login(&ann).await, "enroll");
        assert_eq!(other.login(&ann).await, "enroll");
        let scanned = secret_of(&victim.get("/2fa/enroll").await);
        let others = secret_of(&other.get("/2fa/enroll").await);
        for (i, link) in order.iter().enumerate() {
            let r = victim.send(cross_site_get(link, i % 2 == 0)).await;
            assert!(
                r.status() == StatusCode::OK || r.status() == StatusCode::NOT_FOUND,
                "{order:?} {link}: {}",
                r.text()
            );
            assert_eq!(
                secret_of(&victim.get("/2fa/enroll").await),
                scanned,
                "{order:?}: {link} replaced the victim's pending enrollment"
            );
        }
        assert_eq!(secret_of(&other.get("/2fa/enroll").await), others);
        let r = victim
            .post_json(
                "/2fa/enroll",
                json!({ "code": phone(&app, &scanned).code() }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{order:?}: {}", r.text());
        assert_eq!(names(&mut victim).await, ["Authenticator app"], "{order:?}");
        // The other session's one is not the victim's, and now needs a step.
        let r = other
            .post_json(
                "/2fa/enroll",
                json!({ "code": phone(&app, &others).code() }),
            )
            .await;
        assert_eq!(r.problem_reason(), "step_up_required", "{order:?}");
    }
}

/// A re-sync under way (an enrolled user, verified, who started one for a
/// new phone): links with `?name=` or `?replace=` of another authenticator
/// change neither its secret nor what it replaces.
#[tokio::test]
async fn cross_site_links_leave_a_re_sync_as_it_is() {
    let app = guarded_app();
    let ann = app.user("ann", UserKind::Internal, true);
    let mut victim = app.client();
    assert_eq!(victim.login(&ann).await, "enroll");
    victim.enroll(&app.clock).await;
    let second = phone(
        &app,
        &secret_of(
            &victim
                .post_json("/2fa/enroll", json!({ "name": "Tablet" }))
                .await,
        ),
    );
    let r = victim
        .post_json("/2fa/enroll", json!({ "code": second.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let list = app.auth.engine().authenticators(&ann).await.unwrap();
    let (old_phone, tablet) = (
        list[0].id.as_str().to_owned(),
        list[1].id.as_str().to_owned(),
    );
    // The victim re-syncs the old phone.
    let resync = json!({ "replace": old_phone });
    let scanned = secret_of(
        &victim
            .send(enroll_post(&resync, OWN_ORIGIN, "same-origin"))
            .await,
    );
    for link in links(&tablet) {
        victim.send(cross_site_get(&link, true)).await;
        assert_eq!(
            secret_of(&victim.get("/2fa/enroll").await),
            scanned,
            "{link}"
        );
    }
    let r = victim
        .post_json(
            "/2fa/enroll",
            json!({ "code": phone(&app, &scanned).code() }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    // The old phone was replaced, the tablet kept.
    let ids: Vec<String> = app
        .auth
        .engine()
        .authenticators(&ann)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id.as_str().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.contains(&tablet) && !ids.contains(&old_phone),
        "{ids:?}"
    );
}

/// From the service's own page, `POST /2fa/enroll` with a `name` (and no
/// code) starts over: a new pending enrollment in place of the session's
/// own (answered like `GET /2fa/enroll`), never another session's. The
/// old secret is dead, the new one confirms under the new name. The same
/// POST from a foreign page is refused and changes nothing.
#[tokio::test]
async fn a_same_origin_post_with_a_name_replaces_the_sessions_own() {
    let app = guarded_app();
    let ann = app.user("ann", UserKind::Internal, true);
    let mut me = app.client();
    let mut other = app.client();
    assert_eq!(me.login(&ann).await, "enroll");
    assert_eq!(other.login(&ann).await, "enroll");
    let first = secret_of(&me.get("/2fa/enroll").await);
    let others = secret_of(&other.get("/2fa/enroll").await);

    let body = json!({ "name": "Work phone" });
    for (origin, site) in [
        ("https://evil.example", "cross-site"),
        (OWN_ORIGIN, "same-site"),
    ] {
        let r = me.send(enroll_post(&body, origin, site)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(r.problem_reason(), "cross_origin");
        assert_eq!(secret_of(&me.get("/2fa/enroll").await), first);
    }

    let r = me.send(enroll_post(&body, OWN_ORIGIN, "same-origin")).await;
    let v = r.json();
    for field in ["otpauth_uri", "secret", "qr_png", "qr_svg"] {
        assert!(v[field].is_string(), "{field}: {v}");
    }
    let new = secret_of(&r);
    assert_ne!(new, first);
    assert_ne!(new, others);
    assert_eq!(secret_of(&me.get("/2fa/enroll").await), new);
    assert_eq!(secret_of(&other.get("/2fa/enroll").await), others);
    // A browser's form gets the page (the other session, starting over
    // its own: mine stays).
    let mut page = app.browser();
    page.session.clone_from(&other.session);
    let r = page.post_form("/2fa/enroll", "name=Laptop").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert!(r.content_type().starts_with("text/html"));
    assert!(r.text().contains("Sync Authenticator App"), "{}", r.text());
    assert_eq!(secret_of(&me.get("/2fa/enroll").await), new);
    // An unknown authenticator to replace is a 404 and changes nothing.
    let r = me
        .post_json("/2fa/enroll", json!({ "replace": "nope" }))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(secret_of(&me.get("/2fa/enroll").await), new);

    let r = me
        .post_json("/2fa/enroll", json!({ "code": phone(&app, &first).code() }))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret: {}",
        r.text()
    );
    app.next_step();
    let r = me
        .post_json("/2fa/enroll", json!({ "code": phone(&app, &new).code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(names(&mut me).await, ["Work phone"]);
}

/// With no fresh pending enrollment, `?name=` still names the one a GET
/// starts (the enrollment page's contract), and the next GET, whatever it
/// asks, shows that one.
#[tokio::test]
async fn a_get_names_only_the_enrollment_it_starts() {
    let app = guarded_app();
    let ann: UserId = app.user("ann", UserKind::Internal, true);
    let mut me = app.client();
    assert_eq!(me.login(&ann).await, "enroll");
    let shown = secret_of(&me.get("/2fa/enroll?name=Laptop").await);
    assert_eq!(secret_of(&me.get("/2fa/enroll?name=Other").await), shown);
    let r = me
        .post_json("/2fa/enroll", json!({ "code": phone(&app, &shown).code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(names(&mut me).await, ["Laptop"]);
    // A method other than GET and POST is still a 405.
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/2fa/enroll")
        .body(Full::default())
        .unwrap();
    assert_eq!(me.send(req).await.status(), StatusCode::METHOD_NOT_ALLOWED);
}
