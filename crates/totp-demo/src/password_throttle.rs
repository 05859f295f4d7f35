//! Throttling password guesses per account, with the library's throttle
//! (the same doubling delays as the code step) in its own key space of the
//! same TOTP store.
//!
//! Why one store and a key prefix rather than a store of its own: the TOTP
//! store is the one every instance shares (Redis) and that survives a
//! restart (SQLite), so the password counters are shared and kept just
//! like the code counters. A second store on the same SQLite file would
//! share its tables, so the separation must come from the key.
//!
//! The keys are the typed user name after [`KEY_PREFIX`], which starts
//! with a space. The login trims the user name before it looks it up, so
//! no user who can log in has an id that starts with white space: the
//! password counters of `jsmith` and the code counter of `jsmith` are two
//! counters, and no typed name reaches anyone's code counter.
//!
//! Unknown names are counted exactly like known ones (each typed name has
//! its counter), so neither the answers nor their timing say whether a
//! user exists: a locked name is refused before any hashing, known or not.
//! So that these counters do not pile up, a name longer than any user's
//! gets none (the login refuses it as a wrong password), and counters
//! idle past the policy's retention are pruned (`idle_throttles`).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tower_totp::RejectReason;
use tower_totp::UserId;
use tower_totp::http::{Next, Refusal, RefusalReason, problem_response};
use tower_totp::store::StoreError;
use tower_totp::throttle::{Attempt, ThrottlePolicy};

use crate::pages;
use crate::respond::{self, Format};
use crate::state::AppState;

/// What the password counters' keys start with (see the module docs).
pub(crate) const KEY_PREFIX: &str = " password:";

/// The password throttle: the library's default, 3 free attempts, then
/// 1 s doubling up to 15 minutes. At most 2,892 guesses per account in 30
/// days (`docs/security.md`, section 2).
pub(crate) fn policy() -> ThrottlePolicy {
    ThrottlePolicy::default()
}

/// The key of the password counter of the typed (trimmed) `username`.
pub(crate) fn key(username: &str) -> UserId {
    UserId::new(format!("{KEY_PREFIX}{username}"))
}

/// Charge a password attempt for `username` before its password is
/// checked (charging first holds against parallel guesses). `Some` with
/// how long to wait if the account's password is locked out.
///
/// # Errors
///
/// The store's error when it fails: the login is refused (503).
pub(crate) async fn charge(
    state: &AppState,
    username: &str,
) -> Result<Option<Duration>, StoreError> {
    let engine = state.auth.engine();
    let now = engine.now();
    let attempt = engine
        .store()
        .begin_attempt(&key(username), now, &policy())
        .await?;
    // Every typed name leaves a counter: forget the idle ones now and then.
    state.idle_throttles.tick(now).await;
    match attempt {
        Attempt::Allowed => Ok(None),
        Attempt::Locked { retry_after } => Ok(Some(retry_after)),
    }
}

/// Forget `username`'s password failures (its password was right).
///
/// # Errors
///
/// The store's error when it fails.
pub(crate) async fn clear(state: &AppState, username: &str) -> Result<(), StoreError> {
    state
        .auth
        .engine()
        .store()
        .clear_throttle(&key(username))
        .await
}

/// The 429 for a locked-out password: the library's throttled refusal for
/// scripts (the same problem+json and `Retry-After` as the code step), the
/// login page with the library's message for browsers.
pub(crate) fn locked(retry_after: Duration, format: Format, username: &str) -> Response {
    let refusal = Refusal::new(
        RefusalReason::CodeRejected(RejectReason::Throttled { retry_after }),
        Some(Next::Login),
    );
    let problem = problem_response(&refusal);
    if !format.is_html() {
        return problem.map(axum::body::Body::new).into_response();
    }
    let mut page = respond::html(
        StatusCode::TOO_MANY_REQUESTS,
        pages::login_page(Some(refusal.reason.detail()), username),
    );
    // The library's rounding (up, at least 1 s), taken from its answer.
    if let Some(value) = problem.headers().get(header::RETRY_AFTER) {
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::clone(value));
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_name_the_login_accepts_is_a_password_key() {
        for name in ["jsmith", "admin", " password:jsmith", "password:x", ""] {
            let trimmed = name.trim();
            assert_ne!(key(trimmed).as_str(), trimmed);
            // A key never survives the login's trimming as itself.
            assert_ne!(key(trimmed).as_str().trim(), key(trimmed).as_str());
        }
    }

    #[test]
    fn the_policy_allows_at_most_2892_guesses_in_30_days() {
        let month = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(policy().max_attempts_within(month), 2892);
    }
}
