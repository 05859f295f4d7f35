//! Correct codes per second over HTTP: many users whose password step is
//! done each send one correct code to `POST /2fa`, `--concurrency` at a
//! time, and the run reports how many were accepted per second, with the
//! latency of each request. `scripts/loadtest` runs it against the demo
//! with the SQLite store and with Redis (docs/performance.md, "Codes over
//! HTTP").
//!
//! ```text
//! totp-demo --load-users 2000 ...   # a demo built with --features load-baseline
//! code-load --url http://127.0.0.1:PORT --users 2000 --concurrency 32
//! ```
//!
//! Set-up, not timed: each account `load-1` .. `load-N` logs in with its
//! password, enrolls (`GET /2fa/enroll` for the secret, `POST /2fa/enroll`
//! with the current code), logs out, and logs in with its password again,
//! so that its session waits for the second step. Timed: one `POST /2fa`
//! per user with a correct code. A step used at enrollment cannot be used
//! again, so a user whose enrollment used the current step sends the next
//! step's code, which the window (one step each way) accepts: every timed
//! code is one the server must accept, not a replay.
//!
//! The accounts must have no authenticator yet (a fresh database).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use tower_totp::clock::{Clock, SystemClock};
use tower_totp::code::{CodeParams, Hotp, Secret};

/// Correct codes per second over HTTP.
#[derive(Debug, Parser)]
#[command(name = "code-load")]
struct Flags {
    /// `http://127.0.0.1:PORT` of a demo started with `--load-users`.
    #[arg(long)]
    url: String,
    /// Accounts `load-1` .. `load-N`, one timed code each.
    #[arg(long, default_value_t = 2000)]
    users: u32,
    /// Their password.
    #[arg(long, default_value = "demo")]
    password: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One user's browser: its cookies.
#[derive(Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &http::HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Some((name, value)) = value
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            self.0.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// A JSON request with the jar's cookies; the status and the JSON answer.
async fn send(
    client: &HttpClient,
    base: &str,
    jar: &mut Jar,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(StatusCode, serde_json::Value), String> {
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, jar.header())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let res = client
        .request(req)
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    jar.keep(res.headers());
    let status = res.status();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{path}: {e}"))?
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

fn next_of(json: &serde_json::Value) -> &str {
    json.get("next")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
}

/// A user ready for the timed code: the pending session and the phone.
struct Ready {
    jar: Jar,
    phone: Hotp,
    /// The step the enrollment used: the timed code is for a later one.
    used_step: u64,
}

async fn prepare(
    client: &HttpClient,
    base: &str,
    user: &str,
    password: &str,
) -> Result<Ready, String> {
    let login = serde_json::json!({ "username": user, "password": password });
    let mut jar = Jar::default();
    let (_, json) = send(
        client,
        base,
        &mut jar,
        Method::POST,
        "/login",
        Some(login.clone()),
    )
    .await?;
    if next_of(&json) != "enroll" {
        return Err(format!(
            "{user}: login answered {json} (enrolled already? use a fresh database)"
        ));
    }
    let (_, json) = send(client, base, &mut jar, Method::GET, "/2fa/enroll", None).await?;
    let secret = json
        .get("secret")
        .and_then(|s| s.as_str())
        .and_then(|s| Secret::from_base32(s).ok())
        .ok_or_else(|| format!("{user}: no secret in GET /2fa/enroll"))?;
    let params = CodeParams::default();
    let phone = Hotp::new(&secret, params);
    let used_step = params.step_at(SystemClock.now());
    let code = serde_json::json!({ "code": phone.code_string(used_step) });
    let (_, json) = send(
        client,
        base,
        &mut jar,
        Method::POST,
        "/2fa/enroll",
        Some(code),
    )
    .await?;
    if next_of(&json) != "done" {
        return Err(format!("{user}: enrollment answered {json}"));
    }
    send(client, base, &mut jar, Method::POST, "/logout", None).await?;
    let mut jar = Jar::default();
    let (_, json) = send(client, base, &mut jar, Method::POST, "/login", Some(login)).await?;
    if next_of(&json) != "totp" {
        return Err(format!("{user}: second login answered {json}"));
    }
    Ok(Ready {
        jar,
        phone,
        used_step,
    })
}

/// The timed request: one correct code; its latency, or why it failed.
async fn submit(client: &HttpClient, base: &str, mut user: Ready) -> Result<Duration, String> {
    let params = CodeParams::default();
    let step = params.step_at(SystemClock.now()).max(user.used_step + 1);
    let body = serde_json::json!({ "code": user.phone.code_string(step) });
    let started = Instant::now();
    let (status, json) = send(
        client,
        base,
        &mut user.jar,
        Method::POST,
        "/2fa",
        Some(body),
    )
    .await?;
    let took = started.elapsed();
    if status == StatusCode::OK && next_of(&json) == "done" {
        Ok(took)
    } else {
        Err(format!("POST /2fa answered {status} {json}"))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(flags: Flags) -> Result<(), String> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = flags.url.trim_end_matches('/').to_owned();
    let gate = Arc::new(Semaphore::new(flags.concurrency.max(1)));

    eprintln!(
        "code-load: preparing {} users (password, enrollment, password again)",
        flags.users
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=flags.users {
        let (client, base, gate, password) = (
            client.clone(),
            base.clone(),
            Arc::clone(&gate),
            flags.password.clone(),
        );
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            prepare(&client, &base, &format!("load-{i}"), &password).await
        });
    }
    let mut ready = Vec::with_capacity(flags.users as usize);
    while let Some(joined) = tasks.join_next().await {
        ready.push(joined.map_err(|e| e.to_string())??);
    }

    eprintln!(
        "code-load: {} codes, {} in flight",
        ready.len(),
        flags.concurrency
    );
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for user in ready {
        let (client, base, gate) = (client.clone(), base.clone(), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            submit(&client, &base, user).await
        });
    }
    let mut latencies = Vec::with_capacity(flags.users as usize);
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| e.to_string())? {
            Ok(took) => latencies.push(took),
            Err(why) => failures.push(why),
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let accepted = latencies.len();
    println!(
        "codes accepted: {accepted} of {} in {:.3} s: {:.0} codes/s",
        accepted + failures.len(),
        elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 90.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3
    );
    if let Some(first) = failures.first() {
        return Err(format!(
            "{} codes not accepted; the first: {first}",
            failures.len()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("code-load: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("code-load: {e}");
            ExitCode::FAILURE
        }
    }
}
