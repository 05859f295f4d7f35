//! "Sync Authenticator App": `GET {prefix}/enroll` and its QR images show
//! this session's pending enrollment, `POST {prefix}/enroll` confirms it
//! with a first code or starts over.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::context::{Ctx, Fail, refuse};
use super::form::{Secret, query_param};
use crate::audit::{self, AuditEvent};
use crate::enroll::{Enrollment, clean_name};
use crate::http::extensions::StepMethod;
use crate::http::own_enrollment;
use crate::http::pages::{EnrollPage, RecoveryCodesPage};
use crate::http::refusal::{Next, Refusal, RefusalReason};
use crate::http::respond::{FullResponse, html_response, image_response, json_response, see_other};
use crate::http::session::session_error;
use crate::store::AuthenticatorId;
use crate::two_factor::{ConfirmAs, Confirmation};
use crate::verify::RejectReason;

/// What `POST {prefix}/enroll` takes: the first `code` of the pending
/// enrollment, or (without a code) `name` and/or `replace` to start over.
#[derive(Debug, Deserialize)]
pub(super) struct EnrollForm {
    code: Option<Secret>,
    name: Option<String>,
    replace: Option<String>,
}

/// What the POST asks for.
pub(super) enum EnrollRequest {
    /// Confirm the pending enrollment with its first code.
    Confirm(Option<Secret>),
    /// Start over with this wish.
    StartOver(EnrollWish),
}

impl EnrollForm {
    /// A code confirms; `name` or `replace` without one is a deliberate
    /// new start; neither is a confirmation without a code.
    pub(super) fn request(self) -> EnrollRequest {
        match self {
            Self {
                code: None,
                name,
                replace,
            } if name.is_some() || replace.is_some() => {
                EnrollRequest::StartOver(EnrollWish::new(name, replace))
            }
            Self { code, .. } => EnrollRequest::Confirm(code),
        }
    }
}

/// What a request asks of the pending enrollment it starts: a name, and
/// the authenticator it takes the place of once confirmed (a re-sync).
#[derive(Default)]
pub(super) struct EnrollWish {
    name: Option<String>,
    replace: Option<AuthenticatorId>,
}

impl EnrollWish {
    /// `?name=`, `?replace=` of `GET /2fa/enroll`.
    pub(super) fn from_query(query: Option<&str>) -> Self {
        Self::new(query_param(query, "name"), query_param(query, "replace"))
    }

    fn new(name: Option<String>, replace: Option<String>) -> Self {
        Self {
            name: name.map(|n| clean_name(&n)).filter(|n| !n.is_empty()),
            replace: replace.map(AuthenticatorId::new),
        }
    }
}

/// Whether a request may take the place of the session's fresh pending
/// enrollment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    /// A GET (the page, the QR images): a link on any site makes the
    /// victim's browser send it with the `SameSite=Lax` cookie, so it shows
    /// the fresh pending enrollment as it is, whatever it asks for; only
    /// one that starts anew (none yet, or expired) takes the wish.
    Keep,
    /// A POST (covered by the same-origin layer): a new one in place of
    /// this session's own.
    StartOver,
}

/// The QR code images of the pending enrollment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum QrImage {
    /// `qr.png`.
    Png,
    /// `qr.svg`.
    Svg,
}

/// Who may enrol: anyone logged in with a password who has no
/// authenticator yet (forced or of their own will, within the pending
/// time); an enrolled user only after a recent second step (re-sync, a
/// second device).
fn may_enroll(ctx: &Ctx) -> Result<(), Fail> {
    if ctx.status.enrolled && !ctx.has_recent_step() {
        audit::emit(
            AuditEvent::EnrollmentRefused,
            &ctx.state.user,
            "enrolled: another authenticator needs a recent second step",
        );
        return ctx.require_recent_step();
    }
    Ok(())
}

