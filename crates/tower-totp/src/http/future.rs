//! The response future shared by [`Totp`](super::Totp) and
//! [`StepUp`](super::StepUp): first an async decision, then either the inner
//! service's future or a refusal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::TotpBody;
use super::extensions::TotpVerified;
use super::guarded::Guarded;

/// What the layer decided for one request.
pub(crate) enum LayerDecision {
    /// Let it through, with the one value to put into the extensions.
    Pass(Mark),
    /// Answer this instead; the inner service never sees the request.
    Refuse(Response<Full<Bytes>>),
}

/// What a request the layer lets through carries: one value, so that the
/// extensions' table (tower-cookies' and tower-sessions' values are already
/// there) does not grow (`docs/performance.md`, bench `layer`).
pub(crate) enum Mark {
    /// The second step is done.
    Verified(TotpVerified),
    /// No password login, or 2FA does not apply.
    Guarded(Guarded),
}

/// The decision, and the request handed back: the decision owns the request
/// while it runs, so that it reads headers (`Accept`, the remember cookie)
/// only on the paths that need them, without copying them out first.
pub(crate) type DecisionFuture<ReqBody> =
    Pin<Box<dyn Future<Output = (LayerDecision, Request<ReqBody>)> + Send>>;

pin_project! {
    /// Response future of [`Totp`](super::Totp) and [`StepUp`](super::StepUp).
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Deciding {
            decision: DecisionFuture<ReqBody>,
            inner: Option<S>,
        },
        // Refused before any await (no session layer, a stale step-up):
        // no boxed future and no clone of the inner service.
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn deciding(decision: DecisionFuture<ReqBody>, inner: S) -> Self {
        Self {
            state: State::Deciding {
                decision,
                inner: Some(inner),
            },
        }
    }

    pub(crate) fn refused(response: Response<Full<Bytes>>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    pub(crate) fn calling(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<TotpBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Deciding { decision, inner } => {
                    let (decided, mut req) = ready!(decision.as_mut().poll(cx));
                    match decided {
                        LayerDecision::Refuse(res) => {
                            return Poll::Ready(Ok(res.map(TotpBody::refusal)));
                        }
                        LayerDecision::Pass(mark) => {
                            // Taken exactly once: the state changes right after.
                            let Some(mut svc) = inner.take() else {
                                unreachable!("ResponseFuture polled after completion");
                            };
                            let ext = req.extensions_mut();
                            // Nothing was there before: no old value to drop.
                            match mark {
                                Mark::Verified(verified) => {
                                    ext.insert(verified);
                                }
                                Mark::Guarded(guarded) => {
                                    ext.insert(guarded);
                                }
                            }
                            let future = svc.call(req);
                            this.state.set(State::Calling { future });
                        }
                    }
                }
                StateProj::Refused { response } => {
                    let Some(res) = response.take() else {
                        unreachable!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(res.map(TotpBody::refusal)));
                }
                StateProj::Calling { future } => {
                    let res = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(res.map(TotpBody::inner)));
                }
            }
        }
    }
}
