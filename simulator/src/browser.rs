//! What the session-keeping attackers do in a browser session, over
//! [`Driver::password_step`] and [`Driver::exchange`]: the enrollment page,
//! its confirmation, the second step and the logout, each in the session
//! (cookie jar) given.

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::driver::{Account, Driver, DriverError, Enrolled, WebAnswer, WebRequest};
use crate::wire::{CodeAnswer, Jar, code_answer, code_body, enrolled_from_json};

/// The attackers that need sessions of their own ran on a driver that
/// speaks no HTTP.
fn no_http(section: &'static str) -> DriverError {
    DriverError::Protocol {
        step: section,
        detail: "this attacker needs an HTTP driver (--driver http or --target), not the engine"
            .into(),
    }
}

/// The password step of `account` in `jar`: the `next` member.
///
/// # Errors
///
/// [`DriverError`] when the driver speaks no HTTP or the server gives no
/// usable answer.
pub async fn log_in<D: Driver>(
    driver: &D,
    section: &'static str,
    account: &Account,
    jar: &mut Jar,
) -> Result<String, DriverError> {
    driver
        .password_step(account, jar)
        .await?
        .ok_or_else(|| no_http(section))
}

/// One request in `jar`.
///
/// # Errors
///
/// [`DriverError`] when the driver speaks no HTTP or the transport fails.
pub async fn send<D: Driver>(
    driver: &D,
    section: &'static str,
    jar: &mut Jar,
    request: &WebRequest,
) -> Result<WebAnswer, DriverError> {
    driver
        .exchange(jar, request)
        .await?
        .ok_or_else(|| no_http(section))
}

/// What `GET /2fa/enroll` showed this session: the secret and parameters,
/// or `None` when it was refused (any 4xx).
///
/// # Errors
///
/// [`DriverError`] for a 5xx or a 200 without the enrollment's members.
pub async fn enroll_page<D: Driver>(
    driver: &D,
    section: &'static str,
    jar: &mut Jar,
) -> Result<Option<Enrolled>, DriverError> {
    let answer = send(
        driver,
        section,
        jar,
        &WebRequest::new(Method::GET, "/2fa/enroll"),
    )
    .await?;
    if answer.status == StatusCode::OK {
        return enrolled_from_json(&answer.body, answer.status).map(Some);
    }
    if answer.status.is_client_error() {
        return Ok(None);
    }
    Err(crate::wire::protocol("enroll", answer.status, &answer.body))
}

/// `POST {path}` with `{"code"}` in this session (`/2fa/enroll` to
/// confirm, `/2fa` for the second step), mapped as the drivers map code
/// answers.
///
/// # Errors
///
/// [`DriverError`] for an answer outside the contract.
pub async fn post_code<D: Driver>(
    driver: &D,
    section: &'static str,
    jar: &mut Jar,
    path: &'static str,
    code: &str,
) -> Result<CodeAnswer, DriverError> {
    let request = WebRequest::new(Method::POST, path).body("application/json", code_body(code));
    let answer = send(driver, section, jar, &request).await?;
    code_answer(answer.status, &answer.headers, &answer.body, section)
}

/// `POST /logout` in this session, its answer ignored (the in-process
/// application has no such route; sessions there expire with the run).
///
/// # Errors
///
/// [`DriverError`] when the transport fails.
pub async fn log_out<D: Driver>(
    driver: &D,
    section: &'static str,
    jar: &mut Jar,
) -> Result<(), DriverError> {
    if jar.header().is_some() {
        let request = WebRequest::new(Method::POST, "/logout")
            .body("application/json", Bytes::from_static(b"{}"));
        send(driver, section, jar, &request).await?;
    }
    Ok(())
}
