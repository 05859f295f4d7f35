//! The demo's own tables (users and the admin switches) in SQLite, in the
//! same file as the TOTP store but in tables of their own (`demo_*`), so
//! neither schema knows about the other. The store numbers its migrations
//! with `user_version`; these tables do not touch it.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tower_totp::policy::PolicySettings;

use super::{EventRow, SettingsPatch, Snapshot, UserRecord, kind_from_sql, kind_to_sql};
use crate::error::DemoError;
use crate::users::User;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS demo_users (
    username      TEXT    NOT NULL PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('internal', 'external')),
    is_admin      INTEGER NOT NULL CHECK (is_admin IN (0, 1)),
    require_2fa   INTEGER NOT NULL CHECK (require_2fa IN (0, 1)),
    password_hash TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS demo_settings (
    id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    internal_users INTEGER NOT NULL CHECK (internal_users IN (0, 1)),
    external_users INTEGER NOT NULL CHECK (external_users IN (0, 1)),
    grace_days     INTEGER NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 365)
) STRICT;

CREATE TABLE IF NOT EXISTS demo_requirement_since (
    username TEXT    NOT NULL PRIMARY KEY,
    since_ms INTEGER NOT NULL CHECK (since_ms >= 0)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS demo_security_events (
    id       INTEGER NOT NULL PRIMARY KEY,
    username TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS demo_security_events_by_user
    ON demo_security_events (username, at_ms, id);
";

/// The columns added since a table was first made: `CREATE TABLE IF NOT
/// EXISTS` leaves an older file's table as it was, so each is added to a
/// table that lacks it (table, column, the `ADD COLUMN` definition).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[(
    "demo_settings",
    "grace_days",
    "grace_days INTEGER NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 365)",
)];

/// One connection to the demo's tables, shared by clones. Every call runs
/// on Tokio's blocking pool: SQLite blocks.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Conn>>,
}

/// The connection and the last `PRAGMA data_version` [`Db::if_changed`]
/// acted on (`None`: not asked yet).
struct Conn {
    conn: Connection,
    seen_version: Option<i64>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Open (creating if needed) the database file and the demo's tables.
    pub(crate) fn open(path: &Path) -> Result<Self, DemoError> {
        let conn = Connection::open(path).map_err(DemoError::Database)?;
        Self::setup(conn)
    }

    /// A private in-memory database (for tests).
    pub(crate) fn open_in_memory() -> Result<Self, DemoError> {
        let conn = Connection::open_in_memory().map_err(DemoError::Database)?;
        Self::setup(conn)
    }

