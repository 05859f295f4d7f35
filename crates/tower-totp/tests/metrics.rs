//! The engine's metrics (feature `metrics`): every decided second step is
//! counted under its outcome, once; lockouts once per lockout; store
//! errors by kind; latency and clock offset as histograms. A Prometheus
//! recorder local to the test's thread reads them back, so tests running
//! in parallel do not see each other's counts.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::store::MemoryStore;
use tower_totp::{
    ConfirmAs, RecoveryVerdict, RejectReason, TotpConfig, TwoFactor, UserId, Verdict,
};
use tower_totp_testkit::phone::Phone;
use tower_totp_testkit::store::{Op, TestStore};

/// Run `flow` on this thread with a recorder of its own; what it recorded.
fn recorded<F: std::future::Future<Output = ()>>(flow: impl FnOnce() -> F) -> Scrape {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(flow());
    });
    Scrape::of(&handle)
}

/// The samples of a Prometheus text page: `name{labels}` to value.
struct Scrape(HashMap<String, f64>, String);

impl Scrape {
    fn of(handle: &PrometheusHandle) -> Self {
        let text = handle.render();
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect();
        Self(samples, text)
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    fn outcome(&self, outcome: &str) -> f64 {
        self.get(&format!(
            "tower_totp_second_step_total{{outcome=\"{outcome}\"}}"
        ))
    }
}

struct Setup {
    tfa: TwoFactor,
    clock: ManualClock,
    store: TestStore<MemoryStore>,
}

fn setup() -> Setup {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
    let store = TestStore::new(MemoryStore::new());
    let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .unwrap();
    Setup { tfa, clock, store }
}

/// Enrol `user`: the phone, the recovery codes and the secret (base32).
async fn enroll(s: &Setup, user: &UserId) -> (Phone, Vec<String>, String) {
    let e = s
        .tfa
        .start_enrollment(user, "a@example.com", "Phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), s.clock.clone());
    let secret = e.secret().to_base32().to_string();
    let confirmed = s
        .tfa
        .confirm_enrollment(user, e.id(), &phone.code(), ConfirmAs::FirstAuthenticator)
        .await
        .unwrap();
    let tower_totp::Confirmation::Confirmed { recovery_codes, .. } = confirmed else {
        panic!("not confirmed: {confirmed:?}");
    };
    let codes = recovery_codes
        .unwrap()
        .as_strings()
        .map(str::to_owned)
        .collect();
    s.clock.advance(Duration::from_secs(30));
    (phone, codes, secret)
}

#[test]
fn each_outcome_is_counted_once() {
    let scrape = recorded(|| async {
        let s = setup();
        let alice = UserId::new("alice");
        let (phone, recovery, _) = enroll(&s, &alice).await;
        assert!(
            !s.tfa
                .verify(&alice, &phone.wrong_code())
                .await
                .unwrap()
                .is_accepted()
        );
        assert!(!s.tfa.verify(&alice, "12x").await.unwrap().is_accepted());
        let code = phone.code();
        assert!(s.tfa.verify(&alice, &code).await.unwrap().is_accepted());
        assert_eq!(
            s.tfa.verify(&alice, &code).await.unwrap(),
            Verdict::Rejected(RejectReason::Replayed)
        );
        assert!(matches!(
            s.tfa.use_recovery_code(&alice, &recovery[0]).await.unwrap(),
            RecoveryVerdict::Accepted { .. }
        ));
        assert!(matches!(
            s.tfa.use_recovery_code(&alice, &recovery[0]).await.unwrap(),
            RecoveryVerdict::Rejected(RejectReason::Invalid)
        ));
        // Bob is not enrolled.
        let bob = UserId::new("bob");
        assert!(!s.tfa.verify(&bob, "123456").await.unwrap().is_accepted());
    });
    assert_eq!(scrape.outcome("accepted"), 1.0, "{}", scrape.1);
    // A wrong code and a used recovery code.
    assert_eq!(scrape.outcome("invalid"), 2.0, "{}", scrape.1);
    assert_eq!(scrape.outcome("malformed"), 1.0);
    assert_eq!(scrape.outcome("replayed"), 1.0);
    assert_eq!(scrape.outcome("recovery_code"), 1.0);
    assert_eq!(scrape.outcome("not_enrolled"), 1.0);
    assert_eq!(scrape.outcome("throttled"), 0.0);
    assert_eq!(scrape.get("tower_totp_enrollments_total"), 1.0);
    assert_eq!(scrape.get("tower_totp_lockouts_total"), 0.0);
    // Every TOTP code decided has its time, every accepted one its offset.
    assert_eq!(
        scrape.get("tower_totp_verification_duration_seconds_count"),
        5.0,
        "{}",
        scrape.1
    );
    assert_eq!(scrape.get("tower_totp_clock_offset_seconds_count"), 1.0);
    assert_eq!(scrape.get("tower_totp_clock_offset_seconds_sum"), 0.0);
}

#[test]
fn a_fast_phone_records_its_offset_and_a_drift_its_resync() {
    let scrape = recorded(|| async {
        let s = setup();
        let alice = UserId::new("alice");
        let (phone, _, _) = enroll(&s, &alice).await;
        // One step fast: inside the default window.
        let code = phone.code_at_offset(1);
        assert!(s.tfa.verify(&alice, &code).await.unwrap().is_accepted());
        // Weeks later, far out, then the very next step at the same
        // offset: a resync (a drift that large needs the time to be plausible).
        s.clock.advance(Duration::from_secs(60 * 86_400));
        let far = phone.drifted(6);
        assert!(
            !s.tfa
                .verify(&alice, &far.code())
                .await
                .unwrap()
                .is_accepted()
        );
        s.clock.advance(Duration::from_secs(30));
        let verdict = s.tfa.verify(&alice, &far.code()).await.unwrap();
        assert!(
            matches!(
                verdict,
                Verdict::Accepted {
                    resynchronised: true,
                    ..
                }
            ),
            "{verdict:?}"
        );
    });
    assert_eq!(
        scrape.get("tower_totp_clock_offset_seconds_count"),
        2.0,
        "{}",
        scrape.1
    );
    assert_eq!(
        scrape.get("tower_totp_clock_offset_seconds_sum"),
        30.0 + 180.0
    );
    assert_eq!(scrape.get("tower_totp_resynchronisations_total"), 1.0);
    assert_eq!(scrape.outcome("accepted"), 2.0);
}

#[test]
fn a_lockout_counts_once_however_many_attempts_it_refuses() {
    let scrape = recorded(|| async {
        let s = setup();
        let alice = UserId::new("alice");
        let (phone, _, _) = enroll(&s, &alice).await;
        let mut throttled = 0;
        let mut tries = 0;
        while throttled < 3 {
            tries += 1;
            assert!(tries < 100, "never locked out");
            if let Verdict::Rejected(RejectReason::Throttled { .. }) =
                s.tfa.verify(&alice, &phone.wrong_code()).await.unwrap()
            {
                throttled += 1;
            }
        }
    });
    assert_eq!(scrape.outcome("throttled"), 3.0, "{}", scrape.1);
    assert_eq!(scrape.get("tower_totp_lockouts_total"), 1.0);
}

#[test]
fn store_errors_are_counted_by_kind_and_decide_nothing() {
    let scrape = recorded(|| async {
        let s = setup();
        let alice = UserId::new("alice");
        let (phone, _, _) = enroll(&s, &alice).await;
        s.store.fail(Op::BeginVerification);
        assert!(s.tfa.verify(&alice, &phone.code()).await.is_err());
        assert!(s.tfa.verify(&alice, &phone.code()).await.is_err());
    });
    assert_eq!(
        scrape.get("tower_totp_store_errors_total{kind=\"unavailable\"}"),
        2.0,
        "{}",
        scrape.1
    );
    assert_eq!(scrape.outcome("accepted"), 0.0);
    assert_eq!(
        scrape.get("tower_totp_verification_duration_seconds_count"),
        0.0
    );
}

#[test]
fn no_label_holds_a_user_a_code_or_a_secret() {
    let mut seen = Vec::new();
    let scrape = recorded(|| async {
        let s = setup();
        let alice = UserId::new("alice-the-user");
        let (phone, recovery, secret) = enroll(&s, &alice).await;
        let code = phone.code();
        s.tfa.verify(&alice, &code).await.unwrap();
        s.tfa.use_recovery_code(&alice, &recovery[1]).await.unwrap();
        seen.push(code);
        seen.push(recovery[1].clone());
        seen.push(secret);
    });
    assert!(!scrape.1.contains("alice"), "{}", scrape.1);
    for secret in &seen {
        assert!(
            !scrape.1.contains(secret.as_str()),
            "{secret} in {}",
            scrape.1
        );
    }
}
