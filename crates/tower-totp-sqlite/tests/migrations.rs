//! Opening: a fresh file gets the schema, a migrated file is left alone,
//! and a file this build does not understand is refused untouched.

use std::error::Error as _;
use std::path::Path;

use rusqlite::Connection;
use tower_totp::UserId;
use tower_totp::store::{EnrollmentStore, StoreError};
use tower_totp_sqlite::{OpenError, SqliteStore};

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

/// The schema as SQLite keeps it: every table and index with its SQL.
fn schema(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .expect("prepare");
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn a_new_database_gets_the_latest_schema_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(
        store.status(&UserId::new("a")).await.expect("status").epoch,
        0
    );
    drop(store);
    assert_eq!(user_version(&path), SqliteStore::SCHEMA_VERSION);
    let conn = Connection::open(&path).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let tables: Vec<_> = schema(&path)
        .into_iter()
        .filter(|(kind, ..)| kind == "table")
        .map(|(_, name, _)| name)
        .collect();
    assert_eq!(
        tables,
        [
            "authenticators",
            "pending_enrollments",
            "recovery_codes",
            "users"
        ]
    );
}

#[tokio::test]
async fn opening_a_migrated_database_again_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let alice = UserId::new("alice");
    let store = SqliteStore::open(&path).expect("open");
    store.reset(&alice).await.expect("reset");
    drop(store);

    let version = user_version(&path);
    let tables = schema(&path);
    let bytes = std::fs::read(&path).expect("read the file");
    for _ in 0..2 {
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.status(&alice).await.expect("status").epoch, 1);
    }
    assert_eq!(user_version(&path), version);
    assert_eq!(schema(&path), tables);
    assert_eq!(
        std::fs::read(&path).expect("read the file"),
        bytes,
        "reopening a migrated database writes nothing"
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("future.sqlite3");
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    {
        // What a later release might have made: another table layout, in
        // the default rollback-journal mode.
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch(&format!(
            "CREATE TABLE users_v2 (id TEXT PRIMARY KEY, data BLOB);
             PRAGMA user_version = {newer};"
        ))
        .expect("set up");
    }
    let bytes = std::fs::read(&path).expect("read the file");

    let err = SqliteStore::open(&path).expect_err("a newer schema must be refused");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let source = err.source().expect("a source");
    match source.downcast_ref::<OpenError>() {
        Some(OpenError::SchemaTooNew { found, supported }) => {
            assert_eq!((*found, *supported), (newer, SqliteStore::SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = source.to_string();
    assert!(message.contains("newer"), "{message}");
    assert!(message.contains(&newer.to_string()), "{message}");

    assert_eq!(
        std::fs::read(&path).expect("read the file"),
        bytes,
        "file untouched"
    );
    assert!(
        !dir.path().join("future.sqlite3-wal").exists(),
        "not switched to WAL"
    );
    assert_eq!(user_version(&path), newer);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.txt");
    let text = "these are not the tables you are looking for\n".repeat(200);
    std::fs::write(&path, &text).expect("write");
    let err = SqliteStore::open(&path).expect_err("not a database");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        text,
        "file untouched"
    );
}
