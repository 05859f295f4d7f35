//! The layer in process: what `TotpLayer` costs per request on top of the
//! tower-sessions a service has anyway.
//!
//! ```text
//! cargo bench -p tower-totp-benches --bench layer -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every scenario sends `GET /hello` with a session cookie to the same hello
//! handler, through a clone of the service (`ready().call()`), on a
//! current-thread tokio runtime (criterion's `to_async`). Group `layer`:
//!
//! - `a_bare`: the handler alone;
//! - `b_sessions`: behind `SessionManagerLayer` (tower-sessions'
//!   `MemoryStore`) alone. The handler does not read the session, so
//!   tower-sessions never loads the record;
//! - `b2_sessions_read`: the baseline: the same, but the handler reads one
//!   value from its session (a service that uses its sessions pays this
//!   load anyway);
//! - `c_verified`: sessions and `TotpLayer`, a session whose second step is
//!   done (the layer loads the session, asks the user directory and the
//!   store, both synchronously, and inserts `TotpVerified`);
//! - `d_not_required`: the same stack, a user to whom 2FA does not apply;
//! - `e_challenge`: the same stack, a password-only session of an enrolled
//!   user: refused with a 401 problem.
//!
//! Set-up (password login, enrollment, the second step through the `/2fa`
//! endpoints) happens before any timing, through the same session store,
//! and a check makes sure each session takes its scenario's path.
//!
//! Two reports follow criterion's:
//!
//! - [`ratios`] reads the means criterion has just written
//!   (`target/criterion/layer/<bench>/new/estimates.json`) and prints
//!   (c)/(b) and (c) − (b) in ns; a mean older than this run (a bench
//!   filtered out) is reported as missing, never used;
//! - [`interleaved`] times the same requests again in a loop that
//!   alternates the scenarios, batch by batch, and prints medians of the
//!   per-round ratios and differences. Criterion measures one bench after
//!   the other, so a build starting on the machine halfway through skews
//!   one side; alternating skews both alike. On a busy machine, trust this
//!   one.
//!
//! The goals (issue 13) are against (b2), a service that reads its session
//! anyway: (c)/(b2) at most 1.10 and (d)/(b2) at most 1.05.

// A bench binary: `pub` only shares items between its modules.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::SystemTime;

use criterion::{Criterion, criterion_group};

/// The stacks and the sessions they are measured with.
mod support {
    use std::convert::Infallible;
    use std::fmt::Debug;
    use std::time::Duration;

    use bytes::Bytes;
    use http::{HeaderValue, Request, Response, StatusCode, header};
    use http_body_util::Full;
    use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
    use tower_sessions::{MemoryStore as SessionStore, Session, SessionManagerLayer};
    use tower_totp::clock::{Clock, ManualClock, UnixTime};
    use tower_totp::code::Hotp;
    use tower_totp::http::{StaticDirectory, TotpAuth, TotpVerified};
    use tower_totp::{TotpConfig, TwoFactor, UserId, UserInfo, UserKind};

    pub type Body = Full<Bytes>;

    /// 10 s into a 30 s step.
    const T0: u64 = 1_700_000_010;

    /// The handler every scenario ends in.
    pub async fn hello(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
        Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
    }

    /// The hello handler that also reads one value from its session: the
    /// `b2_sessions_read` reference.
    pub async fn hello_reading_session(req: Request<Body>) -> Result<Response<Body>, Infallible> {
        if let Some(session) = req.extensions().get::<Session>() {
            let value = session.get_value("tower_totp").await.ok().flatten();
            std::hint::black_box(value);
        }
        hello(req).await
    }

    /// What the scenarios share: one session store, one `TotpAuth`, and the
    /// cookies of three logged-in sessions.
    pub struct World {
        pub sessions: SessionStore,
        pub auth: TotpAuth,
        /// Alice: internal, enrolled, second step done.
        pub verified: HeaderValue,
        /// Bob: external, not required (external users are off by default).
        pub not_required: HeaderValue,
        /// Carol: internal, enrolled, password only.
        pub challenged: HeaderValue,
    }

    /// Send `GET /hello` with `cookie` through a clone of `svc`, as a server
    /// does per connection.
    pub async fn send<S, B>(svc: &S, cookie: &HeaderValue) -> StatusCode
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone,
        S::Error: Debug,
    {
        let req = Request::get("/hello")
            .header(header::COOKIE, cookie.clone())
            .body(Body::default())
            .unwrap();
        let mut svc = svc.clone();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        res.status()
    }

