//! `SameOriginLayer` around the in-process reference application
//! (sessions, `TotpLayer`, the `/2fa` endpoints, login and logout): every
//! unsafe route, attacked through several users' sessions with the
//! headers a foreign page's request carries, is refused with 403
//! `cross_origin` before anything runs; the stored state and every
//! session stay as they were; the same request from the service's own
//! page works.
//!
//! The endpoints' unsafe routes are one table, [`ROUTES`], checked
//! against the route table in the endpoints' module docs.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};
use tower_totp::http::{Refusal, RefusalReason, SameOriginLayer};
use tower_totp::store::{EnrollmentStore as _, RecoveryStore as _};
use tower_totp::{UserId, UserKind};
use tower_totp_testkit::app::{App, Client, Reply};
use tower_totp_testkit::phone::Phone;

const HOST: &str = "app.example:8443";
const OWN_ORIGIN: &str = "https://app.example:8443";

/// Another port of the same host, a sibling subdomain, an opaque origin,
/// another site.
const FOREIGN_ORIGINS: [&str; 4] = [
    "https://app.example:9443",
    "https://blog.app.example:8443",
    "null",
    "https://evil.example",
];

/// The reference application with the layer outside everything.
fn guarded(app: &App, layer: SameOriginLayer) -> App {
    app.with_outer_layer(layer)
}

/// Alice and Bob enrolled, Alice verified now (and her recovery codes),
/// Bob's second step pending, Carol enrolling.
struct World {
    app: App,
    alice: Client,
    bob: Client,
    bob_phone: Phone,
    carol: Client,
    carol_phone: Phone,
    alice_authenticator: String,
}

async fn world(layer: SameOriginLayer) -> World {
    let app = guarded(&App::new(), layer);
    let alice_id = app.user("alice", UserKind::Internal, true);
    let bob_id = app.user("bob", UserKind::Internal, true);
    let carol_id = app.user("carol", UserKind::Internal, true);

    let mut alice = app.client();
    assert_eq!(alice.login(&alice_id).await, "enroll");
    alice.enroll(&app.clock).await;
    let list = alice.get("/2fa/authenticators").await;
    let alice_authenticator = list.json()["authenticators"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let bob_phone = app.enroll_directly(&bob_id).await;
    // Bob's next code is one nobody used.
    app.next_step();
    let mut bob = app.client();
    assert_eq!(bob.login(&bob_id).await, "totp");

    let mut carol = app.client();
    assert_eq!(carol.login(&carol_id).await, "enroll");
    let page = carol.get("/2fa/enroll").await;
    let carol_phone = Phone::from_enroll_json(&page.json(), &app.clock);

    World {
        app,
        alice,
        bob,
        bob_phone,
        carol,
        carol_phone,
        alice_authenticator,
    }
}

/// Each user's TOTP state, as the store holds it.
async fn stored(app: &App) -> Vec<(bool, u64, String, usize)> {
    let mut out = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let user = UserId::new(name);
        let status = app.store.status(&user).await.unwrap();
        let authenticators = app.store.authenticators(&user).await.unwrap();
        let codes = app.store.recovery_codes_left(&user).await.unwrap();
        out.push((
            status.enrolled,
            status.epoch,
            format!("{authenticators:?}"),
            codes,
        ));
    }
    out
}

impl World {
    /// What each session finds behind the layer.
    async fn sessions(&mut self) -> Vec<(StatusCode, String)> {
        let mut out = Vec::new();
        for c in [&mut self.alice, &mut self.bob, &mut self.carol] {
            let r = c.get("/hello").await;
            out.push((r.status(), r.text()));
        }
        out
    }

