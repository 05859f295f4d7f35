//! One function per endpoint, behind one router.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method as HttpMethod, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Full;
use serde_json::json;
use tower_sessions::Session;

use super::input::{Fields, query_param, read_fields};
use crate::audit::{self, AuditEvent};
use crate::clock::UnixTime;
use crate::enroll::{Enrollment, clean_name};
use crate::http::auth::{TotpAuth, session_error};
use crate::http::own_enrollment;
use crate::http::pages::{
    AuthenticatorRow, AuthenticatorsPage, EnrollPage, RecoveryCodesPage, SecondStepPage,
};
use crate::http::refusal::{Next, Refusal, RefusalReason, html_response, no_store, wants_html};
use crate::http::session::{Method, SessionState, Stage};
use crate::policy::Requirement;
use crate::store::{AuthenticatorId, BoxError, UserStatus};
use crate::two_factor::{ConfirmAs, Confirmation, RecoveryVerdict};
use crate::user::UserInfo;
use crate::verify::{RejectReason, Verdict};

type Res = Response<Full<Bytes>>;

/// A request's logged-in context.
struct Ctx {
    auth: TotpAuth,
    session: Session,
    state: SessionState,
    info: UserInfo,
    status: UserStatus,
    now: UnixTime,
    html: bool,
    /// The "remember this device" cookie, if the application offers it.
    remember_cookie: Option<String>,
}

/// A refusal, or a store failure (which is a refusal too: 503).
enum Fail {
    Refuse(Refusal),
    Store,
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Self {
        tracing::warn!(target: crate::audit::TARGET, error = %e, "store failure in a 2FA endpoint");
        Self::Store
    }
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Self {
        Self::Refuse(r)
    }
}

fn refuse(reason: RefusalReason, next: Option<Next>) -> Fail {
    Fail::Refuse(Refusal::new(reason, next))
}

pub(super) async fn handle<B>(auth: TotpAuth, req: Request<B>) -> Res
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let html = wants_html(&parts.headers);
    match route(&auth, &parts, body, html).await {
        Ok(res) => res,
        Err(Fail::Refuse(refusal)) => auth.refuse(refusal, html),
        Err(Fail::Store) => auth.refuse(Refusal::new(RefusalReason::StoreUnavailable, None), html),
    }
}

async fn route<B>(auth: &TotpAuth, parts: &Parts, body: B, html: bool) -> Result<Res, Fail>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let path = parts.uri.path();
    let prefix = auth.prefix();
    let rel = path.strip_prefix(prefix).unwrap_or(path);
    let rel = rel.trim_end_matches('/');
    let method = &parts.method;
    let limit = auth.inner.settings.body_limit;
    let segments: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    // Known paths first, so that a wrong method is a 405, not a 404.
    let known = matches!(
        segments.as_slice(),
        [] | ["enroll"]
            | ["enroll", "qr.png" | "qr.svg"]
            | ["authenticators"]
            | ["recovery-codes"]
            | ["authenticators", _]
            | ["authenticators", _, "revoke"]
    );
    if !known {
        return Err(refuse(RefusalReason::NotFound, None));
    }
    let ctx = context(auth, parts, html).await?;
    let read = |body: B| read_fields(&parts.headers, body, limit);
    match (method, segments.as_slice()) {
        (&HttpMethod::GET, []) => second_step_page(&ctx).await,
        (&HttpMethod::POST, []) => submit_code(&ctx, read(body).await.map_err(bad)?).await,
        (&HttpMethod::GET, ["enroll"]) => {
            let wish = EnrollWish::from_query(parts.uri.query());
            enroll_page(&ctx, wish, Pending::Keep).await
        }
        (&HttpMethod::GET, ["enroll", image]) => qr_image(&ctx, image).await,
        (&HttpMethod::POST, ["enroll"]) => {
            let fields = read(body).await.map_err(bad)?;
            match EnrollWish::from_fields(&fields) {
                Some(wish) => enroll_page(&ctx, wish, Pending::StartOver).await,
                None => confirm(&ctx, fields).await,
            }
        }
        (&HttpMethod::GET, ["authenticators"]) => list(&ctx).await,
        (&HttpMethod::POST, ["authenticators", id, "revoke"])
        | (&HttpMethod::DELETE, ["authenticators", id]) => revoke(&ctx, id).await,
        (&HttpMethod::POST, ["recovery-codes"]) => new_recovery_codes(&ctx).await,
        _ => Err(refuse(RefusalReason::MethodNotAllowed, None)),
    }
}

