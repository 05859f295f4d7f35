//! [`EngineDriver`]: the [`Driver`] over the `TwoFactor` engine, in process,
//! on a [`ManualClock`].

use async_trait::async_trait;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::code::Secret;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::{Keyring, SealedSecret, SealingKey};
use tower_totp::store::{
    Authenticator, AuthenticatorId, ConsumeOutcome, EnrollmentStore, MemoryStore,
    PendingEnrollment, RecoveryStore, ResyncCandidate, StepStore, StoreError, ThrottleStore,
    UserStatus,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use tower_totp::{Confirmation, RejectReason, TotpConfig, TwoFactor, UserId, Verdict};

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

/// Enrollment secrets drawn from a seed, one per user id, sealed with the
/// engine's keyring and stored as the user's pending enrollment: the
/// engine (or the `GET /2fa/enroll` endpoint, which shows a pending
/// enrollment rather than starting one) then uses it as if it had drawn
/// it. This is what makes a run reproducible down to every code, and code
/// collisions the same from run to run.
#[derive(Debug, Clone)]
pub struct SeededSecrets {
    keys: Keyring,
    seed: [u8; 32],
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

    /// Store `user`'s secret as their pending enrollment (named `phone`),
    /// replacing any; returns what the phone needs.
    ///
    /// # Errors
    ///
    /// [`DriverError::Engine`] if sealing or the store fails.
    pub async fn put_pending(
        &self,
        tfa: &TwoFactor,
        user: &UserId,
    ) -> Result<Enrolled, DriverError> {
        let secret = self.secret(tfa, user)?;
        let params = tfa.config().params();
        let sealed = self
            .keys
            .seal(user, &secret)
            .map_err(tower_totp::Error::from)?;
        let pending = PendingEnrollment {
            id: AuthenticatorId::new(format!("{:016x}", fnv1a(user.as_str().as_bytes()))),
            name: "phone".into(),
            secret: sealed,
            params,
            created_at: tfa.now(),
            replaces: None,
        };
        tfa.store()
            .put_pending(user, pending)
            .await
            .map_err(tower_totp::Error::from)?;
        Ok(Enrolled { secret, params })
    }
}

/// The simulator's engine: a memory store (wrapped in [`UntrackedStore`]
/// without `drift_tracking`), `clock`, and a sealing key and secrets
/// derived from `seed`. [`EngineDriver`] and
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
    let builder = TwoFactor::builder(config)
        .clock(clock)
        .keyring(keys.clone());
    let builder = if drift_tracking {
        builder.store(MemoryStore::new())
    } else {
        builder.store(UntrackedStore::new(MemoryStore::new()))
    };
    Ok((
        builder.build()?,
        SeededSecrets {
            keys,
            seed: secret_seed,
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
}

impl EngineDriver {
    /// Drive an engine built elsewhere; secrets come from
    /// [`TwoFactor::start_enrollment`].
    pub fn from_engine(tfa: TwoFactor) -> Self {
        Self {
            tfa,
            secrets: Secrets::Engine,
            tracking: true,
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
        match &self.secrets {
            Secrets::Engine => {
                let e = self
                    .tfa
                    .start_enrollment(user, user.as_str(), "phone", None)
                    .await?;
                Ok(Enrolled {
                    secret: e.secret().clone(),
                    params: e.params(),
                })
            }
            Secrets::Seeded(seeded) => seeded.put_pending(&self.tfa, user).await,
        }
    }

    async fn confirm(&self, account: &Account, code: &str) -> Result<Outcome, DriverError> {
        let user = &account.id;
        match self.tfa.confirm_enrollment(user, code).await? {
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

/// A store that forgets drift: it records every accepted step (replays are
/// still refused) but always with offset 0, and drops resync candidates.
/// It models a server without drift tracking, which the engine has no
/// switch for.
#[derive(Debug, Clone)]
pub struct UntrackedStore<S> {
    inner: S,
}

impl<S> UntrackedStore<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl<S: EnrollmentStore> EnrollmentStore for UntrackedStore<S> {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.inner.status(user).await
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        self.inner.authenticators(user).await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
    ) -> Result<(), StoreError> {
        self.inner.put_pending(user, pending).await
    }

    async fn pending(&self, user: &UserId) -> Result<Option<PendingEnrollment>, StoreError> {
        self.inner.pending(user).await
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        pending_id: &AuthenticatorId,
        step: u64,
        _offset: i64,
        now: UnixTime,
    ) -> Result<Option<u64>, StoreError> {
        self.inner
            .activate_pending(user, pending_id, step, 0, now)
            .await
    }

    async fn revoke(&self, user: &UserId, id: &AuthenticatorId) -> Result<bool, StoreError> {
        self.inner.revoke(user, id).await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<bool, StoreError> {
        self.inner.reseal(user, id, secret).await
    }

    async fn reset(&self, user: &UserId) -> Result<(), StoreError> {
        self.inner.reset(user).await
    }
}

#[async_trait]
impl<S: StepStore> StepStore for UntrackedStore<S> {
    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        _offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        self.inner.consume_step(user, id, step, 0).await
    }

    async fn set_resync_candidate(
        &self,
        _user: &UserId,
        _id: &AuthenticatorId,
        _candidate: ResyncCandidate,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl<S: ThrottleStore> ThrottleStore for UntrackedStore<S> {
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
impl<S: RecoveryStore> RecoveryStore for UntrackedStore<S> {
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
    ) -> Result<bool, StoreError> {
        self.inner.consume_recovery_code(user, hash).await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.inner.recovery_codes_left(user).await
    }
}
