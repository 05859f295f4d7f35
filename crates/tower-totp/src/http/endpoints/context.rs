//! A request's logged-in context ([`Ctx`]), what every endpoint asks of it,
//! and the answers they share.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::request::Parts;
use serde_json::json;
use tower_sessions::Session;

use crate::clock::UnixTime;
use crate::http::auth::TotpAuth;
use crate::http::clock_hint::ClockHint;
use crate::http::extensions::StepMethod;
use crate::http::language::Strings;
use crate::http::negotiate::Format;
use crate::http::refusal::{Next, Refusal, RefusalReason};
use crate::http::respond::{FullResponse, json_response, page_response, see_other};
use crate::http::session::{SessionState, session_error};
use crate::policy::Requirement;
use crate::store::UserStatus;
use crate::user::UserInfo;
use crate::verify::RejectReason;

/// A refusal, or a store failure (which is a refusal too: 503).
pub(super) enum Fail {
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

/// A refusal for `reason`, pointing to `next`.
pub(super) fn refuse(reason: RefusalReason, next: Option<Next>) -> Fail {
    Fail::Refuse(Refusal::new(reason, next))
}

/// What a request's logged-in context starts from: the session, its
/// login and the user, read before the user's status (which
/// `POST {prefix}` reads with the code, in one store operation).
pub(super) struct Login {
    session: Session,
    pub(super) state: SessionState,
    info: UserInfo,
    now: UnixTime,
    /// The "remember this device" cookie, if the application offers it.
    remember_cookie: Option<String>,
    /// The pages' words, from `Accept-Language`.
    strings: Arc<Strings>,
}

impl Login {
    /// The session's login, or why there is none.
    pub(super) async fn load(auth: &TotpAuth, parts: &Parts) -> Result<Self, Fail> {
        let Some(session) = parts.extensions.get::<Session>().cloned() else {
            return Err(refuse(RefusalReason::MissingSessionLayer, None));
        };
        let state = SessionState::load(&session)
            .await
            .map_err(session_error)?
            .ok_or_else(|| refuse(RefusalReason::NotLoggedIn, Some(Next::Login)))?;
        let info = auth
            .users()
            .user_info(&state.user)
            .await
            .map_err(crate::Error::from)?
            .ok_or_else(|| refuse(RefusalReason::NotLoggedIn, Some(Next::Login)))?;
        let now = auth.engine().now();
        let remember_cookie = auth
            .remember()
            .and_then(|r| r.cookie_value(&parts.headers).map(str::to_owned));
        Ok(Self {
            session,
            state,
            info,
            now,
            remember_cookie,
            strings: auth.strings_for(&parts.headers),
        })
    }

    /// Whether [`Ctx::check_not_expired`] with `ttl` might refuse this
    /// login, whatever the user's status: its second step was never done
    /// and its password is at least `ttl` old.
    pub(super) fn may_have_expired(&self, ttl: Duration) -> bool {
        !self.state.is_verified() && self.now >= self.state.since.saturating_add(ttl)
    }
}

/// A request's logged-in context.
pub(super) struct Ctx {
    pub(super) auth: TotpAuth,
    pub(super) session: Session,
    pub(super) state: SessionState,
    pub(super) info: UserInfo,
    pub(super) status: UserStatus,
    pub(super) now: UnixTime,
    pub(super) format: Format,
    requirement: Requirement,
    /// The "remember this device" cookie, if the application offers it.
    remember_cookie: Option<String>,
    /// The pages' words, from `Accept-Language`.
    pub(super) strings: Arc<Strings>,
}

impl Ctx {
    /// The logged-in context of `login`, reading the user's status.
    pub(super) async fn load(auth: &TotpAuth, login: Login, format: Format) -> Result<Self, Fail> {
        let status = auth.engine().status(&login.state.user).await?;
        Self::with_status(auth, login, status, format).await
    }

    /// The logged-in context of `login`, from a status already read (with
    /// a code, by [`TwoFactor::begin_code`](crate::TwoFactor::begin_code)).
    pub(super) async fn with_status(
        auth: &TotpAuth,
        login: Login,
        status: UserStatus,
        format: Format,
    ) -> Result<Self, Fail> {
        let Login {
            session,
            state,
            info,
            now,
            remember_cookie,
            strings,
        } = login;
        if state.ended_by(&status) {
            // An administrator reset the user: every earlier login is over.
            SessionState::clear(&session).await.map_err(session_error)?;
            return Err(refuse(RefusalReason::NotLoggedIn, Some(Next::Login)));
        }
        let requirement = auth.policy().get().requirement(&info, status.enrolled);
        Ok(Self {
            requirement,
            auth: auth.clone(),
            session,
            state,
            info,
            status,
            now,
            format,
            remember_cookie,
            strings,
        })
    }

    /// What the policy asks of this user, read once per request: a live
    /// change between two reads must not give one request two answers.
    pub(super) fn requirement(&self) -> Requirement {
        self.requirement
    }

    /// When this login's enrollment grace period ends (or ended), by the
    /// policy as it is now; `None` without one.
    pub(super) fn grace_until(&self) -> Option<UnixTime> {
        let since = self.state.required_since()?;
        Some(self.auth.policy().get().grace(since)?.until)
    }

