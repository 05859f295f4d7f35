//! [`SameOriginLayer`]: state changes only from the service's own pages.

mod rule;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use self::rule::{OwnOrigins, check};
use super::auth::{RefusalResponder, TotpAuth};
use super::body::TotpBody;
use super::negotiate::Format;
use super::refusal::{Refusal, RefusalReason};
use super::respond::default_refusal;
use crate::ConfigError;

impl TotpAuth {
    /// A [`SameOriginLayer`] (own origin from the request's host) whose
    /// refusals look like this handle's: its refusal response or pages.
    /// Place it outside the session layer, around every route.
    pub fn same_origin(&self) -> SameOriginLayer {
        let auth = self.clone();
        SameOriginLayer::new()
            .refusal_response(move |refusal, format| auth.refuse(*refusal, format))
    }
}

/// Refuses cross-origin state changes with a 403. The configuration;
/// cheap to clone.
///
/// A session cookie authorises whatever request carries it, whoever wrote
/// the page that sent it. `SameSite=Lax` keeps other *sites* out, but a
/// sibling subdomain or another port of the same host is the same site, and
/// its pages can post forms that arrive with the victim's cookie: switch
/// 2FA off through an administrator's browser, replace recovery codes, log
/// the victim into the attacker's account. This layer refuses an unsafe
/// request (any method but `GET`, `HEAD` and `OPTIONS`) when the browser
/// says it comes from elsewhere:
///
/// | Header | Refused when |
/// |---|---|
/// | `Sec-Fetch-Site` | `cross-site` or `same-site` |
/// | `Origin` | present and not one of the service's own origins (`null` included) |
///
/// A request with neither header passes (curl, server-to-server calls,
/// old browsers): only browsers send them, and a page cannot forge or
/// remove them. The refusal is a 403 with reason `cross_origin`
/// ([`RefusalReason::CrossOrigin`] in the response extensions): an RFC 9457
/// problem for scripts, a page for browsers (the same [`Format::of`] rule
/// as every refusal of this crate). The inner service is never called, so
/// nothing changes.
///
/// # The service's own origin
///
/// By default ([`SameOriginLayer::new`]) it is where the request was sent:
/// the URI's authority (HTTP/2's `:authority`), else the `Host` header. A
/// browser sets those to the page it posts to, so a foreign page cannot
/// make them match its own `Origin`. Only the host and port are compared,
/// not the scheme: behind a TLS-terminating proxy the service cannot know
/// whether it was reached over `https`, and a `Host` without a port names
/// the default port of whichever scheme was used. The one origin this lets
/// in that is not the service's own is the same host and port over the
/// other scheme (a page served over plain HTTP to an HTTPS service, which
/// only a network attacker could write); browsers mark such a request
/// `Sec-Fetch-Site: cross-site` (schemes count for the site), which is
/// refused, and HSTS keeps browsers off the plain-HTTP page in the first
/// place.
///
/// Behind a proxy that rewrites `Host`, list the service's public origins
/// with [`SameOriginLayer::trusted_origins`]: the list then replaces the
/// derivation, and the scheme is compared too. The list does not let other
/// origins of the same site post: browsers mark their requests
/// `Sec-Fetch-Site: same-site`, which is refused whatever the list holds.
/// Serve the forms that post to the service from the service's own
/// origin.
///
/// # Where it goes
///
/// Outside everything that acts on a request (sessions, [`TotpLayer`],
/// the endpoints, the application), so that a refused request touches
/// nothing; only layers that decorate every answer (security headers) sit
/// outside it. Pages that post forms must not send `Referrer-Policy:
/// no-referrer`: browsers then send `Origin: null` on their own form posts,
/// and the layer refuses them. `same-origin` keeps referrers from other
/// sites just as well.
///
/// [`TotpLayer`]: super::TotpLayer
/// [`Format::of`]: super::Format::of
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode, header};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_totp::http::{Refusal, RefusalReason, SameOriginLayer};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let app = service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::new(String::from("changed")))
/// });
/// let service = ServiceBuilder::new()
///     .layer(SameOriginLayer::new())
///     .service(app);
///
/// // A form posted by a page of another origin: refused.
/// let attack = Request::post("/admin/settings")
///     .header(header::HOST, "app.example")
///     .header(header::ORIGIN, "https://evil.example")
///     .body(String::new())
///     .unwrap();
/// let res = service.clone().oneshot(attack).await.unwrap();
/// assert_eq!(res.status(), StatusCode::FORBIDDEN);
/// let refusal = res.extensions().get::<Refusal>().unwrap();
/// assert_eq!(refusal.reason, RefusalReason::CrossOrigin);
///
/// // The service's own page: passes.
/// let own = Request::post("/admin/settings")
///     .header(header::HOST, "app.example")
///     .header(header::ORIGIN, "https://app.example")
///     .header("sec-fetch-site", "same-origin")
///     .body(String::new())
///     .unwrap();
/// assert_eq!(service.oneshot(own).await.unwrap().status(), StatusCode::OK);
///
/// // Behind a proxy: the public origins, checked when built.
/// let layer = SameOriginLayer::new()
///     .trusted_origins(["https://app.example", "https://admin.example"])
///     .unwrap();
/// # let _ = layer;
/// assert!(SameOriginLayer::new().trusted_origins(["app.example"]).is_err());
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct SameOriginLayer {
    own: Arc<OwnOrigins>,
    responder: Option<Arc<RefusalResponder>>,
}

