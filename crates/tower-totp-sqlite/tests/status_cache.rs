//! `SqliteStore::with_status_cache`: `status` from memory, kept right by
//! the store's own writes at once and by other connections' writes within
//! the staleness bound.

mod common;

use std::time::Duration;

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::store::RevokeOutcome;
use tower_totp::store::{Activated, EnrollmentStore, UserStatus};
use tower_totp_sqlite::SqliteStore;

/// Long enough that no test ever reaches it: other connections' writes are
/// then only seen on a miss.
const AN_HOUR: Duration = Duration::from_secs(3600);

/// The cached store against the conformance suite, each case on its own
/// file.
mod cached_store {
    use tower_totp_sqlite::SqliteStore;

    tower_totp::store_conformance_tests!(
        keep dir = tempfile::tempdir().expect("temp dir");
        make = SqliteStore::open(dir.path().join("totp.sqlite3"))
            .expect("open")
            .with_status_cache(super::AN_HOUR)
    );
}

#[tokio::test]
async fn writes_through_any_clone_are_seen_at_once() {
    let store = SqliteStore::open_in_memory()
        .expect("open")
        .with_status_cache(AN_HOUR);
    let writer = store.clone();
    let u = UserId::new("alice");
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus::default()
    );

    let id = common::enroll(&writer, &u, "phone", 1).await;
    let enrolled = store.status(&u).await.expect("status");
    assert_eq!(
        enrolled,
        UserStatus {
            epoch: 1,
            enrolled: true,
            sessions_ended_at: None,
        }
    );

    assert_eq!(
        writer.revoke(&u, &id).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus {
            epoch: 2,
            enrolled: false,
            sessions_ended_at: None,
        }
    );

    common::enroll(&writer, &u, "new phone", 1).await;
    let ended = UnixTime::from_secs(1_700_000_500);
    writer.reset(&u, ended).await.expect("reset");
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus {
            epoch: 4,
            enrolled: false,
            sessions_ended_at: Some(ended),
        },
        "a reset's end of sessions is seen at once"
    );

    // An activation that lost to `first_only` changes nothing, and the
    // copy stays right; one that wins is seen at once.
    let p = common::pending(&u, "phone");
    writer
        .put_pending(&u, p.clone(), common::ROOMY)
        .await
        .expect("put");
    let mut first = common::activation(&p.id, 2);
    first.first_only = true;
    assert!(matches!(
        writer.activate_pending(&u, &first).await.expect("activate"),
        Activated::Done { epoch: 5, .. }
    ));
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus {
            epoch: 5,
            enrolled: true,
            sessions_ended_at: Some(ended),
        }
    );
    // The last authenticator revoked: not enrolled, and seen at once.
    assert_eq!(
        writer.revoke(&u, &p.id).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus {
            epoch: 6,
            enrolled: false,
            sessions_ended_at: Some(ended),
        }
    );
}

#[tokio::test]
async fn another_connection_is_seen_within_the_staleness_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.sqlite3");
    let other = SqliteStore::open(&path).expect("open the other process's connection");
    let fresh = SqliteStore::open(&path)
        .expect("open")
        .with_status_cache(Duration::ZERO);
    let lagging = SqliteStore::open(&path)
        .expect("open")
        .with_status_cache(AN_HOUR);
    let u = UserId::new("bob");
    let id = common::enroll(&other, &u, "phone", 1).await;
    let before = UserStatus {
        epoch: 1,
        enrolled: true,
        sessions_ended_at: None,
    };
    assert_eq!(fresh.status(&u).await.expect("status"), before);
    assert_eq!(lagging.status(&u).await.expect("status"), before);

    assert_eq!(
        other.revoke(&u, &id).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    let after = UserStatus {
        epoch: 2,
        enrolled: false,
        sessions_ended_at: None,
    };
    // No staleness allowed: the other connection's commit is seen.
    assert_eq!(fresh.status(&u).await.expect("status"), after);
    // An hour allowed: the copy is still served, as documented.
    assert_eq!(lagging.status(&u).await.expect("status"), before);
    // A user not copied yet is read, and the moved `data_version` drops
    // every old copy with it.
    let _ = lagging.status(&UserId::new("carol")).await.expect("status");
    assert_eq!(lagging.status(&u).await.expect("status"), after);
}
