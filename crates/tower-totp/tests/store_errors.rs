//! Failing stores: whichever store call fails, `verify`,
//! `confirm_enrollment` and `use_recovery_code` return
//! `Err(Error::Store(_))`, never an acceptance (fail closed). A mockall mock
//! answers every call as a healthy store would, except the one named.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use mockall::mock;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::code::{CodeParams, Hotp, Secret};
use tower_totp::recovery::{RecoveryCodes, RecoveryHash};
use tower_totp::seal::{Keyring, SealedSecret, SealingKey};
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StepStore, StoreError, SyncState, ThrottleStore,
    UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use tower_totp::{
    ConfirmAs, Confirmation, Error, RecoveryVerdict, TotpConfig, TwoFactor, UserId, Verdict,
};
use tower_totp_testkit::store::Op as Call;

mock! {
    // The store traits require `Debug`; mockall derives a plain one.
    #[derive(Debug)]
    pub Store {}

    #[async_trait]
    impl EnrollmentStore for Store {
        async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError>;
        fn status_now(&self, user: &UserId) -> tower_totp::store::StatusLookup;
        async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError>;
        async fn put_pending(&self, user: &UserId, pending: PendingEnrollment, limits: PendingLimits) -> Result<PutPending, StoreError>;
        async fn pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<Option<PendingEnrollment>, StoreError>;
        async fn begin_confirmation(&self, user: &UserId, id: &AuthenticatorId, now: UnixTime, policy: &ThrottlePolicy, digits: Option<u8>) -> Result<ConfirmationStart, StoreError>;
        async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError>;
        async fn activate_pending(&self, user: &UserId, activation: &Activation) -> Result<Activated, StoreError>;
        async fn revoke(&self, user: &UserId, id: &AuthenticatorId) -> Result<RevokeOutcome, StoreError>;
        async fn reseal(&self, user: &UserId, id: &AuthenticatorId, secret: SealedSecret) -> Result<ResealOutcome, StoreError>;
        async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError>;
    }

    #[async_trait]
    impl StepStore for Store {
        async fn begin_verification(&self, user: &UserId, now: UnixTime, policy: &ThrottlePolicy, digits: Option<u8>) -> Result<VerificationStart, StoreError>;
        async fn consume_step(&self, user: &UserId, id: &AuthenticatorId, step: u64, offset: i64) -> Result<ConsumeOutcome, StoreError>;
        async fn record_miss(&self, user: &UserId, candidate: Option<(AuthenticatorId, ResyncCandidate)>) -> Result<(), StoreError>;
    }

    #[async_trait]
    impl ThrottleStore for Store {
        async fn begin_attempt(&self, user: &UserId, now: UnixTime, policy: &ThrottlePolicy) -> Result<Attempt, StoreError>;
        async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError>;
        async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError>;
    }

    #[async_trait]
    impl RecoveryStore for Store {
        async fn replace_recovery_codes(&self, user: &UserId, hashes: Vec<RecoveryHash>) -> Result<(), StoreError>;
        async fn consume_recovery_code(&self, user: &UserId, hash: &RecoveryHash) -> Result<RecoveryOutcome, StoreError>;
        async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError>;
    }
}

const NOW: u64 = 1_700_000_010;

/// What a healthy store holds for Alice: one authenticator sealed under
/// `sealed_with`, a pending enrollment, recovery codes.
struct World {
    alice: UserId,
    phone: Hotp,
    id: AuthenticatorId,
    engine_keys: Keyring,
    authenticator: Authenticator,
    pending: PendingEnrollment,
    recovery: RecoveryCodes,
}