    fn client(&mut self, who: Who) -> &mut Client {
        match who {
            Who::Alice => &mut self.alice,
            Who::Bob => &mut self.bob,
            Who::Carol => &mut self.carol,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Alice,
    Bob,
    Carol,
}

/// One unsafe route: as documented, whose session it is sent in, its
/// body, and the status from the service's own page.
struct Route {
    method: Method,
    documented: &'static str,
    who: Who,
    path: fn(&World) -> String,
    body: fn(&World) -> Value,
    works: StatusCode,
}

const ROUTES: &[Route] = &[
    Route {
        method: Method::POST,
        documented: "/2fa",
        who: Who::Bob,
        path: |_| "/2fa".into(),
        body: |w| json!({ "code": w.bob_phone.code() }),
        works: StatusCode::OK,
    },
    Route {
        method: Method::POST,
        documented: "/2fa/enroll",
        who: Who::Carol,
        path: |_| "/2fa/enroll".into(),
        body: |w| json!({ "code": w.carol_phone.code() }),
        works: StatusCode::OK,
    },
    Route {
        method: Method::POST,
        documented: "/2fa/authenticators/{id}/revoke",
        who: Who::Alice,
        path: |w| format!("/2fa/authenticators/{}/revoke", w.alice_authenticator),
        body: |_| Value::Null,
        works: StatusCode::OK,
    },
    Route {
        method: Method::DELETE,
        documented: "/2fa/authenticators/{id}",
        who: Who::Alice,
        path: |w| format!("/2fa/authenticators/{}", w.alice_authenticator),
        body: |_| Value::Null,
        works: StatusCode::OK,
    },
    Route {
        method: Method::POST,
        documented: "/2fa/recovery-codes",
        who: Who::Alice,
        path: |_| "/2fa/recovery-codes".into(),
        body: |_| Value::Null,
        works: StatusCode::OK,
    },
    // Starting over Carol's enrollment under a name of the attacker's.
    Route {
        method: Method::POST,
        documented: "/2fa/enroll",
        who: Who::Carol,
        path: |_| "/2fa/enroll".into(),
        body: |_| json!({ "name": "Call support" }),
        works: StatusCode::OK,
    },
    // The application's own: logging the victim into another account,
    // logging out, and a guarded route of the application.
    Route {
        method: Method::POST,
        documented: "/login",
        who: Who::Alice,
        path: |_| "/login".into(),
        body: |_| json!({ "username": "bob" }),
        works: StatusCode::OK,
    },
    Route {
        method: Method::POST,
        documented: "/logout",
        who: Who::Alice,
        path: |_| "/logout".into(),
        body: |_| json!({}),
        works: StatusCode::OK,
    },
    Route {
        method: Method::POST,
        documented: "/sensitive",
        who: Who::Alice,
        path: |_| "/sensitive".into(),
        body: |_| json!({}),
        works: StatusCode::OK,
    },
];

/// The request with a browser's headers: `Origin`, `Sec-Fetch-Site`, and
/// a form or `fetch` flavour (`Accept`).
fn request(
    method: &Method,
    path: &str,
    body: &Value,
    origin: Option<&str>,
    fetch_site: Option<&str>,
    html: bool,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, HOST)
        .header(header::ACCEPT, if html { "text/html" } else { "*/*" });
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    if let Some(s) = fetch_site {
        b = b.header("sec-fetch-site", s);
    }
    if body.is_null() {
        return b.body(Full::default()).unwrap();
    }
    if html {
        // The form a foreign page posts; JSON is what its script sends.
        return b
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form_of(body))))
            .unwrap();
    }
    b.header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn form_of(body: &Value) -> String {
    let pairs: Vec<(String, String)> = body
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    serde_urlencoded::to_string(pairs).unwrap()
}

/// `(Origin, Sec-Fetch-Site)` of the foreign pages' requests.
fn attack_headers() -> Vec<(Option<&'static str>, Option<&'static str>)> {
    let mut out = Vec::new();
    for origin in FOREIGN_ORIGINS {
        out.push((Some(origin), Some("same-site")));
        out.push((Some(origin), Some("cross-site")));
        out.push((Some(origin), None));
    }
    out.push((None, Some("same-site")));
    out.push((None, Some("cross-site")));
    out.push((Some(OWN_ORIGIN), Some("same-site")));
    out
}

#[track_caller]
fn assert_refused(r: &Reply, html: bool, what: &str) {
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}: {}", r.text());
    assert_eq!(
        r.refusal(),
        Some(Refusal::new(RefusalReason::CrossOrigin, None)),
        "{what}"
    );
    assert!(r.header(header::SET_COOKIE).is_none(), "{what}");
    if html {
        assert!(r.content_type().starts_with("text/html"), "{what}");
    } else {
        assert_eq!(r.problem_reason(), "cross_origin", "{what}");
    }
}