    /// A tiny application for the set-up only: `/login?user=NAME` (every
    /// password is right) and the `/2fa` endpoints.
    fn setup_app(
        sessions: SessionStore,
        auth: TotpAuth,
    ) -> impl Service<
        Request<Body>,
        Response = Response<impl http_body::Body>,
        Error = Infallible,
        Future = impl Send,
    > + Clone {
        let endpoints = auth.endpoints();
        let app = service_fn(move |req: Request<Body>| {
            let auth = auth.clone();
            let endpoints = endpoints.clone();
            async move {
                if req.uri().path() == "/login" {
                    let session = req.extensions().get::<Session>().unwrap().clone();
                    let user = req.uri().query().unwrap().strip_prefix("user=").unwrap();
                    auth.password_verified(&session, &UserId::new(user))
                        .await
                        .unwrap();
                    Ok(Response::new(Body::default()))
                } else {
                    endpoints.oneshot(req).await
                }
            }
        });
        ServiceBuilder::new()
            .layer(SessionManagerLayer::new(sessions).with_secure(false))
            .service(app)
    }

    /// Send a request through the set-up app; the session cookie it sets,
    /// or `cookie` unchanged.
    async fn setup_call<S, B>(
        app: &S,
        req: http::request::Builder,
        body: &str,
        cookie: Option<&HeaderValue>,
    ) -> HeaderValue
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    {
        let req = match cookie {
            Some(c) => req.header(header::COOKIE, c.clone()),
            None => req,
        };
        let req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert!(res.status().is_success(), "set-up step: {}", res.status());
        match res.headers().get(header::SET_COOKIE) {
            Some(set) => {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                HeaderValue::from_str(pair).unwrap()
            }
            None => cookie.cloned().expect("a session cookie"),
        }
    }

    impl World {
        pub async fn new() -> Self {
            let clock = ManualClock::new(UnixTime::from_secs(T0));
            let engine = TwoFactor::builder(TotpConfig::new("Bench").unwrap())
                .clock(clock.clone())
                .build()
                .unwrap();
            let users = StaticDirectory::default();
            for (name, kind) in [
                ("alice", UserKind::Internal),
                ("bob", UserKind::External),
                ("carol", UserKind::Internal),
            ] {
                let info = UserInfo {
                    kind,
                    require_2fa: false,
                    display_name: format!("{name} (display name)"),
                };
                users.insert(name, info);
            }
            let auth = TotpAuth::builder(engine.clone(), users).build();
            let sessions = SessionStore::default();
            let app = setup_app(sessions.clone(), auth.clone());

            // Alice and Carol enrol directly with the engine.
            let mut phones = Vec::new();
            for name in ["alice", "carol"] {
                let user = UserId::new(name);
                let e = engine
                    .start_enrollment(&user, name, "Phone", None)
                    .await
                    .unwrap()
                    .unwrap();
                let phone = Hotp::new(e.secret(), e.params());
                let step = e.params().step_at(clock.now());
                let confirmed = engine
                    .confirm_enrollment(
                        &user,
                        e.id(),
                        &phone.code_string(step),
                        tower_totp::ConfirmAs::AnotherAuthenticator,
                    )
                    .await
                    .unwrap();
                assert!(confirmed.is_confirmed());
                phones.push((phone, e.params()));
            }
            clock.advance(Duration::from_secs(30));

            let login = |user: &str| Request::post(format!("/login?user={user}"));
            let verified = setup_call(&app, login("alice"), "", None).await;
            let (phone, params) = &phones[0];
            let code = phone.code_string(params.step_at(clock.now()));
            let verified = setup_call(
                &app,
                Request::post("/2fa"),
                &format!(r#"{{"code":"{code}"}}"#),
                Some(&verified),
            )
            .await;
            let not_required = setup_call(&app, login("bob"), "", None).await;
            let challenged = setup_call(&app, login("carol"), "", None).await;
            Self {
                sessions,
                auth,
                verified,
                not_required,
                challenged,
            }
        }

        /// Check once, outside the timing, that each session takes the
        /// path its scenario names.
        pub async fn check(&self) {
            let check = service_fn(|req: Request<Body>| async move {
                let verified = req.extensions().get::<TotpVerified>().is_some();
                let mut res = Response::new(Body::default());
                *res.status_mut() = if verified {
                    StatusCode::OK
                } else {
                    StatusCode::NO_CONTENT
                };
                Ok::<_, Infallible>(res)
            });
            let svc = ServiceBuilder::new()
                .layer(SessionManagerLayer::new(self.sessions.clone()).with_secure(false))
                .layer(self.auth.layer())
                .service(check);
            assert_eq!(send(&svc, &self.verified).await, StatusCode::OK);
            assert_eq!(send(&svc, &self.not_required).await, StatusCode::NO_CONTENT);
            assert_eq!(send(&svc, &self.challenged).await, StatusCode::UNAUTHORIZED);
        }
    }
}

/// The five scenarios and the reference.
mod layer {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use criterion::{Bencher, Criterion};
    use http::{HeaderValue, StatusCode};
    use tokio::runtime::Runtime;
    use tower::{ServiceBuilder, service_fn};
    use tower_sessions::SessionManagerLayer;

