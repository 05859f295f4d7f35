//! The event sink: each change told once, after it is stored, with the
//! time and the user; refusals tell nothing (but a lockout, once).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::events::{SecurityEvent, SecurityEventKind, SecurityEvents};
use tower_totp::store::{EnrollmentStore, MemoryStore, RevokeOutcome};
use tower_totp::{ConfirmAs, Confirmation, RejectReason, TotpConfig, TwoFactor, UserId, Verdict};
use tower_totp_testkit::phone::Phone;

/// Keeps every event, and checks at each that its change is stored.
#[derive(Debug)]
struct Kept {
    events: Mutex<Vec<SecurityEvent>>,
    store: MemoryStore,
}

#[async_trait::async_trait]
impl SecurityEvents for Kept {
    async fn record(&self, event: SecurityEvent) {
        let status = self.store.status(&event.user).await.unwrap();
        match &event.kind {
            SecurityEventKind::EnrollmentCompleted { .. } => assert!(status.enrolled),
            SecurityEventKind::SecondFactorReset { .. } => assert!(!status.enrolled),
            _ => {}
        }
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

impl Kept {
    fn kinds(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect()
    }
}

struct Setup {
    tfa: TwoFactor,
    clock: ManualClock,
    kept: Arc<Kept>,
}

fn setup() -> Setup {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
    let store = MemoryStore::new();
    let kept = Arc::new(Kept {
        events: Mutex::default(),
        store: store.clone(),
    });
    let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
        .clock(clock.clone())
        .store(store)
        .security_events(kept.clone())
        .build()
        .unwrap();
    Setup { tfa, clock, kept }
}

#[tokio::test]
async fn every_change_is_told_once_with_time_and_user() {
    let s = setup();
    let alice = UserId::new("alice");
    let e = s
        .tfa
        .start_enrollment(&alice, "a@example.com", "My phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), s.clock.clone());
    assert!(s.kept.kinds().is_empty(), "a started enrollment is not one");
    let wrong = s
        .tfa
        .confirm_enrollment(
            &alice,
            e.id(),
            &phone.wrong_code(),
            ConfirmAs::FirstAuthenticator,
        )
        .await
        .unwrap();
    assert!(!wrong.is_confirmed());
    assert!(s.kept.kinds().is_empty(), "a refusal tells nothing");
    let Confirmation::Confirmed { recovery_codes, .. } = s
        .tfa
        .confirm_enrollment(&alice, e.id(), &phone.code(), ConfirmAs::FirstAuthenticator)
        .await
        .unwrap()
    else {
        panic!("not confirmed");
    };
    let codes: Vec<String> = recovery_codes
        .unwrap()
        .as_strings()
        .map(str::to_owned)
        .collect();
    s.clock.advance(Duration::from_secs(30));
    assert!(
        !s.tfa
            .verify(&alice, &phone.wrong_code())
            .await
            .unwrap()
            .is_accepted()
    );
    assert!(
        s.tfa
            .verify(&alice, &phone.code())
            .await
            .unwrap()
            .is_accepted()
    );
    s.tfa.use_recovery_code(&alice, &codes[0]).await.unwrap();
    let new = s.tfa.issue_recovery_codes(&alice).await.unwrap();
    assert_eq!(
        s.tfa.revoke(&alice, e.id()).await.unwrap(),
        RevokeOutcome::Revoked
    );
    // Revoking it again changes nothing, and tells nothing.
    assert_eq!(
        s.tfa.revoke(&alice, e.id()).await.unwrap(),
        RevokeOutcome::NotFound
    );
    s.tfa.reset_by(&UserId::new("admin"), &alice).await.unwrap();
    assert_eq!(
        s.kept.kinds(),
        [
            "enrollment_completed",
            "recovery_code_used",
            "recovery_codes_regenerated",
            "authenticator_revoked",
            "second_factor_reset",
        ]
    );
    let events = s.kept.events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .all(|e| e.user == alice && e.at <= s.clock.now())
    );
    assert_eq!(
        events[0].kind,
        SecurityEventKind::EnrollmentCompleted {
            authenticator: e.id().clone(),
            name: "My phone".into(),
            replaced: false,
        }
    );
    assert_eq!(
        events[1].kind,
        SecurityEventKind::RecoveryCodeUsed {
            remaining: codes.len() - 1
        }
    );
    assert_eq!(
        events[2].kind,
        SecurityEventKind::RecoveryCodesRegenerated { count: new.len() }
    );
    assert_eq!(
        events[4].kind,
        SecurityEventKind::SecondFactorReset {
            admin: UserId::new("admin")
        }
    );
    // Nothing secret in what a user is shown or a sink keeps.
    let shown = format!(
        "{events:?}{}",
        events
            .iter()
            .map(|e| e.kind.to_string())
            .collect::<String>()
    );
    for code in codes.iter().chain(
        new.as_strings()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .iter(),
    ) {
        assert!(!shown.contains(code.as_str()), "{shown}");
    }
    assert!(!shown.contains(e.secret().to_base32().as_str()));
}

#[tokio::test]
async fn a_lockout_is_told_once_and_the_next_one_again() {
    let s = setup();
    let alice = UserId::new("alice");
    let e = s
        .tfa
        .start_enrollment(&alice, "a@example.com", "Phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), s.clock.clone());
    s.tfa
        .confirm_enrollment(&alice, e.id(), &phone.code(), ConfirmAs::FirstAuthenticator)
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(30));
    let locked = |v: &Verdict| match v {
        Verdict::Rejected(RejectReason::Throttled { retry_after }) => Some(*retry_after),
        _ => None,
    };
    let mut lockouts = 0;
    let mut tries = 0;
    while lockouts < 2 {
        tries += 1;
        assert!(tries < 100);
        let v = s.tfa.verify(&alice, &phone.wrong_code()).await.unwrap();
        if let Some(wait) = locked(&v) {
            // Refused again in the same lockout: not told again.
            let again = s.tfa.verify(&alice, &phone.wrong_code()).await.unwrap();
            assert!(locked(&again).is_some());
            lockouts += 1;
            s.clock.advance(wait);
        }
    }
    let events = s.kept.events.lock().unwrap().clone();
    let locks: Vec<_> = events
        .iter()
        .filter(|e| e.kind.as_str() == "account_locked")
        .collect();
    assert_eq!(locks.len(), 2, "{events:?}");
    assert!(matches!(
        locks[0].kind,
        SecurityEventKind::AccountLocked { until } if until > locks[0].at
    ));
}