async fn every_route_with(layer: fn() -> SameOriginLayer) {
    for route in ROUTES {
        let mut w = world(layer()).await;
        let path = (route.path)(&w);
        let body = (route.body)(&w);
        let before = stored(&w.app).await;
        let sessions = w.sessions().await;
        let hits = w.app.hits();
        for (origin, site) in attack_headers() {
            for html in [false, true] {
                let req = request(&route.method, &path, &body, origin, site, html);
                let what = format!(
                    "{} {path} Origin {origin:?} Sec-Fetch-Site {site:?} html {html}",
                    route.method
                );
                let r = w.client(route.who).send(req).await;
                assert_refused(&r, html, &what);
            }
        }
        assert_eq!(stored(&w.app).await, before, "{}", route.documented);
        assert_eq!(w.app.hits(), hits, "the application was called");
        assert_eq!(w.sessions().await, sessions, "{}", route.documented);

        // From the service's own page: works.
        let own = request(
            &route.method,
            &path,
            &body,
            Some(OWN_ORIGIN),
            Some("same-origin"),
            false,
        );
        let r = w.client(route.who).send(own).await;
        assert_eq!(
            r.status(),
            route.works,
            "{}: {}",
            route.documented,
            r.text()
        );
    }
}

#[tokio::test]
async fn every_unsafe_route_refuses_foreign_pages_and_changes_nothing() {
    every_route_with(SameOriginLayer::new).await;
}

/// Behind a proxy: the listed origins replace `Host`, refusals look like
/// the rest of the service's (`TotpAuth::same_origin`'s responder).
#[tokio::test]
async fn listed_origins_work_the_same() {
    every_route_with(|| {
        SameOriginLayer::new()
            .trusted_origins([OWN_ORIGIN, "https://admin.example"])
            .unwrap()
    })
    .await;
    let w = world(SameOriginLayer::new()).await;
    let app = w.app.clone();
    let with_auth = guarded(&app, app.auth.same_origin());
    let mut c = with_auth.client();
    c.session.clone_from(&w.alice.session);
    let req = request(
        &Method::POST,
        "/2fa/recovery-codes",
        &Value::Null,
        Some("https://evil.example"),
        None,
        true,
    );
    assert_refused(&c.send(req).await, true, "TotpAuth::same_origin");
}

/// Attacks through the three sessions interleaved, in table order and
/// backwards, then each victim's own request: it finds nothing used up.
#[tokio::test]
async fn interleaved_attacks_leave_every_victim_able_to_act() {
    let mut w = world(SameOriginLayer::new()).await;
    let before = stored(&w.app).await;
    let sessions = w.sessions().await;
    for route in ROUTES.iter().chain(ROUTES.iter().rev()) {
        let path = (route.path)(&w);
        let body = (route.body)(&w);
        for (origin, site) in attack_headers() {
            let req = request(&route.method, &path, &body, origin, site, true);
            let r = w.client(route.who).send(req).await;
            assert_refused(&r, true, route.documented);
        }
    }
    assert_eq!(stored(&w.app).await, before);
    assert_eq!(w.sessions().await, sessions);
    // Bob's code and Carol's enrollment are still there for them.
    for route in &ROUTES[..2] {
        let path = (route.path)(&w);
        let body = (route.body)(&w);
        let own = request(
            &route.method,
            &path,
            &body,
            Some(OWN_ORIGIN),
            Some("same-origin"),
            false,
        );
        let r = w.client(route.who).send(own).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    }
}

/// Without either header (curl, another server) and with safe methods,
/// requests pass.
#[tokio::test]
async fn safe_methods_and_headerless_requests_pass() {
    let mut w = world(SameOriginLayer::new()).await;
    for (origin, site) in attack_headers() {
        let req = request(&Method::GET, "/hello", &Value::Null, origin, site, false);
        assert_eq!(w.alice.send(req).await.hello_factor(), "verified");
    }
    let req = request(
        &Method::POST,
        "/2fa/recovery-codes",
        &Value::Null,
        None,
        None,
        false,
    );
    let r = w.alice.send(req).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

/// Every unsafe route in the endpoints' route table is in [`ROUTES`].
#[test]
fn every_documented_endpoint_is_in_the_table() {
    let docs = include_str!("../src/http/endpoints/mod.rs");
    let mut missing = Vec::new();
    let mut found = 0;
    for span in docs.split('`').skip(1).step_by(2) {
        let Some((method, path)) = span.split_once(' ') else {
            continue;
        };
        if !["POST", "PUT", "PATCH", "DELETE"].contains(&method) || !path.starts_with('/') {
            continue;
        }
        found += 1;
        if !ROUTES
            .iter()
            .any(|r| r.method.as_str() == method && r.documented == path)
        {
            missing.push(span);
        }
    }
    assert!(found >= 5, "{found}");
    assert!(missing.is_empty(), "not in ROUTES: {missing:?}");
}
