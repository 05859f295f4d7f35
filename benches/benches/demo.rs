//! The reference web client in process: what a verified `GET /api/me`
//! costs next to `GET /health/live`, through the demo's whole router and no
//! sockets.
//!
//! ```text
//! cargo bench -p tower-totp-benches --bench demo -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! `scripts/loadtest` measures the same two routes over loopback HTTP with
//! wrk, where the kernel's TCP work and wrk itself share the two cores
//! with the demo. This bench takes them away: what is left is the user
//! space cost of the demo's stack (hyper excepted), so a change to the
//! layer, the sessions or the handler shows here first, and without the
//! noise of a load run.
//!
//! - `health`: `GET /health/live`, no session, no layer, no store read
//!   (`GET /health` reads the stores since issue 14; security headers,
//!   the router, a JSON body);
//! - `me`: `GET /api/me` with the session cookie of `jsmith`, whose second
//!   step is done: tower-sessions (memory) loads the session, `TotpLayer`
//!   checks it (the SQLite store with its status cache, as the demo runs
//!   it), the handler answers the user as JSON;
//! - `me_baseline`: the same route of a second demo built with
//!   `DemoConfig::load_baseline` (feature `load-baseline`): the same router,
//!   sessions and answer without `TotpLayer`, the handler reading the
//!   session's user itself after a password login. `me / me_baseline` is
//!   what the layer costs a service over its own session read (the load
//!   run's goal, docs/performance.md).
//!
//! Set-up (the password login and the enrollment with the first code,
//! through the same router on a manual clock) happens before any timing.
//! After criterion, an interleaved loop alternates the two routes batch by
//! batch and prints the median of the per-round ratios (see the layer
//! bench for why). `DEMO_ONLY=<route>:<n>` sends `n` requests of one
//! route (`health`, `me`, `me_baseline`) and exits, for instruction counts
//! under valgrind.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group};
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tempfile::TempDir;
use tokio::runtime::Runtime;
use totp_demo::{Database, DemoConfig, PasswordCost, SESSION_COOKIE, app};
use tower::ServiceExt as _;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::{CodeParams, Hotp, Secret};
use tower_totp::seal::{Keyring, SealingKey};

/// 10 s into a 30 s step.
const T0: u64 = 1_700_000_010;

/// The demo, its data and the verified session; the baseline demo and its
/// password-only session.
struct World {
    router: Router,
    me_cookie: HeaderValue,
    baseline: Router,
    baseline_cookie: HeaderValue,
    _dir: TempDir,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One request through the router; the status, after reading the body.
async fn send(router: &Router, path: &str, cookie: Option<&HeaderValue>) -> StatusCode {
    let mut req = Request::get(path).header(header::ACCEPT, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    black_box(res.into_body().collect().await.unwrap().to_bytes());
    status
}

/// A JSON request during set-up; the answer and the session cookie it set.
async fn json(
    router: &Router,
    path: &str,
    cookie: Option<&str>,
    body: Option<serde_json::Value>,
) -> (serde_json::Value, Option<String>) {
    let mut req = Request::builder()
        .method(if body.is_some() { "POST" } else { "GET" })
        .uri(path)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={c}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let res = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let set = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "{path}: {status} {bytes:?}");
    (serde_json::from_slice(&bytes).unwrap(), set)
}

fn world(rt: &Runtime) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let key = SealingKey::generate().unwrap();
    let config = DemoConfig::new(
        Database::File(dir.path().join("demo.sqlite3")),
        Keyring::new(1, key),
    )
    .password_cost(PasswordCost::Minimal)
    .clock(clock.clone());
    let router = app(config).unwrap().router();
    let baseline = app(DemoConfig::new(
        Database::File(dir.path().join("baseline.sqlite3")),
        Keyring::new(1, SealingKey::generate().unwrap()),
    )
    .password_cost(PasswordCost::Minimal)
    .clock(clock.clone())
    .load_baseline(true))
    .unwrap()
    .router();
    let baseline_cookie = rt.block_on(async {
        let login = serde_json::json!({ "username": "jsmith", "password": "demo" });
        let (_, cookie) = json(&baseline, "/login", None, Some(login)).await;
        cookie.expect("a session cookie")
    });
    let baseline_cookie =
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={baseline_cookie}")).unwrap();
    let cookie = rt.block_on(async {
        let login = serde_json::json!({ "username": "jsmith", "password": "demo" });
        let (next, cookie) = json(&router, "/login", None, Some(login)).await;
        assert_eq!(next["next"], "enroll");
        let cookie = cookie.expect("a session cookie");
        let (page, _) = json(&router, "/2fa/enroll", Some(&cookie), None).await;
        let secret = Secret::from_base32(page["secret"].as_str().unwrap()).unwrap();
        let params = CodeParams::default();
        let code = Hotp::new(&secret, params).code_string(params.step_at(clock.now()));
        let confirm = serde_json::json!({ "code": code });
        let (done, cycled) = json(&router, "/2fa/enroll", Some(&cookie), Some(confirm)).await;
        assert_eq!(done["next"], "done");
        // The session id is cycled after the second step.
        cycled.unwrap_or(cookie)
    });
    let me_cookie = HeaderValue::from_str(&format!("{SESSION_COOKIE}={cookie}")).unwrap();
    let world = World {
        router,
        me_cookie,
        baseline,
        baseline_cookie,
        _dir: dir,
    };
    rt.block_on(async {
        assert_eq!(send(&world.router, "/health/live", None).await, StatusCode::OK);
        assert_eq!(
            send(&world.router, "/api/me", Some(&world.me_cookie)).await,
            StatusCode::OK,
            "the session is verified"
        );
        assert_eq!(
            send(&world.baseline, "/api/me", Some(&world.baseline_cookie)).await,
            StatusCode::OK,
            "the baseline answers after the password"
        );
    });
    world
}

