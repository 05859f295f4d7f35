//! `--target URL`: the same fleet over real HTTP to a running server, on
//! real time: a load generator whose phones have skewed clocks.
//!
//! [`TargetDriver`] speaks the JSON contract of the demo (and of
//! [`HttpDriver`](crate::http_driver::HttpDriver)): `POST /login`
//! `{"username","password"}` answering `{"next"}`, `GET /2fa/enroll`
//! (`secret`, `otpauth_uri`), `POST /2fa/enroll` and `POST /2fa` with
//! `{"code"}`, then `POST /logout` (its answer is ignored), each login on a
//! fresh cookie jar. [`WallTimeline`] waits for the wall clock instead of
//! setting a manual one, and ends the run at a deadline or after a number
//! of requests.
//!
//! Each virtual user is one account of the server, given by
//! [`TargetOptions::accounts`]; the fleet enrolls them, so they must have
//! no authenticator yet (a server on a fresh database). The demo seeds
//! `admin`, `jsmith` and `portal`, password `demo`: [`demo_accounts`]
//! gives `admin` and `jsmith`, to whom the demo's default switches apply
//! 2FA (`portal` is external: only after the admin turns "TFA for External
//! Users" on). Only loopback addresses are accepted unless
//! [`TargetOptions::allow_remote`] is set.
//!
//! The server's clock is the wall clock, so the scenario's `start_unix` is
//! replaced by "now": users enrol at once, as fast as the server answers,
//! and log in from one second later on their schedule. A user can have at
//! most one code accepted per step (30 s) — the server refuses the rest as
//! replays, as it should — so a dense schedule mostly measures refusals.
//! The learned offset is not visible over HTTP: `drift_mae_s` stays empty.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_totp::UserId;
use tower_totp::clock::{Clock, SystemClock, UnixTime};

use crate::driver::{
    Account, Driver, DriverError, Enrolled, Outcome, Refusal, WebAnswer, WebRequest,
};
use crate::run::{RunOptions, RunOutput, SimError, run_shards};
use crate::scenario::Model;
use crate::sim::{Timeline, simulate_shard};
use crate::wire::{CodeAnswer, Jar, code_answer, code_body, enrolled_from_json, login_body};
use crate::wire::{next_of, protocol};

pub use crate::target_error::TargetError;

/// How long one request may take before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Time between the start of a run and the first scheduled login.
const LEAD: Duration = Duration::from_secs(1);

/// What a `--target` run needs besides the scenario.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// `http://host:port` of the server.
    pub url: String,
    /// The server's accounts, one per virtual user, in order.
    pub accounts: Vec<Account>,
    /// The run ends at this wall-clock duration at the latest.
    pub max_duration: Duration,
    /// The run ends after this many HTTP requests (all shards together).
    pub max_requests: Option<u64>,
    /// Accept a host that is not a loopback address.
    pub allow_remote: bool,
}

/// The demo's seeded accounts that its default switches ask for a code:
/// `admin` and `jsmith`, with `password` (the demo's default is `demo`).
pub fn demo_accounts(password: &str) -> Vec<Account> {
    ["admin", "jsmith"]
        .into_iter()
        .map(|name| Account {
            id: UserId::new(name),
            password: password.to_owned(),
        })
        .collect()
}

/// Accounts from a text: one `name` or `name:password` a line (`password`
/// when none is given); blank lines and `#` comments are skipped.
///
/// # Errors
///
/// [`TargetError::Accounts`] for a line with an empty name.
pub fn parse_accounts(text: &str, password: &str) -> Result<Vec<Account>, TargetError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, pw) = line.split_once(':').unwrap_or((line, password));
        if name.trim().is_empty() {
            return Err(TargetError::Accounts { line: i + 1 });
        }
        out.push(Account {
            id: UserId::new(name.trim()),
            password: pw.to_owned(),
        });
    }
    Ok(out)
}

