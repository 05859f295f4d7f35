//! [`HttpDriver`]: the [`Driver`] over a complete in-process service, as
//! a deployed one runs: the same-origin check
//! ([`TotpAuth::same_origin`], a `SameOriginLayer::new()`: unsafe requests
//! from another origin refused with 403 `cross_origin`) outside,
//! tower-sessions' `SessionManagerLayer` inside it (over
//! [`ShardedSessions`], the simulator's in-memory session store, which
//! threads share without queueing on one lock),
//! and inside those the test kit's reference application
//! ([`tower_totp_testkit::app`]): a password login, the `/2fa` endpoints
//! and `TotpLayer` around the protected routes. Real `http::Request`s go
//! through `tower::Service`; no sockets.
//!
//! | Route | What |
//! |---|---|
//! | `POST /login` | JSON `{"username","password"}`; the password of `u<N>` is `pw-<N>` (a string comparison: a real service's hash is its own cost); then `TotpAuth::password_verified`, answering `{"next": …}` |
//! | `/2fa…` | `TotpAuth::endpoints` |
//! | `GET /hello` | behind the layer: 200 with `second_factor.factor` `verified` once the second step is done |
//!
//! Every simulated user is internal with "Require Two Factor
//! Authentication" set, under the default policy.
//!
//! ```
//! use totp_sim::driver::{Account, CodeText, Driver};
//! use totp_sim::http_driver::HttpDriver;
//! use tower_totp::clock::{ManualClock, UnixTime};
//! use tower_totp::code::Hotp;
//! use tower_totp::TotpConfig;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
//! let driver = HttpDriver::simulated(TotpConfig::new("Acme").unwrap(), clock.clone(), true, 7)
//!     .unwrap()
//!     .confirm_access(true);
//! let me = Account::simulated(0);
//! let enrolled = driver.enroll(&me).await.unwrap(); // POST /login, GET /2fa/enroll
//! let phone = Hotp::new(&enrolled.secret, enrolled.params);
//! let step = enrolled.params.step_at(UnixTime::from_secs(1_700_000_010));
//! let code = CodeText::new(phone.code(step), 6);
//! assert!(driver.confirm(&me, code.as_str()).await.unwrap().is_accepted()); // POST /2fa/enroll
//!
//! clock.set(UnixTime::from_secs(1_700_000_040)); // the next step
//! let code = CodeText::new(phone.code(step + 1), 6);
//! // POST /login, POST /2fa, GET /hello
//! assert!(driver.login(&me, code.as_str()).await.unwrap().is_accepted());
//! # });
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};
use tower_sessions::SessionStore as _;
use tower_sessions::session::Id;
use tower_totp::clock::ManualClock;
use tower_totp::http::{Next, TotpAuth, TotpBody, UserDirectory};
use tower_totp::store::StoreError;
use tower_totp::{TotpConfig, TwoFactor, UserId, UserInfo, UserKind};
use tower_totp_testkit::app;

use crate::driver::{
    Account, Driver, DriverError, Enrolled, Outcome, Refusal, WebAnswer, WebRequest,
};
use crate::engine_driver::{SeededSecrets, simulated_engine, stored_sync};
use crate::sessions::ShardedSessions;
use crate::wire::{
    CodeAnswer, Jar, code_answer, code_body, enrolled_from_json, login_body, next_of, protocol,
    set_cookie_pair,
};

/// The session cookie's name (tower-sessions' default).
const SESSION_COOKIE: &str = "id";

/// The whole service: the same-origin check, then the reference app
/// (sessions, the login, the endpoints, the layer around the pages); boxed,
/// as the cookie manager's type is not public.
pub type Stack = BoxCloneSyncService<Request<Full<Bytes>>, Response<StackBody>, Infallible>;

/// The body of the [`Stack`]'s answers (the reference app's, or a refusal
/// of the same-origin check), boxed.
pub type StackBody = app::Body;

/// The [`Driver`] over the in-process [`Stack`].
///
/// A login is two requests: `POST /login`, then `POST /2fa` with the code,
/// each on a fresh session (logins of one user may overlap). With
/// [`HttpDriver::confirm_access`] a third, `GET /hello`, checks that the
/// session now opens a protected route; it is not counted as an attempt
/// (`logins_per_s` counts code checks either way). The session is then
/// deleted from the session store, as its expiry would, so that a long run
/// does not keep millions of them.
///
/// The learned offset and the matched step of an accepted code are read
/// back from the engine's store (one lookup), as HTTP does not show them.
#[derive(Debug, Clone)]
pub struct HttpDriver {
    stack: Stack,
    sessions: ShardedSessions,
    auth: TotpAuth,
    secrets: Option<SeededSecrets>,
    confirm_access: bool,
    read_back: bool,
    /// The session of each enrollment between [`Driver::enroll`] and
    /// [`Driver::confirm`], and its pending id when the driver knows it
    /// (seeded secrets).
    enrolling: Arc<Mutex<HashMap<UserId, Enrolling>>>,
}