impl World {
    fn new() -> Self {
        let key = SealingKey::generate().unwrap();
        let sealing = Keyring::new(1, key.clone());
        let alice = UserId::new("alice");
        let secret = Secret::generate();
        let params = CodeParams::default();
        let now = UnixTime::from_secs(NOW);
        let id = AuthenticatorId::new("0123456789abcdef");
        let authenticator = Authenticator {
            id: id.clone(),
            name: "phone".into(),
            secret: sealing.seal(&alice, &secret).unwrap(),
            params,
            created_at: now,
            sync: SyncState {
                last_step: Some(params.step_at(now) - 10),
                offset: 0,
                resync: None,
            },
        };
        let pending = PendingEnrollment {
            id: id.clone(),
            name: "phone".into(),
            secret: sealing.seal(&alice, &secret).unwrap(),
            params,
            created_at: now,
            replaces: None,
        };
        Self {
            phone: Hotp::new(&secret, params),
            alice,
            id,
            engine_keys: sealing,
            authenticator,
            pending,
            recovery: RecoveryCodes::generate(10).unwrap(),
        }
    }

    /// A store that answers well, except that `fail` returns an error.
    fn store(&self, fail: Option<Call>) -> MockStore {
        fn answer<T>(call: Call, fail: Option<Call>, ok: T) -> Result<T, StoreError> {
            if Some(call) == fail {
                Err(StoreError::unavailable(format!("{call:?} is down")))
            } else {
                Ok(ok)
            }
        }
        let mut m = MockStore::new();
        m.expect_status().returning(move |_| {
            answer(
                Call::Status,
                fail,
                UserStatus {
                    epoch: 1,
                    enrolled: true,
                    sessions_ended_at: None,
                },
            )
        });
        let a = self.authenticator.clone();
        m.expect_authenticators()
            .returning(move |_| answer(Call::Authenticators, fail, vec![a.clone()]));
        let a = self.authenticator.clone();
        m.expect_begin_verification()
            .returning(move |_, _, _, digits| {
                answer(
                    Call::BeginVerification,
                    fail,
                    VerificationStart {
                        status: UserStatus {
                            epoch: 1,
                            enrolled: true,
                            sessions_ended_at: None,
                        },
                        authenticators: vec![a.clone()],
                        attempt: (digits == Some(a.params.digits())).then_some(Attempt::Allowed),
                    },
                )
            });
        m.expect_put_pending()
            .returning(move |_, _, _| answer(Call::PutPending, fail, PutPending::Stored));
        let p = self.pending.clone();
        m.expect_pending()
            .returning(move |_, _| answer(Call::Pending, fail, Some(p.clone())));
        let p = self.pending.clone();
        m.expect_begin_confirmation()
            .returning(move |_, _, _, _, digits| {
                answer(
                    Call::BeginConfirmation,
                    fail,
                    ConfirmationStart {
                        attempt: (digits == Some(p.params.digits())).then_some(Attempt::Allowed),
                        pending: Some(p.clone()),
                    },
                )
            });
        m.expect_remove_pending()
            .returning(move |_, _| answer(Call::RemovePending, fail, ()));
        m.expect_activate_pending().returning(move |_, _| {
            answer(
                Call::ActivatePending,
                fail,
                Activated::Done {
                    epoch: 2,
                    recovery_issued: true,
                },
            )
        });
        m.expect_revoke()
            .returning(move |_, _| answer(Call::Revoke, fail, RevokeOutcome::Revoked));
        m.expect_reseal()
            .returning(move |_, _, _| answer(Call::Reseal, fail, ResealOutcome::Resealed));
        m.expect_reset()
            .returning(move |_, _| answer(Call::Reset, fail, ()));
        m.expect_consume_step()
            .returning(move |_, _, _, _| answer(Call::ConsumeStep, fail, ConsumeOutcome::Consumed));
        m.expect_record_miss()
            .returning(move |_, _| answer(Call::RecordMiss, fail, ()));
        m.expect_begin_attempt()
            .returning(move |_, _, _| answer(Call::BeginAttempt, fail, Attempt::Allowed));
        m.expect_clear_throttle()
            .returning(move |_| answer(Call::ClearThrottle, fail, ()));
        m.expect_throttle_state()
            .returning(|_| Ok(ThrottleState::default()));
        m.expect_replace_recovery_codes()
            .returning(move |_, _| answer(Call::ReplaceRecoveryCodes, fail, ()));
        m.expect_consume_recovery_code().returning(move |_, _| {
            answer(Call::ConsumeRecoveryCode, fail, RecoveryOutcome::Consumed)
        });
        // No recovery codes left, so that a confirmation issues a new set.
        m.expect_recovery_codes_left()
            .returning(move |_| answer(Call::RecoveryCodesLeft, fail, 0));
        m
    }

