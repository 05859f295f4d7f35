//! How the simulator talks to a server: one [`Driver`] call per login
//! attempt (password step, then code step).
//!
//! [`EngineDriver`](crate::engine_driver::EngineDriver) calls the
//! `TwoFactor` engine in process. The HTTP drivers
//! ([`HttpDriver`](crate::http_driver::HttpDriver) in process,
//! [`TargetDriver`](crate::target::TargetDriver) over the network) speak to
//! `POST /login` and the `/2fa` endpoints; they map the answers like this
//! ([`crate::wire`]):
//!
//! | HTTP answer | [`Outcome`] |
//! |---|---|
//! | `POST /2fa` 200 `{"next":"done"}` | [`Outcome::Accepted`]: offset and step read back from the engine's store in process, `None` over the network |
//! | 4xx problem+json with `reason` | [`Outcome::Rejected`] with [`Refusal::from_reason`] |
//! | 429 with `Retry-After: N` | [`Outcome::Throttled`] |
//! | `POST /login` answers `{"next":"enroll"}` | [`Outcome::Rejected`]`(`[`Refusal::NotEnrolled`]`)` |
//! | `POST /login` answers `{"next":"done"}` | [`DriverError::Protocol`]: no code was asked for |
//! | anything else (5xx, another `next`) | [`DriverError::Protocol`] |
//!
//! and for [`Driver::enroll`] and [`Driver::confirm`]: `POST /login`
//! (`{"next":"enroll"}`), `GET /2fa/enroll` (JSON `secret` in base32 and
//! `otpauth_uri` for the parameters), then `POST /2fa/enroll` with
//! `{"code"}`, whose answers map as above.
//!
//! The trait uses return-position `impl Future + Send` (native `async fn`
//! in traits) rather than `async-trait`: the simulator is generic over its
//! driver, chosen once at start-up, so nothing needs `dyn Driver`, and a
//! login costs no boxed future. An implementation may write `async fn`.

use std::future::Future;
use std::time::Duration;

use tower_totp::code::{CodeParams, Secret};
use tower_totp::{RejectReason, UserId};

use crate::wire::Jar;

/// A simulated account: the user id (also the login name) and a password.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user id, sent as `username` over HTTP.
    pub id: UserId,
    /// The password sent in the password step.
    pub password: String,
}

impl Account {
    /// The account of the simulated user with this global index: user id
    /// `u<index>`, password `pw-<index>`.
    pub fn simulated(index: u32) -> Self {
        Self {
            id: UserId::new(format!("u{index}")),
            password: format!("pw-{index}"),
        }
    }
}

/// What the phone needs after an enrollment started: the shared secret and
/// the code parameters (over HTTP, read from the otpauth URI).
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The shared secret.
    pub secret: Secret,
    /// Code parameters.
    pub params: CodeParams,
}

/// The server's answer to a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: the login is done.
    Accepted {
        /// The device offset, in steps, the server will centre the next
        /// window on, when the driver can see it (the engine can, HTTP cannot).
        learned_offset: Option<i64>,
        /// The step the code matched, when the driver can see it.
        step: Option<u64>,
    },
    /// Refused.
    Rejected(Refusal),
    /// Locked out: try again after this long (HTTP 429 `Retry-After`).
    Throttled {
        /// How long to wait.
        retry_after: Duration,
    },
}

impl Outcome {
    /// Whether the code was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// Why a code was refused (the problem document's `reason` member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// `invalid`: no step in the window matched.
    Invalid,
    /// `replayed`: the step was used already.
    Replayed,
    /// `malformed`: not a code of the expected shape.
    Malformed,
    /// `not_enrolled`: the account has no authenticator.
    NotEnrolled,
    /// `no_pending_enrollment`: nothing to confirm.
    NoPendingEnrollment,
    /// Any other reason.
    Other,
}

impl Refusal {
    /// The refusal named by a problem document's `reason` member.
    pub fn from_reason(reason: &str) -> Self {
        match reason {
            "invalid" => Self::Invalid,
            "replayed" => Self::Replayed,
            "malformed" => Self::Malformed,
            "not_enrolled" => Self::NotEnrolled,
            "no_pending_enrollment" => Self::NoPendingEnrollment,
            _ => Self::Other,
        }
    }
}

impl From<RejectReason> for Refusal {
    fn from(r: RejectReason) -> Self {
        Self::from_reason(r.as_str())
    }
}

/// The server gave no usable answer; the run stops.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The engine could not decide (store or sealing failure).
    #[error("engine failure")]
    Engine(#[from] tower_totp::Error),
    /// The transport failed (connection, I/O).
    #[error("transport failure")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server answered something the protocol does not allow here.
    #[error("unexpected answer at {step}: {detail}")]
    Protocol {
        /// Which step (`login`, `2fa`, `enroll`).
        step: &'static str,
        /// What came back.
        detail: String,
    },
}

