//! Helpers shared by the test files.

// Each test file uses its own subset.
#![allow(dead_code)]

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::code::{Algorithm, CodeParams, Secret};
use tower_totp::seal::Keyring;
use tower_totp::store::{AuthenticatorId, PendingEnrollment, TotpStore};

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

/// Put a pending enrollment and confirm it at `step`; its id.
pub(crate) async fn enroll(
    store: &impl TotpStore,
    user: &UserId,
    name: &str,
    step: u64,
) -> AuthenticatorId {
    let p = pending(user, name);
    let id = p.id.clone();
    store.put_pending(user, p).await.expect("put_pending");
    store
        .activate_pending(user, &id, step, 0, UnixTime::from_secs(1_700_000_060))
        .await
        .expect("activate_pending")
        .expect("a fresh pending enrollment activates");
    id
}
