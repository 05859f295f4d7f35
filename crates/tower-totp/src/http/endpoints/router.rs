//! Which endpoint answers a request: the path below the prefix and the
//! method. An unknown path is a 404 before the session is read; a known
//! one with the wrong method is a 405 once the session is.

use http::request::Parts;
use http::{Method, Request};
use http_body::Body;

use super::context::{Ctx, Fail, Login, refuse};
use super::enrollment::{self, EnrollForm, EnrollRequest, EnrollWish, Pending, QrImage};
use super::form::read_form;
use super::{authenticators, grace, recovery_codes, second_step};
use crate::http::auth::TotpAuth;
use crate::http::negotiate::{BodyKind, Format};
use crate::http::refusal::{Refusal, RefusalReason};
use crate::http::respond::FullResponse;
use crate::store::BoxError;

/// Answer one request: the endpoint's answer, or its refusal.
pub(super) async fn handle<B>(auth: TotpAuth, req: Request<B>) -> FullResponse
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    // The content type is read once: it decides how the body is read and,
    // with `Accept`, what the client reads back.
    let kind = BodyKind::of(&parts.headers);
    let format = Format::given(&parts.headers, kind);
    let strings = auth.strings_for(&parts.headers);
    match route(&auth, &parts, body, kind, format).await {
        Ok(res) => res,
        Err(Fail::Refuse(refusal)) => auth.refuse_in(refusal, format, &strings),
        Err(Fail::Store) => auth.refuse_in(
            Refusal::new(RefusalReason::StoreUnavailable, None),
            format,
            &strings,
        ),
    }
}

async fn route<B>(
    auth: &TotpAuth,
    parts: &Parts,
    body: B,
    kind: Option<BodyKind>,
    format: Format,
) -> Result<FullResponse, Fail>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let path = parts.uri.path();
    let rel = path.strip_prefix(auth.prefix()).unwrap_or(path);
    let segments: Vec<&str> = rel
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // Known paths first, so that a wrong method is a 405, not a 404.
    let known = matches!(
        segments.as_slice(),
        [] | ["enroll"]
            | ["enroll", "qr.png" | "qr.svg"]
            | ["authenticators"]
            | ["recovery-codes"]
            | ["grace"]
            | ["authenticators", _]
            | ["authenticators", _, "revoke"]
    );
    if !known {
        return Err(refuse(RefusalReason::NotFound, None));
    }
    let login = Login::load(auth, parts).await?;
    let limit = auth.body_limit();
    if parts.method == Method::POST && segments.is_empty() {
        // A code is read with the user's status, in one store operation:
        // the form first, then the context.
        return match read_form(kind, body, limit).await {
            Ok(form) => second_step::submit(auth, login, format, form).await,
            Err(reason) => {
                // The context's refusals (a reset ended the login) come
                // before the form's, as on every other route.
                Ctx::load(auth, login, format).await?;
                Err(bad(reason))
            }
        };
    }
    let ctx = Ctx::load(auth, login, format).await?;
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, []) => second_step::show(&ctx).await,
        (&Method::GET, ["enroll"]) => {
            let wish = EnrollWish::from_query(parts.uri.query());
            enrollment::show(&ctx, wish, Pending::Keep).await
        }
        (&Method::GET, ["enroll", "qr.png"]) => enrollment::qr(&ctx, QrImage::Png).await,
        (&Method::GET, ["enroll", _]) => enrollment::qr(&ctx, QrImage::Svg).await,
        (&Method::POST, ["enroll"]) => {
            let form: EnrollForm = read_form(kind, body, limit).await.map_err(bad)?;
            match form.request() {
                EnrollRequest::StartOver(wish) => {
                    enrollment::show(&ctx, wish, Pending::StartOver).await
                }
                EnrollRequest::Confirm(code) => enrollment::confirm(&ctx, code).await,
            }
        }
        (&Method::GET, ["grace"]) => grace::show(&ctx),
        (&Method::GET, ["authenticators"]) => authenticators::list(&ctx).await,
        (&Method::POST, ["authenticators", id, "revoke"])
        | (&Method::DELETE, ["authenticators", id]) => authenticators::revoke(&ctx, id).await,
        (&Method::POST, ["recovery-codes"]) => recovery_codes::regenerate(&ctx).await,
        _ => Err(refuse(RefusalReason::MethodNotAllowed, None)),
    }
}

fn bad(reason: RefusalReason) -> Fail {
    refuse(reason, None)
}
