//! [`StepUpLayer`]: sensitive routes demand a second step done within the
//! last N minutes, even in a verified session.

use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::auth::TotpAuth;
use super::body::TotpBody;
use super::extensions::{SecondFactor, StepMethod};
use super::future::ResponseFuture;
use super::guarded::{Guarded, layer_verified};
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
/// the next change. Only users without any authenticator to whom 2FA does
/// not apply pass (there is no second factor to step up to); a user in the
/// enrollment grace period ([`SecondFactor::Grace`]) is answered
/// `enrollment_required`: the grace lets them into the application, not
/// past a step-up.
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
        let verified = layer_verified(ext);
        let guarded = ext.get::<Guarded>();
        let refusal = if verified.is_none() && guarded.is_none() {
            // Outside `TotpLayer` (or without it) nothing says whether the
            // second step was done: fail closed rather than let all through.
            Some(Refusal::new(RefusalReason::MissingTotpLayer, None))
        } else {
            let fresh = |method: StepMethod, at: UnixTime| {
                method != StepMethod::RememberedDevice && now.duration_since(at) <= self.max_age
            };
            let stale = Refusal::new(RefusalReason::StepUpRequired, Some(Next::Totp));
            match (verified, guarded.and_then(Guarded::factor)) {
                (Some(v), _) => (!fresh(v.method, v.verified_at)).then_some(stale),
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
                ) => (!last_step.is_some_and(|(method, at)| fresh(method, at))).then_some(stale),
                // In the grace period: no second factor at all. The grace
                // lets the user into the application, not past a step-up.
                (None, Some(SecondFactor::Grace { .. })) => Some(Refusal::new(
                    RefusalReason::EnrollmentRequired,
                    Some(Next::Enroll),
                )),
                // No authenticator to step up to, or no password login (the
                // application's own auth decides).
                _ => None,
            }
        };
        let Some(refusal) = refusal else {
            return ResponseFuture::calling(self.inner.call(req));
        };
        ResponseFuture::refused(self.auth.refuse_to(refusal, req.headers()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;

    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::Full;
    use tower::{ServiceExt as _, service_fn};

    use super::*;
    use crate::http::StaticDirectory;
    use crate::http::extensions::TotpVerified;
    use crate::user::UserId;
    use crate::{TotpConfig, TwoFactor};

    fn auth() -> TotpAuth {
        let engine = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
            .build()
            .unwrap();
        TotpAuth::builder(engine, StaticDirectory::default()).build()
    }

    /// What `StepUp` answers for a request carrying `extensions`' marks.
    async fn status_with(auth: &TotpAuth, guarded: Option<Guarded>, forged: bool) -> StatusCode {
        let inner = service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let mut req = Request::new(Full::default());
        if let Some(g) = guarded {
            req.extensions_mut().insert(g);
        }
        if forged {
            // Put there by someone else than the layer, before it.
            req.extensions_mut().insert(TotpVerified {
                user: UserId::new("ada"),
                method: StepMethod::Totp,
                verified_at: auth.engine().now(),
            });
        }
        auth.step_up(Duration::from_secs(60))
            .layer(inner)
            .oneshot(req)
            .await
            .unwrap()
            .status()
    }

    /// The layer passed the request without a verified step (2FA does not
    /// apply, the user has an authenticator, no code in this session): a
    /// `TotpVerified` beside its mark does not outvote it.
    #[tokio::test]
    async fn a_totp_verified_beside_the_layers_mark_does_not_count() {
        let auth = auth();
        let not_required = || {
            Some(Guarded::new(
                &auth,
                Some(SecondFactor::NotRequired {
                    user: UserId::new("ada"),
                    enrolled: true,
                    last_step: None,
                }),
            ))
        };
        assert_eq!(
            status_with(&auth, not_required(), false).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_with(&auth, not_required(), true).await,
            StatusCode::UNAUTHORIZED,
            "a forged TotpVerified passed the step-up"
        );
        // The layer's own verified pass carries no mark: it counts.
        assert_eq!(status_with(&auth, None, true).await, StatusCode::OK);
    }
}
