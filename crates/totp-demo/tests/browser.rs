//! The whole flow in a real browser: headless Chromium, driven through
//! ChromeDriver (WebDriver) by fantoccini, against the demo served on a
//! free loopback port.
//!
//! jsmith logs in, is sent to "Sync Authenticator App", the test reads the
//! QR code off the page (a screenshot of the `<img>`, decoded with rqrr),
//! computes the code from the decoded secret, confirms, logs out, logs in
//! again typing the next code with a space in the middle, and lands on the
//! welcome page. Then the admin syncs an app too, switches "TFA for
//! Internal Users" off (a form post through the same-origin layer, with
//! the browser's own `Origin` and `Sec-Fetch-Site`) and jsmith logs in
//! with the password alone. Every page is saved as a
//! screenshot under `target/tmp/browser-screenshots/`.
//!
//! On the way, "Remember this device": a login with a code but without the
//! tick gets the second screen again next time; with the tick, the next
//! login needs the password alone.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`): `scripts/test` installs them. Without them this test
//! fails (it does not skip).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod webdriver;

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, Locator};
use totp_demo::{Database, DemoConfig, PasswordCost, app};
use tower_totp::code::{Algorithm, CodeParams, Hotp, Secret};
use tower_totp::seal::{Keyring, SealingKey};
use webdriver::{CHROMIUM, Driver, browser, missing};

/// How long a page may take to arrive after a click.
const NAVIGATION: Duration = Duration::from_secs(15);

/// Where the screenshots go: `target/tmp/browser-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Session {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Session {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Wait until the browser shows `path` (after a click that navigates).
    async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + NAVIGATION;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected {path}, the browser shows {now}: {}",
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Click something that loads a new page and wait until the old page is
    /// gone. The address alone can't tell: a form may post back to its own
    /// address, and reading right after the click would see the old page.
    async fn click_to_load(&self, css: &str) {
        let old_page = self.client.find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        let deadline = Instant::now() + NAVIGATION;
        while old_page.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "{css} loaded no new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The label of a form control, as a person reads it.
    async fn label_of(&self, id: &str) -> String {
        self.text(&format!("label[for='{id}']")).await
    }

    async fn login(&self, user: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click_to_load("#submit").await;
    }

    /// Open the menu under the user's name and log out.
    async fn logout(&self) {
        self.click("#user-menu summary").await;
        self.click_to_load("#logout").await;
        self.wait_for_path("/login").await;
    }
}

/// The authenticator app the test plays: what the QR code said.
struct App {
    secret: Secret,
    params: CodeParams,
}

