//! `record_miss` does the same work on disk whether or not it keeps a
//! resync candidate: a guess that matched a step outside the window must
//! not answer slower than a plain miss. Measured as what each call appends
//! to the write-ahead log (frames written, hence `fsync`s made), not by
//! timing.

mod common;

use std::path::Path;

use tower_totp::UserId;
use tower_totp::store::{AuthenticatorId, ResyncCandidate, StepStore};
use tower_totp_sqlite::SqliteStore;

/// The size of the database's write-ahead log: every commit that writes a
/// page appends a frame to it (nothing here writes enough to reach the
/// automatic checkpoint, which would start it again).
fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// What one call appends to the log.
async fn appended<F: Future<Output = ()>>(db: &Path, call: F) -> u64 {
    let before = wal_len(db);
    call.await;
    wal_len(db) - before
}

#[tokio::test]
async fn a_miss_writes_the_same_with_or_without_a_candidate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    let u = UserId::new("alice");
    let phone = common::enroll(&store, &u, "phone", 10).await;
    common::enroll(&store, &u, "tablet", 10).await;
    let candidate = |step| Some((phone.clone(), ResyncCandidate { step, offset: 12 }));
    let miss = |c: Option<(AuthenticatorId, ResyncCandidate)>| {
        let (store, u) = (store.clone(), u.clone());
        async move { store.record_miss(&u, c).await.expect("record_miss") }
    };

    // Several rounds in every order: a plain miss first, a candidate
    // first, the same candidate again, an id the user does not have.
    let unknown = Some((
        AuthenticatorId::new("ffffffffffffffff"),
        ResyncCandidate { step: 1, offset: 0 },
    ));
    let mut sizes = Vec::new();
    for round in 0..3 {
        sizes.push(("none", appended(&path, miss(None)).await));
        sizes.push(("some", appended(&path, miss(candidate(40 + round))).await));
        sizes.push(("same", appended(&path, miss(candidate(40 + round))).await));
        sizes.push(("none", appended(&path, miss(None)).await));
        sizes.push(("unknown id", appended(&path, miss(unknown.clone())).await));
    }
    let first = sizes[0].1;
    assert!(first > 0, "a miss commits a write: {sizes:?}");
    assert!(
        sizes.iter().all(|(_, n)| *n == first),
        "every miss appends the same to the log: {sizes:?}"
    );
}
