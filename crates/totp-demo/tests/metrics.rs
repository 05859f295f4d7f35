//! `GET /metrics`: the library's counters in the Prometheus text format,
//! moved by exactly what a scripted flow did (an enrollment, a wrong code,
//! a right one, its replay, a malformed code, a recovery code); readable
//! from loopback or with the token, refused (403) otherwise; no user name,
//! code or secret in it.
//!
//! Each test keeps its recorder local to its thread (and drives the demo
//! on a current-thread runtime there), so tests running in parallel do
//! not count each other's logins.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use common::{Answer, TestDemo, app_code};
use http::{Request, StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use totp_demo::{MetricsToken, prometheus_builder};
use tower::ServiceExt as _;

const TOKEN: &str = "scrape-token-0123456789";

/// Run `test` with a recorder local to this thread; `test` gets its handle.
fn with_recorder<F: Future<Output = ()>>(test: impl FnOnce(PrometheusHandle) -> F) {
    let recorder = prometheus_builder().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test(handle));
    });
}

/// `GET /metrics` from `peer` (`None`: no peer address, as in process),
/// with `token` as a bearer token if given.
async fn scrape(demo: &TestDemo, peer: Option<&str>, token: Option<&str>) -> Answer {
    let mut req = Request::get("/metrics");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        let addr: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    Answer::read(demo.demo.router().oneshot(req).await.unwrap()).await
}

/// The samples of a scrape: `name{labels}` to value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn outcome(name: &str) -> String {
    format!("tower_totp_second_step_total{{outcome=\"{name}\"}}")
}

