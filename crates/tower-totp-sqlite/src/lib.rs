//! A durable SQLite store for [`tower_totp`].
//!
//! [`SqliteStore`] keeps enrollments, replay and drift state, throttle
//! state and recovery-code hashes in one SQLite file, and implements the
//! four store traits of [`tower_totp::store`] with the same semantics as the
//! memory store (it passes the same conformance suite).
//!
//! ```
//! use tower_totp::clock::{Clock, ManualClock, UnixTime};
//! use tower_totp::code::Hotp;
//! use tower_totp::{ConfirmAs, TotpConfig, TwoFactor, UserId};
//! use tower_totp_sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
//! let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
//!     .store(SqliteStore::open_in_memory().unwrap())
//!     .clock(clock.clone())
//!     .build()
//!     .unwrap();
//! let alice = UserId::new("alice");
//!
//! let enrollment = tfa
//!     .start_enrollment(&alice, "alice@example.com", "Phone", None)
//!     .await
//!     .unwrap()
//!     .expect("under the caps");
//! let phone = Hotp::new(enrollment.secret(), enrollment.params());
//! let step = enrollment.params().step_at(clock.now());
//! let code = phone.code_string(step);
//! let confirmed = tfa
//!     .confirm_enrollment(&alice, enrollment.id(), &code, ConfirmAs::FirstAuthenticator)
//!     .await
//!     .unwrap();
//! assert!(confirmed.is_confirmed());
//! # });
//! ```
//!
//! In production, open a file, and seal secrets with a keyring that
//! outlives the process (the default keyring is random per process, so a
//! restart could not open what the database holds):
//!
//! ```no_run
//! use tower_totp::seal::{Keyring, SealingKey};
//! use tower_totp::{TotpConfig, TwoFactor};
//! use tower_totp_sqlite::SqliteStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open("/var/lib/acme/totp.sqlite3")?;
//! let key = SealingKey::from_hex(std::fs::read_to_string("/etc/acme/totp.key")?.trim())?;
//! let tfa = TwoFactor::builder(TotpConfig::new("Acme")?)
//!     .store(store)
//!     .keyring(Keyring::new(1, key))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: a call that
//! returned `Ok` is on disk, through a process kill and, as far as the disk
//! honours `fsync`, a power loss.
//! `NORMAL` would be enough against a killed process, but after a power
//! loss it may roll back the last commits, and here those are security
//! decisions: a replaced set of recovery codes whose old codes would work
//! again, a revoked authenticator that would come back, a consumed step
//! that could be replayed. The price is one `fsync` of the WAL per write.
//!
//! Every operation that runs more than one statement runs them in one
//! IMMEDIATE transaction: an activation with its checks, its recovery codes
//! and the throttle reset; a revocation with the recovery codes of the last
//! authenticator; a reset; a consumed step with the throttle reset; the
//! start of a login code (`begin_verification`: the status, the
//! authenticators and the throttle charge, so a code costs two
//! transactions in all) and of an enrollment's confirmation
//! (`begin_confirmation`: the pending enrollment and the charge), both
//! IMMEDIATE since they may write. A malformed code's `begin_verification`
//! charges nothing, so its transaction commits no change. One
//! statement is atomic by itself: `record_miss`, the use of a recovery
//! code. Other processes may open the same file: SQLite's locks, waited on
//! for up to five seconds (`busy_timeout`), keep them consistent.
//!
//! # Runtime
//!
//! SQLite calls block, so each operation runs on Tokio's blocking thread
//! pool (`spawn_blocking`): the store must be used inside a Tokio runtime.
//! An operation whose future is dropped still runs to its end, committed
//! or rolled back as a whole.
//!
//! # The status cache
//!
//! The layer asks for a user's [`status`](tower_totp::store::EnrollmentStore::status)
//! on every request. [`SqliteStore::with_status_cache`] answers it from
//! memory: this store's own writes keep the copies right at once, other
//! connections' writes (another process on the file) within a bound you
//! choose. It is off by default, because of that bound; turn it on when
//! one process owns the file, or when a revocation made elsewhere may take
//! that long to apply here.

#![forbid(unsafe_code)]

mod codec;
mod prune;
mod schema;
mod status_cache;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tower_totp::UserId;
use tower_totp::store::StoreError;

use crate::codec::{Failure, db_error};
use crate::status_cache::StatusCache;

