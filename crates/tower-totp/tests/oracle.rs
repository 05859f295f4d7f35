//! totp-rs as an oracle: for random secrets, times from the epoch to the
//! year 2200 and every parameter combination, our codes equal totp-rs's, and
//! the engine accepts the codes totp-rs generates.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tower_totp::ConfirmAs;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::code::{Algorithm, CodeParams, Hotp, Secret};
use tower_totp::{TotpConfig, TwoFactor, UserId};

/// 2200-01-01T00:00:00Z.
const YEAR_2200: u64 = 7_258_118_400;

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Sha1),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512)
    ]
}

fn params() -> impl Strategy<Value = CodeParams> {
    (algorithm(), 6u8..=8, 1u32..=120)
        .prop_map(|(alg, digits, period)| CodeParams::new(alg, digits, period).unwrap())
}

fn theirs(secret: &[u8], params: CodeParams) -> totp_rs::Totp {
    let algorithm = match params.algorithm() {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        other => panic!("no oracle for {other:?}"),
    };
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits())
        .with_step_duration(u64::from(params.period()))
        .with_secret(secret.to_vec())
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn our_codes_equal_totp_rs(
        secret in proptest::collection::vec(any::<u8>(), 16..=64),
        time in 0u64..=YEAR_2200,
        params in params(),
    ) {
        let ours = Hotp::new(&Secret::from_bytes(&secret).unwrap(), params);
        let step = params.step_at(UnixTime::from_secs(time));
        prop_assert_eq!(
            ours.code_string(step),
            theirs(&secret, params).generate(time).to_string()
        );
    }

    /// The edges: the first seconds after the epoch and the last of 2199.
    #[test]
    fn our_codes_equal_totp_rs_at_the_edges(
        secret in proptest::collection::vec(any::<u8>(), 16..=64),
        time in prop_oneof![0u64..=120, (YEAR_2200 - 120)..=YEAR_2200],
        params in params(),
    ) {
        let ours = Hotp::new(&Secret::from_bytes(&secret).unwrap(), params);
        let step = params.step_at(UnixTime::from_secs(time));
        prop_assert_eq!(
            ours.code_string(step),
            theirs(&secret, params).generate(time).to_string()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// End to end: an engine issuing `params` confirms the enrollment with
    /// totp-rs's code for the current time, and logs in with the next one.
    #[test]
    fn the_engine_accepts_totp_rs_codes(time in 0u64..=YEAR_2200, params in params()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let clock = ManualClock::new(UnixTime::from_secs(time));
            let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap().with_params(params))
                .clock(clock.clone())
                .build()
                .unwrap();
            let alice = UserId::new("alice");
            let e = tfa.start_enrollment(&alice, "alice", "phone", None).await.unwrap().unwrap();
            prop_assert_eq!(e.params(), params);
            let app = theirs(e.secret().as_bytes(), params);
            let confirmed = tfa
                .confirm_enrollment(&alice, e.id(), &app.generate(time).to_string(), ConfirmAs::AnotherAuthenticator)
                .await
                .unwrap();
            prop_assert!(confirmed.is_confirmed());
            let later = time + u64::from(params.period());
            clock.set(UnixTime::from_secs(later));
            let verdict = tfa.verify(&alice, &app.generate(later).to_string()).await.unwrap();
            prop_assert!(verdict.is_accepted(), "{:?}", verdict);
            Ok(())
        })?;
    }
}
