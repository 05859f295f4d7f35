//! Helpers shared by the test files.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Barrier;

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::code::{Algorithm, CodeParams, Secret};
use tower_totp::seal::Keyring;
use tower_totp::store::{
    Activated, Activation, AuthenticatorId, PendingEnrollment, PendingLimits, PutPending, TotpStore,
};
use tower_totp_sqlite::SqliteStore;

/// No pruning, no cap to speak of.
pub(crate) const ROOMY: PendingLimits = PendingLimits {
    expired_before: UnixTime::EPOCH,
    max: 1_000,
};

/// A pending enrollment with a freshly sealed random secret.
pub(crate) fn pending(user: &UserId, name: &str) -> PendingEnrollment {
    let keys = Keyring::ephemeral().expect("random source");
    PendingEnrollment {
        id: AuthenticatorId::generate().expect("random source"),
        name: name.to_owned(),
        secret: keys.seal(user, &Secret::generate()).expect("seal"),
        params: CodeParams::new(Algorithm::Sha512, 7, 45).expect("valid params"),
        created_at: UnixTime::from_secs(1_700_000_000),
        replaces: None,
    }
}

/// An activation of `id` at `step` without caps or recovery codes.
pub(crate) fn activation(id: &AuthenticatorId, step: u64) -> Activation {
    Activation {
        pending_id: id.clone(),
        step,
        offset: 0,
        now: UnixTime::from_secs(1_700_000_060),
        first_only: false,
        max_authenticators: 1_000,
        recovery: Vec::new(),
    }
}

/// Put a pending enrollment and confirm it at `step`; its id.
pub(crate) async fn enroll(
    store: &impl TotpStore,
    user: &UserId,
    name: &str,
    step: u64,
) -> AuthenticatorId {
    let p = pending(user, name);
    let id = p.id.clone();
    assert_eq!(
        store
            .put_pending(user, p, ROOMY)
            .await
            .expect("put_pending"),
        PutPending::Stored
    );
    let outcome = store
        .activate_pending(user, &activation(&id, step))
        .await
        .expect("activate_pending");
    assert!(
        matches!(outcome, Activated::Done { .. }),
        "a fresh pending enrollment activates: {outcome:?}"
    );
    id
}

/// Open `path` from `n` threads released at the same instant, as `n`
/// processes starting together would; panics unless every one opens.
pub(crate) fn open_at_once(path: &Path, n: usize) {
    let start = Barrier::new(n);
    std::thread::scope(|s| {
        let opening: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    SqliteStore::open(path)
                })
            })
            .collect();
        for o in opening {
            o.join().expect("thread").expect("every store opens");
        }
    });
}
