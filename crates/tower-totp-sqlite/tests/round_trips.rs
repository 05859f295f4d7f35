//! Store operations per code on SQLite, counted by the test kit's wrapper:
//! each one transaction. A correct code 2, a wrong one 2, a malformed one 1
//! and no charge, a locked-out one 1, a confirmed enrollment 2; over HTTP,
//! the whole `POST /2fa` of a correct code 2.

use tower_totp_sqlite::SqliteStore;
use tower_totp_testkit::round_trips;
use tower_totp_testkit::store::TestStore;

fn store(dir: &tempfile::TempDir) -> TestStore<SqliteStore> {
    TestStore::new(SqliteStore::open(dir.path().join("totp.sqlite3")).expect("open"))
}

#[tokio::test]
async fn through_the_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    round_trips::through_the_engine(store(&dir)).await;
}

#[tokio::test]
async fn over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    round_trips::over_http(store(&dir)).await;
}
