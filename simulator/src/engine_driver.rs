//! [`EngineDriver`]: the [`Driver`] over the `TwoFactor` engine, in process,
//! on a [`ManualClock`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::code::Secret;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::{Keyring, SealedSecret, SealingKey};
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, MemoryStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome,
    RecoveryStore, ResealOutcome, ResyncCandidate, RevokeOutcome, StepStore, StoreError,
    ThrottleStore, UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use tower_totp::{ConfirmAs, Confirmation, RejectReason, TotpConfig, TwoFactor, UserId, Verdict};

use crate::driver::{Account, Driver, DriverError, Enrolled, Outcome, Refusal};

/// Where enrollment secrets come from.
#[derive(Debug, Clone)]
enum Secrets {
    /// `TwoFactor::start_enrollment`: the operating system's random source,
    /// as in production.
    Engine,
    /// Drawn from the run's seed per user id ([`SeededSecrets`]), so that a
    /// run is reproducible down to every code.
    Seeded(SeededSecrets),
}

/// The id of each user's newest pending enrollment, as [`SimStore`]
/// noted it.
type PendingIds = Arc<Mutex<HashMap<UserId, AuthenticatorId>>>;

/// Enrollment secrets drawn from a seed, one per user id, sealed with the
/// engine's keyring and put in place of the secret of an enrollment the
/// engine just started (same id, so the session that started it still owns
/// it): the engine (or `GET /2fa/enroll`, which shows the session's pending
/// enrollment rather than starting another) then uses it as if it had
/// drawn it. This is what makes a run reproducible down to every code, and
/// code collisions the same from run to run.
#[derive(Debug, Clone)]
pub struct SeededSecrets {
    keys: Keyring,
    seed: [u8; 32],
    newest: PendingIds,
}

impl SeededSecrets {
    /// The secret of `user`.
    ///
    /// # Errors
    ///
    /// [`DriverError::Protocol`] if the configured secret length is refused.
    pub fn secret(&self, tfa: &TwoFactor, user: &UserId) -> Result<Secret, DriverError> {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(fnv1a(user.as_str().as_bytes()));
        let mut bytes = vec![0u8; tfa.config().secret_bits().div_ceil(8)];
        rng.fill_bytes(&mut bytes);
        Secret::from_bytes(&bytes).map_err(|e| DriverError::Protocol {
            step: "enroll",
            detail: e.to_string(),
        })
    }

    /// Put `user`'s seeded secret in place of the secret of their pending
    /// enrollment `id` (named `phone`, same id); returns what the phone
    /// needs.
    ///
    /// # Errors
    ///
    /// [`DriverError::Engine`] if sealing or the store fails,
    /// [`DriverError::Protocol`] if the store has no room for it.
    pub async fn reseed(
        &self,
        tfa: &TwoFactor,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Enrolled, DriverError> {
        let secret = self.secret(tfa, user)?;
        let params = tfa.config().params();
        let sealed = self
            .keys
            .seal(user, &secret)
            .map_err(tower_totp::Error::from)?;
        let now = tfa.now();
        let pending = PendingEnrollment {
            id: id.clone(),
            name: "phone".into(),
            secret: sealed,
            params,
            created_at: now,
            replaces: None,
        };
        let cfg = tfa.config();
        let limits = PendingLimits {
            expired_before: now.saturating_sub(cfg.pending_ttl()),
            max: cfg.max_pending_enrollments(),
        };
        let store = tfa.store();
        store
            .remove_pending(user, id)
            .await
            .map_err(tower_totp::Error::from)?;
        let put = store
            .put_pending(user, pending, limits)
            .await
            .map_err(tower_totp::Error::from)?;
        if put == PutPending::TooMany {
            return Err(DriverError::Protocol {
                step: "enroll",
                detail: "no room for the seeded enrollment".into(),
            });
        }
        Ok(Enrolled { secret, params })
    }

    /// The id of `user`'s newest pending enrollment (the one a request just
    /// started), if any.
    pub fn newest_pending(&self, user: &UserId) -> Option<AuthenticatorId> {
        self.newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .cloned()
    }
}

/// The simulator's engine: a memory store (wrapped in [`SimStore`]: drift
/// forgotten without `drift_tracking`, pending enrollments noted for
/// [`SeededSecrets`]), `clock`, and a sealing key and secrets derived from
/// `seed`. [`EngineDriver`] and
/// [`HttpDriver`](crate::http_driver::HttpDriver) build the same one, so
/// both drivers give the same run for the same seed.
///
/// # Errors
///
/// [`DriverError::Engine`] if the engine cannot be built.
pub fn simulated_engine(
    config: TotpConfig,
    clock: ManualClock,
    drift_tracking: bool,
    seed: u64,
) -> Result<(TwoFactor, SeededSecrets), DriverError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f00d_5ec2_e75a);
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let mut secret_seed = [0u8; 32];
    rng.fill_bytes(&mut secret_seed);
    let keys = Keyring::new(1, SealingKey::from_bytes(key));
    let newest = PendingIds::default();
    let store = SimStore {
        inner: MemoryStore::new(),
        tracking: drift_tracking,
        newest: newest.clone(),
    };
    let tfa = TwoFactor::builder(config)
        .clock(clock)
        .keyring(keys.clone())
        .store(store)
        .build()?;
    Ok((
        tfa,
        SeededSecrets {
            keys,
            seed: secret_seed,
            newest,
        },
    ))
}

