//! The schema and its migrations, numbered by SQLite's `user_version`.
//!
//! `MIGRATIONS[i]` takes a database from version `i` to `i + 1`; a new
//! database is at version 0. Migrations are only ever appended: a released
//! one is never edited. They run in one IMMEDIATE transaction together with
//! the `user_version` update, so a crash or a second process opening the
//! same file at the same moment sees either the old schema or the new one.
//! (So a migration must not contain what cannot run inside a transaction,
//! such as `VACUUM` or a `journal_mode` change.)

use rusqlite::{Connection, TransactionBehavior};
use tower_totp::store::StoreError;

use crate::OpenError;
use crate::codec::{Invalid, db_error};

/// Version 1: users, authenticators, pending enrollments, recovery codes.
///
/// - Every `u64` (steps, epochs, times in milliseconds) is stored with
///   `codec::u64_to_sql`, an order-preserving map onto `i64`; offsets are
///   `i64` and stored as they are.
/// - `users` holds the epoch and the throttle state. Its rows are never
///   deleted, not even by a reset, so the epoch never goes back; the other
///   tables refer to it.
/// - Recovery codes have no uniqueness constraint: like the memory store, a
///   set holding the same hash twice keeps both, and each use removes one.
const V1: &str = "
CREATE TABLE users (
    user_id               TEXT    NOT NULL PRIMARY KEY,
    epoch                 INTEGER NOT NULL,
    throttle_attempts     INTEGER NOT NULL CHECK (throttle_attempts BETWEEN 0 AND 4294967295),
    throttle_locked_until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE authenticators (
    user_id       TEXT    NOT NULL REFERENCES users (user_id),
    id            TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    secret        BLOB    NOT NULL,
    algorithm     TEXT    NOT NULL,
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_step     INTEGER,
    drift_offset  INTEGER NOT NULL,
    resync_step   INTEGER,
    resync_offset INTEGER,
    PRIMARY KEY (user_id, id),
    CHECK ((resync_step IS NULL) = (resync_offset IS NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE pending_enrollments (
    user_id    TEXT    NOT NULL PRIMARY KEY REFERENCES users (user_id),
    id         TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    secret     BLOB    NOT NULL,
    algorithm  TEXT    NOT NULL,
    digits     INTEGER NOT NULL,
    period     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    replaces   TEXT
) STRICT, WITHOUT ROWID;

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    hash    BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id, hash);
";

/// Version 2 (issue 11): several pending enrollments per user, the time a
/// reset ended the user's sessions, and a miss counter per authenticator.
///
/// - `pending_enrollments` is keyed by `(user_id, id)`: each pending
///   enrollment belongs to the session that started it, and a second one
///   no longer replaces the first. SQLite cannot change a primary key in
///   place, so the table is rebuilt and its rows (at most one per user)
///   copied over as they are.
/// - `users.sessions_ended_at` is `UserStatus::sessions_ended_at`, in
///   milliseconds through `codec::u64_to_sql`; NULL until the first reset.
/// - `authenticators.misses` counts the rejected codes recorded for the
///   user while the authenticator was active (modulo 2^32). Nothing reads
///   it: it exists so that `record_miss` changes every row it touches.
///   SQLite writes no page for an UPDATE that leaves a row's bytes as they
///   were, so without it a plain miss would commit nothing (no WAL frame,
///   no `fsync`) while a miss that keeps a resync candidate would, and the
///   difference in response time would tell an attacker that a guess was
///   the code of a step outside the window.
const V2: &str = "
ALTER TABLE pending_enrollments RENAME TO pending_enrollments_v1;

CREATE TABLE pending_enrollments (
    user_id    TEXT    NOT NULL REFERENCES users (user_id),
    id         TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    secret     BLOB    NOT NULL,
    algorithm  TEXT    NOT NULL,
    digits     INTEGER NOT NULL,
    period     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    replaces   TEXT,
    PRIMARY KEY (user_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO pending_enrollments
    (user_id, id, name, secret, algorithm, digits, period, created_at, replaces)
SELECT user_id, id, name, secret, algorithm, digits, period, created_at, replaces
FROM pending_enrollments_v1;

DROP TABLE pending_enrollments_v1;

ALTER TABLE users ADD COLUMN sessions_ended_at INTEGER;

ALTER TABLE authenticators ADD COLUMN
    misses INTEGER NOT NULL DEFAULT 0 CHECK (misses BETWEEN 0 AND 4294967295);
";

/// Every migration, in order.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build creates and understands.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// The database's schema version, refusing one this build does not know.
///
/// Runs before anything is written to the file, so a database made by a
/// newer release is left exactly as it was.
pub(crate) fn checked_version(conn: &Connection) -> Result<i64, StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    if found > LATEST {
        return Err(StoreError::unavailable(OpenError::SchemaTooNew {
            found,
            supported: LATEST,
        }));
    }
    if found < 0 {
        return Err(StoreError::corrupt(Invalid("schema version")));
    }
    Ok(found)
}

/// Bring the schema up to [`LATEST`]. A database already there is only
/// read, never written.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    if checked_version(conn)? == LATEST {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    // Read again under the write lock: another process may have migrated
    // the file since the check above.
    let from = checked_version(&tx)?;
    let start =
        usize::try_from(from).map_err(|_| StoreError::corrupt(Invalid("schema version")))?;
    for sql in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(sql).map_err(db_error)?;
    }
    tx.pragma_update(None, "user_version", LATEST)
        .map_err(db_error)?;
    tx.commit().map_err(db_error)
}