impl fmt::Debug for SameOriginLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SameOriginLayer")
            .field("own", &self.own)
            .field("custom_response", &self.responder.is_some())
            .finish()
    }
}

impl Default for SameOriginLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl SameOriginLayer {
    /// The service's own origin is the host and port each request was sent
    /// to; refusals are this crate's problem+json or default page.
    pub fn new() -> Self {
        Self {
            own: Arc::new(OwnOrigins::FromHost),
            responder: None,
        }
    }

    /// The service's own origins, `scheme://host[:port]` as browsers send
    /// them in `Origin` (no path, not even `/`): they replace the host of
    /// the request, and the scheme is compared too. Include every origin
    /// the service's pages are served from. (A sibling origin in the list
    /// is still refused by browsers' `Sec-Fetch-Site: same-site`; the
    /// list is for a service reached under several names or behind a
    /// proxy that rewrites `Host`.)
    ///
    /// # Errors
    ///
    /// [`ConfigError::Origin`] for the first value that is not an origin.
    pub fn trusted_origins<I, T>(mut self, origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.own = Arc::new(OwnOrigins::listed(origins)?);
        Ok(self)
    }

    /// Answer refusals with `f` (given the refusal and what the client
    /// reads) instead of the default problem or page. The
    /// [`Refusal`] is put into the response's extensions either way.
    pub fn refusal_response(
        mut self,
        f: impl Fn(&Refusal, Format) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        self.responder = Some(Arc::new(f));
        self
    }

    fn refuse(&self, format: Format) -> Response<Full<Bytes>> {
        let refusal = Refusal::new(RefusalReason::CrossOrigin, None);
        match &self.responder {
            Some(f) => {
                let mut res = f(&refusal, format);
                res.extensions_mut().insert(refusal);
                res
            }
            None => default_refusal(&refusal, format),
        }
    }
}

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOrigin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOrigin {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`SameOriginLayer`].
#[derive(Debug, Clone)]
pub struct SameOrigin<S> {
    inner: S,
    layer: SameOriginLayer,
}

