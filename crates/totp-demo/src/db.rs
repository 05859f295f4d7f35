//! The demo's own tables (users and the admin switches), in the same SQLite
//! file as the TOTP store but in tables of their own (`demo_*`), so neither
//! schema knows about the other. The store numbers its migrations with
//! `user_version`; these tables do not touch it.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::DemoError;

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
    external_users INTEGER NOT NULL CHECK (external_users IN (0, 1))
) STRICT;
";

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
        Ok(Self {
            conn: Arc::new(Mutex::new(Conn {
                conn,
                seen_version: None,
            })),
        })
    }

    /// Run `f` with the connection, now, on this thread (start-up only).
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DemoError> {
        let mut inner = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut inner.conn).map_err(DemoError::Database)
    }

    /// Run `f` with the connection on the blocking pool.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DemoError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.with_conn(f))
            .await
            .map_err(|_| DemoError::Interrupted)?
    }

    /// Run `f` on the blocking pool if another connection (another
    /// process, or another `Db` on the same file) committed a change since
    /// the last call that ran it; whether it ran. The first call always
    /// runs it.
    ///
    /// SQLite's `PRAGMA data_version` changes exactly when some *other*
    /// connection commits to the file, WAL or not, in this process or
    /// another; it is one read of a counter in shared memory, no table is
    /// read. This connection's own commits do not change it: whoever
    /// writes through it updates its copies itself. `f` runs under the
    /// connection's lock, so no write through this connection can land
    /// between its reads and what it does with them.
    pub(crate) async fn if_changed(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<()> + Send + 'static,
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
            // A commit landing after the pragma and before `f` reads is
            // read now and read again next time: one reload too many,
            // never one too few.
            f(&mut inner.conn).map_err(DemoError::Database)?;
            inner.seen_version = Some(version);
            Ok(true)
        })
        .await
        .map_err(|_| DemoError::Interrupted)?
    }
}