    fn verified_at(&self) -> Option<UnixTime> {
        self.state.verified_at(self.status.epoch).map(|(_, at)| at)
    }

    /// The password was checked too long ago for the next step (a code
    /// while the second step is pending, a first authenticator): log in
    /// again. A pending login is forgotten; a user to whom 2FA does not
    /// apply stays logged in (only enrolling of their own will needs the
    /// fresh password).
    ///
    /// A user who must enrol counts from the end of their grace period, if
    /// it is later than the password: "Sync now" on a grace login of this
    /// morning still works, and so does enrolling right after the period.
    pub(super) async fn check_not_expired(&self, ttl: Duration) -> Result<(), Fail> {
        let start = match self.grace_until() {
            Some(until) if self.requirement() == Requirement::Enroll => until.max(self.state.since),
            _ => self.state.since,
        };
        if self.verified_at().is_none() && self.now >= start.saturating_add(ttl) {
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
    pub(super) fn require_recent_step(&self) -> Result<(), Fail> {
        if self.has_recent_step() {
            Ok(())
        } else {
            Err(refuse(RefusalReason::StepUpRequired, Some(Next::Totp)))
        }
    }

    pub(super) fn has_recent_step(&self) -> bool {
        matches!(
            self.state.verified_at(self.status.epoch),
            Some((method, at))
                if method != StepMethod::RememberedDevice
                    && self.now.duration_since(at) <= self.auth.recent_step()
        )
    }

    /// Mark the session verified and cycle its id (no session fixation).
    pub(super) async fn mark_verified(&self, epoch: u64, method: StepMethod) -> Result<(), Fail> {
        let state = self.state.verified(epoch, method, self.now);
        self.session.cycle_id().await.map_err(session_error)?;
        state.save(&self.session).await.map_err(session_error)?;
        Ok(())
    }

    /// The clock hint of a code accepted `offset` steps from the server's
    /// step ([`ClockHint`]): for browsers kept in the session until the
    /// landing page takes it, for scripts the `clock_hint_s` member of the
    /// answer (returned here, to merge into it). An on-time code drops a
    /// hint an earlier code left. Only ever called for an accepted code.
    pub(super) async fn clock_hint(&self, offset: i64) -> Result<serde_json::Value, Fail> {
        let period = self.auth.engine().config().params().period();
        let hint = self.auth.clock_hint_rule().hint(offset, period);
        let for_page = hint.filter(|_| self.format.is_html());
        ClockHint::keep(for_page, &self.session)
            .await
            .map_err(session_error)?;
        Ok(match hint {
            Some(hint) if !self.format.is_html() => json!({ "clock_hint_s": hint.seconds() }),
            _ => json!({}),
        })
    }

    /// A valid "remember this device" cookie stands in for the second step
    /// here as in the layer (never for a step-up in a verified session):
    /// marks the session verified and says so.
    pub(super) async fn remembered(&self) -> Result<Remembered, Fail> {
        if self.verified_at().is_some() {
            return Ok(Remembered::No);
        }
        let (Some(remember), Some(cookie)) = (self.auth.remember(), &self.remember_cookie) else {
            return Ok(Remembered::No);
        };
        if !remember.verify(cookie, &self.state.user, self.status.epoch, self.now) {
            return Ok(Remembered::No);
        }
        self.mark_verified(self.status.epoch, StepMethod::RememberedDevice)
            .await?;
        Ok(Remembered::Yes)
    }

    pub(super) fn prefix(&self) -> &str {
        self.auth.prefix()
    }

    /// The digit count the pages announce: the configuration's, no store read.
    pub(super) fn digits(&self) -> u8 {
        self.auth.engine().config().params().digits()
    }

    pub(super) fn account(&self) -> &str {
        self.state.user.as_str()
    }

    /// `next: done`: JSON with `extra` members, or a redirect to the
    /// application for browsers.
    pub(super) fn done(&self, extra: serde_json::Value) -> FullResponse {
        if self.format == Format::Html {
            return see_other(self.auth.after_login());
        }
        let mut body = json!({ "next": "done" });
        if let (Some(map), serde_json::Value::Object(more)) = (body.as_object_mut(), extra) {
            map.extend(more);
        }
        json_response(StatusCode::OK, &body)
    }

    /// A rejected code: for browsers the page again (`page` renders it
    /// with the message), for scripts a problem pointing to `next`.
    pub(super) fn rejected(
        &self,
        reason: RejectReason,
        next: Next,
        page: impl FnOnce(&str) -> String,
    ) -> FullResponse {
        let refusal = Refusal::new(RefusalReason::CodeRejected(reason), Some(next));
        match self.format {
            Format::Json => self.auth.refuse(refusal, Format::Json),
            Format::Html => page_response(page(self.strings.refusal(refusal.reason)), &refusal),
        }
    }
}

/// Whether a remember-device cookie stood in for the second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Remembered {
    /// It did: the session is verified now.
    Yes,
    /// No cookie, or not a valid one, or the session was verified already.
    No,
}