/// The [`Driver`] over a [`TwoFactor`] engine. The password step is the
/// engine's status lookup (is the user enrolled?); the code step is
/// [`TwoFactor::verify`].
#[derive(Debug, Clone)]
pub struct EngineDriver {
    tfa: TwoFactor,
    secrets: Secrets,
    tracking: bool,
    /// Each user's enrollment between [`Driver::enroll`] and
    /// [`Driver::confirm`] (the engine keeps it per id, as a session would).
    enrolling: PendingIds,
}

impl EngineDriver {
    /// Drive an engine built elsewhere; secrets come from
    /// [`TwoFactor::start_enrollment`].
    pub fn from_engine(tfa: TwoFactor) -> Self {
        Self {
            tfa,
            secrets: Secrets::Engine,
            tracking: true,
            enrolling: PendingIds::default(),
        }
    }

    /// The engine of [`simulated_engine`], driven directly. Without
    /// `drift_tracking` the store never records a learned offset or a
    /// resync candidate, so the window stays centred on the server's step.
    ///
    /// # Errors
    ///
    /// [`DriverError::Engine`] if the engine cannot be built.
    pub fn simulated(
        config: TotpConfig,
        clock: ManualClock,
        drift_tracking: bool,
        seed: u64,
    ) -> Result<Self, DriverError> {
        let (tfa, secrets) = simulated_engine(config, clock, drift_tracking, seed)?;
        Ok(Self {
            tfa,
            secrets: Secrets::Seeded(secrets),
            tracking: drift_tracking,
            enrolling: PendingIds::default(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &TwoFactor {
        &self.tfa
    }

    fn outcome(&self, verdict: Verdict) -> Outcome {
        match verdict {
            Verdict::Accepted { step, offset, .. } => Outcome::Accepted {
                learned_offset: Some(if self.tracking { offset } else { 0 }),
                step: Some(step),
            },
            Verdict::Rejected(reason) => rejected(reason),
            // An outcome newer than this simulator: no login, so a refusal.
            _ => Outcome::Rejected(Refusal::Other),
        }
    }
}

fn rejected(reason: RejectReason) -> Outcome {
    match reason {
        RejectReason::Throttled { retry_after } => Outcome::Throttled { retry_after },
        other => Outcome::Rejected(Refusal::from(other)),
    }
}

/// FNV-1a, to turn a user id into a generator stream.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The learned offset and last accepted step of `user`'s (first)
/// authenticator, read back from the store after an acceptance.
///
/// # Errors
///
/// [`DriverError::Engine`] when the store fails.
pub async fn stored_sync(tfa: &TwoFactor, user: &UserId) -> Result<Outcome, DriverError> {
    let stored = tfa
        .store()
        .authenticators(user)
        .await
        .map_err(tower_totp::Error::from)?;
    let sync = stored.first().map(|a| a.sync).unwrap_or_default();
    Ok(Outcome::Accepted {
        learned_offset: Some(sync.offset),
        step: sync.last_step,
    })
}

impl Driver for EngineDriver {
    async fn enroll(&self, account: &Account) -> Result<Enrolled, DriverError> {
        let user = &account.id;
        let e = self
            .tfa
            .start_enrollment(user, user.as_str(), "phone", None)
            .await?
            .map_err(|reason| DriverError::Protocol {
                step: "enroll",
                detail: format!("enrollment refused: {}", reason.as_str()),
            })?;
        let enrolled = match &self.secrets {
            Secrets::Engine => Enrolled {
                secret: e.secret().clone(),
                params: e.params(),
            },
            Secrets::Seeded(seeded) => seeded.reseed(&self.tfa, user, e.id()).await?,
        };
        let old = self
            .enrolling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.clone(), e.id().clone());
        if let Some(old) = old {
            self.tfa.cancel_enrollment(user, &old).await?;
        }
        Ok(enrolled)
    }

    async fn confirm(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        let user = &account.id;
        let id = self
            .enrolling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user)
            .ok_or(DriverError::Protocol {
                step: "enroll",
                detail: "confirm without an enrollment in progress".into(),
            })?;
        let confirmation = self
            .tfa
            .confirm_enrollment(user, &id, code, ConfirmAs::FirstAuthenticator)
            .await?;
        match confirmation {
            Confirmation::Confirmed { authenticator, .. } => {
                let stored = self
                    .tfa
                    .store()
                    .authenticators(user)
                    .await
                    .map_err(tower_totp::Error::from)?;
                let sync = stored
                    .iter()
                    .find(|a| a.id == authenticator)
                    .map(|a| a.sync)
                    .unwrap_or_default();
                Ok(Outcome::Accepted {
                    learned_offset: Some(sync.offset),
                    step: sync.last_step,
                })
            }
            Confirmation::Rejected(reason) => Ok(rejected(reason)),
            // An outcome newer than this simulator: nothing was activated.
            _ => Ok(Outcome::Rejected(Refusal::Other)),
        }
    }

    async fn login(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        // The password step: an account without an authenticator is sent to
        // enrol rather than asked for a code.
        if !self.tfa.status(&account.id).await?.enrolled {
            return Ok(Outcome::Rejected(Refusal::NotEnrolled));
        }
        let verdict = self.tfa.verify(&account.id, code).await?;
        Ok(self.outcome(verdict))
    }
}

/// The simulator's store around `inner`: without drift tracking it
/// records every accepted step (replays are still refused) but always with
/// offset 0, and keeps no resynchronisation candidate: a server without
/// drift tracking, which the engine has no switch for. It also notes the id
/// of each user's newest pending enrollment, for [`SeededSecrets`] to put a
/// seeded secret in its place.
#[derive(Debug, Clone)]
pub struct SimStore<S> {
    inner: S,
    tracking: bool,
    newest: PendingIds,
}

impl<S> SimStore<S> {
    /// Wrap `inner`; `tracking` false forgets drift.
    pub fn new(inner: S, tracking: bool) -> Self {
        Self {
            inner,
            tracking,
            newest: PendingIds::default(),
        }
    }

    fn offset(&self, offset: i64) -> i64 {
        if self.tracking { offset } else { 0 }
    }
}

#[async_trait]
impl<S: EnrollmentStore> EnrollmentStore for SimStore<S> {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.inner.status(user).await
    }

    fn status_now(&self, user: &UserId) -> tower_totp::store::StatusLookup {
        self.inner.status_now(user)
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        self.inner.authenticators(user).await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        let id = pending.id.clone();
        let put = self.inner.put_pending(user, pending, limits).await?;
        if put == PutPending::Stored {
            self.newest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(user.clone(), id);
        }
        Ok(put)
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        self.inner.pending(user, id).await
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        self.inner
            .begin_confirmation(user, id, now, policy, digits)
            .await
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        self.inner.remove_pending(user, id).await
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        if self.tracking {
            return self.inner.activate_pending(user, activation).await;
        }
        let untracked = Activation {
            offset: 0,
            ..activation.clone()
        };
        self.inner.activate_pending(user, &untracked).await
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        self.inner.revoke(user, id).await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        self.inner.reseal(user, id, secret).await
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        self.inner.reset(user, now).await
    }
}

#[async_trait]
impl<S: StepStore> StepStore for SimStore<S> {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        self.inner
            .begin_verification(user, now, policy, digits)
            .await
    }

    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        self.inner
            .consume_step(user, id, step, self.offset(offset))
            .await
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        let candidate = if self.tracking { candidate } else { None };
        self.inner.record_miss(user, candidate).await
    }
}

#[async_trait]
impl<S: ThrottleStore> ThrottleStore for SimStore<S> {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        self.inner.begin_attempt(user, now, policy).await
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.inner.clear_throttle(user).await
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        self.inner.throttle_state(user).await
    }
}

#[async_trait]
impl<S: RecoveryStore> RecoveryStore for SimStore<S> {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        self.inner.replace_recovery_codes(user, hashes).await
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        self.inner.consume_recovery_code(user, hash).await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.inner.recovery_codes_left(user).await
    }
}
