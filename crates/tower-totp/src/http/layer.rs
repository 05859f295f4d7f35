//! [`TotpLayer`] and its service [`Totp`]: demand the second step after the
//! application's password check.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tower_sessions::Session;

use super::auth::TotpAuth;
use super::body::TotpBody;
use super::directory::UserLookup;
use super::extensions::{SecondFactor, StepMethod, TotpVerified};
use super::future::{LayerDecision, Mark, ResponseFuture};
use super::guarded::Guarded;
use super::refusal::{Next, Refusal, RefusalReason};
use super::session::SessionState;
use crate::clock::UnixTime;
use crate::policy::Requirement;
use crate::store::StatusLookup;
use crate::user::UserId;

impl TotpAuth {
    /// The layer that guards the application's routes.
    pub fn layer(&self) -> TotpLayer {
        TotpLayer { auth: self.clone() }
    }
}

/// Guards every route inside it: see the [module docs](super) for what
/// happens to each request. Build it with [`TotpAuth::layer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TotpLayer {
    auth: TotpAuth,
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
        let Some(session) = req.extensions().get::<Session>().cloned() else {
            let refusal = Refusal::new(RefusalReason::MissingSessionLayer, None);
            return ResponseFuture::refused(self.auth.refuse_to(refusal, req.headers()));
        };
        // Take the service that was driven to readiness; leave a clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        let decision = Box::pin(async move {
            // Only the headers are borrowed across the awaits: `HeaderMap`
            // is `Sync`, the request body need not be.
            let headers = req.headers();
            let decision = match decide(&auth, &session, headers).await {
                Ok(Some(SecondFactor::Verified(verified))) => {
                    LayerDecision::Pass(Mark::Verified(verified))
                }
                Ok(factor) => LayerDecision::Pass(Mark::Guarded(Guarded::new(&auth, factor))),
                Err(refusal) => LayerDecision::Refuse(auth.refuse_to(refusal, headers)),
            };
            (decision, req)
        });
        ResponseFuture::deciding(decision, inner)
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
///
/// The session writes of the rare paths are boxed futures of their own, so
/// that this future, boxed on every request, stays small (why:
/// `docs/performance.md`, bench `layer`).
async fn decide(
    auth: &TotpAuth,
    session: &Session,
    headers: &HeaderMap,
) -> Result<Option<SecondFactor>, Refusal> {
    let Some(state) = SessionState::load(session)
        .await
        .map_err(|_| unavailable())?
    else {
        // Not password-authenticated: the application's own auth decides.
        return Ok(None);
    };
    let info = match auth.users().user_info_now(&state.user) {
        UserLookup::Found(info) => Some(info),
        UserLookup::NoSuchUser => None,
        UserLookup::NotAtHand => auth
            .users()
            .user_info(&state.user)
            .await
            .map_err(|_| unavailable())?,
    };
    let Some(info) = info else {
        return Err(end_login(session, RefusalReason::NotLoggedIn).await);
    };
    let engine = auth.engine();
    // From memory when the store has it at hand (no boxed future), else
    // one round trip.
    let status = match engine.store().status_now(&state.user) {
        StatusLookup::Found(status) => status,
        StatusLookup::NotAtHand => engine
            .status(&state.user)
            .await
            .map_err(|_| unavailable())?,
    };
    if state.ended_by(&status) {
        // An administrator reset the user: every earlier login is over.
        return Err(end_login(session, RefusalReason::NotLoggedIn).await);
    }
    let now = engine.now();
    let settings = auth.policy().get();
    match settings.requirement(&info, status.enrolled) {
        Requirement::NotRequired => Ok(Some(SecondFactor::NotRequired {
            last_step: state.verified_at(status.epoch),
            enrolled: status.enrolled,
            user: state.user,
        })),
        Requirement::Enroll => {
            let grace = state
                .required_since()
                .and_then(|since| settings.grace(since));
            if let Some(grace) = grace.filter(|g| g.runs_at(now)) {
                return Ok(Some(SecondFactor::Grace {
                    user: state.user,
                    until: grace.until,
                }));
            }
            // A login that outlived its grace period may still enrol within
            // the pending time from the period's end.
            let start = grace.map_or(state.since, |g| g.until.max(state.since));
            let deadline = start.saturating_add(engine.config().pending_ttl());
            if now >= deadline {
                return Err(end_login(session, RefusalReason::StepExpired).await);
            }
            Err(Refusal::new(
                RefusalReason::EnrollmentRequired,
                Some(Next::Enroll),
            ))
        }
        Requirement::Challenge => {
            if let Some((method, at)) = state.verified_at(status.epoch) {
                return Ok(Some(verified(state.user, method, at)));
            }
            // The remember cookie is looked for only here, where it matters.
            let remembered = auth.remember().is_some_and(|r| {
                r.cookie_value(headers)
                    .is_some_and(|cookie| r.verify(cookie, &state.user, status.epoch, now))
            });
            if remembered {
                return remembered_device(session, state, status.epoch, now)
                    .await
                    .map(Some);
            }
            if now >= state.since.saturating_add(auth.pending_step_ttl()) {
                return Err(end_login(session, RefusalReason::StepExpired).await);
            }
            Err(Refusal::new(
                RefusalReason::SecondStepRequired,
                Some(Next::Totp),
            ))
        }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Forget the password login in `session`; the refusal that says so (or
/// that the session store failed).
fn end_login(session: &Session, reason: RefusalReason) -> Boxed<'_, Refusal> {
    Box::pin(async move {
        match SessionState::clear(session).await {
            Ok(()) => Refusal::new(reason, Some(Next::Login)),
            Err(_) => unavailable(),
        }
    })
}

/// A valid remember cookie stands for the second step: record it in the
/// session (under a new id, as any change of login state).
fn remembered_device(
    session: &Session,
    state: SessionState,
    epoch: u64,
    now: UnixTime,
) -> Boxed<'_, Result<SecondFactor, Refusal>> {
    Box::pin(async move {
        let state = state.verified(epoch, StepMethod::RememberedDevice, now);
        session.cycle_id().await.map_err(|_| unavailable())?;
        state.save(session).await.map_err(|_| unavailable())?;
        Ok(verified(state.user, StepMethod::RememberedDevice, now))
    })
}

fn verified(user: UserId, method: StepMethod, at: UnixTime) -> SecondFactor {
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
