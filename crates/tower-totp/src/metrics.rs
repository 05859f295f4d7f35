//! Counters and histograms, recorded through the
//! [`metrics` facade](https://docs.rs/metrics/0.24) (feature `metrics`, on
//! by default): the service installs the
//! recorder and exporter it likes (Prometheus, StatsD, OpenTelemetry...),
//! and without one every record is a no-op.
//!
//! | Name | Kind | Labels | What |
//! |---|---|---|---|
//! | [`SECOND_STEP`] | counter | `outcome` | A decided second step: `accepted`, `invalid`, `replayed`, `throttled`, `malformed`, `not_enrolled` (a TOTP code), `recovery_code` (an accepted recovery code; refused ones count under their reason) |
//! | [`ENROLLMENTS`] | counter | | An authenticator activated by its first code |
//! | [`LOCKOUTS`] | counter | | A lockout of the throttle noticed: the first attempt it refused (once per lockout and instance) |
//! | [`RESYNCHRONISATIONS`] | counter | | A drifted device resynchronised (also counted as `accepted`) |
//! | [`STORE_ERRORS`] | counter | `kind` | A TOTP store call failed: `unavailable` or `corrupt` |
//! | [`VERIFICATION_SECONDS`] | histogram | | Time the engine spent deciding a TOTP code (its store calls included) |
//! | [`CLOCK_OFFSET_SECONDS`] | histogram | | The offset of an accepted login code's step from the server's step, in seconds (negative: the phone is slow) |
//!
//! No label holds a user id, a code or a secret: every label value is one
//! of the fixed words above, so the number of series is fixed too.
//!
//! The names are constants here so that a service can set histogram
//! buckets for them, for instance with metrics-exporter-prometheus's
//! `set_buckets_for_metric(Matcher::Full(VERIFICATION_SECONDS.into()), ...)`.
//! [`describe`] registers their help texts and units.

use std::time::Duration;

use crate::store::StoreError;
use crate::verify::RejectReason;

/// Counter of decided second steps, label `outcome`.
pub const SECOND_STEP: &str = "tower_totp_second_step_total";
/// Counter of activated authenticators.
pub const ENROLLMENTS: &str = "tower_totp_enrollments_total";
/// Counter of lockouts noticed (the first refused attempt of each).
pub const LOCKOUTS: &str = "tower_totp_lockouts_total";
/// Counter of resynchronised devices.
pub const RESYNCHRONISATIONS: &str = "tower_totp_resynchronisations_total";
/// Counter of failed TOTP store calls, label `kind`.
pub const STORE_ERRORS: &str = "tower_totp_store_errors_total";
/// Histogram of the time spent deciding a TOTP code, in seconds.
pub const VERIFICATION_SECONDS: &str = "tower_totp_verification_duration_seconds";
/// Histogram of accepted codes' clock offsets, in seconds.
pub const CLOCK_OFFSET_SECONDS: &str = "tower_totp_clock_offset_seconds";

/// Register the help text and unit of every metric with the installed
/// recorder (call it once after installing one; recording works without).
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{Unit, describe_counter, describe_histogram};
        describe_counter!(SECOND_STEP, "Decided second steps, by outcome.");
        describe_counter!(ENROLLMENTS, "Authenticators activated by their first code.");
        describe_counter!(
            LOCKOUTS,
            "Throttle lockouts noticed (first refused attempt)."
        );
        describe_counter!(RESYNCHRONISATIONS, "Drifted devices resynchronised.");
        describe_counter!(STORE_ERRORS, "Failed TOTP store calls, by kind.");
        describe_histogram!(
            VERIFICATION_SECONDS,
            Unit::Seconds,
            "Time spent deciding a TOTP code, store calls included."
        );
        describe_histogram!(
            CLOCK_OFFSET_SECONDS,
            Unit::Seconds,
            "Offset of accepted codes from the server's step."
        );
    }
}

/// The `outcome` label of a refused code: a fixed word, whatever the reason.
#[cfg(feature = "metrics")]
fn refused(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::Malformed => "malformed",
        RejectReason::Invalid => "invalid",
        RejectReason::Replayed => "replayed",
        RejectReason::Throttled { .. } => "throttled",
        // The enrollment reasons do not come out of a second step.
        _ => "not_enrolled",
    }
}

// Each function below names its metric with a literal and its labels with
// `&'static str`s: the key is built without allocating, which keeps the
// verification path as cheap as it was (docs/performance.md).

/// A TOTP code decided (`None`: accepted), `took` after its first store call began.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn code_decided(refusal: Option<&RejectReason>, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        let label = refusal.map_or("accepted", refused);
        ::metrics::counter!(SECOND_STEP, "outcome" => label).increment(1);
        ::metrics::histogram!(VERIFICATION_SECONDS).record(took.as_secs_f64());
    }
}

/// An accepted login code's offset from the server's step, in seconds.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn clock_offset(secs: f64) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!(CLOCK_OFFSET_SECONDS).record(secs);
}

/// A recovery code decided: `None` when accepted.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn recovery_code_decided(refusal: Option<&RejectReason>) {
    #[cfg(feature = "metrics")]
    {
        let label = refusal.map_or("recovery_code", refused);
        ::metrics::counter!(SECOND_STEP, "outcome" => label).increment(1);
    }
}

/// An authenticator activated.
pub(crate) fn enrolled() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(ENROLLMENTS).increment(1);
}

/// A lockout noticed.
pub(crate) fn locked_out() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(LOCKOUTS).increment(1);
}

/// A device resynchronised.
pub(crate) fn resynchronised() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(RESYNCHRONISATIONS).increment(1);
}

/// A store call failed.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn store_error(e: &StoreError) {
    #[cfg(feature = "metrics")]
    {
        let kind = match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Corrupt(_) => "corrupt",
        };
        ::metrics::counter!(STORE_ERRORS, "kind" => kind).increment(1);
    }
}
