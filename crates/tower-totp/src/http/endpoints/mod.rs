//! The ready 2FA endpoints, mounted by the application at the prefix
//! (default `/2fa`):
//!
//! | Route | What |
//! |---|---|
//! | `GET /2fa` | the second screen (authenticator app or recovery code) |
//! | `POST /2fa` | form `method`, `code` (`remember`), or JSON `{"code"}` / `{"recovery_code"}` |
//! | `GET /2fa/enroll` | "Sync Authenticator App": this session's own pending enrollment, QR code, manual key; started when it has none (`?name=` names it, `?replace=ID` aims it at an authenticator to re-sync), never replaced |
//! | `GET /2fa/enroll/qr.png`, `/2fa/enroll/qr.svg` | the QR code of this session's pending enrollment |
//! | `POST /2fa/enroll` with `code` | the first code of this session's pending enrollment: activates, answers the recovery codes once |
//! | `POST /2fa/enroll` with `name` and/or `replace`, no `code` | start over: a new pending enrollment in place of this session's own, answered like `GET /2fa/enroll` |
//! | `GET /2fa/authenticators` | list (recent second step required) |
//! | `POST /2fa/authenticators/{id}/revoke`, `DELETE /2fa/authenticators/{id}` | revoke (recent step) |
//! | `POST /2fa/recovery-codes` | a new set of recovery codes (recent step) |
//! | `GET /2fa/grace` | in the enrollment grace period: how long is left, "Sync now" (`/2fa/enroll`) or "Later"; JSON `{"next":"done","grace_until"}`; after it `enrollment_required` |
//!
//! A pending enrollment belongs to the session that started it: no other
//! session sees, confirms or replaces it, and once the user has an
//! authenticator, confirming another needs a recent second step. A GET
//! never cancels or replaces it (a link on another site makes the browser
//! send a GET with the `SameSite=Lax` cookie); starting over is a POST,
//! which [`SameOriginLayer`](crate::http::SameOriginLayer) guards.
//!
//! Browsers (`Accept: text/html`) get pages and redirects; other clients
//! JSON and RFC 9457 problems. Works mounted with the prefix kept (plain
//! hyper) or stripped (axum's `nest_service`).

mod authenticators;
mod context;
mod enrollment;
mod form;
mod grace;
mod recovery_codes;
mod router;
mod second_step;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use super::auth::TotpAuth;
use crate::store::BoxError;

impl TotpAuth {
    /// The `/2fa` endpoints, a `tower::Service` to mount at the prefix.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints { auth: self.clone() }
    }
}

/// The endpoints service; get it from [`TotpAuth::endpoints`].
#[derive(Clone, Debug)]
pub struct Endpoints {
    auth: TotpAuth,
}

type Answer = Result<Response<Full<Bytes>>, Infallible>;

/// Response future of [`Endpoints`].
pub struct EndpointsFuture {
    inner: Pin<Box<dyn Future<Output = Answer> + Send>>,
}

impl fmt::Debug for EndpointsFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointsFuture").finish_non_exhaustive()
    }
}

impl Future for EndpointsFuture {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B> Service<Request<B>> for Endpoints
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = EndpointsFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let auth = self.auth.clone();
        EndpointsFuture {
            inner: Box::pin(async move { Ok(router::handle(auth, req).await) }),
        }
    }
}
