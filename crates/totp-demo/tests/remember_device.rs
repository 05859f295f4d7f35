//! "Remember this device" through HTTP, as a browser does it (forms, and
//! a jar that keeps every cookie, the device cookie too): off by default,
//! a ticked box spares the second screen at the next login on that
//! browser for 30 days, no tick means the second screen again, and
//! another browser is never spared.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::{Answer, TestDemo, app_code};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::json;
use totp_demo::REMEMBER_FOR;
use tower::ServiceExt as _;

/// The library's remember-device cookie.
const DEVICE_COOKIE: &str = "tower_totp_device";

/// A browser: pages, forms, and every cookie the demo sets.
struct Browser {
    router: Router,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(demo: &TestDemo) -> Self {
        Self {
            router: demo.demo.router(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "text/html,application/xhtml+xml");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let body = match form {
            Some(fields) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                serde_urlencoded::to_string(fields).unwrap()
            }
            None => String::new(),
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, rest) = set.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap_or_default();
            if value.is_empty() || set.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer::read(res).await
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.send(Method::POST, path, Some(fields)).await
    }

    /// Log in with the password and follow the redirects: the page the
    /// browser ends on, and its path.
    async fn login(&mut self, user: &str) -> (String, Answer) {
        let mut a = self
            .post("/login", &[("username", user), ("password", "demo")])
            .await;
        let mut path = "/login".to_owned();
        while a.status == StatusCode::SEE_OTHER {
            path = a.location().to_owned();
            a = self.get(&path).await;
        }
        (path, a)
    }

    async fn logout(&mut self) {
        let a = self.post("/logout", &[]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        assert_eq!(a.location(), "/login");
    }
}

/// jsmith syncs an app in `b`: the secret.
async fn enroll(demo: &TestDemo, b: &mut Browser) -> String {
    let (path, _) = b.login("jsmith").await;
    assert_eq!(path, "/2fa/enroll");
    // The secret, as a script sees it (the same pending enrollment).
    let mut req = Request::builder().uri("/2fa/enroll");
    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    req = req.header(header::COOKIE, jar.join("; "));
    let res = b
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let secret = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = b
        .post("/2fa/enroll", &[("code", &app_code(&secret, &demo.clock))])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done.text().contains("recovery-codes"));
    b.logout().await;
    secret
}

/// Past the step of the last accepted code.
fn next_step(demo: &TestDemo) {
    demo.clock.advance(Duration::from_secs(30));
}

#[tokio::test]
async fn a_ticked_box_spares_the_second_screen_on_that_browser_only() {
    let demo = TestDemo::start();
    let mut b = Browser::new(&demo);
    let secret = enroll(&demo, &mut b).await;

    // The second screen offers the box, not ticked.
    let (path, page) = b.login("jsmith").await;
    assert_eq!(path, "/2fa");
    let html = page.text();
    assert!(
        html.contains("<label for=\"remember\">Remember this device</label>"),
        "{html}"
    );
    let input = &html[html.find("id=\"remember\"").unwrap()..];
    let input = &input[..input.find('>').unwrap()];
    assert!(!input.contains("checked"), "off by default: {input}");

    // Ticked: the code logs in and the device cookie comes with it.
    next_step(&demo);
    let ok = b
        .post(
            "/2fa",
            &[
                ("method", "totp"),
                ("code", &app_code(&secret, &demo.clock)),
                ("remember", "on"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    let set = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(DEVICE_COOKIE))
        .expect("a device cookie");
    assert!(
        set.contains(&format!("Max-Age={}", REMEMBER_FOR.as_secs())),
        "{set}"
    );
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(
        !set.contains("Secure"),
        "plain HTTP demo: the session cookie is not Secure either"
    );
    b.logout().await;

    // The password alone now: no second screen.
    let (path, home) = b.login("jsmith").await;
    assert_eq!(path, "/", "{}", home.text());
    assert!(
        home.text().contains("this device is remembered"),
        "{}",
        home.text()
    );
    b.logout().await;

    // Another browser with the same password still gets the second screen.
    let mut other = Browser::new(&demo);
    let (path, _) = other.login("jsmith").await;
    assert_eq!(path, "/2fa");

    // 30 days later the device is forgotten.
    demo.clock.advance(REMEMBER_FOR);
    let (path, _) = b.login("jsmith").await;
    assert_eq!(path, "/2fa");
}

#[tokio::test]
async fn without_the_tick_the_next_login_asks_again() {
    let demo = TestDemo::start();
    let mut b = Browser::new(&demo);
    let secret = enroll(&demo, &mut b).await;
    let (path, _) = b.login("jsmith").await;
    assert_eq!(path, "/2fa");
    next_step(&demo);
    let ok = b
        .post(
            "/2fa",
            &[
                ("method", "totp"),
                ("code", &app_code(&secret, &demo.clock)),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert!(!b.cookies.contains_key(DEVICE_COOKIE));
    b.logout().await;
    let (path, page) = b.login("jsmith").await;
    assert_eq!(path, "/2fa");
    assert!(page.text().contains("Two Factor Authorization Code"));
}

#[tokio::test]
async fn a_script_ticks_it_with_remember_true() {
    let demo = TestDemo::start();
    let mut b = Browser::new(&demo);
    let secret = enroll(&demo, &mut b).await;
    let mut c = demo.client();
    assert_eq!(c.login("jsmith", "demo").await, "totp");
    next_step(&demo);
    let ok = c
        .post_json(
            "/2fa",
            json!({ "code": app_code(&secret, &demo.clock), "remember": true }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let device = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(DEVICE_COOKIE))
        .expect("a device cookie");
    let value = device
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    // The cookie moved into the browser: its password alone is enough.
    b.cookies.insert(DEVICE_COOKIE.into(), value);
    let (path, _) = b.login("jsmith").await;
    assert_eq!(path, "/");
}
