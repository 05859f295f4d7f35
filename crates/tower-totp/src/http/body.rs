//! The response body of guarded services: the inner service's body, or one
//! of our refusals.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

use crate::store::BoxError;

pin_project! {
    /// Either the inner service's body or a refusal's body.
    #[derive(Debug)]
    pub struct TotpBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Refusal { #[pin] body: Full<Bytes> },
    }
}

impl<B> TotpBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn refusal(body: Full<Bytes>) -> Self {
        Self {
            kind: Kind::Refusal { body },
        }
    }
}

/// The inner body's default: tower-sessions' `SessionManager` needs a
/// `Default` body to answer its own errors, so `TotpLayer` can sit right
/// inside it.
impl<B: Default> Default for TotpBody<B> {
    fn default() -> Self {
        Self::inner(B::default())
    }
}

impl<B> Body for TotpBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Refusal { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Refusal { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Refusal { body } => body.size_hint(),
        }
    }
}
