//! Cross-origin state changes, attacked through the demo's router in
//! process (manual clock, a temporary SQLite file, several sessions).
//!
//! A page of another origin (another port, a sibling subdomain, a
//! sandboxed frame's `null`) makes the victim's browser send every unsafe
//! request of the demo and of the `/2fa` endpoints with the victim's
//! cookie, as a form post (a browser) and as a `fetch` (JSON): each is
//! refused with 403 `cross_origin`, nothing stored changes, and every
//! session is where it was. The same request from the demo's own page
//! (its `Origin`, `Sec-Fetch-Site: same-origin`) works.
//!
//! The unsafe routes are one table, [`ROUTES`];
//! [`every_documented_unsafe_route_is_in_the_table`] checks it against
//! the route tables of `docs/demo.md` and of the library's endpoints, and
//! [`the_refusal_comes_before_routing`] shows that a route the table
//! misses is refused all the same: the layer is around the whole router.
//!
//! And the administrator's "sudo mode": a session verified more than 15
//! minutes ago cannot switch 2FA off until it gives a fresh code.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::bad_input::Snapshot;
use common::{Answer, TestDemo, app_code};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use totp_demo::SESSION_COOKIE;
use tower::ServiceExt as _;

/// Where the demo is served in these tests.
const HOST: &str = "demo.test:3000";
const OWN_ORIGIN: &str = "http://demo.test:3000";

/// Pages that are not the demo's: the same host on another port (same
/// site, so `SameSite=Lax` lets the cookie through), a sibling subdomain,
/// an opaque origin (sandboxed frame, `data:` URL), another site.
const FOREIGN_ORIGINS: [&str; 4] = [
    "http://demo.test:3001",
    "http://blog.demo.test:3000",
    "null",
    "https://evil.example",
];

// ---------------------------------------------------------------------------
// The world: several sessions, each in the state its routes need

struct World {
    t: TestDemo,
    router: Router,
    /// jsmith's app and one of its authenticators.
    jsmith_secret: String,
    authenticator: String,
    /// Session cookies.
    admin: String,
    jsmith_verified: String,
    jsmith_pending: String,
    portal_enrolling: String,
    portal_secret: String,
}

/// The admin and jsmith have synced apps (the admin's session verified
/// now, jsmith's 30 s ago); jsmith has a second session waiting for its
/// code; TFA for External Users is on and portal is syncing its app.
async fn world() -> World {
    let t = TestDemo::start();
    let mut admin = t.client();
    admin.login_and_sync("admin", &t.clock).await;
    let on = admin
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text());

    let mut jsmith = t.client();
    let jsmith_secret = jsmith.login_and_sync("jsmith", &t.clock).await;
    let list = jsmith.get("/2fa/authenticators").await;
    let authenticator = list.json()["authenticators"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The next step: the pending session's code is one nobody used.
    t.clock.advance(Duration::from_secs(30));
    let mut pending = t.client();
    assert_eq!(pending.login("jsmith", "demo").await, "totp");

    let mut portal = t.client();
    assert_eq!(portal.login("portal", "demo").await, "enroll");
    let page = portal.get("/2fa/enroll").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let portal_secret = page.json()["secret"].as_str().unwrap().to_owned();

    World {
        router: t.demo.router(),
        jsmith_secret,
        authenticator,
        admin: admin.cookie.unwrap(),
        jsmith_verified: jsmith.cookie.unwrap(),
        jsmith_pending: pending.cookie.unwrap(),
        portal_enrolling: portal.cookie.unwrap(),
        portal_secret,
        t,
    }
}