/// `url` as `http://host:port` without a trailing slash, refusing a
/// non-loopback host unless `allow_remote`.
///
/// ```
/// use totp_sim::target::check_target;
///
/// assert_eq!(check_target("http://127.0.0.1:3000/", false).unwrap(), "http://127.0.0.1:3000");
/// assert!(check_target("http://[::1]:8080", false).is_ok());
/// assert!(check_target("http://localhost:8080", false).is_ok());
/// assert!(check_target("http://192.0.2.7:3000", false).is_err());
/// assert!(check_target("http://192.0.2.7:3000", true).is_ok());
/// assert!(check_target("https://127.0.0.1:3000", false).is_err());
/// ```
///
/// # Errors
///
/// [`TargetError::Url`] or [`TargetError::Remote`].
pub fn check_target(url: &str, allow_remote: bool) -> Result<String, TargetError> {
    let bad = |why| TargetError::Url {
        url: url.to_owned(),
        why,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// is supported"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("give the server's root, without a path"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback && !allow_remote {
        return Err(TargetError::Remote {
            host: host.to_owned(),
        });
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    Ok(format!("http://{authority}"))
}

/// Run `model` against the server of `target`, on real time.
///
/// The scenario's start becomes now; the run ends when the fleet's
/// schedule is done, at `target.max_duration` or after
/// `target.max_requests`, whichever comes first. `options.driver` is not
/// used; `options.threads` shards run in parallel, each one request at a
/// time.
///
/// # Errors
///
/// [`SimError::Target`] when the URL or the accounts do not fit,
/// [`SimError::Driver`] when the server fails or answers outside the
/// contract (an account already enrolled, a wrong password).
pub fn run_target(
    model: &Model,
    options: &RunOptions,
    target: &TargetOptions,
) -> Result<RunOutput, SimError> {
    let base = check_target(&target.url, target.allow_remote)?;
    if target.accounts.len() < model.users as usize {
        return Err(TargetError::TooFewAccounts {
            users: model.users,
            accounts: target.accounts.len(),
        }
        .into());
    }
    let now = SystemClock.now();
    let mut model = model.clone();
    model.start_ms = now.saturating_add(LEAD).as_millis();
    let accounts: Arc<HashMap<UserId, Account>> = Arc::new(
        target
            .accounts
            .iter()
            .take(model.users as usize)
            .enumerate()
            .map(|(i, a)| (Account::simulated(i as u32).id, a.clone()))
            .collect(),
    );
    let requests = Arc::new(AtomicU64::new(0));
    let deadline = now.saturating_add(target.max_duration);
    let options = RunOptions {
        progress: false,
        ..options.clone()
    };
    let model = &model;
    run_shards(model, &options, |shard, shards, shard_options| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let driver = TargetDriver::new(&base, accounts.clone(), requests.clone());
        let timeline = WallTimeline {
            deadline,
            requests: requests.clone(),
            max_requests: target.max_requests.unwrap_or(u64::MAX),
        };
        Ok(runtime.block_on(simulate_shard(
            model,
            shard,
            shards,
            driver,
            timeline,
            shard_options,
        ))?)
    })
}

/// The real-time [`Timeline`]: waits until the wall clock reaches each
/// event (an event already past happens at once, at the real time), and
/// ends the run at `deadline` or once `max_requests` requests were sent.
#[derive(Debug, Clone)]
pub struct WallTimeline {
    /// No event starts at or after this time.
    pub deadline: UnixTime,
    /// Requests sent so far (shared with the drivers).
    pub requests: Arc<AtomicU64>,
    /// No event starts once this many were sent.
    pub max_requests: u64,
}

impl Timeline for WallTimeline {
    async fn advance_to(&mut self, at: UnixTime) -> Option<UnixTime> {
        if at >= self.deadline || self.requests.load(Ordering::Relaxed) >= self.max_requests {
            return None;
        }
        let now = SystemClock.now();
        if at > now {
            tokio::time::sleep(at.duration_since(now)).await;
        }
        let now = SystemClock.now();
        (now < self.deadline).then_some(if now > at { now } else { at })
    }
}

/// The [`Driver`] over real HTTP (hyper-util's client, HTTP/1): see the
/// [module docs](self) for the requests.
#[derive(Debug, Clone)]
pub struct TargetDriver {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    accounts: Arc<HashMap<UserId, Account>>,
    requests: Arc<AtomicU64>,
    enrolling: Arc<Mutex<HashMap<UserId, Jar>>>,
}