/// A server the simulator can log in to.
///
/// Each call is one complete exchange and must not keep per-call state the
/// simulator does not know of: attempts of one user may overlap (a user and
/// an attacker on the same account), each on its own session.
pub trait Driver: Send + Sync {
    /// Password step, then start an enrollment; returns what the phone
    /// needs.
    ///
    /// # Errors
    ///
    /// [`DriverError`] when the server gives no usable answer.
    fn enroll(
        &self,
        account: &Account,
    ) -> impl Future<Output = Result<Enrolled, DriverError>> + Send;

    /// Confirm the pending enrollment with the phone's first code.
    ///
    /// # Errors
    ///
    /// [`DriverError`] when the server gives no usable answer.
    fn confirm(
        &self,
        account: &Account,
        code: &str,
    ) -> impl Future<Output = Result<Outcome, DriverError>> + Send;

    /// One login attempt: the password step, then `code` in the code step.
    ///
    /// # Errors
    ///
    /// [`DriverError`] when the server gives no usable answer.
    fn login(
        &self,
        account: &Account,
        code: &str,
    ) -> impl Future<Output = Result<Outcome, DriverError>> + Send;

    /// The password step of `account` in the browser session `jar` (its
    /// cookies kept there): the answer's `next` member. `None` when the
    /// driver speaks no HTTP (the engine): the attackers that need
    /// sessions of their own (`[co_enroller]`, `[cross_origin]`) cannot
    /// run on it.
    ///
    /// # Errors
    ///
    /// [`DriverError`] when the server gives no usable answer.
    fn password_step(
        &self,
        account: &Account,
        jar: &mut Jar,
    ) -> impl Future<Output = Result<Option<String>, DriverError>> + Send {
        let _ = (account, jar);
        async { Ok(None) }
    }

    /// One request in the browser session `jar`, exactly as given (headers
    /// included), the answer's cookies kept in `jar`. `None` when the
    /// driver speaks no HTTP.
    ///
    /// # Errors
    ///
    /// [`DriverError`] when the transport fails.
    fn exchange(
        &self,
        jar: &mut Jar,
        request: &WebRequest,
    ) -> impl Future<Output = Result<Option<WebAnswer>, DriverError>> + Send {
        let _ = (jar, request);
        async { Ok(None) }
    }
}

/// A request an attacker's page (or the simulator on a victim's behalf)
/// sends in a browser session: see [`Driver::exchange`].
#[derive(Debug, Clone)]
pub struct WebRequest {
    /// The method.
    pub method: http::Method,
    /// The path and query (`/2fa/enroll`).
    pub path: String,
    /// Headers besides `Cookie` (which comes from the jar).
    pub headers: http::HeaderMap,
    /// The body, if any.
    pub body: Option<bytes::Bytes>,
}

impl WebRequest {
    /// A request without headers or body that asks for JSON answers.
    pub fn new(method: http::Method, path: impl Into<String>) -> Self {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        Self {
            method,
            path: path.into(),
            headers,
            body: None,
        }
    }

    /// With this body and `Content-Type`.
    #[must_use]
    pub fn body(mut self, content_type: &'static str, body: bytes::Bytes) -> Self {
        self.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        self.body = Some(body);
        self
    }

    /// With this header.
    #[must_use]
    pub fn header(mut self, name: http::header::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// The answer to a [`WebRequest`].
#[derive(Debug, Clone)]
pub struct WebAnswer {
    /// The status.
    pub status: http::StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
}

/// A code as text without allocating: `digits` digits with leading zeros.
#[derive(Debug, Clone, Copy)]
pub struct CodeText {
    buf: [u8; 10],
    len: usize,
}

impl CodeText {
    /// `value` printed with `digits` digits (at most 10).
    pub fn new(mut value: u32, digits: u8) -> Self {
        let len = usize::from(digits).min(10);
        let mut buf = [b'0'; 10];
        for slot in buf[..len].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        Self { buf, len }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_text_pads_with_zeros() {
        assert_eq!(CodeText::new(42, 6).as_str(), "000042");
        assert_eq!(CodeText::new(12_345_678, 8).as_str(), "12345678");
    }

    #[test]
    fn reasons_map_both_ways() {
        assert_eq!(Refusal::from(RejectReason::Replayed), Refusal::Replayed);
        assert_eq!(Refusal::from_reason("invalid"), Refusal::Invalid);
        assert_eq!(Refusal::from_reason("whatever"), Refusal::Other);
    }
}
