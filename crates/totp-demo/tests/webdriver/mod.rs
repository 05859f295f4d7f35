//! What the browser tests share: chromedriver in its own process group
//! (killed by a system call when dropped), a headless Chromium session,
//! and axe-core's accessibility check run inside the page.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
/// How long chromedriver may take to start listening.
const DRIVER_START: Duration = Duration::from_secs(20);

pub fn missing(what: &str) -> ! {
    panic!(
        "the browser test needs {what}; run scripts/test, which installs Debian's \
         chromium and chromium-driver (or: apt-get install -y chromium chromium-driver)"
    )
}

fn find_chromedriver() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(CHROMEDRIVER))
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing("chromedriver on the PATH"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver as a child process in its own process group, so that the
/// Chromium it starts goes down with it when the test ends, even on panic.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let binary = find_chromedriver();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver did not start: {e}; run scripts/test"));
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + DRIVER_START;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {DRIVER_START:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started. A
        // system call, not the `kill` command: Debian's procps-ng 4.0.2
        // misreads `kill -KILL -<pgid>` (seen: `-99999` went to process
        // group 9), which killed unrelated processes, the test runner's
        // among them.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1100,850",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("no Chromium session through chromedriver: {e}"))
}

/// Where `scripts/test` installs axe-core (`npm ci --prefix`).
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/axe/node_modules/axe-core/axe.min.js"
);

/// axe-core's source, or a panic that says how to install it.
pub fn axe_source() -> String {
    std::fs::read_to_string(AXE).unwrap_or_else(|e| {
        panic!(
            "the accessibility test needs axe-core at {AXE} ({e}); run scripts/test, or: \
             npm ci --prefix crates/totp-demo/tests/axe"
        )
    })
}

/// Run axe-core on the page the browser shows, for WCAG 2.0 and 2.1 levels
/// A and AA; the violations, each as `rule: what (selectors)`.
pub async fn axe_violations(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("axe-core loads");
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
               .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' (' + \
                 v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))\
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(result).expect("a list of violations")
}