impl HttpDriver {
    /// The simulator's engine ([`simulated_engine`]: memory store, `clock`,
    /// secrets from `seed`) behind the in-process stack. The seeded secret
    /// is stored as the user's pending enrollment just before
    /// `GET /2fa/enroll`, which shows a pending enrollment instead of
    /// drawing a new secret, so runs are reproducible down to every code
    /// and give exactly the figures of
    /// [`EngineDriver`](crate::engine_driver::EngineDriver).
    ///
    /// # Errors
    ///
    /// [`DriverError::Engine`] if the engine cannot be built.
    pub fn simulated(
        config: TotpConfig,
        clock: ManualClock,
        drift_tracking: bool,
        seed: u64,
    ) -> Result<Self, DriverError> {
        let (tfa, secrets) = simulated_engine(config, clock, drift_tracking, seed)?;
        let mut driver = Self::from_engine(tfa);
        driver.secrets = Some(secrets);
        Ok(driver)
    }

    /// The stack over an engine built elsewhere: `GET /2fa/enroll` draws
    /// each secret from the operating system, as in production, so secrets
    /// (and code collisions) differ from run to run.
    pub fn from_engine(tfa: TwoFactor) -> Self {
        let auth = TotpAuth::builder(tfa, FleetDirectory).build();
        let sessions = ShardedSessions::default();
        let app = app::Stack::new()
            .session_store(sessions.clone())
            .password_check(password_is_right)
            .build(&auth, &Arc::default());
        // Outside everything, as a deployed service places it: a refused
        // cross-origin request touches no session and no handler.
        let stack = BoxCloneSyncService::new(
            ServiceBuilder::new()
                .map_response(|res: Response<TotpBody<StackBody>>| res.map(BodyExt::boxed))
                .layer(auth.same_origin())
                .service(app),
        );
        Self {
            stack,
            sessions,
            auth,
            secrets: None,
            confirm_access: false,
            read_back: true,
            enrolling: Arc::default(),
        }
    }

    /// After each accepted code, also `GET /hello` with the new session and
    /// fail the run ([`DriverError::Protocol`]) unless it answers 200 with
    /// the second factor verified.
    #[must_use]
    pub fn confirm_access(mut self, on: bool) -> Self {
        self.confirm_access = on;
        self
    }

    /// After each accepted code, read the learned offset and the matched
    /// step back from the engine's store (on by default: a run's drift
    /// figures need them). Off, an accepted login reports neither, as over a
    /// real network, and costs one store lookup less: the login benchmark
    /// ([`LoginBench`](crate::bench::LoginBench)) turns it off, since the
    /// lookup is the simulator's, not the login's.
    #[must_use]
    pub fn read_back(mut self, on: bool) -> Self {
        self.read_back = on;
        self
    }

    /// The `TotpAuth` handle (engine, policy).
    pub fn auth(&self) -> &TotpAuth {
        &self.auth
    }

    /// The whole service, to send requests of one's own.
    pub fn service(&self) -> Stack {
        self.stack.clone()
    }