impl App {
    /// From an `otpauth://totp/...?secret=...` URI.
    fn from_uri(uri: &str) -> Self {
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        let query = uri.split_once('?').expect("a query").1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} missing from {uri}"))
        };
        let params = CodeParams::new(
            Algorithm::from_str(&get("algorithm")).unwrap(),
            get("digits").parse().unwrap(),
            get("period").parse().unwrap(),
        )
        .unwrap();
        Self {
            secret: Secret::from_base32(&get("secret")).unwrap(),
            params,
        }
    }

    /// The code the app shows now, and its time step. The browser and the
    /// server use real time, so this is the one place the test waits for
    /// the clock: if the step ends in less than 3 s (the code could expire
    /// between typing and the server reading it), or if it is not later
    /// than `after` (a code is accepted once: a person would wait for the
    /// app's next code), wait for the next step.
    async fn fresh_code(&self, after: Option<u64>) -> (String, u64) {
        let period_ms = u128::from(self.params.period()) * 1000;
        loop {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let step = u64::try_from(now_ms / period_ms).unwrap();
            let left_ms = period_ms - now_ms % period_ms;
            if left_ms >= 3_000 && after.is_none_or(|a| step > a) {
                let code = Hotp::new(&self.secret, self.params).code_string(step);
                return (code, step);
            }
            let wait = u64::try_from(left_ms).unwrap() + 100;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

/// Decode the QR code in a PNG (any colour type) into its text.
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let i = (y * w + x) * channels;
        if channels >= 3 {
            let (r, g, b) = (
                u32::from(buf[i]),
                u32::from(buf[i + 1]),
                u32::from(buf[i + 2]),
            );
            u8::try_from((r * 299 + g * 587 + b * 114) / 1000).unwrap()
        } else {
            buf[i]
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsmith_syncs_an_app_and_logs_in_with_chromium() {
    if !Path::new(CHROMIUM).is_file() {
        missing(CHROMIUM);
    }
    let driver = Driver::start();

    // The demo, on a new database, served on a free port.
    let dir = tempfile::tempdir().unwrap();
    let keyring = Keyring::new(1, SealingKey::generate().unwrap());
    let config = DemoConfig::new(Database::File(dir.path().join("demo.sqlite3")), keyring)
        .password_cost(PasswordCost::Minimal);
    let demo = app(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, demo.router()).await });

    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;
    let session = Session {
        client: client.clone(),
        base,
        shots: screenshot_dir(),
    };
    // Run the flow in its own task so the browser is closed even when an
    // assertion fails; then report the failure.
    let flow = tokio::spawn(async move { flow(session).await });
    let outcome = flow.await;
    let _ = client.close().await;
    server.abort();
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// On "Sync Authenticator App": read the QR code, type the app's code, and
/// continue past the recovery codes.
async fn sync_from_qr(s: &Session, user: &str) -> App {
    let qr = s.client.find(Locator::Css("#qr")).await.unwrap();
    let uri = decode_qr(&qr.screenshot().await.unwrap());
    assert!(uri.contains(user), "{uri}");
    let phone = App::from_uri(&uri);
    let (code, _) = phone.fresh_code(None).await;
    s.fill("#code", &code).await;
    s.click_to_load("#submit").await;
    let codes = s
        .client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10, "{}", s.client.source().await.unwrap());
    s.click_to_load("#continue").await;
    phone
}

async fn flow(s: Session) {
    // Login page: user name, password, Submit.
    s.goto("/").await;
    s.wait_for_path("/login").await;
    assert_eq!(s.label_of("username").await, "User name");
    assert_eq!(s.label_of("password").await, "Password");
    assert_eq!(s.text("#submit").await, "Submit");
    s.shot("01-login").await;

    // jsmith must sync an app first: the Authenticator tab with the QR code.
    s.login("jsmith", "demo").await;
    s.wait_for_path("/2fa/enroll").await;
    assert_eq!(
        s.text("nav.tabs [aria-current=page]").await,
        "Authenticator"
    );
    assert_eq!(s.text("h2").await, "Sync Authenticator App");
    assert_eq!(s.label_of("code").await, "Two Factor Authorization Code");
    s.shot("02-sync-authenticator-app").await;

    // Read the QR code as the browser shows it.
    let qr = s.client.find(Locator::Css("#qr")).await.unwrap();
    assert!(
        qr.attr("src")
            .await
            .unwrap()
            .unwrap()
            .ends_with("/2fa/enroll/qr.png")
    );
    let uri = decode_qr(&qr.screenshot().await.unwrap());
    let phone = App::from_uri(&uri);
    assert!(uri.contains("jsmith"), "{uri}");
    // The key shown for typing by hand is the same secret.
    let manual: String = s
        .text("#manual-key")
        .await
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(manual, *phone.secret.to_base32());
    // And as one string to copy whole, in a read-only field.
    let copy = s.client.find(Locator::Css("#key-copy")).await.unwrap();
    assert_eq!(
        copy.prop("value").await.unwrap().as_deref(),
        Some(phone.secret.to_base32().as_str())
    );
    assert!(copy.attr("readonly").await.unwrap().is_some());

    let (code, enrolled_step) = phone.fresh_code(None).await;
    s.fill("#code", &code).await;
    s.click_to_load("#submit").await;
    // The recovery codes, shown once, then home.
    s.wait_for_path("/2fa/enroll").await;
    let codes = s
        .client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10, "{}", s.client.source().await.unwrap());
    s.shot("03-recovery-codes").await;
    s.click_to_load("#continue").await;
    s.wait_for_path("/").await;
    assert_eq!(s.text("#welcome").await, "Welcome, John Smith");
    s.shot("04-welcome").await;

    // The menu under the user's name holds "Sync Authenticator App".
    s.click("#user-menu summary").await;
    assert_eq!(s.text("#user-menu summary").await, "John Smith");
    assert_eq!(
        s.text("#sync-authenticator").await,
        "Sync Authenticator App"
    );
    s.shot("05-user-menu").await;
    s.click_to_load("#logout").await;
    s.wait_for_path("/login").await;

    // Log in again: the second screen, the next code typed with a space.
    s.login("jsmith", "demo").await;
    s.wait_for_path("/2fa").await;
    assert_eq!(s.label_of("method-totp").await, "User Authenticator app");
    assert_eq!(s.label_of("code").await, "Two Factor Authorization Code");
    s.click("#method-totp").await;
    s.shot("06-second-screen").await;
    let (code, code_step) = phone.fresh_code(Some(enrolled_step)).await;
    s.fill("#code", &format!("{} {}", &code[..3], &code[3..]))
        .await;
    s.click_to_load("#submit").await;
    s.wait_for_path("/").await;
    assert_eq!(s.text("#welcome").await, "Welcome, John Smith");
    assert_eq!(
        s.text("#second-factor").await,
        "verified with your authenticator app"
    );
    s.shot("07-welcome-after-code").await;

    // "Remember this device": not ticked above, so the second screen
    // again; ticked now, so the next login needs the password alone.
    s.logout().await;
    s.login("jsmith", "demo").await;
    s.wait_for_path("/2fa").await;
    assert_eq!(s.label_of("remember").await, "Remember this device");
    let remember = s.client.find(Locator::Css("#remember")).await.unwrap();
    assert!(!remember.is_selected().await.unwrap(), "off by default");
    s.click("#remember").await;
    assert!(remember.is_selected().await.unwrap());
    s.shot("08a-remember-this-device").await;
    let (code, _) = phone.fresh_code(Some(code_step)).await;
    s.fill("#code", &code).await;
    s.click_to_load("#submit").await;
    s.wait_for_path("/").await;
    s.logout().await;
    s.login("jsmith", "demo").await;
    s.wait_for_path("/").await;
    assert_eq!(s.text("#second-factor").await, "this device is remembered");
    s.shot("08b-remembered-device").await;

    // Not an admin: no admin pages.
    s.goto("/admin/settings").await;
    assert_eq!(s.text("h1").await, "Forbidden");
    s.shot("08-forbidden").await;
    s.goto("/").await;
    s.logout().await;

    // The admin must sync an app at the first login too; then it switches
    // "TFA for Internal Users" off (a form post the same-origin layer lets
    // through: the browser's own Origin and Sec-Fetch-Site).
    s.login("admin", "demo").await;
    s.wait_for_path("/2fa/enroll").await;
    sync_from_qr(&s, "admin").await;
    s.wait_for_path("/").await;
    assert_eq!(s.text("#welcome").await, "Welcome, Administrator");
    s.click_to_load("a[href='/admin/settings']").await;
    s.wait_for_path("/admin/settings").await;
    assert_eq!(
        s.text("nav.tabs [aria-current=page]").await,
        "Two Factor Auth"
    );
    assert_eq!(s.label_of("enabled").await, "Enable TOTP 2FA");
    let legends = s.client.find_all(Locator::Css("legend")).await.unwrap();
    let mut names = Vec::new();
    for l in legends {
        names.push(l.text().await.unwrap());
    }
    assert_eq!(names, ["TFA for Internal Users", "TFA for External Users"]);
    s.shot("09-admin-two-factor-auth").await;
    s.click("#internal_users-off").await;
    s.click_to_load("#save").await;
    s.wait_for_path("/admin/settings?saved=1").await;
    let off = s
        .client
        .find(Locator::Css("#internal_users-off"))
        .await
        .unwrap();
    assert!(off.is_selected().await.unwrap());
    s.shot("10-admin-saved").await;
    s.goto("/admin/users/jsmith").await;
    assert_eq!(
        s.label_of("require_2fa").await,
        "Require Two Factor Authentication"
    );
    s.shot("11-admin-user-form").await;
    s.logout().await;

    // jsmith now logs in with the password alone.
    s.login("jsmith", "demo").await;
    s.wait_for_path("/").await;
    assert_eq!(s.text("#welcome").await, "Welcome, John Smith");
    assert_eq!(
        s.text("#second-factor").await,
        "not required for your account right now"
    );
    s.shot("12-welcome-password-only").await;
}