/// How long an operation waits for another process's lock before failing
/// with [`StoreError::Unavailable`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`TotpStore`](tower_totp::store::TotpStore) in an SQLite database.
///
/// Clones share one connection. `Debug` shows where the database is,
/// nothing of its contents.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection for every operation, reads and writes alike.
    ///
    /// SQLite lets one writer at a time into a database anyway, and the
    /// statements here take microseconds; what costs time is the `fsync`
    /// on commit. A pool of read connections would let `status` run during
    /// another request's commit, at the price of a second code path for
    /// in-memory databases (whose connections share nothing). One
    /// connection is simpler and, for the rate at which people log in,
    /// fast enough; the mutex also makes every operation of this process
    /// strictly one after another.
    conn: Mutex<Connection>,
    /// Copies of users' status, if [`SqliteStore::with_status_cache`]
    /// turned them on; shared by every clone, so that every clone's writes
    /// keep them right.
    status_cache: OnceLock<StatusCache>,
    /// Shown by `Debug`.
    location: Location,
}

#[derive(Debug)]
enum Location {
    File(PathBuf),
    Memory,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SqliteStore");
        match &self.inner.location {
            Location::File(path) => s.field("path", path),
            Location::Memory => s.field("path", &":memory:"),
        };
        s.finish_non_exhaustive()
    }
}

/// Why [`SqliteStore::open`] refused; found as the
/// [`source`](std::error::Error::source) of the [`StoreError::Unavailable`]
/// it returns. SQLite's own errors are passed on as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database was made by a newer release of this crate. It is left
    /// untouched: upgrade the application, or restore an older backup.
    #[error(
        "the database has schema version {found}, newer than the latest this build knows \
         ({supported}); refusing to open it"
    )]
    SchemaTooNew {
        /// The database's `user_version`.
        found: i64,
        /// The newest version this build can use.
        supported: i64,
    },
    /// The directory to hold the database could not be created.
    #[error("could not create the database directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be created.
    #[error("could not create the database file {}", .path.display())]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl SqliteStore {
    /// The schema version this release creates; kept in the database's
    /// `user_version`.
    pub const SCHEMA_VERSION: i64 = schema::LATEST;

    /// Open the database at `path`, creating it and its directory if
    /// missing, and bring its schema up to date.
    ///
    /// A new file is created readable by its owner only (on Unix), and
    /// SQLite gives its `-wal` and `-shm` files the same permissions: it
    /// holds sealed secrets and recovery-code hashes. This call blocks on
    /// file I/O; call it at start-up, or inside `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the file cannot be created or opened,
    /// or holds a schema newer than this release knows
    /// ([`OpenError::SchemaTooNew`]; the file is then left untouched), and
    /// [`StoreError::Corrupt`] if it is not an SQLite database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| {
                StoreError::unavailable(OpenError::CreateDir {
                    path: dir.to_owned(),
                    source,
                })
            })?;
        }
        create_private_file(path)?;
        let conn = Connection::open(path).map_err(db_error)?;
        Self::init(conn, Location::File(path.to_owned()))
    }

    /// A new, private database in memory, gone when the last clone is
    /// dropped: for tests.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(db_error)?;
        Self::init(conn, Location::Memory)
    }

    fn init(mut conn: Connection, location: Location) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        // Before changing anything in the file, refuse a newer schema.
        schema::checked_version(&conn)?;
        if matches!(location, Location::File(_)) {
            // WAL: readers and the writer do not block each other, and a
            // commit is one append to the log. An in-memory database has no
            // log. A file system without shared memory keeps the rollback
            // journal, which `synchronous = FULL` makes just as durable.
            use_wal(&conn).map_err(db_error)?;
        }
        // FULL, not NORMAL: see "Durability" in the crate docs.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_error)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                status_cache: OnceLock::new(),
                location,
            }),
        })
    }

    /// Answer [`status`](tower_totp::store::EnrollmentStore::status) from
    /// memory: the call the layer makes on every request then needs no
    /// SQLite read and no thread hand-off.
    ///
    /// This store's own writes (through any clone) are seen at once: each
    /// write that can change a status drops that user's copy before it lets
    /// go of the connection. Writes by *other* connections to the same file
    /// (another process, say) are noticed through SQLite's
    /// `PRAGMA data_version`, asked at most once per `max_staleness`; until
    /// then a copy may be that old. So a revocation made by another process
    /// takes up to `max_staleness` to reach this one's sessions. With one
    /// process owning the file, nothing else writes and the copies are
    /// always current; with `Duration::ZERO` every call asks
    /// `data_version` (cheaper than the read it saves, but still a call
    /// into SQLite).
    ///
    /// The first call decides for every clone; later calls change nothing.
    #[must_use]
    pub fn with_status_cache(self, max_staleness: Duration) -> Self {
        // Ignoring the error keeps the first setting: clones already
        // answering from copies must not switch rules under each other.
        let _ = self.inner.status_cache.set(StatusCache::new(max_staleness));
        self
    }

    /// The status cache, if turned on.
    fn status_cache(&self) -> Option<&StatusCache> {
        self.inner.status_cache.get()
    }

    /// Run `op`, which may change `user`'s status, and drop the user's
    /// cached status while still holding the connection (see
    /// `status_cache`).
    async fn run_changing_status<T, F>(&self, user: UserId, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.run(move |conn| {
            let outcome = op(conn);
            // Also after a failure: a commit may have landed before it.
            if let Some(cache) = inner.status_cache.get() {
                cache.forget(&user);
            }
            outcome
        })
        .await
    }

    /// Run `op` on the connection, on the blocking thread pool.
    async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            // A poisoned lock means an operation panicked; its transaction
            // was rolled back when the panic dropped it, so the connection
            // is still good.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            // Start every operation outside any transaction, even if an
            // earlier one failed to roll back.
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK")?;
            }
            op(&mut conn)
        })
        .await;
        // A join error is a panic in `op` or a runtime shutting down.
        joined
            .map_err(StoreError::unavailable)?
            .map_err(StoreError::from)
    }
}

