//! [`StepUpLayer`]: sensitive routes demand a second step done within the
//! last N minutes, even in a verified session.

use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::auth::TotpAuth;
use super::body::TotpBody;
use super::extensions::{SecondFactor, StepMethod, TotpVerified};
use super::future::ResponseFuture;
use super::guarded::Guarded;
use super::negotiate::Format;
use super::refusal::{Next, Refusal, RefusalReason};
use crate::clock::UnixTime;

impl TotpAuth {
    /// A layer for sensitive routes: demands a second step done within
    /// `max_age` (inside [`TotpAuth::layer`]).
    pub fn step_up(&self, max_age: Duration) -> StepUpLayer {
        StepUpLayer {
            auth: self.clone(),
            max_age,
        }
    }
}

/// Demands a second step done within `max_age`. Place it inside
/// [`TotpLayer`](super::TotpLayer), around the sensitive routes only; build
/// it with [`TotpAuth::step_up`].
///
/// Verified users whose step is older, or who got in with a remembered
/// device (which proves the browser, not the phone), are sent to the second
/// screen, which accepts a fresh code in an already verified session. So are
/// users to whom 2FA does not apply but who have an authenticator: an
/// administrator who switches 2FA off for everyone still needs a code for
/// the next change. Only users without any authenticator pass (there is no
/// second factor to step up to).
#[derive(Debug, Clone)]
#[must_use]
pub struct StepUpLayer {
    auth: TotpAuth,
    max_age: Duration,
}

impl<S> Layer<S> for StepUpLayer {
    type Service = StepUp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StepUp {
            inner,
            auth: self.auth.clone(),
            max_age: self.max_age,
        }
    }
}

/// The service of [`StepUpLayer`].
#[derive(Debug, Clone)]
pub struct StepUp<S> {
    inner: S,
    auth: TotpAuth,
    max_age: Duration,
}

impl<S> StepUp<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StepUp<S>
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
        let now = self.auth.engine().now();
        let ext = req.extensions();
        // `TotpLayer` puts a `TotpVerified` or a `Guarded` into every
        // request it lets through.
        let verified = ext.get::<TotpVerified>();
        let guarded = ext.get::<Guarded>();
        let refusal = if verified.is_none() && guarded.is_none() {
            // Outside `TotpLayer` (or without it) nothing says whether the
            // second step was done: fail closed rather than let all through.
            Some(Refusal::new(RefusalReason::MissingTotpLayer, None))
        } else {
            let fresh = |method: StepMethod, at: UnixTime| {
                method != StepMethod::RememberedDevice && now.duration_since(at) <= self.max_age
            };
            let stale = match (verified, guarded.and_then(Guarded::factor)) {
                (Some(v), _) => !fresh(v.method, v.verified_at),
                // 2FA does not apply, but the user has an authenticator: a
                // code is still asked for (the second screen takes it), so
                // that switching the policy off does not also switch off
                // the step-up that guards the switches.
                (
                    None,
                    Some(SecondFactor::NotRequired {
                        enrolled: true,
                        last_step,
                        ..
                    }),
                ) => !last_step.is_some_and(|(method, at)| fresh(method, at)),
                // No authenticator to step up to, or no password login (the
                // application's own auth decides).
                _ => false,
            };
            stale.then(|| Refusal::new(RefusalReason::StepUpRequired, Some(Next::Totp)))
        };
        let Some(refusal) = refusal else {
            return ResponseFuture::calling(self.inner.call(req));
        };
        ResponseFuture::refused(self.auth.refuse(refusal, Format::of(req.headers())))
    }
}