/// Every enrollment request: allowed, and within the pending time.
async fn check_enrolling(ctx: &Ctx) -> Result<(), Fail> {
    may_enroll(ctx)?;
    ctx.check_not_expired(ctx.auth.engine().config().pending_ttl())
        .await
}

/// The refusal for an enrollment a cap (or another session's activation)
/// refused.
fn cap_refusal(reason: RejectReason) -> Fail {
    match reason {
        RejectReason::TooManyPendingEnrollments => {
            refuse(RefusalReason::TooManyPendingEnrollments, None)
        }
        RejectReason::AlreadyEnrolled => refuse(RefusalReason::StepUpRequired, Some(Next::Totp)),
        RejectReason::TooManyAuthenticators => refuse(RefusalReason::TooManyAuthenticators, None),
        other => refuse(RefusalReason::CodeRejected(other), Some(Next::Enroll)),
    }
}

/// This session's pending enrollment to show: its fresh one, or a new one
/// started with `wish` when it has none (or when it starts over, which
/// replaces this session's own, never another session's).
async fn current_enrollment(
    ctx: &Ctx,
    wish: EnrollWish,
    pending: Pending,
) -> Result<Enrollment, Fail> {
    let engine = ctx.auth.engine();
    let user = &ctx.state.user;
    if let Some(id) = &wish.replace {
        let exists = engine
            .authenticators(user)
            .await?
            .iter()
            .any(|a| &a.id == id);
        if !exists {
            return Err(refuse(RefusalReason::NotFound, None));
        }
    }
    let own = own_enrollment::load(&ctx.session)
        .await
        .map_err(session_error)?;
    if let Some(id) = &own {
        if pending == Pending::Keep
            && let Some(fresh) = engine.pending_enrollment(user, id, ctx.account()).await?
        {
            return Ok(fresh);
        }
        // Expired, or this session starts over.
        engine.cancel_enrollment(user, id).await?;
    }
    let name = wish.name.unwrap_or_else(|| "Authenticator app".to_owned());
    let started = engine
        .start_enrollment(user, ctx.account(), &name, wish.replace)
        .await?
        .map_err(cap_refusal)?;
    own_enrollment::save(&ctx.session, started.id())
        .await
        .map_err(session_error)?;
    Ok(started)
}

fn qr_url(ctx: &Ctx, image: QrImage) -> String {
    let file = match image {
        QrImage::Png => "qr.png",
        QrImage::Svg => "qr.svg",
    };
    format!("{}/enroll/{file}", ctx.prefix())
}

fn page_html(ctx: &Ctx, e: &Enrollment, error: Option<&str>) -> String {
    ctx.auth.pages().enroll(&EnrollPage {
        action: &format!("{}/enroll", ctx.prefix()),
        display_name: &ctx.info.display_name,
        qr_png_url: &qr_url(ctx, QrImage::Png),
        qr_svg_url: &qr_url(ctx, QrImage::Svg),
        manual_key: &e.secret_for_manual_entry(),
        key: &e.secret().to_base32(),
        issuer: ctx.auth.engine().config().issuer(),
        error,
        digits: ctx.digits(),
        strings: &ctx.strings,
    })
}

/// The enrollment page (`GET /2fa/enroll`, and `POST /2fa/enroll` that
/// starts over): the session's pending enrollment, as a page or JSON.
pub(super) async fn show(
    ctx: &Ctx,
    wish: EnrollWish,
    pending: Pending,
) -> Result<FullResponse, Fail> {
    check_enrolling(ctx).await?;
    let e = current_enrollment(ctx, wish, pending).await?;
    if ctx.format.is_html() {
        return Ok(html_response(StatusCode::OK, page_html(ctx, &e, None)));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "otpauth_uri": e.otpauth_uri(),
            "secret": &*e.secret().to_base32(),
            "qr_png": qr_url(ctx, QrImage::Png),
            "qr_svg": qr_url(ctx, QrImage::Svg),
        }),
    ))
}

