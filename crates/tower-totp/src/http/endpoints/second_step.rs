//! The second screen: `GET {prefix}` shows it, `POST {prefix}` takes a code
//! or a recovery code.

use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::context::{Ctx, Fail, Login, Remembered, refuse};
use super::form::{Flag, Secret};
use crate::http::auth::TotpAuth;
use crate::http::extensions::StepMethod;
use crate::http::negotiate::Format;
use crate::http::pages::SecondStepPage;
use crate::http::refusal::{Next, RefusalReason};
use crate::http::respond::{FullResponse, html_response, json_response};
use crate::policy::Requirement;
use crate::two_factor::RecoveryVerdict;
use crate::verify::Verdict;

/// What `POST {prefix}` takes: `code` (with `method=recovery`, a recovery
/// code) or `recovery_code`, and `remember` for "remember this device".
#[derive(Debug, Deserialize)]
pub(super) struct CodeForm {
    method: Option<String>,
    code: Option<Secret>,
    recovery_code: Option<Secret>,
    #[serde(default)]
    remember: Flag,
}

impl CodeForm {
    /// The TOTP code, if that is what was sent.
    fn totp_code(&self) -> Option<&str> {
        match self.recovery_code() {
            Some(_) => None,
            None => self.code.as_ref().map(Secret::as_str),
        }
    }

    /// The recovery code, if that is what was sent.
    fn recovery_code(&self) -> Option<&str> {
        match (&self.recovery_code, self.method.as_deref()) {
            (Some(code), _) => Some(code.as_str()),
            (None, Some("recovery")) => self.code.as_ref().map(Secret::as_str),
            (None, _) => None,
        }
    }
}

fn page_html(ctx: &Ctx, error: Option<&str>, method: &str) -> String {
    ctx.auth.pages().second_step(&SecondStepPage {
        action: ctx.prefix(),
        display_name: &ctx.info.display_name,
        error,
        method,
        offer_remember: ctx.auth.remember().is_some(),
        digits: ctx.digits(),
        strings: &ctx.strings,
    })
}

/// What both routes answer before a code is asked for or read: enrol
/// first, or (no authenticator, none required) nothing to confirm; `None`
/// when a code counts, which it does for every enrolled user, required or
/// not (a verified code is what the recent-step endpoints ask for).
fn before_a_code(ctx: &Ctx) -> Result<Option<FullResponse>, Fail> {
    match ctx.requirement() {
        Requirement::Enroll => Err(refuse(
            RefusalReason::EnrollmentRequired,
            Some(Next::Enroll),
        )),
        Requirement::NotRequired if !ctx.status.enrolled => Ok(Some(ctx.done(json!({})))),
        Requirement::NotRequired | Requirement::Challenge => Ok(None),
    }
}

/// `GET {prefix}`.
pub(super) async fn show(ctx: &Ctx) -> Result<FullResponse, Fail> {
    if let Some(answer) = before_a_code(ctx)? {
        return Ok(answer);
    }
    if ctx.requirement() == Requirement::Challenge && ctx.remembered().await? == Remembered::Yes {
        return Ok(ctx.done(json!({})));
    }
    if ctx.format.is_html() {
        return Ok(html_response(StatusCode::OK, page_html(ctx, None, "totp")));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "next": "totp", "methods": ["totp", "recovery_code"], "digits": ctx.digits() }),
    ))
}

/// `POST {prefix}`.
///
/// A TOTP code is read and charged with the user's status, in one store
/// operation ([`TwoFactor::begin_code`](crate::TwoFactor::begin_code)), and
/// the context's checks run on that status before the code is decided: a
/// login a reset ended, or one refused before a code counts, drops the
/// check unfinished. A login that may have outlived the pending-step time
/// reads the status first instead, so that an expired login's code is
/// never charged; so do recovery codes and forms without a code. (A login
/// verified at an older epoch whose password is older than the pending
/// time is charged once and then refused as expired, its session
/// cleared: the epoch is only known from the status.)
pub(super) async fn submit(
    auth: &TotpAuth,
    login: Login,
    format: Format,
    form: CodeForm,
) -> Result<FullResponse, Fail> {
    let code = match form.totp_code() {
        Some(code) if !login.may_have_expired(auth.pending_step_ttl()) => code,
        _ => {
            let ctx = Ctx::load(auth, login, format).await?;
            return submit_status_first(&ctx, &form).await;
        }
    };
    let user = login.state.user.clone();
    let check = auth.engine().begin_code(&user, code).await?;
    let ctx = Ctx::with_status(auth, login, *check.status(), format).await?;
    if let Some(answer) = before_a_code(&ctx)? {
        return Ok(answer);
    }
    if ctx.requirement() == Requirement::Challenge {
        ctx.check_not_expired(ctx.auth.pending_step_ttl()).await?;
    }
    let verdict = check.finish().await?;
    answer_code(&ctx, verdict, &form).await
}

/// `POST {prefix}` with the status read first.
async fn submit_status_first(ctx: &Ctx, form: &CodeForm) -> Result<FullResponse, Fail> {
    if let Some(answer) = before_a_code(ctx)? {
        return Ok(answer);
    }
    // Nothing is pending for an enrolled user to whom 2FA does not apply:
    // their code is a step-up, and the code itself is the proof.
    if ctx.requirement() == Requirement::Challenge {
        ctx.check_not_expired(ctx.auth.pending_step_ttl()).await?;
    }
    let user = &ctx.state.user;
    let engine = ctx.auth.engine();
    if let Some(typed) = form.recovery_code() {
        return match engine.use_recovery_code(user, typed).await? {
            RecoveryVerdict::Accepted { remaining } => {
                ctx.mark_verified(ctx.status.epoch, StepMethod::RecoveryCode)
                    .await?;
                Ok(ctx.done(json!({ "recovery_codes_left": remaining })))
            }
            RecoveryVerdict::Rejected(reason) => {
                Ok(ctx.rejected(reason, Next::Totp, |e| page_html(ctx, Some(e), "recovery")))
            }
        };
    }
    let Some(code) = &form.code else {
        return Err(refuse(
            RefusalReason::BadRequest("Send a code (or a recovery_code)."),
            Some(Next::Totp),
        ));
    };
    let verdict = engine.verify(user, code.as_str()).await?;
    answer_code(ctx, verdict, form).await
}

/// The answer to a decided TOTP code.
async fn answer_code(ctx: &Ctx, verdict: Verdict, form: &CodeForm) -> Result<FullResponse, Fail> {
    match verdict {
        Verdict::Accepted { offset, .. } => {
            ctx.mark_verified(ctx.status.epoch, StepMethod::Totp)
                .await?;
            let hint = ctx.clock_hint(offset).await?;
            let mut res = ctx.done(hint);
            if let Some(remember) = ctx.auth.remember()
                && form.remember.is_on()
                && let Some(cookie) = remember.issue(&ctx.state.user, ctx.status.epoch, ctx.now)
            {
                res.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(res)
        }
        Verdict::Rejected(reason) => {
            Ok(ctx.rejected(reason, Next::Totp, |e| page_html(ctx, Some(e), "totp")))
        }
    }
}
