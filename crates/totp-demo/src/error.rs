//! What can go wrong when the demo starts or serves.

use std::path::PathBuf;

/// An error of the demo: at start-up (opening the database, the key file)
/// or behind a request (a database failure, which the request answers
/// with a 503).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The demo's own tables failed (SQLite).
    #[error("database error")]
    Database(#[source] rusqlite::Error),
    /// PostgreSQL could not be reached at start-up, or the demo's tables
    /// or sessions in it failed.
    #[error("PostgreSQL error")]
    Postgres(#[source] sqlx::Error),
    /// PostgreSQL did not answer in time (the request answers 503).
    #[error("the database did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// Two places were given for the same data (`--postgres` and
    /// `--redis`), or a database needs [`app_async`](crate::app_async).
    #[error("{0}")]
    Setup(&'static str),
    /// The TOTP store failed to open.
    #[error("the TOTP store failed")]
    Store(#[source] tower_totp::store::StoreError),
    /// Redis could not be reached (or its URL does not parse) at start-up.
    #[error("cannot connect to Redis")]
    Redis(#[source] tower_totp::store::StoreError),
    /// The engine could not be configured.
    #[error("bad TOTP configuration")]
    Config(#[source] tower_totp::ConfigError),
    /// The engine could not be built.
    #[error("the TOTP engine could not be built")]
    Engine(#[source] tower_totp::Error),
    /// The key file could not be read or written.
    #[error("key file {path}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a key, or one could not be generated.
    #[error("key file {path}: not a sealing key (64 hexadecimal digits)")]
    KeyFormat {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tower_totp::seal::SealError,
    },
    /// The database exists but its key file is missing: a new key could
    /// not open the secrets the database holds.
    #[error(
        "the database {db} exists but its key file {key} is missing; \
         restore the key file (or pass --key-file), or start with a new database"
    )]
    KeyMissing {
        /// The database file.
        db: PathBuf,
        /// Where the key was looked for.
        key: PathBuf,
    },
    /// The PostgreSQL database has the demo's users but the key file is
    /// missing (as [`DemoError::KeyMissing`]).
    #[error(
        "the PostgreSQL database has the demo's users but the key file {key} is missing; \
         restore the key file (or pass --key-file), or start with a new database"
    )]
    KeyMissingPostgres {
        /// Where the key was looked for.
        key: PathBuf,
    },
    /// The operating system's random source failed.
    #[error("no random key could be made")]
    Random(#[source] tower_totp::seal::SealError),
    /// A password could not be hashed.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// A blocking task was cancelled (the runtime is shutting down).
    #[error("a database task was interrupted")]
    Interrupted,
}