    async fn send(
        &self,
        method: Method,
        uri: &'static str,
        cookie: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<(http::response::Parts, Bytes), DriverError> {
        let json = body.is_some();
        let mut req = Request::new(Full::new(body.unwrap_or_default()));
        *req.method_mut() = method;
        *req.uri_mut() = Uri::from_static(uri);
        let headers = req.headers_mut();
        if json {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(c) = cookie {
            headers.insert(header::COOKIE, c.clone());
        }
        let res = match self.stack.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(DriverError::Transport)?
            .to_bytes();
        Ok((parts, bytes))
    }

    /// `POST /login`: what comes next, and the session.
    async fn password(&self, account: &Account) -> Result<(Next, HeaderValue), DriverError> {
        let body = login_body(account.id.as_str(), &account.password);
        let (parts, bytes) = self.send(Method::POST, "/login", None, Some(body)).await?;
        if parts.status != StatusCode::OK {
            return Err(protocol("login", parts.status, &bytes));
        }
        let next = match next_of(&bytes, "login", parts.status)?.as_ref() {
            "totp" => Next::Totp,
            "enroll" => Next::Enroll,
            "done" => Next::Done,
            _ => return Err(protocol("login", parts.status, &bytes)),
        };
        let cookie = set_cookie_pair(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| protocol("login", parts.status, b"no session cookie"))?;
        Ok((next, cookie))
    }

    /// The outcome of an accepted code: the learned offset and step, read
    /// back from the store.
    async fn accepted(&self, user: &UserId) -> Result<Outcome, DriverError> {
        stored_sync(self.auth.engine(), user).await
    }

    /// Delete a finished login's session from the session store.
    async fn forget(&self, cookie: &HeaderValue) {
        let id = cookie
            .to_str()
            .ok()
            .and_then(|c| c.strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
            .and_then(|v| v.parse::<Id>().ok());
        if let Some(id) = id {
            // The memory store cannot fail.
            let _ = self.sessions.delete(&id).await;
        }
    }

    async fn code_step(
        &self,
        account: &Account,
        uri: &'static str,
        step: &'static str,
        cookie: HeaderValue,
        code: &str,
    ) -> Result<Outcome, DriverError> {
        let (parts, bytes) = self
            .send(Method::POST, uri, Some(&cookie), Some(code_body(code)))
            .await?;
        // Cycled after a success.
        let cookie = set_cookie_pair(&parts.headers, SESSION_COOKIE).unwrap_or(cookie);
        let answer = code_answer(parts.status, &parts.headers, &bytes, step);
        let outcome = match answer {
            Ok(CodeAnswer::Done) => {
                if self.confirm_access {
                    let (p, b) = self
                        .send(Method::GET, "/hello", Some(&cookie), None)
                        .await?;
                    if p.status != StatusCode::OK || !verified(&b) {
                        self.forget(&cookie).await;
                        return Err(protocol("hello", p.status, &b));
                    }
                }
                if self.read_back {
                    self.accepted(&account.id).await
                } else {
                    Ok(Outcome::Accepted {
                        learned_offset: None,
                        step: None,
                    })
                }
            }
            Ok(CodeAnswer::Refused(r)) => Ok(Outcome::Rejected(r)),
            Ok(CodeAnswer::Throttled(retry_after)) => Ok(Outcome::Throttled { retry_after }),
            Err(e) => Err(e),
        };
        self.forget(&cookie).await;
        outcome
    }

    /// `GET /2fa/enroll` in the session of `cookie`: what the phone scans.
    async fn enroll_page(&self, cookie: &HeaderValue) -> Result<Enrolled, DriverError> {
        let (parts, bytes) = self
            .send(Method::GET, "/2fa/enroll", Some(cookie), None)
            .await?;
        if parts.status != StatusCode::OK {
            self.forget(cookie).await;
            return Err(protocol("enroll", parts.status, &bytes));
        }
        enrolled_from_json(&bytes, parts.status)
    }

    /// Forget an enrollment the driver will not confirm: its session, and
    /// its pending enrollment when the id is known (a user who starts over
    /// abandons the earlier setup; otherwise it would count against the
    /// pending-enrollment cap until it expires).
    async fn abandon(&self, user: &UserId, e: Enrolling) -> Result<(), DriverError> {
        self.forget(&e.cookie).await;
        if let Some(id) = e.pending {
            self.auth.engine().cancel_enrollment(user, &id).await?;
        }
        Ok(())
    }

    fn enrolling(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Enrolling>> {
        self.enrolling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Driver for HttpDriver {
    async fn enroll(&self, account: &Account) -> Result<Enrolled, DriverError> {
        let (next, cookie) = self.password(account).await?;
        if next != Next::Enroll {
            self.forget(&cookie).await;
            return Err(DriverError::Protocol {
                step: "login",
                detail: format!(
                    "{} is asked for {:?}, not to enrol",
                    account.id.as_str(),
                    next
                ),
            });
        }
        let old = self.enrolling().remove(&account.id);
        if let Some(old) = old {
            self.abandon(&account.id, old).await?;
        }
        let mut enrolled = self.enroll_page(&cookie).await?;
        let mut pending = None;
        if let Some(secrets) = &self.secrets {
            // The page started this session's own enrollment: put the
            // seeded secret in its place, and show the page again.
            let engine = self.auth.engine();
            let id = secrets
                .newest_pending(&account.id)
                .ok_or_else(|| protocol("enroll", StatusCode::OK, b"no pending enrollment"))?;
            secrets.reseed(engine, &account.id, &id).await?;
            enrolled = self.enroll_page(&cookie).await?;
            pending = Some(id);
        }
        self.enrolling()
            .insert(account.id.clone(), Enrolling { cookie, pending });
        Ok(enrolled)
    }

    async fn confirm(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        let e = self
            .enrolling()
            .remove(&account.id)
            .ok_or(DriverError::Protocol {
                step: "enroll",
                detail: "confirm without an enrollment in progress".into(),
            })?;
        let outcome = self
            .code_step(account, "/2fa/enroll", "enroll", e.cookie.clone(), code)
            .await?;
        if !outcome.is_accepted() {
            // The session is gone (code_step forgets it): so is the setup.
            self.abandon(&account.id, e).await?;
        }
        Ok(outcome)
    }

    async fn login(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        let (next, cookie) = self.password(account).await?;
        match next {
            Next::Totp => self.code_step(account, "/2fa", "2fa", cookie, code).await,
            Next::Enroll => {
                self.forget(&cookie).await;
                Ok(Outcome::Rejected(Refusal::NotEnrolled))
            }
            _ => {
                self.forget(&cookie).await;
                Err(DriverError::Protocol {
                    step: "login",
                    detail: "no code was asked for".into(),
                })
            }
        }
    }

    async fn password_step(
        &self,
        account: &Account,
        jar: &mut Jar,
    ) -> Result<Option<String>, DriverError> {
        let request = WebRequest::new(Method::POST, "/login").body(
            "application/json",
            login_body(account.id.as_str(), &account.password),
        );
        let answer = self.web(jar, &request).await?;
        if answer.status != StatusCode::OK {
            return Err(protocol("login", answer.status, &answer.body));
        }
        Ok(Some(
            next_of(&answer.body, "login", answer.status)?.into_owned(),
        ))
    }

    async fn exchange(
        &self,
        jar: &mut Jar,
        request: &WebRequest,
    ) -> Result<Option<WebAnswer>, DriverError> {
        self.web(jar, request).await.map(Some)
    }
}

impl HttpDriver {
    /// [`Driver::exchange`] through the in-process stack.
    async fn web(&self, jar: &mut Jar, request: &WebRequest) -> Result<WebAnswer, DriverError> {
        let uri: Uri = request
            .path
            .parse()
            .map_err(|e| DriverError::Transport(Box::new(e)))?;
        let mut req = Request::new(Full::new(request.body.clone().unwrap_or_default()));
        *req.method_mut() = request.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = request.headers.clone();
        if let Some(c) = jar.header() {
            req.headers_mut().insert(header::COOKIE, c.clone());
        }
        let res = match self.stack.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .map_err(DriverError::Transport)?
            .to_bytes();
        jar.update(&parts.headers);
        Ok(WebAnswer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// An enrollment between [`Driver::enroll`] and [`Driver::confirm`].
#[derive(Debug, Clone)]
struct Enrolling {
    cookie: HeaderValue,
    pending: Option<tower_totp::store::AuthenticatorId>,
}

/// The simulated users: `u<N>` is internal, with "Require Two Factor
/// Authentication" set; anyone else does not exist.
#[derive(Debug, Clone, Copy)]
struct FleetDirectory;

#[async_trait]
impl UserDirectory for FleetDirectory {
    async fn user_info(&self, user: &UserId) -> Result<Option<UserInfo>, StoreError> {
        Ok(simulated_index(user.as_str()).map(|_| UserInfo {
            kind: UserKind::Internal,
            require_2fa: true,
            display_name: String::new(),
        }))
    }
}

/// `N` of `u<N>`.
fn simulated_index(name: &str) -> Option<&str> {
    let digits = name.strip_prefix('u')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The simulated passwords: that of `u<N>` is `pw-<N>` (a string
/// comparison: a real service's hash is its own cost); anyone else does
/// not exist.
fn password_is_right(username: &str, password: &str) -> bool {
    simulated_index(username).is_some_and(|n| password.strip_prefix("pw-") == Some(n))
}

/// Whether the reference app's page saw a verified second factor.
fn verified(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v["second_factor"]["factor"] == "verified")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_simulated_names_are_users() {
        assert_eq!(simulated_index("u12"), Some("12"));
        assert_eq!(simulated_index("u"), None);
        assert_eq!(simulated_index("x12"), None);
        assert_eq!(simulated_index("u1a"), None);
    }

    #[test]
    fn only_the_simulated_password_is_right() {
        assert!(password_is_right("u12", "pw-12"));
        assert!(!password_is_right("u12", "pw-13"));
        assert!(!password_is_right("u12", "12"));
        assert!(!password_is_right("x12", "pw-12"));
    }
}
