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
use super::extensions::{Guarded, SecondFactor};

/// What the layer decided for one request.
pub(crate) enum Decision {
    /// Let it through, with what to put into the extensions.
    Pass(Option<SecondFactor>),
    /// Answer this instead; the inner service never sees the request.
    Refuse(Response<Full<Bytes>>),
}

pub(crate) type DecisionFuture = Pin<Box<dyn Future<Output = Decision> + Send>>;

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
            decision: DecisionFuture,
            inner: Option<S>,
            request: Option<Request<ReqBody>>,
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
    pub(crate) fn deciding(decision: DecisionFuture, inner: S, request: Request<ReqBody>) -> Self {
        Self {
            state: State::Deciding {
                decision,
                inner: Some(inner),
                request: Some(request),
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
                StateProj::Deciding {
                    decision,
                    inner,
                    request,
                } => {
                    let decided = ready!(decision.as_mut().poll(cx));
                    match decided {
                        Decision::Refuse(res) => {
                            return Poll::Ready(Ok(res.map(TotpBody::refusal)));
                        }
                        Decision::Pass(marker) => {
                            // Both are taken exactly once: the state changes right after.
                            let (Some(mut svc), Some(mut req)) = (inner.take(), request.take())
                            else {
                                unreachable!("ResponseFuture polled after completion");
                            };
                            req.extensions_mut().insert(Guarded);
                            if let Some(m) = marker {
                                if let SecondFactor::Verified(v) = &m {
                                    req.extensions_mut().insert(v.clone());
                                }
                                req.extensions_mut().insert(m);
                            }
                            let future = svc.call(req);
                            this.state.set(State::Calling { future });
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let res = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(res.map(TotpBody::inner)));
                }
            }
        }
    }
}