impl TargetDriver {
    /// A driver for the server at `base` (`http://host:port`), logging in
    /// the simulated account `u<N>` as `accounts[u<N>]` (as itself when
    /// missing), counting its requests in `requests`.
    pub fn new(
        base: &str,
        accounts: Arc<HashMap<UserId, Account>>,
        requests: Arc<AtomicU64>,
    ) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_owned(),
            accounts,
            requests,
            enrolling: Arc::default(),
        }
    }

    fn real<'a>(&'a self, account: &'a Account) -> &'a Account {
        self.accounts.get(&account.id).unwrap_or(account)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        jar: &mut Jar,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), DriverError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        self.send_with(method, path, jar, headers, body).await
    }

    /// One request with exactly these headers (and the jar's cookies).
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        jar: &mut Jar,
        headers: http::HeaderMap,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), DriverError> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| DriverError::Transport(Box::new(e)))?;
        let mut req = Request::new(Full::new(body.unwrap_or_default()));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let headers = req.headers_mut();
        if let Some(c) = jar.header() {
            headers.insert(header::COOKIE, c.clone());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| DriverError::Transport(Box::new(e)))?;
            let (parts, body) = res.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| DriverError::Transport(Box::new(e)))?
                .to_bytes();
            Ok::<_, DriverError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|e| DriverError::Transport(Box::new(e)))??;
        jar.update(&parts.headers);
        Ok((parts.status, parts.headers, bytes))
    }

    /// `POST /login`: the `next` member.
    async fn password(&self, account: &Account, jar: &mut Jar) -> Result<String, DriverError> {
        let real = self.real(account);
        let body = login_body(real.id.as_str(), &real.password);
        let (status, _, bytes) = self.send(Method::POST, "/login", jar, Some(body)).await?;
        if status != StatusCode::OK {
            return Err(DriverError::Protocol {
                step: "login",
                detail: format!(
                    "{} refused the password of {}: {}",
                    status,
                    real.id.as_str(),
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
            });
        }
        Ok(next_of(&bytes, "login", status)?.into_owned())
    }

    /// `POST /logout`, answer ignored: the server may drop the session.
    async fn logout(&self, jar: &mut Jar) {
        if jar.header().is_some() {
            let _ = self
                .send(
                    Method::POST,
                    "/logout",
                    jar,
                    Some(Bytes::from_static(b"{}")),
                )
                .await;
        }
    }

    async fn code_step(
        &self,
        path: &str,
        step: &'static str,
        jar: &mut Jar,
        code: &str,
    ) -> Result<Outcome, DriverError> {
        let (status, headers, bytes) = self
            .send(Method::POST, path, jar, Some(code_body(code)))
            .await?;
        let outcome = match code_answer(status, &headers, &bytes, step)? {
            CodeAnswer::Done => Outcome::Accepted {
                learned_offset: None,
                step: None,
            },
            CodeAnswer::Refused(r) => Outcome::Rejected(r),
            CodeAnswer::Throttled(retry_after) => Outcome::Throttled { retry_after },
        };
        self.logout(jar).await;
        Ok(outcome)
    }

    fn enrolling(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Jar>> {
        self.enrolling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Driver for TargetDriver {
    async fn enroll(&self, account: &Account) -> Result<Enrolled, DriverError> {
        let mut jar = Jar::new();
        let next = self.password(account, &mut jar).await?;
        // `done`: 2FA does not apply yet, but anyone logged in may enrol.
        if next != "enroll" && next != "done" {
            self.logout(&mut jar).await;
            return Err(DriverError::Protocol {
                step: "enroll",
                detail: format!(
                    "{} is asked for `{next}`: it has an authenticator already; the fleet \
                     enrolls its accounts, so start the server on a fresh database",
                    self.real(account).id.as_str()
                ),
            });
        }
        let (status, _, bytes) = self
            .send(Method::GET, "/2fa/enroll", &mut jar, None)
            .await?;
        if status != StatusCode::OK {
            return Err(protocol("enroll", status, &bytes));
        }
        let enrolled = enrolled_from_json(&bytes, status)?;
        self.enrolling().insert(account.id.clone(), jar);
        Ok(enrolled)
    }

    async fn confirm(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        let mut jar = self
            .enrolling()
            .remove(&account.id)
            .ok_or(DriverError::Protocol {
                step: "enroll",
                detail: "confirm without an enrollment in progress".into(),
            })?;
        self.code_step("/2fa/enroll", "enroll", &mut jar, code)
            .await
    }

    async fn password_step(
        &self,
        account: &Account,
        jar: &mut Jar,
    ) -> Result<Option<String>, DriverError> {
        self.password(account, jar).await.map(Some)
    }

    async fn exchange(
        &self,
        jar: &mut Jar,
        request: &WebRequest,
    ) -> Result<Option<WebAnswer>, DriverError> {
        let (status, headers, body) = self
            .send_with(
                request.method.clone(),
                &request.path,
                jar,
                request.headers.clone(),
                request.body.clone(),
            )
            .await?;
        Ok(Some(WebAnswer {
            status,
            headers,
            body,
        }))
    }

    async fn login(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        let mut jar = Jar::new();
        match self.password(account, &mut jar).await?.as_str() {
            "totp" => self.code_step("/2fa", "2fa", &mut jar, code).await,
            "enroll" => {
                self.logout(&mut jar).await;
                Ok(Outcome::Rejected(Refusal::NotEnrolled))
            }
            other => {
                self.logout(&mut jar).await;
                Err(DriverError::Protocol {
                    step: "login",
                    detail: format!(
                        "{} is asked for `{other}`, not a code: 2FA does not apply to it \
                         under the server's policy",
                        self.real(account).id.as_str()
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_with_and_without_passwords() {
        let a = parse_accounts("# demo\njsmith\n\nadmin:s3cret\n", "demo").unwrap();
        let got: Vec<_> = a
            .iter()
            .map(|a| (a.id.as_str(), a.password.as_str()))
            .collect();
        assert_eq!(got, [("jsmith", "demo"), ("admin", "s3cret")]);
        assert!(matches!(
            parse_accounts("ok\n:pw\n", "x"),
            Err(TargetError::Accounts { line: 2 })
        ));
    }
}
