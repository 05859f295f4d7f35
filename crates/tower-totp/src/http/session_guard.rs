//! A 503 where tower-sessions would answer a bare 500.
//!
//! tower-sessions talks to its store on its own at one moment: after the
//! inner service has answered, it saves a changed session. When that save
//! fails (its Redis is down or refuses writes), `SessionManager` throws the
//! answer away and returns `500 Internal Server Error` with an empty body
//! and no headers; no cookie is set, so nothing is granted, but the client
//! gets neither a reason nor the 503 a failing store deserves. This layer
//! sits right outside `SessionManagerLayer` and turns exactly that answer
//! into the same refusal the layer gives when our own store fails:
//! [`RefusalReason::StoreUnavailable`], a 503 problem (or the configured
//! page for browsers).
//!
//! What counts as tower-sessions' answer: status 500, no `Content-Type`,
//! and a body known to be empty. Anything else (an application's own 500
//! with a body) passes untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode, header};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::auth::TotpAuth;
use super::body::TotpBody;
use super::negotiate::Format;
use super::refusal::{Refusal, RefusalReason};

impl TotpAuth {
    /// A layer for right outside tower-sessions' `SessionManagerLayer`: when
    /// the session store fails to save a session after the application
    /// answered, tower-sessions replies with a bare 500; this turns it into
    /// the 503 refusal the layer gives for any failing store.
    pub fn session_guard(&self) -> SessionGuardLayer {
        SessionGuardLayer { auth: self.clone() }
    }
}

/// Layer for [`SessionGuard`]; from [`TotpAuth::session_guard`]. Place it
/// outside tower-sessions' `SessionManagerLayer`.
#[derive(Debug, Clone)]
pub struct SessionGuardLayer {
    auth: TotpAuth,
}

impl<S> Layer<S> for SessionGuardLayer {
    type Service = SessionGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionGuard {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// Answers a failed session save with a 503 refusal instead of
/// tower-sessions' bare 500 (see [`SessionGuardLayer`]).
#[derive(Debug, Clone)]
pub struct SessionGuard<S> {
    inner: S,
    auth: TotpAuth,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<TotpBody<ResBody>>;
    type Error = S::Error;
    type Future = SessionGuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Read now: the request is gone by the time the answer is known.
        let format = Format::of(req.headers());
        SessionGuardFuture {
            inner: self.inner.call(req),
            auth: self.auth.clone(),
            format,
        }
    }
}

pin_project! {
    /// The future of [`SessionGuard`].
    #[derive(Debug)]
    pub struct SessionGuardFuture<F> {
        #[pin]
        inner: F,
        auth: TotpAuth,
        format: Format,
    }
}

impl<F, ResBody, E> Future for SessionGuardFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Body,
{
    type Output = Result<Response<TotpBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx))?;
        if !is_failed_session_save(&res) {
            return Poll::Ready(Ok(res.map(TotpBody::inner)));
        }
        tracing::warn!("the session store could not save a session; answering 503");
        let refusal = Refusal::new(RefusalReason::StoreUnavailable, None);
        let refused = this.auth.refuse(refusal, *this.format);
        Poll::Ready(Ok(refused.map(TotpBody::refusal)))
    }
}

/// tower-sessions' own failure: a 500 with no content type and an empty
/// body (`Response::default()` with the status set).
fn is_failed_session_save<B: Body>(res: &Response<B>) -> bool {
    res.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !res.headers().contains_key(header::CONTENT_TYPE)
        && res.body().size_hint().exact() == Some(0)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use tower::{ServiceExt as _, service_fn};

    use super::*;
    use crate::http::StaticDirectory;
    use crate::{TotpConfig, TwoFactor};

    fn auth() -> TotpAuth {
        let engine = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
            .build()
            .unwrap();
        TotpAuth::builder(engine, StaticDirectory::default()).build()
    }

    /// A service that answers `status` with `body` and maybe a content type.
    async fn through_guard(
        status: StatusCode,
        body: &'static str,
        content_type: Option<&'static str>,
        accept: &'static str,
    ) -> (StatusCode, Option<String>, Bytes) {
        let inner = service_fn(move |_req: Request<Full<Bytes>>| async move {
            let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *res.status_mut() = status;
            if let Some(ct) = content_type {
                res.headers_mut()
                    .insert(header::CONTENT_TYPE, ct.parse().unwrap());
            }
            Ok::<_, Infallible>(res)
        });
        let req = Request::builder()
            .header(header::ACCEPT, accept)
            .body(Full::default())
            .unwrap();
        let res = auth()
            .session_guard()
            .layer(inner)
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, ct, body)
    }

    #[tokio::test]
    async fn a_bare_500_becomes_a_503_problem() {
        let (status, ct, body) =
            through_guard(StatusCode::INTERNAL_SERVER_ERROR, "", None, "*/*").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ct.as_deref(), Some("application/problem+json"));
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["reason"], "store_unavailable");
    }

    #[tokio::test]
    async fn browsers_get_a_page() {
        let (status, ct, _) =
            through_guard(StatusCode::INTERNAL_SERVER_ERROR, "", None, "text/html").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(ct.unwrap().starts_with("text/html"));
    }

    #[tokio::test]
    async fn other_answers_pass_untouched() {
        for (status, body, ct) in [
            (StatusCode::OK, "", None),
            (StatusCode::OK, "hello", Some("text/plain")),
            (StatusCode::INTERNAL_SERVER_ERROR, "the app's own", None),
            (StatusCode::INTERNAL_SERVER_ERROR, "", Some("text/plain")),
            (StatusCode::SERVICE_UNAVAILABLE, "", None),
        ] {
            let (got, got_ct, got_body) = through_guard(status, body, ct, "*/*").await;
            assert_eq!(got, status, "{status} {body:?}");
            assert_eq!(got_ct.as_deref(), ct);
            assert_eq!(got_body, body.as_bytes());
        }
    }
}