#[test]
fn counters_move_by_exactly_what_the_flow_did() {
    with_recorder(|handle| async move {
        let demo = TestDemo::start_with(|c| c.metrics(handle));
        let before = scrape(&demo, Some("127.0.0.1:50000"), None).await;
        assert_eq!(before.status, StatusCode::OK, "{}", before.text());
        assert!(before.content_type().starts_with("text/plain"));
        let before = samples(&before.text());

        // Enrol jsmith, keeping the recovery codes.
        let mut a = demo.client();
        assert_eq!(a.login("jsmith", "demo").await, "enroll");
        let secret = a.get("/2fa/enroll").await.json()["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let done = a
            .post_json(
                "/2fa/enroll",
                json!({ "code": app_code(&secret, &demo.clock) }),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        let recovery: Vec<String> = done.json()["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        demo.clock.advance(Duration::from_secs(30));

        // A new login: malformed, wrong, right.
        let mut b = demo.client();
        assert_eq!(b.login("jsmith", "demo").await, "totp");
        let code = app_code(&secret, &demo.clock);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        for (sent, status) in [
            ("12ab", StatusCode::UNPROCESSABLE_ENTITY),
            (wrong.as_str(), StatusCode::UNAUTHORIZED),
            (code.as_str(), StatusCode::OK),
        ] {
            let a = b.post_json("/2fa", json!({ "code": sent })).await;
            assert_eq!(
                a.status.is_success(),
                status.is_success(),
                "{sent}: {}",
                a.text()
            );
        }
        // The same code in another session: a replay.
        let mut c = demo.client();
        assert_eq!(c.login("jsmith", "demo").await, "totp");
        let replay = c.post_json("/2fa", json!({ "code": code })).await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
        // A recovery code in a third.
        let mut d = demo.client();
        assert_eq!(d.login("jsmith", "demo").await, "totp");
        let used = d
            .post_json("/2fa", json!({ "recovery_code": recovery[0] }))
            .await;
        assert_eq!(used.status, StatusCode::OK, "{}", used.text());

        let after = scrape(&demo, Some("[::1]:50000"), None).await;
        assert_eq!(after.status, StatusCode::OK);
        let text = after.text();
        let after = samples(&text);
        let moved = |key: &str| {
            after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
        };
        for (name, by) in [
            ("accepted", 1.0),
            ("invalid", 1.0),
            ("replayed", 1.0),
            ("malformed", 1.0),
            ("recovery_code", 1.0),
            ("throttled", 0.0),
            ("not_enrolled", 0.0),
        ] {
            assert_eq!(moved(&outcome(name)), by, "{name} in:\n{text}");
        }
        assert_eq!(moved("tower_totp_enrollments_total"), 1.0, "{text}");
        assert_eq!(moved("tower_totp_lockouts_total"), 0.0);
        assert_eq!(moved("tower_totp_resynchronisations_total"), 0.0);
        // Four TOTP codes decided at login (the enrollment's is not one).
        assert_eq!(
            moved("tower_totp_verification_duration_seconds_count"),
            4.0,
            "{text}"
        );
        assert_eq!(moved("tower_totp_clock_offset_seconds_count"), 1.0);
        // Buckets, not a summary: they add up across instances.
        assert!(
            text.contains("tower_totp_verification_duration_seconds_bucket{le="),
            "{text}"
        );
        assert!(
            !text.contains("store_errors_total"),
            "no store failed:\n{text}"
        );

        // Nothing of who, or of what they typed or hold.
        for secret_thing in [
            "jsmith",
            "John Smith",
            secret.as_str(),
            code.as_str(),
            wrong.as_str(),
            recovery[0].as_str(),
            recovery[1].as_str(),
        ] {
            assert!(!text.contains(secret_thing), "{secret_thing} in:\n{text}");
        }
    });
}

#[test]
fn only_loopback_peers_or_the_token_may_read() {
    with_recorder(|handle| async move {
        let demo = TestDemo::start_with(|c| {
            c.metrics(handle)
                .metrics_token(MetricsToken::new(TOKEN).unwrap())
        });
        for (peer, token, status) in [
            (Some("127.0.0.1:40000"), None, StatusCode::OK),
            (Some("127.8.9.10:40000"), None, StatusCode::OK),
            (Some("[::1]:40000"), None, StatusCode::OK),
            (Some("10.1.2.3:40000"), None, StatusCode::FORBIDDEN),
            (Some("[2001:db8::1]:40000"), None, StatusCode::FORBIDDEN),
            // In process, no peer address: not loopback.
            (None, None, StatusCode::FORBIDDEN),
            (None, Some(TOKEN), StatusCode::OK),
            (Some("10.1.2.3:40000"), Some(TOKEN), StatusCode::OK),
            (
                Some("10.1.2.3:40000"),
                Some("scrape-token-012345678"),
                StatusCode::FORBIDDEN,
            ),
            (
                Some("10.1.2.3:40000"),
                Some("scrape-token-0123456789x"),
                StatusCode::FORBIDDEN,
            ),
            (Some("10.1.2.3:40000"), Some(""), StatusCode::FORBIDDEN),
        ] {
            let a = scrape(&demo, peer, token).await;
            assert_eq!(a.status, status, "{peer:?} {token:?}: {}", a.text());
            if status == StatusCode::FORBIDDEN {
                assert_eq!(a.problem().0, "forbidden");
                assert!(!a.text().contains("tower_totp"), "{}", a.text());
            }
        }
    });
}

#[test]
fn without_a_token_no_bearer_opens_it() {
    with_recorder(|handle| async move {
        let demo = TestDemo::start_with(|c| c.metrics(handle));
        let a = scrape(&demo, Some("10.1.2.3:40000"), Some(TOKEN)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());
        let a = scrape(&demo, None, Some("")).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text());
    });
}

#[tokio::test]
async fn without_a_recorder_there_is_no_route() {
    let demo = TestDemo::start();
    let a = scrape(&demo, Some("127.0.0.1:40000"), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text());
}

/// `GET /metrics` over TCP to `addr`: the status and the body.
fn get_over_tcp(addr: SocketAddr, token: Option<&str>) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// This host's address on its default route, if it has one that is not
/// loopback (a UDP "connection" sends nothing; it only picks the route).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The binary serves with the connection's peer address: a loopback
/// client reads the metrics, another address needs the token.
#[test]
fn the_binary_tells_loopback_from_other_peers() {
    let dir = tempfile::tempdir().unwrap();
    let port = tower_totp_testkit::server::free_port();
    let child = tower_totp_testkit::server::process::start(
        std::process::Command::new(env!("CARGO_BIN_EXE_totp-demo"))
            .arg("--listen")
            .arg(format!("0.0.0.0:{port}"))
            .arg("--db")
            .arg(dir.path().join("demo.sqlite3"))
            .arg("--metrics-token")
            .arg(TOKEN),
        "open http://",
    )
    .unwrap();
    let _stopped_at_the_end = Stop(child);
    let loopback: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (status, _) = get_over_tcp(loopback, None);
    assert_eq!(status, 200);
    match non_loopback_address() {
        Some(ip) => {
            let other = SocketAddr::new(ip, port);
            let (status, body) = get_over_tcp(other, None);
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("\"reason\":\"forbidden\""), "{body}");
            assert_eq!(get_over_tcp(other, Some(TOKEN)).0, 200);
            assert_eq!(get_over_tcp(other, Some("not-the-token")).0, 403);
        }
        None => eprintln!("no address other than loopback here: only the loopback case ran"),
    }
}

/// Stops the demo process when the test ends, failed or not.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        tower_totp_testkit::server::process::stop(&mut self.0);
    }
}