impl<S> SameOrigin<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SameOrigin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TotpBody<ResBody>>;
    type Error = S::Error;
    type Future = SameOriginFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let Some(why) = check(&self.layer.own, req.method(), req.uri(), req.headers()) else {
            return SameOriginFuture {
                state: State::Calling {
                    future: self.inner.call(req),
                },
            };
        };
        tracing::info!(
            target: crate::audit::TARGET,
            event = "cross_origin_refused",
            method = %req.method(),
            path = req.uri().path(),
            origin = ?req.headers().get(header::ORIGIN),
            why = ?why,
            "cross-origin state change refused",
        );
        SameOriginFuture {
            state: State::Refused {
                response: Some(self.layer.refuse(Format::of(req.headers()))),
            },
        }
    }
}

pin_project! {
    /// The response future of [`SameOrigin`]: the inner service's, or the
    /// refusal.
    pub struct SameOriginFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Refused { response: Option<Response<Full<Bytes>>> },
    }
}

impl<F> fmt::Debug for SameOriginFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SameOriginFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for SameOriginFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<TotpBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Calling { future } => {
                let res = ready!(future.poll(cx))?;
                Poll::Ready(Ok(res.map(TotpBody::inner)))
            }
            StateProj::Refused { response } => {
                let Some(res) = response.take() else {
                    unreachable!("SameOriginFuture polled after completion");
                };
                Poll::Ready(Ok(res.map(TotpBody::refusal)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::StatusCode;
    use http_body_util::BodyExt as _;
    use tower::{ServiceExt as _, service_fn};

    use super::*;

    /// Send `req` through `layer` around a service that counts its calls.
    async fn through(
        layer: SameOriginLayer,
        req: Request<Full<Bytes>>,
    ) -> (Response<TotpBody<Full<Bytes>>>, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = service_fn(move |_req: Request<Full<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
        });
        let res = layer.layer(inner).oneshot(req).await.unwrap();
        (res, calls.load(Ordering::SeqCst))
    }

    fn attack(accept: &str) -> Request<Full<Bytes>> {
        Request::post("/x")
            .header(header::HOST, "app.example")
            .header(header::ORIGIN, "https://app.example.evil.example")
            .header(header::ACCEPT, accept)
            .body(Full::default())
            .unwrap()
    }

    #[tokio::test]
    async fn scripts_get_a_403_problem_and_the_service_is_not_called() {
        let (res, calls) = through(SameOriginLayer::new(), attack("*/*")).await;
        assert_eq!(calls, 0);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.extensions().get::<Refusal>(),
            Some(&Refusal::new(RefusalReason::CrossOrigin, None))
        );
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["reason"], "cross_origin");
        assert_eq!(problem["status"], 403);
    }

    #[tokio::test]
    async fn browsers_get_a_page() {
        let (res, calls) = through(SameOriginLayer::new(), attack("text/html")).await;
        assert_eq!(calls, 0);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(res.extensions().get::<Refusal>().is_some());
    }

    #[tokio::test]
    async fn a_custom_response_still_carries_the_refusal() {
        let layer = SameOriginLayer::new().refusal_response(|refusal, format| {
            let mut res = Response::new(Full::new(Bytes::from(format!(
                "{} {}",
                refusal.reason.slug(),
                format.is_html()
            ))));
            *res.status_mut() = refusal.reason.status();
            res
        });
        let (res, calls) = through(layer, attack("text/html")).await;
        assert_eq!(calls, 0);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.extensions().get::<Refusal>().is_some());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"cross_origin true");
    }

    #[tokio::test]
    async fn own_and_headerless_requests_reach_the_service() {
        let own = Request::post("/x")
            .header(header::HOST, "app.example")
            .header(header::ORIGIN, "https://app.example")
            .body(Full::default())
            .unwrap();
        let (res, calls) = through(SameOriginLayer::new(), own).await;
        assert_eq!((res.status(), calls), (StatusCode::OK, 1));
        let curl = Request::post("/x").body(Full::default()).unwrap();
        let (res, calls) = through(SameOriginLayer::new(), curl).await;
        assert_eq!((res.status(), calls), (StatusCode::OK, 1));
    }
}