    fn engine(&self, fail: impl Into<Option<Call>>, keys: Keyring) -> TwoFactor {
        TwoFactor::builder(TotpConfig::new("Acme").unwrap())
            .clock(ManualClock::new(UnixTime::from_secs(NOW)))
            .store(self.store(fail.into()))
            .keyring(keys)
            .build()
            .unwrap()
    }

    fn code(&self, offset: i64) -> String {
        let step = CodeParams::default().step_at(UnixTime::from_secs(NOW));
        self.phone
            .code_string(step.checked_add_signed(offset).unwrap())
    }

    fn recovery_code(&self) -> String {
        self.recovery.as_strings().next().unwrap().to_owned()
    }
}

fn assert_store_error<T: std::fmt::Debug>(what: &str, call: Call, result: Result<T, Error>) {
    match result {
        Err(Error::Store(_)) => {}
        other => panic!("{what} with {call:?} failing: expected Err(Store), got {other:?}"),
    }
}

/// The mock itself is a healthy store when nothing fails.
#[tokio::test]
async fn a_healthy_mock_accepts() {
    let w = World::new();
    let tfa = w.engine(None, w.engine_keys.clone());
    assert!(
        tfa.verify(&w.alice, &w.code(0))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        tfa.verify(&w.alice, &w.code(5)).await.unwrap(),
        Verdict::Rejected(tower_totp::RejectReason::Invalid)
    );
    assert!(
        tfa.confirm_enrollment(&w.alice, &w.id, &w.code(0), ConfirmAs::FirstAuthenticator)
            .await
            .unwrap()
            .is_confirmed()
    );
    assert_eq!(
        tfa.use_recovery_code(&w.alice, &w.recovery_code())
            .await
            .unwrap(),
        RecoveryVerdict::Accepted { remaining: 0 }
    );
}

#[tokio::test]
async fn verify_fails_closed_on_every_store_call() {
    let w = World::new();
    // No `clear_throttle` here: a consumed step clears the throttle inside
    // `consume_step` (see `a_correct_code_does_not_call_clear_throttle`).
    for call in [Call::BeginVerification, Call::ConsumeStep] {
        let tfa = w.engine(call, w.engine_keys.clone());
        for offset in [0, 1, -1] {
            assert_store_error("verify", call, tfa.verify(&w.alice, &w.code(offset)).await);
        }
    }
    // Outside the window, the resync candidate is written, and a plain miss
    // is recorded the same way; if that fails, the answer is an error too.
    let wrong = format!("{:06}", (w.phone.code(0) + 1) % 1_000_000);
    for call in [Call::BeginVerification, Call::RecordMiss] {
        let tfa = w.engine(call, w.engine_keys.clone());
        assert_store_error(
            "verify (drifted)",
            call,
            tfa.verify(&w.alice, &w.code(5)).await,
        );
        assert_store_error("verify (miss)", call, tfa.verify(&w.alice, &wrong).await);
    }
    // A wrong code with a failing throttle is an error, not a refusal that
    // could be retried without being counted.
    let tfa = w.engine(Call::BeginVerification, w.engine_keys.clone());
    let wrong = format!("{:06}", (w.phone.code(0) + 1) % 1_000_000);
    assert_store_error(
        "verify (wrong)",
        Call::BeginVerification,
        tfa.verify(&w.alice, &wrong).await,
    );
}

/// `verify` leaves clearing the throttle to `consume_step` (one round trip
/// less per accepted code), so a broken `clear_throttle` cannot touch it.
#[tokio::test]
async fn a_correct_code_does_not_call_clear_throttle() {
    let w = World::new();
    let tfa = w.engine(Call::ClearThrottle, w.engine_keys.clone());
    for offset in [0, 1, -1] {
        assert!(
            tfa.verify(&w.alice, &w.code(offset))
                .await
                .unwrap()
                .is_accepted(),
            "offset {offset}"
        );
    }
}