fn bad(reason: RefusalReason) -> Fail {
    refuse(reason, None)
}

/// The logged-in context, or why there is none.
async fn context(auth: &TotpAuth, parts: &Parts, html: bool) -> Result<Ctx, Fail> {
    let Some(session) = parts.extensions.get::<Session>().cloned() else {
        return Err(refuse(RefusalReason::MissingSessionLayer, None));
    };
    let state = SessionState::load(&session)
        .await
        .map_err(session_error)?
        .ok_or_else(|| refuse(RefusalReason::NotLoggedIn, Some(Next::Login)))?;
    let info = auth
        .inner
        .users
        .user_info(&state.user)
        .await
        .map_err(crate::Error::from)?
        .ok_or_else(|| refuse(RefusalReason::NotLoggedIn, Some(Next::Login)))?;
    let status = auth.engine().status(&state.user).await?;
    if state.ended_by(&status) {
        // An administrator reset the user: every earlier login is over.
        SessionState::clear(&session).await.map_err(session_error)?;
        return Err(refuse(RefusalReason::NotLoggedIn, Some(Next::Login)));
    }
    let now = auth.engine().now();
    let remember_cookie = auth
        .inner
        .remember
        .as_ref()
        .and_then(|r| r.cookie_value(&parts.headers).map(str::to_owned));
    Ok(Ctx {
        auth: auth.clone(),
        session,
        state,
        info,
        status,
        now,
        html,
        remember_cookie,
    })
}

impl Ctx {
    fn requirement(&self) -> Requirement {
        self.auth
            .inner
            .policy
            .get()
            .requirement(&self.info, self.status.enrolled)
    }

    fn verified_at(&self) -> Option<UnixTime> {
        self.state.verified_at(self.status.epoch).map(|(_, at)| at)
    }

    /// The password was checked too long ago for the next step (a code
    /// while the second step is pending, a first authenticator): log in
    /// again. A pending login is forgotten; a user to whom 2FA does not
    /// apply stays logged in (only enrolling of their own will needs the
    /// fresh password).
    async fn check_not_expired(&self, ttl: std::time::Duration) -> Result<(), Fail> {
        if self.verified_at().is_none() && self.now >= self.state.since.saturating_add(ttl) {
            if self.requirement() != Requirement::NotRequired {
                SessionState::clear(&self.session)
                    .await
                    .map_err(session_error)?;
            }
            return Err(refuse(RefusalReason::StepExpired, Some(Next::Login)));
        }
        Ok(())
    }

    /// Changing authenticators or recovery codes needs a recent second step:
    /// a code or a recovery code. A remembered device proves the browser,
    /// not the phone, so it does not count.
    fn require_recent_step(&self) -> Result<(), Fail> {
        if self.has_recent_step() {
            Ok(())
        } else {
            Err(refuse(RefusalReason::StepUpRequired, Some(Next::Totp)))
        }
    }

    fn has_recent_step(&self) -> bool {
        matches!(
            self.state.verified_at(self.status.epoch),
            Some((method, at))
                if method != Method::RememberedDevice
                    && self.now.duration_since(at) <= self.auth.inner.settings.recent_step
        )
    }

    /// Mark the session verified and cycle its id (no session fixation).
    async fn mark_verified(&self, epoch: u64, method: Method) -> Result<(), Fail> {
        let state = SessionState {
            stage: Stage::Verified {
                epoch,
                method,
                at: self.now,
            },
            ..self.state.clone()
        };
        self.session.cycle_id().await.map_err(session_error)?;
        state.save(&self.session).await.map_err(session_error)?;
        Ok(())
    }

    /// A valid "remember this device" cookie stands in for the second step
    /// here as in the layer (never for a step-up in a verified session):
    /// marks the session verified and says so.
    async fn remembered(&self) -> Result<bool, Fail> {
        if self.verified_at().is_some() {
            return Ok(false);
        }
        let (Some(remember), Some(cookie)) = (&self.auth.inner.remember, &self.remember_cookie)
        else {
            return Ok(false);
        };
        if !remember.verify(cookie, &self.state.user, self.status.epoch, self.now) {
            return Ok(false);
        }
        self.mark_verified(self.status.epoch, Method::RememberedDevice)
            .await?;
        Ok(true)
    }

    fn prefix(&self) -> &str {
        self.auth.prefix()
    }

    fn digits(&self) -> u8 {
        self.auth.engine().config().params().digits()
    }