/// `GET /2fa/enroll/qr.png` and `qr.svg`.
pub(super) async fn qr(ctx: &Ctx, image: QrImage) -> Result<FullResponse, Fail> {
    check_enrolling(ctx).await?;
    let e = current_enrollment(ctx, EnrollWish::default(), Pending::Keep).await?;
    Ok(match image {
        QrImage::Png => image_response(e.qr_png(), "image/png"),
        QrImage::Svg => image_response(e.qr_svg().into_bytes(), "image/svg+xml"),
    })
}

/// `POST /2fa/enroll` with the first code.
pub(super) async fn confirm(ctx: &Ctx, code: Option<Secret>) -> Result<FullResponse, Fail> {
    check_enrolling(ctx).await?;
    let Some(code) = code else {
        return Err(refuse(
            RefusalReason::BadRequest("Send the code your app shows."),
            Some(Next::Enroll),
        ));
    };
    let engine = ctx.auth.engine();
    let user = &ctx.state.user;
    let own = own_enrollment::load(&ctx.session)
        .await
        .map_err(session_error)?;
    // Without a recent second step, this session may add the first
    // authenticator only: the store refuses it if another session's
    // confirmation won meanwhile.
    let confirm_as = if ctx.has_recent_step() {
        ConfirmAs::AnotherAuthenticator
    } else {
        ConfirmAs::FirstAuthenticator
    };
    let confirmation = match &own {
        Some(id) => {
            engine
                .confirm_enrollment(user, id, code.as_str(), confirm_as)
                .await?
        }
        None => {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "no pending enrollment in this session",
            );
            Confirmation::Rejected(RejectReason::NoPendingEnrollment)
        }
    };
    match confirmation {
        Confirmation::Confirmed {
            epoch,
            recovery_codes,
            offset,
            ..
        } => {
            own_enrollment::clear(&ctx.session)
                .await
                .map_err(session_error)?;
            ctx.mark_verified(epoch, StepMethod::Enrollment).await?;
            let mut answer = ctx.clock_hint(offset).await?;
            let codes: Vec<&str> = recovery_codes
                .as_ref()
                .map(|c| c.as_strings().collect())
                .unwrap_or_default();
            if ctx.format.is_html() {
                let after = ctx.auth.after_login();
                if codes.is_empty() {
                    return Ok(see_other(after));
                }
                let html = ctx.auth.pages().recovery_codes(&RecoveryCodesPage {
                    codes: &codes,
                    continue_url: after,
                    strings: &ctx.strings,
                });
                return Ok(html_response(StatusCode::OK, html));
            }
            if let Some(answer) = answer.as_object_mut() {
                answer.insert("recovery_codes".to_owned(), json!(codes));
            }
            Ok(ctx.done(answer))
        }
        Confirmation::Rejected(
            reason @ (RejectReason::AlreadyEnrolled | RejectReason::TooManyAuthenticators),
        ) => Err(cap_refusal(reason)),
        Confirmation::Rejected(reason) => {
            let pending = match &own {
                Some(id) => engine.pending_enrollment(user, id, ctx.account()).await?,
                None => None,
            };
            match (ctx.format.is_html(), pending) {
                // The enrollment page again, with the message.
                (true, Some(e)) => {
                    Ok(ctx.rejected(reason, Next::Enroll, |msg| page_html(ctx, &e, Some(msg))))
                }
                // The enrollment is gone: start over on a fresh page.
                (true, None) => Ok(see_other(&format!("{}/enroll", ctx.prefix()))),
                // Still enrolling: the next step is the enrollment page
                // (the second screen would only send the client back).
                (false, _) => {
                    let refusal =
                        Refusal::new(RefusalReason::CodeRejected(reason), Some(Next::Enroll));
                    Ok(ctx.auth.refuse_in(refusal, ctx.format, &ctx.strings))
                }
            }
        }
    }
}
