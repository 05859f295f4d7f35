//! [`TotpLayer`] and its service [`Totp`]: demand the second step after the
//! application's password check.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tower_sessions::Session;

use super::auth::TotpAuth;
use super::body::TotpBody;
use super::extensions::{SecondFactor, TotpVerified};
use super::future::{Decision, ResponseFuture};
use super::refusal::{Next, Refusal, RefusalReason, wants_html};
use super::session::{Method, SessionState, Stage};
use crate::policy::Requirement;

/// Guards every route inside it: see the [module docs](super) for what
/// happens to each request. Build it with [`TotpAuth::layer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TotpLayer {
    auth: TotpAuth,
}

impl TotpLayer {
    pub(crate) fn new(auth: TotpAuth) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for TotpLayer {
    type Service = Totp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Totp {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`TotpLayer`].
#[derive(Debug, Clone)]
pub struct Totp<S> {
    inner: S,
    auth: TotpAuth,
}

impl<S> Totp<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Totp<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<TotpBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Our own endpoints check the session themselves.
        if is_under(req.uri().path(), self.auth.prefix()) {
            return ResponseFuture::calling(self.inner.call(req));
        }
        // Take the service that was driven to readiness; leave a clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let html = wants_html(req.headers());
        let Some(session) = req.extensions().get::<Session>().cloned() else {
            let refusal = Refusal::new(RefusalReason::MissingSessionLayer, None);
            let res = self.auth.refuse(refusal, html);
            return ResponseFuture::deciding(
                Box::pin(async move { Decision::Refuse(res) }),
                inner,
                req,
            );
        };
        let auth = self.auth.clone();
        let remember = auth
            .inner
            .remember
            .as_ref()
            .and_then(|r| r.cookie_value(req.headers()).map(str::to_owned));
        let decision = Box::pin(async move {
            match decide(&auth, &session, remember.as_deref()).await {
                Ok(pass) => Decision::Pass(pass),
                Err(refusal) => Decision::Refuse(auth.refuse(refusal, html)),
            }
        });
        ResponseFuture::deciding(decision, inner, req)
    }
}

/// Whether `path` is `prefix` or below it. A path with dot segments is not:
/// a router that normalises `/2fa/../admin` must not see it unguarded.
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        && !path.split('/').any(|s| s == ".." || s == ".")
}

fn unavailable() -> Refusal {
    Refusal::new(RefusalReason::StoreUnavailable, None)
}

/// The per-request decision: `Ok` lets the request through with a marker,
/// `Err` refuses it.
async fn decide(
    auth: &TotpAuth,
    session: &Session,
    remember_cookie: Option<&str>,
) -> Result<Option<SecondFactor>, Refusal> {
    let Some(state) = SessionState::load(session)
        .await
        .map_err(|_| unavailable())?
    else {
        // Not password-authenticated: the application's own auth decides.
        return Ok(None);
    };
    let inner = &auth.inner;
    let user = state.user.clone();
    let Some(info) = inner
        .users
        .user_info(&user)
        .await
        .map_err(|_| unavailable())?
    else {
        SessionState::clear(session)
            .await
            .map_err(|_| unavailable())?;
        return Err(Refusal::new(RefusalReason::NotLoggedIn, Some(Next::Login)));
    };
    let status = inner
        .engine
        .status(&user)
        .await
        .map_err(|_| unavailable())?;
    let now = inner.engine.now();
    match inner.policy.get().requirement(&info, status.enrolled) {
        Requirement::NotRequired => Ok(Some(SecondFactor::NotRequired { user })),
        Requirement::Enroll => {
            let deadline = state
                .since
                .saturating_add(inner.engine.config().pending_ttl());
            if now >= deadline {
                SessionState::clear(session)
                    .await
                    .map_err(|_| unavailable())?;
                return Err(Refusal::new(RefusalReason::StepExpired, Some(Next::Login)));
            }
            Err(Refusal::new(
                RefusalReason::EnrollmentRequired,
                Some(Next::Enroll),
            ))
        }
        Requirement::Challenge => {
            if let Some((method, at)) = state.verified_at(status.epoch) {
                return Ok(Some(verified(user, method, at)));
            }
            let remembered = match (&inner.remember, remember_cookie) {
                (Some(r), Some(cookie)) => r.verify(cookie, &user, status.epoch, now),
                _ => false,
            };
            if remembered {
                let state = SessionState {
                    stage: Stage::Verified {
                        epoch: status.epoch,
                        method: Method::RememberedDevice,
                        at: now,
                    },
                    ..state
                };
                session.cycle_id().await.map_err(|_| unavailable())?;
                state.save(session).await.map_err(|_| unavailable())?;
                return Ok(Some(verified(user, Method::RememberedDevice, now)));
            }
            if now >= state.since.saturating_add(inner.settings.pending_step_ttl) {
                SessionState::clear(session)
                    .await
                    .map_err(|_| unavailable())?;
                return Err(Refusal::new(RefusalReason::StepExpired, Some(Next::Login)));
            }
            Err(Refusal::new(
                RefusalReason::SecondStepRequired,
                Some(Next::Totp),
            ))
        }
    }
}

fn verified(user: crate::UserId, method: Method, at: crate::clock::UnixTime) -> SecondFactor {
    SecondFactor::Verified(TotpVerified {
        user,
        method,
        verified_at: at,
    })
}

#[cfg(test)]
mod tests {
    use super::is_under;

    #[test]
    fn prefix_matching_is_by_segment() {
        assert!(is_under("/2fa", "/2fa"));
        assert!(is_under("/2fa/enroll", "/2fa"));
        assert!(!is_under("/2faX", "/2fa"));
        assert!(!is_under("/api/2fa", "/2fa"));
        assert!(!is_under("/2fa/../admin", "/2fa"));
        assert!(!is_under("/2fa/./enroll", "/2fa"));
    }
}