/// The routes, as `DEMO_ONLY` names them.
const ROUTES: [&str; 3] = ["health", "me", "me_baseline"];

/// `n` requests of one route, timed.
fn batch(rt: &Runtime, world: &World, route: &str, n: u32) -> Duration {
    let (router, path, cookie) = match route {
        "health" => (&world.router, "/health/live", None),
        "me" => (&world.router, "/api/me", Some(&world.me_cookie)),
        "me_baseline" => (&world.baseline, "/api/me", Some(&world.baseline_cookie)),
        other => panic!("no route {other}"),
    };
    rt.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            black_box(send(router, path, cookie).await);
        }
        started.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let world = world(&rt);
    let mut group = c.benchmark_group("demo");
    group.bench_function("health", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(send(&world.router, "/health/live", None).await) });
    });
    group.bench_function("me", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(send(&world.router, "/api/me", Some(&world.me_cookie)).await)
        });
    });
    group.bench_function("me_baseline", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(send(&world.baseline, "/api/me", Some(&world.baseline_cookie)).await)
        });
    });
    group.finish();
}

/// Rounds that alternate the routes; the median ratios `me / health` and
/// `me / me_baseline`.
fn interleaved() {
    const ROUNDS: usize = 31;
    const BATCH: u32 = 2_000;
    let rt = runtime();
    let world = world(&rt);
    for route in ROUTES {
        batch(&rt, &world, route, BATCH);
    }
    let mut health = Vec::with_capacity(ROUNDS);
    let mut me = Vec::with_capacity(ROUNDS);
    let mut baseline = Vec::with_capacity(ROUNDS);
    let mut ratio = Vec::with_capacity(ROUNDS);
    let mut to_baseline = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let h = batch(&rt, &world, "health", BATCH).as_secs_f64();
        let m = batch(&rt, &world, "me", BATCH).as_secs_f64();
        let b = batch(&rt, &world, "me_baseline", BATCH).as_secs_f64();
        health.push(h);
        me.push(m);
        baseline.push(b);
        ratio.push(m / h);
        to_baseline.push(b / m);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per = |s: f64| s * 1e9 / f64::from(BATCH);
    println!(
        "demo interleaved ({ROUNDS} rounds of {BATCH}): health {:.0} ns, me {:.0} ns, \
         me_baseline {:.0} ns; me / health {:.2}, throughput of me / me_baseline {:.2} \
         (medians of rounds)",
        per(median(&mut health)),
        per(median(&mut me)),
        per(median(&mut baseline)),
        median(&mut ratio),
        median(&mut to_baseline)
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("DEMO_ONLY") {
        let (route, n) = spec
            .split_once(':')
            .expect("DEMO_ONLY=<health|me|me_baseline>:<n>");
        assert!(ROUTES.contains(&route), "one of {ROUTES:?}");
        let rt = runtime();
        let world = world(&rt);
        batch(&rt, &world, route, n.parse().expect("a request count"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    if tower_totp_benches::criterion_is_measuring() {
        interleaved();
    }
}
