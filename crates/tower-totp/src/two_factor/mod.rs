//! The engine: enrollment, verification and recovery codes for one
//! application, over a store, a clock and a keyring. No HTTP here; the layer
//! and the endpoints call it.
//!
//! One module per part of the engine, each an `impl TwoFactor` block:
//! building it (`builder`), login codes (`login`), enrollment
//! (`enrollment`), recovery codes (`recovery`), key rotation (`rotation`)
//! and the listing, revocation and reset of authenticators
//! (`authenticators`). Which step a code matches is not decided here but
//! in `verify::decision`, a pure function.

mod authenticators;
mod builder;
mod enrollment;
mod key_cache;
mod lockouts;
mod login;
mod recovery;
mod rotation;

use std::sync::Arc;

use crate::audit::{self, AuditEvent};
use crate::clock::{Clock, UnixTime};
use crate::code::Hotp;
use crate::config::TotpConfig;
use crate::error::Error;
use crate::events::{SecurityEvent, SecurityEventKind, SecurityEvents};
use crate::seal::Keyring;
use crate::store::{Authenticator, TotpStore, UserStatus};
use crate::throttle::Attempt;
use crate::user::UserId;
use crate::verify::RejectReason;
use key_cache::KeyCache;
use lockouts::Lockouts;

pub use authenticators::AuthenticatorInfo;
pub use builder::TwoFactorBuilder;
pub use enrollment::{ConfirmAs, Confirmation};
pub use key_cache::{KeyCacheConfig, KeyCacheStats};
pub use login::CodeCheck;
pub use recovery::RecoveryVerdict;

/// The verification engine. Cheap to clone; clones share everything.
///
/// ```
/// # tokio_test_block(async {
/// use tower_totp::{ConfirmAs, TwoFactor, TotpConfig, UserId, Verdict};
/// use tower_totp::clock::{ManualClock, UnixTime};
/// use tower_totp::code::Hotp;
///
/// let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
/// let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
///     .clock(clock.clone())
///     .build()
///     .unwrap();
/// let alice = UserId::new("alice");
///
/// // Enrol: show the QR code, then confirm with the first code. The
/// // enrollment's id is what its session keeps: only it can confirm it.
/// let enrollment = tfa
///     .start_enrollment(&alice, "alice@example.com", "Phone", None)
///     .await
///     .unwrap()
///     .expect("under the caps");
/// let phone = Hotp::new(enrollment.secret(), enrollment.params());
/// let step = enrollment.params().step_at(clock.now());
/// let confirmed = tfa
///     .confirm_enrollment(&alice, enrollment.id(), &phone.code_string(step), ConfirmAs::FirstAuthenticator)
///     .await
///     .unwrap();
/// assert!(confirmed.is_confirmed());
///
/// // The confirming code cannot be used again; the next one logs in.
/// clock.advance(std::time::Duration::from_secs(30));
/// let verdict = tfa.verify(&alice, &phone.code_string(step + 1)).await.unwrap();
/// assert!(verdict.is_accepted());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// # use tower_totp::clock::Clock;
/// ```
#[derive(Clone, Debug)]
pub struct TwoFactor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TotpConfig,
    store: Arc<dyn TotpStore>,
    clock: Arc<dyn Clock>,
    keys: Keyring,
    key_cache: KeyCache,
    events: Option<Arc<dyn SecurityEvents>>,
    lockouts: Lockouts,
}

impl TwoFactor {
    /// The configuration.
    pub fn config(&self) -> &TotpConfig {
        &self.inner.config
    }

    /// The clock every decision reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TotpStore> {
        &self.inner.store
    }

    /// The current time by the engine's clock.
    pub fn now(&self) -> UnixTime {
        self.inner.clock.now()
    }

    /// The user's epoch and enrollment, in one store round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn status(&self, user: &UserId) -> Result<UserStatus, Error> {
        Ok(self.inner.store.status(user).await?)
    }

    /// What the key cache holds and how many secrets it has opened
    /// ([`KeyCacheConfig`]).
    pub fn key_cache_stats(&self) -> KeyCacheStats {
        self.inner.key_cache.stats()
    }

    /// `a`'s keyed code generator for a login code: from the key cache
    /// when it holds this very sealed record, else unsealed and keyed (and
    /// cached). Enrollment confirmation keys its pending secret itself: a
    /// secret not yet confirmed is never cached.
    fn keyed(&self, user: &UserId, a: &Authenticator) -> Result<Hotp, Error> {
        let inner = &self.inner;
        Ok(inner.key_cache.keyed(&inner.keys, user, a, self.now())?)
    }

    /// Charge one attempt to the throttle; `Some(reason)` when locked out.
    /// (Login codes and enrollment codes are charged in the store operation
    /// that reads their state: `begin_verification`, `begin_confirmation`.)
    async fn charge_attempt(&self, user: &UserId) -> Result<Option<RejectReason>, Error> {
        let policy = self.inner.config.throttle();
        match self
            .inner
            .store
            .begin_attempt(user, self.now(), &policy)
            .await?
        {
            Attempt::Allowed => Ok(None),
            Attempt::Locked { retry_after } => Ok(Some(self.locked_out(user, retry_after).await)),
        }
    }

    /// An attempt the throttle refused: audited each time; counted and
    /// told to the event sink once per lockout.
    async fn locked_out(&self, user: &UserId, retry_after: std::time::Duration) -> RejectReason {
        audit::emit(AuditEvent::Throttled, user, "locked out");
        let until = self.now().saturating_add(retry_after);
        if self.inner.lockouts.is_new(user, until) {
            crate::metrics::locked_out();
            self.notify(user, SecurityEventKind::AccountLocked { until })
                .await;
        }
        RejectReason::Throttled { retry_after }
    }

    /// Tell the event sink, if there is one, of a change already stored.
    async fn notify(&self, user: &UserId, kind: SecurityEventKind) {
        if let Some(sink) = &self.inner.events {
            sink.record(SecurityEvent {
                at: self.now(),
                user: user.clone(),
                kind,
            })
            .await;
        }
    }
}
