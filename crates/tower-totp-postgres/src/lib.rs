//! A PostgreSQL store for [`tower_totp`], on [`sqlx`] 0.8.
//!
//! [`PostgresStore`] keeps enrollments, replay and drift state, throttle
//! state and recovery-code hashes in four tables of a schema of its own
//! (`tower_totp` unless [`PostgresStore::with_schema`] says otherwise), and
//! implements the four store traits of [`tower_totp::store`] with the
//! memory store's semantics (it passes the same conformance suite, races
//! included, against a real server). Every instance of a service on the
//! same database and schema sees the same state.
//!
//! It takes the service's own [`PgPool`] (sqlx 0.8), so the service, its
//! sessions and this store share one pool. (`tower-sessions-sqlx-store`
//! 0.15 is on sqlx 0.8 too, but implements the session trait of
//! tower-sessions-core 0.14, not 0.15; the demo keeps its sessions in the
//! same pool with a store of its own.) Queries are runtime queries, so
//! building needs no database.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use tower_totp::store::TotpStore;
//! use tower_totp::{TotpConfig, TwoFactor, UserId};
//! use tower_totp_postgres::{PostgresStore, pool_options};
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! // The service's pool, with a bounded wait for a connection.
//! let pool = pool_options().connect("postgres://acme@db.internal/acme").await?;
//!
//! let store = PostgresStore::new(pool.clone()).with_schema("acme_totp")?;
//! store.migrate().await?; // at start-up, on every instance: safe together
//!
//! let store: Arc<dyn TotpStore> = Arc::new(store);
//! # let keys = tower_totp::seal::Keyring::ephemeral()?;
//! let tfa = TwoFactor::builder(TotpConfig::new("Acme")?)
//!     .shared_store(Arc::clone(&store))
//!     .keyring(keys) // the same sealing keys on every instance
//!     .build()?;
//! let status = tfa.status(&UserId::new("alice")).await?;
//! assert!(!status.enrolled);
//! # Ok(())
//! # }
//! ```
//!
//! # What is atomic
//!
//! Every operation is one statement, or one transaction that first locks
//! the user's row (`SELECT ... FOR UPDATE`, so operations on one user
//! queue, and each later statement of the transaction sees every write
//! committed before the lock); a statement that writes after a read locks
//! the row in the same statement. Never a read in one round trip and a
//! write decided on it in another.
//!
//! - One statement each, one round trip: `begin_verification` (the
//!   status, the authenticators and, under the user's row lock taken in
//!   the same statement, the throttle charge; the lockout ends it may set
//!   are computed in Rust beforehand, so the 64-bit time arithmetic never
//!   happens in SQL), `consume_step` (the compare-and-set
//!   `last_step < $step` with the throttle reset), so an accepted code
//!   costs two round trips; `record_miss`, `consume_recovery_code` (one
//!   `DELETE` of one row), `remove_pending`, `reseal`, `clear_throttle`
//!   and the reads.
//! - One transaction each: `begin_confirmation`, `begin_attempt`,
//!   `put_pending` (prune, count, add), `activate_pending` (the
//!   `first_only` and cap checks, the activation, the epoch, the throttle
//!   reset and the recovery codes when due), `revoke` (with the recovery
//!   codes of the last authenticator), `reset` and
//!   `replace_recovery_codes`.
//!
//! The isolation level is READ COMMITTED, PostgreSQL's default: the locks
//! do the ordering, so no transaction fails with a serialization error
//! that would need a retry.
//!
//! # Schema and migrations
//!
//! [`PostgresStore::migrate`] creates the schema and its tables, or brings
//! them up to date: embedded, numbered migrations, recorded in the
//! schema's own `schema_migrations` table, each in one transaction under
//! an advisory lock keyed by the schema, so instances starting together
//! are safe. A schema made by a newer release is refused
//! ([`SchemaTooNew`]) and left as it is. The role needs `CREATE` on the
//! database for the first run (or create the schema for it, owned by the
//! role) and nothing beyond its own schema afterwards.
//!
//! # Failures and timeouts
//!
//! A server that cannot be reached, refuses, restarts or drops the
//! connection, and a pool with no free connection within its acquire
//! timeout, give [`StoreError::Unavailable`]; data that does not decode
//! gives [`StoreError::Corrupt`]. The layer fails closed on both (503).
//! The pool is the service's, so its settings are too: [`pool_options`]
//! gives sqlx's defaults with the acquire timeout bounded to
//! [`ACQUIRE_TIMEOUT`] (one second; sqlx's own default is 30 s, which a
//! request should not wait). While the server refuses connections (down,
//! restarting), sqlx retries the connection with back-off until that
//! timeout, so a call then fails after one second, and one made during a
//! quick restart may still succeed. sqlx has
//! no per-query timeout, so a server that accepts connections but does not
//! answer (frozen, or a network that drops packets) is bounded by the
//! caller: wrap store calls in a timeout (the demo's `--store-timeout-ms`).
//! A call whose future is dropped mid-transaction never commits; its
//! connection is closed, and the server rolls the transaction back.
//! Connections that broke while idle are tested before use (sqlx's
//! `test_before_acquire`, on by default) and replaced, so the first request
//! after the server is back is served.
//!
//! [`PostgresStore::connect`] builds such a pool for the store alone.
//!
//! # Tables
//!
//! | table | holds |
//! | --- | --- |
//! | `users` | epoch, throttle state, when a reset ended the user's sessions; never deleted |
//! | `authenticators` | sealed secret, code parameters, last used step, drift, resync candidate |
//! | `pending_enrollments` | one per session that started an enrollment |
//! | `recovery_codes` | SHA-256 hashes of the unused codes |
//! | `schema_migrations` | the versions applied |
//!
//! Steps, epochs and times (`u64`) are `BIGINT`s with the top bit flipped,
//! which keeps their order (the SQLite store's encoding).