impl World {
    /// What each session sees at `/api/me`: a refused request must leave
    /// every one where it was.
    async fn sessions(&self) -> Vec<(StatusCode, String)> {
        let mut out = Vec::new();
        for cookie in [
            &self.admin,
            &self.jsmith_verified,
            &self.jsmith_pending,
            &self.portal_enrolling,
        ] {
            let a = send(
                &self.router,
                &Req::new(Method::GET, "/api/me").session(cookie),
            )
            .await;
            out.push((a.status, a.text()));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Requests

/// A body as a browser form or as a script's JSON.
#[derive(Clone)]
enum Payload {
    None,
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

/// One request, with the headers a browser sends.
#[derive(Clone)]
struct Req {
    method: Method,
    path: String,
    session: Option<String>,
    payload: Payload,
    /// `Accept: text/html` (a page) or JSON.
    html: bool,
    origin: Option<&'static str>,
    fetch_site: Option<&'static str>,
}

impl Req {
    fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            session: None,
            payload: Payload::None,
            html: false,
            origin: None,
            fetch_site: None,
        }
    }

    fn session(mut self, cookie: &str) -> Self {
        self.session = Some(cookie.to_owned());
        self
    }

    /// As the demo's own page sends it.
    fn sent_by_own_page(mut self) -> Self {
        self.origin = Some(OWN_ORIGIN);
        self.fetch_site = Some("same-origin");
        self
    }

    fn describe(&self) -> String {
        format!(
            "{} {} (html {}, Origin {:?}, Sec-Fetch-Site {:?})",
            self.method, self.path, self.html, self.origin, self.fetch_site
        )
    }
}

async fn send(router: &Router, r: &Req) -> Answer {
    let mut b = Request::builder()
        .method(r.method.clone())
        .uri(&r.path)
        .header(header::HOST, HOST);
    b = b.header(
        header::ACCEPT,
        if r.html {
            "text/html,application/xhtml+xml"
        } else {
            "application/json"
        },
    );
    if let Some(cookie) = &r.session {
        b = b.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
    }
    if let Some(o) = r.origin {
        b = b.header(header::ORIGIN, o);
    }
    if let Some(s) = r.fetch_site {
        b = b.header("sec-fetch-site", s);
    }
    let body = match &r.payload {
        Payload::None => Body::empty(),
        Payload::Form(fields) => {
            b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(serde_urlencoded::to_string(fields).unwrap())
        }
        Payload::Json(v) => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
    };
    let res = router.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    Answer::read(res).await
}

// ---------------------------------------------------------------------------
// The unsafe routes

/// One unsafe route: its method and path as documented, and how to send
/// it so that the demo's own page would succeed.
struct Route {
    method: Method,
    /// As in the docs' route tables.
    documented: &'static str,
    request: fn(&World) -> Req,
    /// The answer from the demo's own page.
    works: StatusCode,
    /// Whether that answer changes what [`Snapshot`] holds (a login, a
    /// logout and a new set of as many recovery codes change only the
    /// session or the codes themselves).
    changes_stored: bool,
}

fn json(method: Method, path: &str, session: &str, body: Value) -> Req {
    Req {
        payload: Payload::Json(body),
        ..Req::new(method, path).session(session)
    }
}

fn form(path: &str, session: &str, fields: &[(&'static str, &str)]) -> Req {
    Req {
        payload: Payload::Form(fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()),
        html: true,
        ..Req::new(Method::POST, path).session(session)
    }
}

/// Every unsafe route of the demo and of the library's `/2fa` endpoints,
/// each in the session it changes something for.
const ROUTES: &[Route] = &[
    // Logging the victim's browser into the attacker's account.
    Route {
        method: Method::POST,
        documented: "/login",
        request: |w| {
            json(
                Method::POST,
                "/login",
                &w.jsmith_verified,
                json!({ "username": "portal", "password": "demo" }),
            )
        },
        works: StatusCode::OK,
        changes_stored: false,
    },
    Route {
        method: Method::POST,
        documented: "/logout",
        request: |w| Req::new(Method::POST, "/logout").session(&w.admin),
        works: StatusCode::OK,
        changes_stored: false,
    },
    Route {
        method: Method::PUT,
        documented: "/admin/settings",
        request: |w| {
            json(
                Method::PUT,
                "/admin/settings",
                &w.admin,
                json!({ "enabled": false }),
            )
        },
        works: StatusCode::OK,
        changes_stored: true,
    },
    Route {
        method: Method::POST,
        documented: "/admin/settings",
        request: |w| {
            form(
                "/admin/settings",
                &w.admin,
                &[("internal_users", "off"), ("external_users", "off")],
            )
        },
        works: StatusCode::SEE_OTHER,
        changes_stored: true,
    },
    Route {
        method: Method::PUT,
        documented: "/admin/users/{username}",
        request: |w| {
            json(
                Method::PUT,
                "/admin/users/jsmith",
                &w.admin,
                json!({ "require_2fa": false }),
            )
        },
        works: StatusCode::OK,
        changes_stored: true,
    },
    Route {
        method: Method::POST,
        documented: "/admin/users/{username}",
        request: |w| form("/admin/users/jsmith", &w.admin, &[]),
        works: StatusCode::SEE_OTHER,
        changes_stored: true,
    },
    Route {
        method: Method::POST,
        documented: "/2fa",
        request: |w| {
            let code = app_code(&w.jsmith_secret, &w.t.clock);
            json(
                Method::POST,
                "/2fa",
                &w.jsmith_pending,
                json!({ "code": code }),
            )
        },
        works: StatusCode::OK,
        changes_stored: true,
    },
    Route {
        method: Method::POST,
        documented: "/2fa/enroll",
        request: |w| {
            let code = app_code(&w.portal_secret, &w.t.clock);
            json(
                Method::POST,
                "/2fa/enroll",
                &w.portal_enrolling,
                json!({ "code": code }),
            )
        },
        works: StatusCode::OK,
        changes_stored: true,
    },
    Route {
        method: Method::POST,
        documented: "/2fa/authenticators/{id}/revoke",
        request: |w| {
            Req::new(
                Method::POST,
                &format!("/2fa/authenticators/{}/revoke", w.authenticator),
            )
            .session(&w.jsmith_verified)
        },
        works: StatusCode::OK,
        changes_stored: true,
    },
    Route {
        method: Method::DELETE,
        documented: "/2fa/authenticators/{id}",
        request: |w| {
            Req::new(
                Method::DELETE,
                &format!("/2fa/authenticators/{}", w.authenticator),
            )
            .session(&w.jsmith_verified)
        },
        works: StatusCode::OK,
        changes_stored: true,
    },
    Route {
        method: Method::POST,
        documented: "/2fa/recovery-codes",
        request: |w| Req::new(Method::POST, "/2fa/recovery-codes").session(&w.jsmith_verified),
        works: StatusCode::OK,
        changes_stored: false,
    },
];

/// The ways a foreign page's request arrives: each foreign `Origin`, and
/// `Sec-Fetch-Site: same-site` (a sibling subdomain, with or without an
/// `Origin` the browser chose not to send); as a form post and as JSON.
fn attacks(base: &Req) -> Vec<Req> {
    let mut out = Vec::new();
    for origin in FOREIGN_ORIGINS {
        out.push(Req {
            origin: Some(origin),
            fetch_site: Some(if origin == "https://evil.example" {
                "cross-site"
            } else {
                "same-site"
            }),
            ..base.clone()
        });
        // An older browser: Origin only.
        out.push(Req {
            origin: Some(origin),
            ..base.clone()
        });
    }
    out.push(Req {
        fetch_site: Some("same-site"),
        ..base.clone()
    });
    out.push(Req {
        origin: Some(OWN_ORIGIN),
        fetch_site: Some("same-site"),
        ..base.clone()
    });
    // The same request in the other flavour: a form for a script's
    // request, `Accept: text/html` either way for a page.
    let flavours: Vec<Req> = out
        .iter()
        .map(|r| Req {
            html: !r.html,
            ..r.clone()
        })
        .collect();
    out.extend(flavours);
    out
}

fn assert_cross_origin_refusal(r: &Req, a: &Answer) {
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "{}: {}",
        r.describe(),
        a.text()
    );
    assert!(
        a.headers.get(header::SET_COOKIE).is_none(),
        "{}: a refusal sets no cookie",
        r.describe()
    );
    // The library's rule: a page for a browser that did not send JSON.
    if r.html && !matches!(r.payload, Payload::Json(_)) {
        assert!(
            a.content_type().starts_with("text/html"),
            "{}",
            r.describe()
        );
        assert!(a.text().contains("another site"), "{}", r.describe());
    } else {
        assert_eq!(a.problem().0, "cross_origin", "{}", r.describe());
    }
}

#[tokio::test]
async fn every_unsafe_route_refuses_a_foreign_page_and_changes_nothing() {
    for route in ROUTES {
        let w = world().await;
        let base = (route.request)(&w);
        let before = Snapshot::take(&w.t).await;
        let sessions = w.sessions().await;
        for attack in attacks(&base) {
            let a = send(&w.router, &attack).await;
            assert_cross_origin_refusal(&attack, &a);
        }
        assert_eq!(
            Snapshot::take(&w.t).await,
            before,
            "{} {}: the stored state changed",
            route.method,
            route.documented
        );
        assert_eq!(
            w.sessions().await,
            sessions,
            "{} {}: a session changed",
            route.method,
            route.documented
        );

        // The same request from the demo's own page works (so the refusal
        // above was the origin's doing, not a broken request).
        let own = base.clone().sent_by_own_page();
        let a = send(&w.router, &own).await;
        assert_eq!(a.status, route.works, "{}: {}", own.describe(), a.text());
        if route.changes_stored {
            assert_ne!(
                Snapshot::take(&w.t).await,
                before,
                "{}: worked but changed nothing",
                own.describe()
            );
        }
    }
}

/// The stored state a refused attack leaves is the victim's, step by
/// step, with the sessions interleaved: attacks through the admin's,
/// jsmith's and portal's browsers in turn, then each does its own change.
#[tokio::test]
async fn interleaved_attacks_through_several_sessions_change_nothing() {
    let w = world().await;
    let before = Snapshot::take(&w.t).await;
    let sessions = w.sessions().await;
    // Every route's attack, in table order and in reverse order.
    let requests: Vec<Req> = ROUTES.iter().map(|r| (r.request)(&w)).collect();
    for r in requests.iter().chain(requests.iter().rev()) {
        for attack in attacks(r) {
            let a = send(&w.router, &attack).await;
            assert_cross_origin_refusal(&attack, &a);
        }
    }
    assert_eq!(Snapshot::take(&w.t).await, before);
    assert_eq!(w.sessions().await, sessions);
    // The victims' own pages still work: the attacks used up nothing
    // (jsmith's code, portal's pending enrollment).
    for r in [&requests[6], &requests[7], &requests[2]] {
        let own = r.clone().sent_by_own_page();
        let a = send(&w.router, &own).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", own.describe(), a.text());
    }
    let after = Snapshot::take(&w.t).await;
    assert_eq!(after.settings.0, 0, "the admin switched 2FA off itself");
    assert!(
        after.totp["portal"].status.enrolled,
        "portal's own enrollment completed"
    );
}

/// The layer is around the whole router: a route the table misses, an
/// unknown path or a method a route does not take is refused the same
/// way, before routing (not a 404 or 405).
#[tokio::test]
async fn the_refusal_comes_before_routing() {
    let w = world().await;
    let before = Snapshot::take(&w.t).await;
    let paths = [
        "/",
        "/health",
        "/api/me",
        "/admin",
        "/admin/users",
        "/admin/users/nobody",
        "/2fa/enroll/qr.png",
        "/2fa/authenticators",
        "/not-a-route",
        "/2fa/not-a-route",
    ];
    let methods = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    for path in paths
        .iter()
        .copied()
        .chain(ROUTES.iter().map(|r| r.documented))
    {
        for method in &methods {
            let base = Req::new(method.clone(), path).session(&w.admin);
            for attack in attacks(&base) {
                let a = send(&w.router, &attack).await;
                assert_cross_origin_refusal(&attack, &a);
            }
        }
    }
    assert_eq!(Snapshot::take(&w.t).await, before);
}

/// Safe methods and requests without either header pass: a link from
/// another site still opens the pages, and curl still works.
#[tokio::test]
async fn safe_methods_and_requests_without_browser_headers_pass() {
    let w = world().await;
    for origin in FOREIGN_ORIGINS {
        for method in [Method::GET, Method::HEAD] {
            let r = Req {
                origin: Some(origin),
                fetch_site: Some("cross-site"),
                ..Req::new(method, "/admin/settings").session(&w.admin)
            };
            let a = send(&w.router, &r).await;
            assert_eq!(a.status, StatusCode::OK, "{}", r.describe());
        }
    }
    let curl = json(
        Method::PUT,
        "/admin/settings",
        &w.admin,
        json!({ "internal_users": false }),
    );
    let a = send(&w.router, &curl).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(!w.t.demo.settings().get().internal_users);
}

/// The table holds every unsafe route the docs list: `docs/demo.md`'s
/// route tables and the library's endpoint table. A new documented route
/// fails here until it is added to [`ROUTES`].
#[test]
fn every_documented_unsafe_route_is_in_the_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut documented = std::collections::BTreeSet::new();
    for file in [
        "docs/demo.md",
        "crates/tower-totp/src/http/endpoints/mod.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        // Backticked `METHOD /path` spans.
        for span in text.split('`').skip(1).step_by(2) {
            let Some((method, path)) = span.split_once(' ') else {
                continue;
            };
            if ["POST", "PUT", "PATCH", "DELETE"].contains(&method) && path.starts_with('/') {
                documented.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    assert!(documented.len() >= 9, "{documented:?}");
    let table: std::collections::BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.documented.to_owned()))
        .collect();
    let missing: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "unsafe routes not in ROUTES: {missing:?}"
    );
}

// ---------------------------------------------------------------------------
// Sudo mode

/// An admin session verified more than 15 minutes ago cannot switch 2FA
/// off (not as a script, not with the form); reading the pages still
/// works; after a fresh code on the second screen it can.
#[tokio::test]
async fn an_admin_change_needs_a_second_step_within_15_minutes() {
    let t = TestDemo::start();
    let mut admin = t.client();
    let secret = admin.login_and_sync("admin", &t.clock).await;
    // Within the 15 minutes: a change works.
    t.clock.advance(Duration::from_secs(14 * 60));
    let ok = admin
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());

    t.clock.advance(Duration::from_secs(2 * 60));
    let before = t.demo.settings().get();
    // A script: 401 step_up_required, next: totp.
    for (path, body) in [
        ("/admin/settings", json!({ "enabled": false })),
        ("/admin/users/jsmith", json!({ "require_2fa": false })),
    ] {
        let a = admin.put_json(path, body).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.text());
        assert_eq!(
            a.problem(),
            ("step_up_required".into(), Some("totp".into())),
            "{path}"
        );
    }
    // A browser's form post: sent to the second screen.
    for path in ["/admin/settings", "/admin/users/jsmith"] {
        let a = admin.submit(path, &[("internal_users", "off")]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.location(), "/2fa", "{path}");
    }
    assert_eq!(t.demo.settings().get(), before);
    assert!(t.demo.users().get("jsmith").unwrap().require_2fa);
    // Reading is not a change: the pages still open.
    for path in ["/admin/settings", "/admin/users", "/admin/users/jsmith"] {
        assert_eq!(admin.browse(path).await.status, StatusCode::OK, "{path}");
        assert_eq!(admin.get(path).await.status, StatusCode::OK, "{path}");
    }
    // Another session of the admin, verified now, is not held back by the
    // old one (and the old one gains nothing from it).
    let mut fresh = t.client();
    assert_eq!(fresh.login("admin", "demo").await, "totp");
    let v = fresh.send_code(&secret, &t.clock).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    let a = admin
        .put_json("/admin/settings", json!({ "enabled": false }))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // The second screen takes a fresh code in the verified session (a
    // browser: the page, the form, then back to the application).
    t.clock.advance(Duration::from_secs(30));
    let page = admin.browse("/2fa").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("Two Factor Authorization Code"));
    let code = app_code(&secret, &t.clock);
    let done = admin
        .submit("/2fa", &[("method", "totp"), ("code", code.as_str())])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.location(), "/");
    let saved = admin
        .submit(
            "/admin/settings",
            &[
                ("enabled", "on"),
                ("internal_users", "on"),
                ("external_users", "off"),
            ],
        )
        .await;
    assert_eq!(saved.location(), "/admin/settings?saved=1");
    assert!(!t.demo.settings().get().external_users);

    // A script does the same with JSON: refused, a code, done.
    t.clock.advance(Duration::from_secs(16 * 60));
    let a = admin
        .put_json("/admin/users/jsmith", json!({ "require_2fa": false }))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let v = admin.send_code(&secret, &t.clock).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    let a = admin
        .put_json("/admin/users/jsmith", json!({ "require_2fa": false }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(!t.demo.users().get("jsmith").unwrap().require_2fa);

    // And switching 2FA off altogether, the change sudo mode is for.
    t.clock.advance(Duration::from_secs(16 * 60));
    let a = admin
        .put_json("/admin/settings", json!({ "enabled": false }))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(t.demo.settings().get().enabled);
    let v = admin.send_code(&secret, &t.clock).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    let a = admin
        .put_json("/admin/settings", json!({ "enabled": false }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(!t.demo.settings().get().enabled);
}

/// A new database makes the admin sync an app at the first login, like
/// jsmith.
#[tokio::test]
async fn the_admin_syncs_an_app_at_the_first_login() {
    let t = TestDemo::start();
    assert!(t.demo.users().get("admin").unwrap().require_2fa);
    let mut admin = t.client();
    assert_eq!(admin.login("admin", "demo").await, "enroll");
    let a = admin.get("/admin/settings").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.problem(),
        ("enrollment_required".into(), Some("enroll".into()))
    );
}