    fn setup(conn: Connection) -> Result<Self, DemoError> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(DemoError::Database)?;
        // WAL lets the store's connection and this one work side by side;
        // FULL: a change the admin saw saved survives a power loss.
        // The store's own switch, which waits out instances starting on a
        // new file at the same moment (SQLite refuses the switch then
        // without waiting on its own).
        tower_totp_sqlite::use_wal(&conn).map_err(DemoError::Database)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(DemoError::Database)?;
        conn.execute_batch(SCHEMA).map_err(DemoError::Database)?;
        let mut conn = conn;
        migrate(&mut conn).map_err(DemoError::Database)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(Conn {
                conn,
                seen_version: None,
            })),
        })
    }

    /// Run `f` with the connection, now, on this thread (start-up only).
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DemoError> {
        let mut inner = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut inner.conn).map_err(DemoError::Database)
    }

    /// Run `f` with the connection on the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DemoError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.with_conn(f))
            .await
            .map_err(|_| DemoError::Interrupted)?
    }

    pub(super) async fn ping(&self) -> Result<(), DemoError> {
        self.call(|conn| {
            conn.query_row("SELECT COUNT(*) FROM demo_settings", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await
        .map(drop)
    }

    pub(super) fn users(&self) -> Result<Vec<UserRecord>, DemoError> {
        self.with_conn(|conn| read_users(conn))
    }

    pub(super) fn seed_users(
        &self,
        rows: &[UserRecord],
    ) -> Result<(bool, Vec<UserRecord>), DemoError> {
        self.with_conn(|conn| {
            // IMMEDIATE: the write lock from the start, so a second
            // instance waits here and then finds the table full.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let empty: bool =
                tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM demo_users)", [], |r| {
                    r.get(0)
                })?;
            if empty {
                for r in rows {
                    insert_user(&tx, "INSERT", r)?;
                }
            }
            // What the table holds now: ours, or another instance's.
            let now = read_users(&tx)?;
            tx.commit()?;
            Ok((empty, now))
        })
    }

    #[cfg(feature = "load-baseline")]
    pub(super) fn add_missing_users(
        &self,
        rows: &[UserRecord],
    ) -> Result<Vec<UserRecord>, DemoError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for r in rows {
                insert_user(&tx, "INSERT OR IGNORE", r)?;
            }
            let now = read_users(&tx)?;
            tx.commit()?;
            Ok(now)
        })
    }

    pub(super) fn init_settings(
        &self,
        defaults: PolicySettings,
    ) -> Result<PolicySettings, DemoError> {
        // Another instance starting at the same moment may write the
        // defaults too: insert them only where there is nothing, then use
        // what is saved.
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO demo_settings \
                 (id, enabled, internal_users, external_users, grace_days) \
                 VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                params![
                    defaults.enabled,
                    defaults.internal_users,
                    defaults.external_users,
                    defaults.grace_days
                ],
            )?;
            Ok(read_settings(conn)?.unwrap_or(defaults))
        })
    }

    pub(super) async fn set_require_2fa(
        &self,
        username: String,
        require: bool,
    ) -> Result<bool, DemoError> {
        self.call(move |conn| {
            conn.query_row(
                "UPDATE demo_users SET require_2fa = ?2 WHERE username = ?1 RETURNING 1",
                params![username, require],
                |_| Ok(()),
            )
            .optional()
        })
        .await
        .map(|changed| changed.is_some())
    }

    pub(super) async fn save_settings(&self, s: PolicySettings) -> Result<(), DemoError> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO demo_settings \
                 (id, enabled, internal_users, external_users, grace_days) \
                 VALUES (1, ?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE \
                 SET enabled = ?1, internal_users = ?2, external_users = ?3, grace_days = ?4",
                params![s.enabled, s.internal_users, s.external_users, s.grace_days],
            )
            .map(|_| ())
        })
        .await
    }

    pub(super) async fn patch_settings(
        &self,
        patch: SettingsPatch,
    ) -> Result<PolicySettings, DemoError> {
        self.call(move |conn| {
            conn.query_row(
                "UPDATE demo_settings SET \
                 enabled = COALESCE(?1, enabled), \
                 internal_users = COALESCE(?2, internal_users), \
                 external_users = COALESCE(?3, external_users), \
                 grace_days = COALESCE(?4, grace_days) \
                 WHERE id = 1 \
                 RETURNING enabled, internal_users, external_users, grace_days",
                params![
                    patch.enabled,
                    patch.internal_users,
                    patch.external_users,
                    patch.grace_days
                ],
                settings_row,
            )
        })
        .await
    }

    pub(super) async fn requirement_since(
        &self,
        username: String,
        now_ms: i64,
    ) -> Result<i64, DemoError> {
        // The no-op update makes `RETURNING` answer the kept row too.
        self.call(move |conn| {
            conn.query_row(
                "INSERT INTO demo_requirement_since (username, since_ms) VALUES (?1, ?2) \
                 ON CONFLICT (username) DO UPDATE SET since_ms = since_ms \
                 RETURNING since_ms",
                params![username, now_ms],
                |r| r.get(0),
            )
        })
        .await
    }

    pub(super) async fn recent_events(
        &self,
        username: String,
        limit: usize,
    ) -> Result<Vec<EventRow>, DemoError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT at_ms, kind, detail FROM demo_security_events \
                 WHERE username = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows = q.query_map(params![username, limit], |r| {
                Ok(EventRow {
                    at_ms: r.get(0)?,
                    kind: r.get(1)?,
                    detail: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn add_event(
        &self,
        username: String,
        event: EventRow,
        kept: usize,
    ) -> Result<(), DemoError> {
        let kept = i64::try_from(kept).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO demo_security_events (username, at_ms, kind, detail) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![username, event.at_ms, event.kind, event.detail],
            )?;
            tx.execute(
                "DELETE FROM demo_security_events WHERE username = ?1 AND id NOT IN \
                 (SELECT id FROM demo_security_events WHERE username = ?1 \
                  ORDER BY at_ms DESC, id DESC LIMIT ?2)",
                params![username, kept],
            )?;
            tx.commit()
        })
        .await
    }

    /// SQLite's `PRAGMA data_version` changes exactly when some *other*
    /// connection commits to the file, WAL or not, in this process or
    /// another; it is one read of a counter in shared memory, no table is
    /// read. This connection's own commits do not change it: whoever
    /// writes through it updates its copies itself. `apply` runs under the
    /// connection's lock, so no write through this connection can land
    /// between the snapshot and what `apply` does with it.
    pub(super) async fn if_changed(
        &self,
        apply: impl FnOnce(Snapshot) + Send + 'static,
    ) -> Result<bool, DemoError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut inner = db.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let version: i64 = inner
                .conn
                .query_row("PRAGMA data_version", [], |r| r.get(0))
                .map_err(DemoError::Database)?;
            if inner.seen_version == Some(version) {
                return Ok(false);
            }
            // A commit landing after the pragma and before the reads is
            // read now and read again next time: one reload too many,
            // never one too few.
            let snapshot = (|| {
                let tx = inner.conn.transaction()?;
                let snapshot = Snapshot {
                    users: read_users(&tx)?,
                    settings: read_settings(&tx)?,
                };
                tx.commit()?;
                Ok(snapshot)
            })()
            .map_err(DemoError::Database)?;
            apply(snapshot);
            inner.seen_version = Some(version);
            Ok(true)
        })
        .await
        .map_err(|_| DemoError::Interrupted)?
    }
}

