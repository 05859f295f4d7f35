//! Accessibility in a real browser: every page of the demo, and every
//! page of the library's default `/2fa` pages (the demo started with
//! [`DemoConfig::library_pages`]), passes axe-core's check for WCAG 2.0 and
//! 2.1 levels A and AA with no violation; and a login with its second step
//! is done with the keyboard alone (typing into the focused element, Tab
//! and Enter; no clicks), the focus in a sensible order and visible.
//!
//! axe-core comes from the npm registry, pinned by
//! `tests/axe/package-lock.json`; `scripts/test` installs it
//! (`npm ci --prefix crates/totp-demo/tests/axe`). Needs Chromium and
//! chromedriver as the browser test does. Without them this test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod webdriver;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use totp_demo::{Database, DemoConfig, PasswordCost, app};
use tower_totp::code::{Algorithm, CodeParams, Hotp, Secret};
use tower_totp::seal::{Keyring, SealingKey};
use webdriver::{CHROMIUM, Driver, axe_source, axe_violations, browser, missing};

const NAVIGATION: Duration = Duration::from_secs(15);

struct Page {
    client: Client,
    base: String,
    axe: String,
    /// Every page checked, and what axe found on it.
    found: Vec<(String, Vec<String>)>,
}

impl Page {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + NAVIGATION;
        while self.path().await != path {
            assert!(
                Instant::now() < deadline,
                "expected {path}, got {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Run axe on the page shown, remembering it as `name`.
    async fn check(&mut self, name: &str) {
        let violations = axe_violations(&self.client, &self.axe).await;
        self.found.push((name.to_owned(), violations));
    }

    /// The `id` of the focused element.
    async fn focused_id(&self) -> String {
        let el = self.client.active_element().await.unwrap();
        el.attr("id").await.unwrap().unwrap_or_default()
    }

    /// Type into the focused element: the keyboard, no clicks.
    async fn type_keys(&self, keys: &str) {
        let el = self.client.active_element().await.unwrap();
        el.send_keys(keys).await.unwrap();
    }

    /// Whether the focused element draws a focus indicator (an outline or
    /// a box shadow).
    async fn focus_visible(&self) -> bool {
        let v = self
            .client
            .execute(
                "const s = getComputedStyle(document.activeElement);\
                 return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';",
                vec![],
            )
            .await
            .unwrap();
        v.as_bool().unwrap_or(false)
    }

    /// Log in through the form with clicks on nothing: fill and submit.
    async fn login(&self, user: &str) {
        self.goto("/login").await;
        let u = self.client.find(Locator::Css("#username")).await.unwrap();
        u.send_keys(user).await.unwrap();
        let p = self.client.find(Locator::Css("#password")).await.unwrap();
        p.send_keys(&format!("demo{}", char::from(Key::Enter)))
            .await
            .unwrap();
        let deadline = Instant::now() + NAVIGATION;
        while self.path().await == "/login" {
            assert!(Instant::now() < deadline, "login did not leave /login");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn submit_code(&self, code: &str) {
        let f = self.client.find(Locator::Css("#code")).await.unwrap();
        f.clear().await.unwrap();
        f.send_keys(&format!("{code}{}", char::from(Key::Enter)))
            .await
            .unwrap();
    }
}

/// The authenticator app: the secret of the key field.
struct Phone {
    secret: Secret,
    params: CodeParams,
}

impl Phone {
    async fn from_page(p: &Page) -> Self {
        let key = p.client.find(Locator::Css("#key-copy")).await.unwrap();
        let key = key.prop("value").await.unwrap().unwrap();
        Self {
            secret: Secret::from_base32(&key).unwrap(),
            params: CodeParams::new(Algorithm::Sha1, 6, 30).unwrap(),
        }
    }

    /// A code with 3 s of its step left, newer than `after`.
    async fn code(&self, after: Option<u64>) -> (String, u64) {
        loop {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let step = u64::try_from(ms / 30_000).unwrap();
            let left = 30_000 - ms % 30_000;
            if left >= 3_000 && after.is_none_or(|a| step > a) {
                return (Hotp::new(&self.secret, self.params).code_string(step), step);
            }
            tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap() + 100)).await;
        }
    }
}

/// Every page a user and the admin see, checked with axe on the way.
async fn visit_every_page(p: &mut Page, library_pages: bool) -> (Phone, u64) {
    p.goto("/login").await;
    p.check("login").await;
    // A wrong password: the login page with its error.
    let u = p.client.find(Locator::Css("#username")).await.unwrap();
    u.send_keys("jsmith").await.unwrap();
    let pw = p.client.find(Locator::Css("#password")).await.unwrap();
    pw.send_keys(&format!("wrong{}", char::from(Key::Enter)))
        .await
        .unwrap();
    p.client
        .wait()
        .for_element(Locator::Css("#error"))
        .await
        .unwrap();
    p.check("login refused").await;

    p.login("jsmith").await;
    p.wait_for_path("/2fa/enroll").await;
    p.check("enroll").await;
    let phone = Phone::from_page(p).await;
    p.submit_code("000000").await;
    p.client
        .wait()
        .for_element(Locator::Css("[role=alert]"))
        .await
        .unwrap();
    p.check("enroll refused").await;
    let (code, step) = phone.code(None).await;
    p.submit_code(&code).await;
    p.client
        .wait()
        .for_element(Locator::Css("#recovery-codes"))
        .await
        .unwrap();
    p.check("recovery codes").await;
    p.goto("/").await;
    p.check("home").await;
    p.goto("/2fa/authenticators").await;
    p.check("authenticators").await;
    p.goto("/2fa/no-such-page").await;
    p.check("refusal page").await;
    p.goto("/admin/settings").await;
    p.check("forbidden").await;

    // The second step of a later login, and its refusal.
    p.client.delete_all_cookies().await.unwrap();
    p.login("jsmith").await;
    p.wait_for_path("/2fa").await;
    p.check("second step").await;
    p.submit_code("000000").await;
    p.client
        .wait()
        .for_element(Locator::Css("[role=alert]"))
        .await
        .unwrap();
    p.check("second step refused").await;
    let (code, step) = phone.code(Some(step)).await;
    p.submit_code(&code).await;
    p.wait_for_path("/").await;

    if !library_pages {
        // The admin pages are the demo's own: once is enough.
        p.client.delete_all_cookies().await.unwrap();
        p.login("admin").await;
        p.wait_for_path("/2fa/enroll").await;
        let admin = Phone::from_page(p).await;
        let (code, _) = admin.code(None).await;
        p.submit_code(&code).await;
        p.client
            .wait()
            .for_element(Locator::Css("#recovery-codes"))
            .await
            .unwrap();
        for path in ["/admin/settings", "/admin/users", "/admin/users/jsmith"] {
            p.goto(path).await;
            p.check(path).await;
        }
    }
    p.client.delete_all_cookies().await.unwrap();
    (phone, step)
}

/// The login and the second step with the keyboard alone.
async fn keyboard_only(p: &Page, phone: &Phone, after: u64) {
    p.goto("/login").await;
    // The user name field has the focus, visibly; Tab goes on to the
    // password, Tab again to Submit.
    assert_eq!(p.focused_id().await, "username");
    assert!(
        p.focus_visible().await,
        "the focused user name field shows no focus"
    );
    p.type_keys("jsmith").await;
    p.type_keys(&char::from(Key::Tab).to_string()).await;
    assert_eq!(p.focused_id().await, "password");
    p.type_keys("demo").await;
    p.type_keys(&char::from(Key::Tab).to_string()).await;
    assert_eq!(p.focused_id().await, "submit");
    assert!(
        p.focus_visible().await,
        "the focused Submit button shows no focus"
    );
    p.type_keys(&char::from(Key::Enter).to_string()).await;
    p.wait_for_path("/2fa").await;
    // The code field has the focus; Enter submits.
    assert_eq!(p.focused_id().await, "code");
    assert!(
        p.focus_visible().await,
        "the focused code field shows no focus"
    );
    // A wrong code: the page again, the error announced, the focus back
    // in the code field.
    p.type_keys(&format!("000000{}", char::from(Key::Enter)))
        .await;
    p.client
        .wait()
        .for_element(Locator::Css("[role=alert]"))
        .await
        .unwrap();
    assert_eq!(p.focused_id().await, "code");
    let (code, _) = phone.code(Some(after)).await;
    p.type_keys(&format!("{code}{}", char::from(Key::Enter)))
        .await;
    p.wait_for_path("/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_and_the_login_works_by_keyboard() {
    if !Path::new(CHROMIUM).is_file() {
        missing(CHROMIUM);
    }
    let axe = axe_source();
    let driver = Driver::start();
    let mut found = Vec::new();
    for library_pages in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::new(1, SealingKey::generate().unwrap());
        let config = DemoConfig::new(Database::File(dir.path().join("demo.sqlite3")), keyring)
            .password_cost(PasswordCost::Minimal)
            .library_pages(library_pages);
        let demo = app(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, demo.router()).await });
        let profile = tempfile::tempdir().unwrap();
        let client = browser(&driver, profile.path()).await;
        let mut page = Page {
            client: client.clone(),
            base,
            axe: axe.clone(),
            found: Vec::new(),
        };
        let flow = tokio::spawn(async move {
            let (phone, step) = visit_every_page(&mut page, library_pages).await;
            keyboard_only(&page, &phone, step).await;
            page.found
        });
        let outcome = flow.await;
        let _ = client.close().await;
        server.abort();
        match outcome {
            Ok(f) => found.extend(f.into_iter().map(|(n, v)| {
                (
                    format!("{}{n}", if library_pages { "library: " } else { "demo: " }),
                    v,
                )
            })),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    drop(driver);
    for (name, v) in &found {
        eprintln!("axe: {name}: {} violations", v.len());
    }
    let bad: Vec<_> = found.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(found.len() > 20, "pages checked: {found:?}");
    assert!(bad.is_empty(), "WCAG A/AA violations: {bad:#?}");
}