    use super::support::{World, hello, hello_reading_session, send};

    /// Send `n` requests one after the other; how long they took.
    pub type Batch<'a> = Box<dyn FnMut(&Runtime, u32) -> Duration + 'a>;

    /// Criterion's measurement of one request.
    pub type Bench<'a> = Box<dyn for<'b> FnMut(&mut Bencher<'b>, &Runtime) + 'a>;

    /// A scenario: its name, criterion's bench of it, and a batch of it for
    /// the interleaved loop (both send the same request the same way).
    pub struct Scenario<'a> {
        pub name: &'static str,
        pub bench: Bench<'a>,
        pub batch: Batch<'a>,
    }

    pub fn scenarios<'a>(world: &'a World) -> Vec<Scenario<'a>> {
        let sessions = || SessionManagerLayer::new(world.sessions.clone()).with_secure(false);
        let bare = service_fn(hello);
        let with_sessions = ServiceBuilder::new().layer(sessions()).service(bare);
        let with_sessions_read = ServiceBuilder::new()
            .layer(sessions())
            .service(service_fn(hello_reading_session));
        let guarded = ServiceBuilder::new()
            .layer(sessions())
            .layer(world.auth.layer())
            .service(bare);

        macro_rules! scenario {
            ($name:literal, $svc:expr, $cookie:expr, $status:expr) => {{
                let svc = $svc;
                let cookie: &HeaderValue = $cookie;
                let for_bench = svc.clone();
                Scenario {
                    name: $name,
                    bench: Box::new(move |b: &mut Bencher<'_>, rt: &Runtime| {
                        let svc = &for_bench;
                        assert_eq!(rt.block_on(send(svc, cookie)), $status, $name);
                        b.to_async(rt)
                            .iter(|| async move { black_box(send(svc, cookie).await) });
                    }),
                    batch: Box::new(move |rt: &Runtime, n: u32| {
                        rt.block_on(async {
                            let started = Instant::now();
                            for _ in 0..n {
                                black_box(send(&svc, cookie).await);
                            }
                            started.elapsed()
                        })
                    }),
                }
            }};
        }
        let ok = StatusCode::OK;
        vec![
            scenario!("a_bare", bare, &world.verified, ok),
            scenario!("b_sessions", with_sessions, &world.verified, ok),
            scenario!("b2_sessions_read", with_sessions_read, &world.verified, ok),
            scenario!("c_verified", guarded.clone(), &world.verified, ok),
            scenario!("d_not_required", guarded.clone(), &world.not_required, ok),
            scenario!(
                "e_challenge",
                guarded,
                &world.challenged,
                StatusCode::UNAUTHORIZED
            ),
        ]
    }

    pub fn runtime() -> Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn world(rt: &Runtime) -> World {
        rt.block_on(async {
            let world = World::new().await;
            world.check().await;
            world
        })
    }

    pub fn bench(c: &mut Criterion) {
        let rt = runtime();
        let world = world(&rt);
        let mut g = c.benchmark_group("layer");
        for mut s in scenarios(&world) {
            g.bench_function(s.name, |b| (s.bench)(b, &rt));
        }
        g.finish();
    }
}

/// The ratios again, from a loop that alternates the scenarios: criterion
/// measures one bench after the other, so a build starting on the machine
/// halfway through skews one side. Here every round times a batch of each
/// scenario back to back (in an order that rotates each round), and the
/// figures are medians over the rounds of per-round ratios and differences.
mod interleaved {
    use tower_totp_benches::median;

    use super::layer::{runtime, scenarios, world};

    const ROUNDS: usize = 31;
    const BATCH: u32 = 4_000;