#![forbid(unsafe_code)]

mod codec;
mod schema;
mod store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tower_totp::store::StoreError;

pub use schema::{DEFAULT_SCHEMA, InvalidSchemaName, SchemaTooNew};

/// The `sqlx` this store is built on, to build a pool of your own.
pub use sqlx;

use crate::codec::db_error;
use crate::schema::Schema;

/// How long [`pool_options`] lets a store call wait for a free connection
/// (or for a new one to be made) before it fails with
/// [`StoreError::Unavailable`].
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The pool settings [`PostgresStore::connect`] uses, to start from when
/// building the service's own pool: sqlx's defaults, with the wait for a
/// connection bounded to [`ACQUIRE_TIMEOUT`]. Raise `max_connections`
/// (default 10) for a service that runs many requests at once.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT)
}

/// A [`TotpStore`](tower_totp::store::TotpStore) in PostgreSQL, shared by
/// every instance of a service that uses the same database and schema.
///
/// Cheap to clone; clones share the pool. `Debug` shows the schema,
/// nothing of the data or the connection string.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Arc<Schema>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema.name())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The schema version this release creates (the newest row of the
    /// schema's `schema_migrations`).
    pub const SCHEMA_VERSION: i64 = schema::LATEST;

    /// A store on `pool` (the service's own, say), in the schema
    /// [`DEFAULT_SCHEMA`]. Run [`migrate`](Self::migrate) before the first
    /// call.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            schema: Arc::new(Schema::new(DEFAULT_SCHEMA).expect("the default schema is plain")),
        }
    }

    /// Use the schema `name` instead: two stores in two schemas of one
    /// database share nothing.
    ///
    /// # Errors
    ///
    /// [`InvalidSchemaName`] unless `name` is 1 to 63 lowercase ASCII
    /// letters, digits and `_`, not starting with a digit or `pg_`.
    pub fn with_schema(self, name: &str) -> Result<Self, InvalidSchemaName> {
        Ok(Self {
            schema: Arc::new(Schema::new(name)?),
            ..self
        })
    }

    /// Connect a pool of its own ([`pool_options`]) to `url`, in the
    /// default schema; then [`migrate`](Self::migrate).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if no connection can be made within
    /// [`ACQUIRE_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = pool_options().connect(url).await.map_err(db_error)?;
        Ok(Self::new(pool))
    }

    /// Create the schema and its tables, or bring them up to date. Safe to
    /// run on every instance at start-up, at the same time: see the crate
    /// docs.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached or
    /// refuses (no `CREATE` privilege, say), or the schema is newer than
    /// this release ([`SchemaTooNew`] as the source).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        schema::migrate(&self.pool, &self.schema).await
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema its tables are in.
    pub fn schema(&self) -> &str {
        self.schema.name()
    }

    /// `template` with `{schema}` replaced by the quoted schema name.
    fn sql(&self, template: &str) -> String {
        self.schema.sql(template)
    }
}