/// Put the database of `conn` in WAL mode, as [`SqliteStore::open`] does;
/// for an application that keeps tables of its own in the same file and
/// opens its own connection to it.
///
/// SQLite answers `PRAGMA journal_mode = WAL` with `SQLITE_BUSY` at once,
/// without calling the busy handler, while another connection is switching
/// the same new file (several processes starting together): this retries
/// for up to the five seconds any other lock is waited for. On a file
/// already in WAL mode it changes nothing. The pragma answers with the
/// mode in force; an in-memory database, or a file system without shared
/// memory, keeps its own, and that answer is not an error.
///
/// # Errors
///
/// SQLite's error, if it is not `SQLITE_BUSY` or the file stays busy.
pub fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

/// Create the file, owner-only, if it does not exist yet.
#[cfg(unix)]
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::unavailable(OpenError::CreateFile {
            path: path.to_owned(),
            source,
        })),
    }
}

/// Elsewhere SQLite creates the file with the default permissions.
#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(store: &SqliteStore, name: &str) -> i64 {
        let conn = store
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        conn.pragma_query_value(None, name, |row| row.get(0))
            .expect("pragma")
    }

    // Holding the connection across the awaits is the point of the test.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_cached_status_is_answered_without_the_connection() {
        use tower_totp::store::EnrollmentStore;
        let store = SqliteStore::open_in_memory()
            .expect("open")
            .with_status_cache(Duration::from_secs(3600));
        let (cached, uncached) = (UserId::new("cached"), UserId::new("uncached"));
        let status = store.status(&cached).await.expect("status");

        // With the connection held elsewhere (a long commit, say), the copy
        // still answers; a user without one has to wait for SQLite.
        let held = store.inner.conn.lock().expect("connection");
        let soon = Duration::from_secs(5);
        let hit = tokio::time::timeout(soon, store.status(&cached)).await;
        assert_eq!(hit.expect("answered from memory").expect("status"), status);
        let miss = tokio::time::timeout(Duration::from_millis(50), store.status(&uncached)).await;
        assert!(miss.is_err(), "a miss reads SQLite");
        drop(held);
    }

    #[test]
    fn the_connection_is_configured_for_durability_and_integrity() {
        let dir = tempfile::tempdir().expect("temp dir");
        for store in [
            SqliteStore::open(dir.path().join("totp.sqlite3")).expect("open"),
            SqliteStore::open_in_memory().expect("open"),
        ] {
            assert_eq!(pragma(&store, "synchronous"), 2, "FULL");
            assert_eq!(pragma(&store, "foreign_keys"), 1);
            assert_eq!(pragma(&store, "busy_timeout"), 5000);
            let conn = store
                .inner
                .conn
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let orphan = conn.execute(
                "INSERT INTO recovery_codes (user_id, hash) VALUES ('nobody', zeroblob(32))",
                [],
            );
            assert!(orphan.is_err(), "a row without its user is refused");
        }
    }
}