    pub fn print() {
        let rt = runtime();
        let world = world(&rt);
        let mut all = scenarios(&world);
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        let base = names.iter().position(|n| *n == "b_sessions").unwrap();
        let reference = names.iter().position(|n| *n == "b2_sessions_read").unwrap();
        // Warm up each once.
        for s in &mut all {
            (s.batch)(&rt, BATCH);
        }
        let mut per_request: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
        for round in 0..ROUNDS {
            let mut this = vec![0.0; all.len()];
            for k in 0..all.len() {
                let i = (k + round) % all.len();
                let took = (all[i].batch)(&rt, BATCH);
                this[i] = took.as_nanos() as f64 / f64::from(BATCH);
            }
            for (i, ns) in this.into_iter().enumerate() {
                per_request[i].push(ns);
            }
        }
        println!(
            "\nlayer, interleaved: {ROUNDS} rounds of {BATCH} requests per scenario; medians over rounds"
        );
        println!(
            "  {:<18} {:>10} {:>14} {:>14} {:>16} {:>16}",
            "scenario",
            "ns/request",
            "/ b_sessions",
            "- b_sessions",
            "/ b2_sessions_read",
            "- b2_sessions_read"
        );
        for (i, name) in names.iter().enumerate() {
            let ratio = |j: usize| {
                let r: Vec<f64> = (0..ROUNDS)
                    .map(|k| per_request[i][k] / per_request[j][k])
                    .collect();
                let d: Vec<f64> = (0..ROUNDS)
                    .map(|k| per_request[i][k] - per_request[j][k])
                    .collect();
                (median(r), median(d))
            };
            let (rb, db) = ratio(base);
            let (rr, dr) = ratio(reference);
            println!(
                "  {name:<18} {:>10.0} {rb:>14.3} {db:>14.0} {rr:>16.3} {dr:>16.0}",
                median(per_request[i].clone())
            );
        }
        println!(
            "  goals: c_verified / b2_sessions_read <= 1.10, d_not_required / b2_sessions_read <= 1.05"
        );
    }
}

/// (c)/(b) and (c) − (b) from the means criterion wrote in this run.
mod ratios {
    use std::time::SystemTime;

    use tower_totp_benches::criterion_mean_ns;

    pub fn print(started: SystemTime) {
        let mean = |bench: &str| criterion_mean_ns("layer", bench, started);
        println!("\nlayer: means of this run, in ns (criterion's estimates)");
        for bench in [
            "a_bare",
            "b_sessions",
            "b2_sessions_read",
            "c_verified",
            "d_not_required",
            "e_challenge",
        ] {
            match mean(bench) {
                Some(ns) => println!("  {bench:<18} {ns:>10.0}"),
                None => println!("  {bench:<18} {:>10}", "not measured in this run"),
            }
        }
        let pair = |x: &str, base: &str, note: &str| {
            if let (Some(xv), Some(bv)) = (mean(x), mean(base)) {
                println!(
                    "  {x} / {base} = {:.3}; {x} - {base} = {:.0} ns {note}",
                    xv / bv,
                    xv - bv,
                );
            }
        };
        pair("c_verified", "b_sessions", "");
        pair("c_verified", "b2_sessions_read", "(goal: <= 1.10)");
        pair("d_not_required", "b2_sessions_read", "(goal: <= 1.05)");
        pair("d_not_required", "b_sessions", "");
        pair("e_challenge", "b_sessions", "");
    }
}

criterion_group!(benches, layer::bench);

/// `LAYER_ONLY=<scenario>:<n>`: send `n` requests of one scenario and exit,
/// without criterion, for instruction counts under valgrind (see
/// `docs/performance.md`): noise-free where wall time is not.
fn only(spec: &str) {
    let (name, n) = spec.split_once(':').expect("LAYER_ONLY=<scenario>:<n>");
    let n: u32 = n.parse().expect("a request count");
    let rt = layer::runtime();
    let world = layer::world(&rt);
    let mut all = layer::scenarios(&world);
    let s = all
        .iter_mut()
        .find(|s| s.name == name)
        .expect("a scenario name");
    (s.batch)(&rt, n);
}

fn main() {
    if let Ok(spec) = std::env::var("LAYER_ONLY") {
        only(&spec);
        return;
    }
    let started = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    if tower_totp_benches::criterion_is_measuring() {
        ratios::print(started);
        interleaved::print();
    }
}