    fn account(&self) -> &str {
        self.state.user.as_str()
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Res {
    let mut res = Response::new(Full::new(Bytes::from(value.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(res.headers_mut());
    res
}

fn see_other(location: &str) -> Res {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    no_store(res.headers_mut());
    res
}

/// `next: done`: JSON, or a redirect to the application for browsers.
fn done(ctx: &Ctx, extra: serde_json::Value) -> Res {
    if ctx.html {
        return see_other(&ctx.auth.inner.settings.after_login);
    }
    let mut body = json!({ "next": "done" });
    if let (Some(map), serde_json::Value::Object(more)) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    json_response(StatusCode::OK, &body)
}

/// A rejected code: the page again with the message, or a problem.
fn rejected(ctx: &Ctx, reason: RejectReason, next: Next, page: impl FnOnce(&str) -> String) -> Res {
    let refusal = Refusal::new(RefusalReason::CodeRejected(reason), Some(next));
    if !ctx.html {
        return ctx.auth.refuse(refusal, false);
    }
    let mut res = html_response(refusal.reason.status(), page(refusal.reason.detail()));
    if let Some(d) = refusal.reason.retry_after() {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::http::refusal::retry_after_secs(d)),
        );
    }
    res.extensions_mut().insert(refusal);
    res
}

fn second_step_html(ctx: &Ctx, error: Option<&str>, method: &str) -> String {
    ctx.auth.inner.pages.second_step(&SecondStepPage {
        action: ctx.prefix(),
        display_name: &ctx.info.display_name,
        error,
        method,
        offer_remember: ctx.auth.inner.remember.is_some(),
        digits: ctx.digits(),
    })
}

async fn second_step_page(ctx: &Ctx) -> Result<Res, Fail> {
    match ctx.requirement() {
        Requirement::Enroll => {
            return Err(refuse(
                RefusalReason::EnrollmentRequired,
                Some(Next::Enroll),
            ));
        }
        // No authenticator and none required: nothing to confirm.
        Requirement::NotRequired if !ctx.status.enrolled => return Ok(done(ctx, json!({}))),
        // Not required, but enrolled: a code still counts as a recent
        // second step (to manage authenticators).
        Requirement::NotRequired => {}
        Requirement::Challenge => {
            if ctx.remembered().await? {
                return Ok(done(ctx, json!({})));
            }
        }
    }
    if ctx.html {
        return Ok(html_response(
            StatusCode::OK,
            second_step_html(ctx, None, "totp"),
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "next": "totp", "methods": ["totp", "recovery_code"], "digits": ctx.digits() }),
    ))
}

async fn submit_code(ctx: &Ctx, fields: Fields) -> Result<Res, Fail> {
    match ctx.requirement() {
        Requirement::Enroll => {
            return Err(refuse(
                RefusalReason::EnrollmentRequired,
                Some(Next::Enroll),
            ));
        }
        Requirement::NotRequired if !ctx.status.enrolled => return Ok(done(ctx, json!({}))),
        // Enrolled users' codes are checked even when not required: a
        // verified code is what the recent-step endpoints ask for.
        Requirement::NotRequired | Requirement::Challenge => {}
    }
    // Nothing is pending for an enrolled user to whom 2FA does not apply:
    // their code is a step-up, and the code itself is the proof.
    if ctx.requirement() == Requirement::Challenge {
        ctx.check_not_expired(ctx.auth.inner.settings.pending_step_ttl)
            .await?;
    }
    let recovery = fields.get("recovery_code").or_else(|| {
        (fields.get("method") == Some("recovery"))
            .then(|| fields.get("code"))
            .flatten()
    });
    let user = &ctx.state.user;
    let engine = ctx.auth.engine();
    if let Some(typed) = recovery {
        return match engine.use_recovery_code(user, typed).await? {
            RecoveryVerdict::Accepted { remaining } => {
                ctx.mark_verified(ctx.status.epoch, Method::RecoveryCode)
                    .await?;
                Ok(done(ctx, json!({ "recovery_codes_left": remaining })))
            }
            RecoveryVerdict::Rejected(reason) => Ok(rejected(ctx, reason, Next::Totp, |e| {
                second_step_html(ctx, Some(e), "recovery")
            })),
        };
    }
    let Some(code) = fields.get("code") else {
        return Err(refuse(
            RefusalReason::BadRequest("Send a code (or a recovery_code)."),
            Some(Next::Totp),
        ));
    };
    match engine.verify(user, code).await? {
        Verdict::Accepted { .. } => {
            ctx.mark_verified(ctx.status.epoch, Method::Totp).await?;
            let mut res = done(ctx, json!({}));
            if let Some(remember) = &ctx.auth.inner.remember
                && fields.flag("remember")
                && let Some(cookie) = remember.issue(user, ctx.status.epoch, ctx.now)
            {
                res.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(res)
        }
        Verdict::Rejected(reason) => Ok(rejected(ctx, reason, Next::Totp, |e| {
            second_step_html(ctx, Some(e), "totp")
        })),
    }
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

/// What a request asks of the pending enrollment it starts: a name, and
/// the authenticator it takes the place of once confirmed (a re-sync).
#[derive(Default)]
struct EnrollWish {
    name: Option<String>,
    replace: Option<AuthenticatorId>,
}

impl EnrollWish {
    /// `?name=`, `?replace=` of `GET /2fa/enroll`.
    fn from_query(query: Option<&str>) -> Self {
        Self::new(query_param(query, "name"), query_param(query, "replace"))
    }

    /// The `name`, `replace` fields of `POST /2fa/enroll`, if it sent
    /// either (and no code): a deliberate new start.
    fn from_fields(fields: &Fields) -> Option<Self> {
        let (name, replace) = (fields.get("name"), fields.get("replace"));
        if fields.get("code").is_some() || (name.is_none() && replace.is_none()) {
            return None;
        }
        Some(Self::new(
            name.map(str::to_owned),
            replace.map(str::to_owned),
        ))
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
enum Pending {
    /// A GET (the page, the QR images): a link on any site makes the
    /// victim's browser send it with the `SameSite=Lax` cookie, so it shows
    /// the fresh pending enrollment as it is, whatever it asks for; only
    /// one that starts anew (none yet, or expired) takes the wish.
    Keep,
    /// A POST (covered by the same-origin layer): a new one in place of
    /// this session's own.
    StartOver,
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

fn enroll_html(ctx: &Ctx, e: &Enrollment, error: Option<&str>) -> String {
    let png = format!("{}/enroll/qr.png", ctx.prefix());
    let svg = format!("{}/enroll/qr.svg", ctx.prefix());
    ctx.auth.inner.pages.enroll(&EnrollPage {
        action: &format!("{}/enroll", ctx.prefix()),
        display_name: &ctx.info.display_name,
        qr_png_url: &png,
        qr_svg_url: &svg,
        manual_key: &e.secret_for_manual_entry(),
        issuer: ctx.auth.engine().config().issuer(),
        error,
        digits: ctx.digits(),
    })
}

/// The enrollment page (`GET /2fa/enroll`, and `POST /2fa/enroll` that
/// starts over): the session's pending enrollment, as a page or JSON.
async fn enroll_page(ctx: &Ctx, wish: EnrollWish, pending: Pending) -> Result<Res, Fail> {
    may_enroll(ctx)?;
    ctx.check_not_expired(ctx.auth.engine().config().pending_ttl())
        .await?;
    let e = current_enrollment(ctx, wish, pending).await?;
    if ctx.html {
        return Ok(html_response(StatusCode::OK, enroll_html(ctx, &e, None)));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "otpauth_uri": e.otpauth_uri(),
            "secret": &*e.secret().to_base32(),
            "qr_png": format!("{}/enroll/qr.png", ctx.prefix()),
            "qr_svg": format!("{}/enroll/qr.svg", ctx.prefix()),
        }),
    ))
}

async fn qr_image(ctx: &Ctx, image: &str) -> Result<Res, Fail> {
    may_enroll(ctx)?;
    ctx.check_not_expired(ctx.auth.engine().config().pending_ttl())
        .await?;
    let e = current_enrollment(ctx, EnrollWish::default(), Pending::Keep).await?;
    let (bytes, kind) = if image == "qr.png" {
        (e.qr_png(), "image/png")
    } else {
        (e.qr_svg().into_bytes(), "image/svg+xml")
    };
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    no_store(res.headers_mut());
    Ok(res)
}

async fn confirm(ctx: &Ctx, fields: Fields) -> Result<Res, Fail> {
    may_enroll(ctx)?;
    ctx.check_not_expired(ctx.auth.engine().config().pending_ttl())
        .await?;
    let Some(code) = fields.get("code") else {
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
                .confirm_enrollment(user, id, code, confirm_as)
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
            ..
        } => {
            own_enrollment::clear(&ctx.session)
                .await
                .map_err(session_error)?;
            ctx.mark_verified(epoch, Method::Enrollment).await?;
            let codes: Vec<&str> = recovery_codes
                .as_ref()
                .map(|c| c.as_strings().collect())
                .unwrap_or_default();
            if ctx.html {
                let after = &ctx.auth.inner.settings.after_login;
                if codes.is_empty() {
                    return Ok(see_other(after));
                }
                let html = ctx.auth.inner.pages.recovery_codes(&RecoveryCodesPage {
                    codes: &codes,
                    continue_url: after,
                });
                return Ok(html_response(StatusCode::OK, html));
            }
            Ok(done(ctx, json!({ "recovery_codes": codes })))
        }
        Confirmation::Rejected(
            reason @ (RejectReason::AlreadyEnrolled | RejectReason::TooManyAuthenticators),
        ) => Err(cap_refusal(reason)),
        Confirmation::Rejected(reason) => {
            let pending = match &own {
                Some(id) => engine.pending_enrollment(user, id, ctx.account()).await?,
                None => None,
            };
            if !ctx.html || pending.is_none() {
                // Still enrolling: the next step is the enrollment page
                // (the second screen would only send the client back).
                let refusal = Refusal::new(RefusalReason::CodeRejected(reason), Some(Next::Enroll));
                if ctx.html {
                    // The enrollment is gone: start over on a fresh page.
                    return Ok(see_other(&format!("{}/enroll", ctx.prefix())));
                }
                return Ok(ctx.auth.refuse(refusal, false));
            }
            let e = pending.ok_or(Fail::Store)?;
            Ok(rejected(ctx, reason, Next::Enroll, |msg| {
                enroll_html(ctx, &e, Some(msg))
            }))
        }
    }
}

async fn list(ctx: &Ctx) -> Result<Res, Fail> {
    ctx.require_recent_step()?;
    let engine = ctx.auth.engine();
    let user = &ctx.state.user;
    let all = engine.authenticators(user).await?;
    let left = engine.recovery_codes_left(user).await?;
    if ctx.html {
        let rows: Vec<AuthenticatorRow<'_>> = all
            .iter()
            .map(|a| AuthenticatorRow {
                id: a.id.as_str(),
                name: &a.name,
            })
            .collect();
        let html = ctx.auth.inner.pages.authenticators(&AuthenticatorsPage {
            prefix: ctx.prefix(),
            rows: &rows,
            recovery_codes_left: left,
        });
        return Ok(html_response(StatusCode::OK, html));
    }
    let items: Vec<_> = all
        .iter()
        .map(|a| json!({ "id": a.id.as_str(), "name": a.name, "created_at": a.created_at.as_secs() }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "authenticators": items, "recovery_codes_left": left }),
    ))
}

async fn revoke(ctx: &Ctx, id: &str) -> Result<Res, Fail> {
    ctx.require_recent_step()?;
    let engine = ctx.auth.engine();
    let user = &ctx.state.user;
    let outcome = engine.revoke(user, &AuthenticatorId::new(id)).await?;
    if outcome == crate::store::RevokeOutcome::NotFound {
        return Err(refuse(RefusalReason::NotFound, None));
    }
    // The epoch moved: keep this session's own recent verification valid.
    let status = engine.status(user).await?;
    if let Some((method, at)) = ctx.state.verified_at(ctx.status.epoch) {
        let state = SessionState {
            stage: Stage::Verified {
                epoch: status.epoch,
                method,
                at,
            },
            ..ctx.state.clone()
        };
        state.save(&ctx.session).await.map_err(session_error)?;
    }
    if ctx.html {
        return Ok(see_other(&format!("{}/authenticators", ctx.prefix())));
    }
    Ok(json_response(StatusCode::OK, &json!({ "revoked": true })))
}

async fn new_recovery_codes(ctx: &Ctx) -> Result<Res, Fail> {
    ctx.require_recent_step()?;
    if !ctx.status.enrolled {
        return Err(refuse(
            RefusalReason::EnrollmentRequired,
            Some(Next::Enroll),
        ));
    }
    let codes = ctx
        .auth
        .engine()
        .issue_recovery_codes(&ctx.state.user)
        .await?;
    let list: Vec<&str> = codes.as_strings().collect();
    if ctx.html {
        let back = format!("{}/authenticators", ctx.prefix());
        let html = ctx.auth.inner.pages.recovery_codes(&RecoveryCodesPage {
            codes: &list,
            continue_url: &back,
        });
        return Ok(html_response(StatusCode::OK, html));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "recovery_codes": list }),
    ))
}
