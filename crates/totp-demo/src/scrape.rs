//! `GET /metrics`: the library's metrics (and anything else the installed
//! recorder holds) in the Prometheus text format, on the demo's own
//! listener.
//!
//! Readable from a loopback peer, or by anyone who sends the configured
//! token (`Authorization: Bearer TOKEN`, compared in constant time). The
//! peer address is the connection's, as `axum::serve` with connect info
//! gives it (the binary does); a request without one (a router driven in
//! process, a proxy that does not say) is not from loopback. Everyone
//! else gets a 403 problem: the counters tell how many logins fail and how
//! often accounts lock, which is nobody else's business. Without a
//! recorder ([`DemoConfig::metrics`](crate::DemoConfig::metrics) unset)
//! the route is not there (404).

use std::fmt;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::respond::{Failure, Format};
use crate::state::AppState;

/// The token that opens `GET /metrics` to peers that are not on loopback.
/// Printed as `[redacted]`; wiped on drop.
#[derive(Clone)]
pub struct MetricsToken(Zeroizing<String>);

impl MetricsToken {
    /// A token; `None` when empty (an empty bearer would open the route
    /// to anyone who sends `Bearer ` with nothing after it).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        (!token.is_empty()).then(|| Self(Zeroizing::new(token)))
    }

    /// Whether `header` (an `Authorization` value) carries this token.
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(sent) = header.and_then(|h| h.as_bytes().strip_prefix(b"Bearer ")) else {
            return false;
        };
        // `ct_eq` of slices of different lengths is false at once: the
        // length is not the secret, the bytes are.
        bool::from(sent.ct_eq(self.0.as_bytes()))
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken([redacted])")
    }
}

/// Where `GET /metrics` reads from, and who may read it.
#[derive(Debug, Clone)]
pub(crate) struct Scrape {
    pub(crate) handle: PrometheusHandle,
    pub(crate) token: Option<MetricsToken>,
}

/// A Prometheus exporter's builder with histogram buckets for the
/// library's two histograms (without buckets the exporter writes
/// summaries, which cannot be added up across instances). The binary
/// installs its recorder (`install_recorder`); tests build one
/// (`build_recorder`) and keep it local to their thread.
pub fn prometheus_builder() -> PrometheusBuilder {
    use tower_totp::metrics::{CLOCK_OFFSET_SECONDS, VERIFICATION_SECONDS};
    let latency = [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0,
    ];
    // Whole steps of 30 s, from well behind to well ahead.
    let offsets = [
        -300.0, -150.0, -90.0, -60.0, -30.0, 0.0, 30.0, 60.0, 90.0, 150.0, 300.0,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(VERIFICATION_SECONDS.into()), &latency)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(CLOCK_OFFSET_SECONDS.into()), &offsets)
        });
    // Only an empty bucket list is refused, and neither is empty.
    builder.unwrap_or_else(|_| PrometheusBuilder::new())
}

/// Whether the request came over a loopback connection.
fn from_loopback(parts: &Parts) -> bool {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback())
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>, parts: Parts) -> Response {
    let format = Format::of(&parts.headers);
    let Some(scrape) = &state.scrape else {
        return Failure::not_found(format).into_response();
    };
    let by_token = scrape
        .token
        .as_ref()
        .is_some_and(|t| t.admits(parts.headers.get(header::AUTHORIZATION)));
    if !by_token && !from_loopback(&parts) {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The metrics are readable from loopback, or with the metrics token.",
            Format::Json,
        )
        .into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        scrape.handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_admits() {
        let t = MetricsToken::new("s3cret").unwrap();
        let h = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(t.admits(Some(&h("Bearer s3cret"))));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "bearer s3cret",
            "s3cret",
            "Bearer ",
        ] {
            assert!(!t.admits(Some(&h(wrong))), "{wrong}");
        }
        assert!(!t.admits(None));
        assert!(MetricsToken::new("").is_none());
        assert_eq!(format!("{t:?}"), "MetricsToken([redacted])");
    }
}
