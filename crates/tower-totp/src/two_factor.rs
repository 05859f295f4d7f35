//! The engine: enrollment, verification and recovery codes for one
//! application, over a store, a clock and a keyring. No HTTP here; the layer
//! and the endpoints call it.

use std::sync::Arc;

use crate::audit::{self, AuditEvent, TARGET as AUDIT_TARGET};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::code::{Code, Hotp, Secret, parse_code};
use crate::config::TotpConfig;
use crate::enroll::{Enrollment, clean_name};
use crate::error::Error;
use crate::recovery::{RecoveryCodes, hash_recovery_code};
use crate::seal::Keyring;
use crate::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConsumeOutcome, MemoryStore,
    PendingEnrollment, PendingLimits, PutPending, ResyncCandidate, TotpStore, UserStatus,
};
use crate::throttle::Attempt;
use crate::user::UserId;
use crate::verify::{RejectReason, Verdict, find_eligible_step, find_step, window_steps};

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
}

/// Builds a [`TwoFactor`]: memory store, system clock and a random keyring
/// unless told otherwise.
#[derive(Debug)]
#[must_use]
pub struct TwoFactorBuilder {
    config: TotpConfig,
    store: Option<Arc<dyn TotpStore>>,
    clock: Option<Arc<dyn Clock>>,
    keys: Option<Keyring>,
}

impl TwoFactorBuilder {
    /// Use `store` (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl TotpStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Use a shared store.
    pub fn shared_store(mut self, store: Arc<dyn TotpStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Use `clock` (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Seal secrets with `keys` (default: a random key that dies with the
    /// process, which only suits the memory store).
    pub fn keyring(mut self, keys: Keyring) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The engine.
    ///
    /// # Errors
    ///
    /// [`Error::Seal`] if no random key can be made for the default keyring.
    pub fn build(self) -> Result<TwoFactor, Error> {
        let keys = match self.keys {
            Some(k) => k,
            None => Keyring::ephemeral()?,
        };
        Ok(TwoFactor {
            inner: Arc::new(Inner {
                config: self.config,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                keys,
            }),
        })
    }
}

/// Which confirmations may activate a pending enrollment. The store checks
/// it in the same atomic step as the activation, so that of two sessions
/// confirming at once without a second step, one at most wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmAs {
    /// Only while the user has no active authenticator: all that a session
    /// without a recent second step may do.
    FirstAuthenticator,
    /// Beside (or in place of) active authenticators: the session did a
    /// recent second step.
    AnotherAuthenticator,
}

/// The outcome of confirming an enrollment with its first code.
#[derive(Debug)]
pub enum Confirmation {
    /// The authenticator is active.
    Confirmed {
        /// Its id.
        authenticator: AuthenticatorId,
        /// The user's new epoch.
        epoch: u64,
        /// New recovery codes, to show once: issued when the user had no
        /// active authenticator before this one, or no codes left.
        recovery_codes: Option<RecoveryCodes>,
    },
    /// The code was refused.
    Rejected(RejectReason),
}

impl Confirmation {
    /// Whether the authenticator is now active.
    pub fn is_confirmed(&self) -> bool {
        matches!(self, Self::Confirmed { .. })
    }
}

/// The outcome of a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryVerdict {
    /// Accepted and used up.
    Accepted {
        /// Unused codes left.
        remaining: usize,
    },
    /// Refused.
    Rejected(RejectReason),
}

/// An authenticator as listed to its owner (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorInfo {
    /// Its id.
    pub id: AuthenticatorId,
    /// Its name.
    pub name: String,
    /// When it was activated.
    pub created_at: UnixTime,
    /// The learned clock offset in steps.
    pub offset: i64,
}

impl TwoFactor {
    /// Start building an engine with `config`.
    pub fn builder(config: TotpConfig) -> TwoFactorBuilder {
        TwoFactorBuilder {
            config,
            store: None,
            clock: None,
            keys: None,
        }
    }

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