/// The one exception, by design: re-sealing under a new key happens after
/// the step was consumed, and its failure is logged, not returned (the old
/// record still opens). The acceptance stands and is not repeated.
#[tokio::test]
async fn a_failed_reseal_does_not_undo_an_accepted_code() {
    let w = World::new();
    let rotated = w
        .engine_keys
        .clone()
        .rotated_to(2, SealingKey::generate().unwrap());
    let tfa = w.engine(Call::Reseal, rotated);
    assert!(
        tfa.verify(&w.alice, &w.code(0))
            .await
            .unwrap()
            .is_accepted()
    );
}

#[tokio::test]
async fn confirm_enrollment_fails_closed_on_every_store_call() {
    let w = World::new();
    // Activation and recovery codes are one store call: nothing else to fail.
    for call in [Call::BeginConfirmation, Call::ActivatePending] {
        let tfa = w.engine(call, w.engine_keys.clone());
        assert_store_error(
            "confirm_enrollment",
            call,
            tfa.confirm_enrollment(&w.alice, &w.id, &w.code(0), ConfirmAs::FirstAuthenticator)
                .await,
        );
    }
    // A wrong first code with a failing throttle: an error.
    let tfa = w.engine(Call::BeginConfirmation, w.engine_keys.clone());
    let wrong = format!("{:06}", (w.phone.code(0) + 1) % 1_000_000);
    let result = tfa
        .confirm_enrollment(&w.alice, &w.id, &wrong, ConfirmAs::FirstAuthenticator)
        .await;
    assert!(
        matches!(result, Err(Error::Store(_))),
        "{:?}",
        result.map(|c| matches!(c, Confirmation::Confirmed { .. }))
    );
}

#[tokio::test]
async fn use_recovery_code_fails_closed_on_every_store_call() {
    let w = World::new();
    for call in [
        Call::Status,
        Call::BeginAttempt,
        Call::ConsumeRecoveryCode,
        Call::ClearThrottle,
        Call::RecoveryCodesLeft,
    ] {
        let tfa = w.engine(call, w.engine_keys.clone());
        assert_store_error(
            "use_recovery_code",
            call,
            tfa.use_recovery_code(&w.alice, &w.recovery_code()).await,
        );
    }
}

/// The other operations pass store errors on as well.
#[tokio::test]
async fn management_calls_pass_store_errors_on() {
    let w = World::new();
    let keys = || w.engine_keys.clone();
    assert_store_error(
        "status",
        Call::Status,
        w.engine(Call::Status, keys()).status(&w.alice).await,
    );
    assert_store_error(
        "start_enrollment",
        Call::PutPending,
        w.engine(Call::PutPending, keys())
            .start_enrollment(&w.alice, "a", "phone", None)
            .await,
    );
    assert_store_error(
        "pending_enrollment",
        Call::Pending,
        w.engine(Call::Pending, keys())
            .pending_enrollment(&w.alice, &w.id, "a")
            .await,
    );
    assert_store_error(
        "authenticators",
        Call::Authenticators,
        w.engine(Call::Authenticators, keys())
            .authenticators(&w.alice)
            .await,
    );
    assert_store_error(
        "revoke",
        Call::Revoke,
        w.engine(Call::Revoke, keys()).revoke(&w.alice, &w.id).await,
    );
    assert_store_error(
        "reset",
        Call::Reset,
        w.engine(Call::Reset, keys()).reset(&w.alice).await,
    );
    assert_store_error(
        "issue_recovery_codes",
        Call::ReplaceRecoveryCodes,
        w.engine(Call::ReplaceRecoveryCodes, keys())
            .issue_recovery_codes(&w.alice)
            .await,
    );
    assert_store_error(
        "recovery_codes_left",
        Call::RecoveryCodesLeft,
        w.engine(Call::RecoveryCodesLeft, keys())
            .recovery_codes_left(&w.alice)
            .await,
    );
}