/// Add the [`ADDED_COLUMNS`] an older file lacks. IMMEDIATE: the write
/// lock before the look, so of two instances starting at once on an old
/// file one adds the column and the other then finds it.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            params![table, column],
            |r| r.get(0),
        )?;
        if !present {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {definition}"))?;
        }
    }
    tx.commit()
}

/// Insert one user (`verb`: `INSERT`, or `INSERT OR IGNORE` to keep a row
/// already there).
fn insert_user(conn: &Connection, verb: &str, r: &UserRecord) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "{verb} INTO demo_users \
             (username, display_name, kind, is_admin, require_2fa, password_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ),
        params![
            r.user.username,
            r.user.display_name,
            kind_to_sql(r.user.kind),
            r.user.is_admin,
            r.user.require_2fa,
            r.password_hash
        ],
    )
    .map(|_| ())
}

/// Every row of `demo_users`.
fn read_users(conn: &Connection) -> rusqlite::Result<Vec<UserRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT username, display_name, kind, is_admin, require_2fa, password_hash \
         FROM demo_users",
    )?;
    stmt.query_map([], |r| {
        let kind: String = r.get(2)?;
        Ok(UserRecord {
            user: User {
                username: r.get(0)?,
                display_name: r.get(1)?,
                kind: kind_from_sql(&kind),
                is_admin: r.get(3)?,
                require_2fa: r.get(4)?,
            },
            password_hash: r.get(5)?,
        })
    })?
    .collect()
}

fn settings_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PolicySettings> {
    Ok(PolicySettings {
        enabled: r.get(0)?,
        internal_users: r.get(1)?,
        external_users: r.get(2)?,
        grace_days: r.get(3)?,
    })
}

fn read_settings(conn: &Connection) -> rusqlite::Result<Option<PolicySettings>> {
    conn.query_row(
        "SELECT enabled, internal_users, external_users, grace_days \
         FROM demo_settings WHERE id = 1",
        [],
        settings_row,
    )
    .optional()
}