    /// Start an enrollment: a new secret, kept sealed as a pending
    /// enrollment until its first code confirms it. `account` labels it in
    /// the app; `name` is cleaned ([`clean_name`]); `replaces` names an
    /// authenticator the new one replaces on confirmation (a new phone).
    ///
    /// The enrollment's [`id`](Enrollment::id) is what the caller keeps in
    /// the session that started it: the user's other pending enrollments
    /// (other sessions) stay as they are, and only this id shows or
    /// confirms this one.
    ///
    /// `Ok(Err(reason))` when a cap refuses it:
    /// [`RejectReason::TooManyAuthenticators`] (counting without the one
    /// `replaces` names) or [`RejectReason::TooManyPendingEnrollments`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`].
    pub async fn start_enrollment(
        &self,
        user: &UserId,
        account: &str,
        name: &str,
        replaces: Option<AuthenticatorId>,
    ) -> Result<Result<Enrollment, RejectReason>, Error> {
        let cfg = &self.inner.config;
        let store = &self.inner.store;
        let staying = store
            .authenticators(user)
            .await?
            .iter()
            .filter(|a| Some(&a.id) != replaces.as_ref())
            .count();
        if staying >= cfg.max_authenticators() {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "too many authenticators",
            );
            return Ok(Err(RejectReason::TooManyAuthenticators));
        }
        let name = clean_name(name);
        let secret =
            Secret::try_generate(cfg.secret_bits()).map_err(|_| crate::seal::SealError::Random)?;
        let id = AuthenticatorId::generate()?;
        let now = self.now();
        let pending = PendingEnrollment {
            id: id.clone(),
            name: name.clone(),
            secret: self.inner.keys.seal(user, &secret)?,
            params: cfg.params(),
            created_at: now,
            replaces,
        };
        let limits = PendingLimits {
            // Fresh means younger than the pending time (`fresh_pending`):
            // created at `now - ttl` or before has expired.
            expired_before: now
                .saturating_sub(cfg.pending_ttl())
                .saturating_add(std::time::Duration::from_millis(1)),
            max: cfg.max_pending_enrollments(),
        };
        if store.put_pending(user, pending, limits).await? == PutPending::TooMany {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "too many pending enrollments",
            );
            return Ok(Err(RejectReason::TooManyPendingEnrollments));
        }
        audit::emit(AuditEvent::EnrollmentStarted, user, "pending");
        Ok(Ok(Enrollment::new(
            id,
            name,
            secret,
            cfg.params(),
            cfg.issuer(),
            account,
        )))
    }

    /// The pending enrollment `id` of `user`, if it exists and has not
    /// expired.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`].
    pub async fn pending_enrollment(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        account: &str,
    ) -> Result<Option<Enrollment>, Error> {
        let Some(p) = self.fresh_pending(user, id).await? else {
            return Ok(None);
        };
        let secret = self.inner.keys.open(user, &p.secret)?;
        let cfg = &self.inner.config;
        Ok(Some(Enrollment::new(
            p.id,
            p.name,
            secret,
            p.params,
            cfg.issuer(),
            account,
        )))
    }

    /// Forget the pending enrollment `id` (its session starts another one,
    /// or gives up). The user's other pending enrollments stay.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn cancel_enrollment(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<(), Error> {
        Ok(self.inner.store.remove_pending(user, id).await?)
    }

    async fn fresh_pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, Error> {
        let now = self.now();
        let ttl = self.inner.config.pending_ttl();
        Ok(self
            .inner
            .store
            .pending(user, id)
            .await?
            // Elapsed time, not a saturating deadline: `created_at + ttl`
            // saturates near the end of `u64` milliseconds and would
            // expire every enrollment there at once.
            .filter(|p| now.duration_since(p.created_at) < ttl))
    }

    /// Confirm the pending enrollment `id` with its first code. The code's
    /// step counts as used, so it cannot be replayed at login.
    ///
    /// `confirm_as` says what the confirming session may do: a session
    /// without a recent second step confirms as
    /// [`ConfirmAs::FirstAuthenticator`], and is refused
    /// ([`RejectReason::AlreadyEnrolled`]) once the user has an
    /// authenticator, even if another session activated it a moment ago.
    ///
    /// A fresh set of recovery codes is made every time, and the store keeps
    /// it, in the activation itself, when the user had no authenticator
    /// before or no codes left: then it is in the confirmation, to show once.
    /// The confirmation is the only copy: if the caller cannot show it (its
    /// session store fails right after), the codes are stored but unseen,
    /// and the user issues new ones after the next login
    /// ([`issue_recovery_codes`](Self::issue_recovery_codes)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`].
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn confirm_enrollment(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        input: &str,
        confirm_as: ConfirmAs,
    ) -> Result<Confirmation, Error> {
        let Some(pending) = self.fresh_pending(user, id).await? else {
            audit::emit(
                AuditEvent::EnrollmentRefused,
                user,
                "no such pending enrollment",
            );
            return Ok(Confirmation::Rejected(RejectReason::NoPendingEnrollment));
        };
        let Ok(code) = parse_code(input, pending.params.digits()) else {
            return Ok(Confirmation::Rejected(RejectReason::Malformed));
        };
        if let Some(reason) = self.charge_attempt(user).await? {
            return Ok(Confirmation::Rejected(reason));
        }
        let secret = self.inner.keys.open(user, &pending.secret)?;
        let hotp = Hotp::new(&secret, pending.params);
        let window = self.inner.config.window();
        let now_step = pending.params.step_at(self.now());
        let steps = window_steps(i128::from(now_step), window.behind(), window.ahead());
        let Some(step) = find_step(&hotp, &code, steps) else {
            audit::emit(AuditEvent::Failed, user, "enrollment code invalid");
            return Ok(Confirmation::Rejected(RejectReason::Invalid));
        };
        let codes = RecoveryCodes::generate(self.inner.config.recovery_codes())?;
        let activation = Activation {
            pending_id: pending.id.clone(),
            step,
            offset: step_offset(step, now_step),
            now: self.now(),
            first_only: confirm_as == ConfirmAs::FirstAuthenticator,
            max_authenticators: self.inner.config.max_authenticators(),
            recovery: codes.hashes(user),
        };
        let (reason, detail) = match self.inner.store.activate_pending(user, &activation).await? {
            Activated::Done {
                epoch,
                recovery_issued,
            } => {
                audit::emit(AuditEvent::Enrolled, user, "activated");
                if recovery_issued {
                    audit::emit(AuditEvent::RecoveryCodesIssued, user, "issued");
                }
                return Ok(Confirmation::Confirmed {
                    authenticator: pending.id,
                    epoch,
                    recovery_codes: recovery_issued.then_some(codes),
                });
            }
            Activated::NoPending => (
                RejectReason::NoPendingEnrollment,
                "pending enrollment gone meanwhile",
            ),
            Activated::AlreadyEnrolled => (
                RejectReason::AlreadyEnrolled,
                "already enrolled: another authenticator needs a second step",
            ),
            Activated::TooMany => (
                RejectReason::TooManyAuthenticators,
                "too many authenticators",
            ),
        };
        audit::emit(AuditEvent::EnrollmentRefused, user, detail);
        Ok(Confirmation::Rejected(reason))
    }

    /// Check a code typed at login.
    ///
    /// Every candidate step of every authenticator is computed and compared
    /// in constant time. A code that matches inside the window is accepted
    /// once (compare-and-set in the store). A code that matches outside the
    /// window but within the maximum drift is remembered; the code of the
    /// very next step at the same offset then resynchronises the device,
    /// provided the offset change is plausible for the time since the
    /// device's last accepted code
    /// ([`Window::allows_offset_change`](crate::verify::Window::allows_offset_change)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`]: no decision could be made, and
    /// the caller must fail closed.
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn verify(&self, user: &UserId, input: &str) -> Result<Verdict, Error> {
        let store = &self.inner.store;
        let authenticators = store.authenticators(user).await?;
        if authenticators.is_empty() {
            return Ok(Verdict::Rejected(RejectReason::NotEnrolled));
        }
        // Authenticators normally share one digit count; parse once per count.
        let parsed: Vec<(usize, Code)> = authenticators
            .iter()
            .enumerate()
            .filter_map(|(i, a)| parse_code(input, a.params.digits()).ok().map(|c| (i, c)))
            .collect();
        if parsed.is_empty() {
            audit::emit(AuditEvent::Failed, user, "malformed");
            return Ok(Verdict::Rejected(RejectReason::Malformed));
        }
        if let Some(reason) = self.charge_attempt(user).await? {
            return Ok(Verdict::Rejected(reason));
        }
        let now = self.now();
        let window = self.inner.config.window();

        // Key every authenticator once, and look inside each window.
        let keyed: Vec<(&Authenticator, Hotp, Code, u64)> = parsed
            .into_iter()
            .map(|(i, code)| {
                let a = &authenticators[i];
                let secret = self.inner.keys.open(user, &a.secret)?;
                Ok((a, Hotp::new(&secret, a.params), code, a.params.step_at(now)))
            })
            .collect::<Result<_, Error>>()?;
        let mut in_window = None;
        for (a, hotp, code, now_step) in &keyed {
            let centre = i128::from(*now_step) + i128::from(a.sync.offset);
            if let Some(step) = find_step(
                hotp,
                code,
                window_steps(centre, window.behind(), window.ahead()),
            ) {
                in_window.get_or_insert((*a, step, *now_step));
            }
        }
        if let Some((a, step, now_step)) = in_window {
            let offset = window.clamp_offset(step_offset(step, now_step));
            return self.consume(user, a, step, offset, false).await;
        }

        // Outside the window: look within the maximum drift for a resync.
        // Steps at or before the last used one count for nothing here: a
        // code typed a minute ago (seen over a shoulder) must not start a
        // resynchronisation, nor finish one. (In the window, the store's
        // compare-and-set refuses them.) Nor do steps whose offset implies a
        // jump no clock makes in the time since the device's last accepted
        // code (`Window::allows_offset_change`): two codes the phone showed
        // right after the user's login look like a slow phone, but a real
        // one was exact a moment ago. Either way the code is a plain miss,
        // and the code of every step is still computed, so the work does
        // not tell how recently the device was used.
        let max = window.max_drift();
        let mut candidate = None;
        for (a, hotp, code, now_step) in &keyed {
            let centre = i128::from(*now_step) + i128::from(a.sync.offset);
            let lo = centre - i128::from(window.behind());
            let hi = centre + i128::from(window.ahead());
            let unused = |s: u64| a.sync.last_step.is_none_or(|last| s > last);
            let plausible = |s: u64| {
                let offset = step_offset(s, *now_step);
                window.allows_offset_change(a.sync.offset, a.sync.last_step, *now_step, offset)
            };
            let outside = window_steps(i128::from(*now_step), max, max)
                .filter(|s| i128::from(*s) < lo || i128::from(*s) > hi)
                .map(|s| (s, unused(s) && plausible(s)));
            let Some(step) = find_eligible_step(hotp, code, outside) else {
                continue;
            };
            let offset = step_offset(step, *now_step);
            let follows = a.sync.resync.is_some_and(|c| {
                c.offset == offset && unused(c.step) && c.step.checked_add(1) == Some(step)
            });
            if follows {
                return self.consume(user, a, step, offset, true).await;
            }
            // The first match outside the window is the candidate, and the
            // other authenticators are still computed: stopping here would
            // answer a match sooner than a miss.
            candidate.get_or_insert((a.id.clone(), ResyncCandidate { step, offset }));
        }
        // A miss and a match outside the window do the same store work: one
        // `record_miss`, so that no response time tells them apart.
        let detail = if candidate.is_some() {
            "outside window, resync candidate kept"
        } else {
            "invalid"
        };
        store.record_miss(user, candidate).await?;
        audit::emit(AuditEvent::Failed, user, detail);
        Ok(Verdict::Rejected(RejectReason::Invalid))
    }

    async fn consume(
        &self,
        user: &UserId,
        a: &Authenticator,
        step: u64,
        offset: i64,
        resynchronised: bool,
    ) -> Result<Verdict, Error> {
        // A consumed step also clears the user's throttle, in the same
        // atomic store call (the `StepStore::consume_step` contract): no
        // `clear_throttle` round trip after it. A replay or a revoked
        // authenticator leaves the failures counted.
        let store = &self.inner.store;
        match store.consume_step(user, &a.id, step, offset).await? {
            ConsumeOutcome::Consumed => {
                self.reseal_if_old(user, a).await;
                let event = if resynchronised {
                    AuditEvent::Resynchronised
                } else {
                    AuditEvent::Verified
                };
                audit::emit(event, user, "accepted");
                Ok(Verdict::Accepted {
                    authenticator: a.id.clone(),
                    step,
                    offset,
                    resynchronised,
                })
            }
            ConsumeOutcome::Replayed => {
                audit::emit(AuditEvent::ReplayRefused, user, "step already used");
                Ok(Verdict::Rejected(RejectReason::Replayed))
            }
            ConsumeOutcome::NotFound => {
                audit::emit(AuditEvent::Failed, user, "authenticator revoked meanwhile");
                Ok(Verdict::Rejected(RejectReason::Invalid))
            }
        }
    }

    /// Key rotation on use: a secret sealed under a retired key is sealed
    /// again under the current one. A failure here is logged, not returned:
    /// the old record still opens.
    async fn reseal_if_old(&self, user: &UserId, a: &Authenticator) {
        if self.inner.keys.is_current(&a.secret) {
            return;
        }
        let resealed = self
            .inner
            .keys
            .open(user, &a.secret)
            .and_then(|s| self.inner.keys.seal(user, &s));
        let outcome = match resealed {
            Ok(sealed) => self
                .inner
                .store
                .reseal(user, &a.id, sealed)
                .await
                .map(|_| ())
                .map_err(Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            tracing::warn!(target: AUDIT_TARGET, event = "reseal_failed", user.id = %user, error = %e);
        }
    }

    /// Key rotation in the background: seal again, under the current key,
    /// every authenticator of `user` sealed under another key; how many were
    /// re-sealed. Run it over the user list after [`Keyring::rotated_to`];
    /// once it has passed every user without an error, and pending
    /// enrollments sealed before the rotation have expired, the old key can
    /// leave the keyring ([`Keyring::without`]). See "Key rotation" in
    /// `docs/security.md`.
    ///
    /// Re-sealing leaves the sync state alone (used steps stay used) and is
    /// safe alongside logins, which re-seal on use: both write a record
    /// under the current key. Running it again finds nothing to do.
    ///
    /// # Errors
    ///
    /// [`Error::Seal`] when a record does not open (its key is no longer in
    /// the keyring, or it is damaged), [`Error::Store`] when the store
    /// fails. Records re-sealed before the error stay re-sealed.
    pub async fn reseal_user(&self, user: &UserId) -> Result<usize, Error> {
        let keys = &self.inner.keys;
        let mut resealed = 0;
        for a in self.inner.store.authenticators(user).await? {
            if keys.is_current(&a.secret) {
                continue;
            }
            let sealed = keys.seal(user, &keys.open(user, &a.secret)?)?;
            // `false`: revoked meanwhile, nothing left to re-seal.
            if self.inner.store.reseal(user, &a.id, sealed).await? {
                resealed += 1;
            }
        }
        Ok(resealed)
    }

    /// Charge one attempt to the throttle; `Some(reason)` when locked out.
    async fn charge_attempt(&self, user: &UserId) -> Result<Option<RejectReason>, Error> {
        let policy = self.inner.config.throttle();
        match self
            .inner
            .store
            .begin_attempt(user, self.now(), &policy)
            .await?
        {
            Attempt::Allowed => Ok(None),
            Attempt::Locked { retry_after } => {
                audit::emit(AuditEvent::Throttled, user, "locked out");
                Ok(Some(RejectReason::Throttled { retry_after }))
            }
        }
    }

    /// Use a recovery code instead of a code. Counted by the same throttle.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn use_recovery_code(
        &self,
        user: &UserId,
        input: &str,
    ) -> Result<RecoveryVerdict, Error> {
        let store = &self.inner.store;
        if !store.status(user).await?.enrolled {
            return Ok(RecoveryVerdict::Rejected(RejectReason::NotEnrolled));
        }
        let Some(hash) = hash_recovery_code(user, input) else {
            audit::emit(AuditEvent::Failed, user, "malformed recovery code");
            return Ok(RecoveryVerdict::Rejected(RejectReason::Malformed));
        };
        if let Some(reason) = self.charge_attempt(user).await? {
            return Ok(RecoveryVerdict::Rejected(reason));
        }
        if !store.consume_recovery_code(user, &hash).await? {
            audit::emit(AuditEvent::Failed, user, "recovery code invalid or used");
            return Ok(RecoveryVerdict::Rejected(RejectReason::Invalid));
        }
        store.clear_throttle(user).await?;
        let remaining = store.recovery_codes_left(user).await?;
        audit::emit(AuditEvent::RecoveryCodeUsed, user, "accepted");
        Ok(RecoveryVerdict::Accepted { remaining })
    }

    /// Issue a new set of recovery codes, replacing the old set.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`] (no randomness).
    pub async fn issue_recovery_codes(&self, user: &UserId) -> Result<RecoveryCodes, Error> {
        let codes = RecoveryCodes::generate(self.inner.config.recovery_codes())?;
        self.inner
            .store
            .replace_recovery_codes(user, codes.hashes(user))
            .await?;
        audit::emit(AuditEvent::RecoveryCodesIssued, user, "issued");
        Ok(codes)
    }

    /// Unused recovery codes left.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, Error> {
        Ok(self.inner.store.recovery_codes_left(user).await?)
    }

    /// The user's active authenticators.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn authenticators(&self, user: &UserId) -> Result<Vec<AuthenticatorInfo>, Error> {
        Ok(self
            .inner
            .store
            .authenticators(user)
            .await?
            .into_iter()
            .map(|a| AuthenticatorInfo {
                id: a.id,
                name: a.name,
                created_at: a.created_at,
                offset: a.sync.offset,
            })
            .collect())
    }

    /// Revoke one authenticator; whether it existed.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn revoke(&self, user: &UserId, id: &AuthenticatorId) -> Result<bool, Error> {
        let removed = self.inner.store.revoke(user, id).await?;
        if removed {
            audit::emit(AuditEvent::Revoked, user, "revoked");
        }
        Ok(removed)
    }

    /// Remove every authenticator, every pending enrollment and the
    /// recovery codes, and end every session of the user: sessions whose
    /// password login is at or before now are logged out by the layer and
    /// the endpoints ([`UserStatus::sessions_ended_at`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn reset(&self, user: &UserId) -> Result<(), Error> {
        self.inner.store.reset(user, self.now()).await?;
        audit::emit(AuditEvent::Reset, user, "reset");
        Ok(())
    }

    /// [`reset`](Self::reset) done by the administrator `admin`: the audit
    /// event names both.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn reset_by(&self, admin: &UserId, user: &UserId) -> Result<(), Error> {
        self.inner.store.reset(user, self.now()).await?;
        audit::emit_admin(
            AuditEvent::AdminReset,
            admin,
            user,
            "second factor reset, sessions ended",
        );
        Ok(())
    }
}

/// `step - now_step` as a signed offset, saturating.
fn step_offset(step: u64, now_step: u64) -> i64 {
    let diff = i128::from(step) - i128::from(now_step);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}
