//! The reference web client of tower-totp: a small axum service with its
//! own password login, guarded by [`tower_totp::http::TotpLayer`], with the
//! pages of the source product (login, second screen, "Sync Authenticator
//! App", the "Two Factor Auth" admin tab and the user form), JSON for
//! scripts on the same routes, and its data in one SQLite file (or in
//! PostgreSQL).
//!
//! The binary `totp-demo` wraps [`app`]; tests build the same router in
//! process:
//!
//! ```no_run
//! use totp_demo::{Database, DemoConfig, app};
//! use tower_totp::seal::{Keyring, SealingKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keyring = Keyring::new(1, SealingKey::generate()?);
//! let demo = app(DemoConfig::new(Database::File("demo.sqlite3".into()), keyring))?;
//! assert!(demo.seeded()); // a new database gets admin, jsmith and portal
//! let router = demo.router();
//! # let _ = router;
//! # Ok(()) }
//! ```
//!
//! With [`DemoConfig::redis`], sessions and the TOTP store live in Redis,
//! and instances built on the same Redis, database file and sealing key
//! act as one service:
//!
//! ```no_run
//! use totp_demo::{Database, DemoConfig, app, connect_redis};
//! use tower_totp::seal::{Keyring, SealingKey};
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SealingKey::generate()?; // in practice: read_key(path)
//! let db = Database::File("demo.sqlite3".into());
//! let redis = connect_redis("redis://127.0.0.1:6379/").await?;
//! let a = app(DemoConfig::new(db.clone(), Keyring::new(1, key.clone())).redis(redis.clone()))?;
//! let b = app(DemoConfig::new(db, Keyring::new(1, key)).redis(redis))?;
//! # let _ = (a.router(), b.router());
//! # Ok(()) }
//! ```
//!
//! With [`Database::Postgres`], everything (users, switches, the TOTP store
//! and the sessions) lives in PostgreSQL, on one pool; instances on the same
//! database and sealing key act as one service. Setting up PostgreSQL
//! waits on the network, so it is built with [`app_async`]:
//!
//! ```no_run
//! use totp_demo::{Database, DemoConfig, app_async, connect_postgres};
//! use tower_totp::seal::{Keyring, SealingKey};
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SealingKey::generate()?; // in practice: read_key(path)
//! let pool = connect_postgres("postgres://demo@127.0.0.1/demo").await?;
//! let a = app_async(DemoConfig::new(Database::Postgres(pool.clone()), Keyring::new(1, key.clone()))).await?;
//! let b = app_async(DemoConfig::new(Database::Postgres(pool), Keyring::new(1, key))).await?;
//! # let _ = (a.router(), b.router());
//! # Ok(()) }
//! ```
//!
//! Routes, pages and flags: `docs/demo.md` in the repository.

#![forbid(unsafe_code)]

mod activity;
mod admin;
mod api;
mod app;
mod db;
mod error;
mod health;
mod home;
mod idle_throttles;
mod keyfile;
mod live;
mod login;
mod pages;
mod password_throttle;
mod remember;
mod respond;
mod scrape;
mod settings;
mod state;
mod store_timeout;
mod users;
mod viewer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures_util::FutureExt as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_totp::clock::Clock;
use tower_totp::http::TotpAuth;
use tower_totp::seal::Keyring;
use tower_totp::{TotpConfig, TwoFactor, UserKind};
use tower_totp_redis::RedisStore;
use tower_totp_sqlite::SqliteStore;

pub use app::{BODY_LIMIT, SESSION_COOKIE};
pub use error::DemoError;
pub use keyfile::{
    create_key, default_key_path, open_or_create_key, open_or_create_key_for_postgres, read_key,
};
pub use pages::DemoPages;
pub use remember::{DeviceKey, REMEMBER_FOR};
pub use scrape::{MetricsToken, prometheus_builder};
pub use settings::Settings;
pub use store_timeout::STORE_TIMEOUT;
pub use users::{PasswordCost, User, Users};

/// The issuer name shown in authenticator apps.
pub const ISSUER: &str = "Tower TOTP Demo";

/// The prefix of the demo's TOTP keys in Redis (see [`connect_redis`]).
pub const REDIS_PREFIX: &str = "totp-demo:totp:";

/// The prefix of the demo's session keys in Redis.
pub const REDIS_SESSION_PREFIX: &str = "totp-demo:session:";

/// Connect to the Redis at `urls` for [`DemoConfig::redis`], with the
/// demo's key prefix [`REDIS_PREFIX`] and the store's fail-fast timeouts:
/// one URL (`redis://host:port/db`) is one server; several, separated by
/// commas (`redis://127.0.0.1:7000,redis://127.0.0.1:7001`), are nodes
/// of one Redis Cluster ([`RedisStore::connect_nodes`]), where every
/// consumed step waits for a replica's acknowledgement.
///
/// # Errors
///
/// [`DemoError::Redis`] if a URL does not parse or the server (no node of
/// the cluster) does not answer.
pub async fn connect_redis(urls: &str) -> Result<RedisStore, DemoError> {
    let urls: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    Ok(RedisStore::connect_nodes(&urls)
        .await
        .map_err(DemoError::Redis)?
        .with_prefix(REDIS_PREFIX))
}

/// The schema of the TOTP store in PostgreSQL (the demo's own tables and
/// the sessions are in `totp_demo`).
pub const POSTGRES_TOTP_SCHEMA: &str = "totp_demo_totp";

/// How long [`connect_postgres`] waits for its first connection.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many PostgreSQL connections one instance opens at most.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Connect to the PostgreSQL at `url` (`postgres://user@host:port/db`) for
/// [`Database::Postgres`]: one pool for the demo's tables, the TOTP store
/// and the sessions, with the store's settings
/// ([`tower_totp_postgres::pool_options`]: a request waits
/// [`tower_totp_postgres::ACQUIRE_TIMEOUT`] at most for a connection, then
/// answers 503). The pool replaces broken connections by itself, so a
/// restarted server is used again without restarting the demo.
///
/// # Errors
///
/// [`DemoError::Postgres`] if the URL does not parse or the first
/// connection fails (with the server's reason: a pool that cannot connect
/// would only say it timed out), [`DemoError::Setup`] if the server does
/// not answer within [`POSTGRES_CONNECT_TIMEOUT`].
pub async fn connect_postgres(url: &str) -> Result<sqlx::PgPool, DemoError> {
    use sqlx::Connection as _;
    let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(DemoError::Postgres)?;
    let first = tokio::time::timeout(
        POSTGRES_CONNECT_TIMEOUT,
        sqlx::PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| DemoError::Setup("PostgreSQL did not answer within 5 s"))?
    .map_err(DemoError::Postgres)?;
    first.close().await.map_err(DemoError::Postgres)?;
    Ok(tower_totp_postgres::pool_options()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .connect_lazy_with(options))
}

/// Where the demo keeps its data.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Database {
    /// One SQLite file for the TOTP store and the demo's tables.
    File(PathBuf),
    /// Nothing kept: in-memory databases that die with the process.
    Memory,
    /// Everything in PostgreSQL, on this pool (see [`connect_postgres`]):
    /// the demo's tables and the sessions in the schema `totp_demo`, the
    /// TOTP store in [`POSTGRES_TOTP_SCHEMA`]. Build with [`app_async`];
    /// not with [`DemoConfig::redis`].
    Postgres(sqlx::PgPool),
}

/// How to build the demo.
#[derive(Debug)]
#[non_exhaustive]
pub struct DemoConfig {
    /// Where the data lives.
    pub database: Database,
    /// The keys that seal TOTP secrets in the store.
    pub keyring: Keyring,
    /// The password of the users created in a new database.
    pub demo_password: String,
    /// Mark the session cookie `Secure` (only behind HTTPS).
    pub secure_cookie: bool,
    /// The cost of password hashes made for new users.
    pub password_cost: PasswordCost,
    /// The clock of the TOTP engine (the system clock if `None`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Sessions and the TOTP store in Redis (`None`: sessions in memory,
    /// the TOTP store in the database).
    pub redis: Option<RedisStore>,
    /// The key of the "remember this device" cookies (`None`: a random
    /// one, so remembered devices are forgotten at restart and other
    /// instances do not know them).
    pub device_key: Option<DeviceKey>,
    /// The bound on every call to the TOTP store and the session store
    /// (see [`DemoConfig::store_timeout`]).
    pub store_timeout: Duration,
    /// What `GET /metrics` renders (`None`: no such route), see
    /// [`DemoConfig::metrics`].
    pub metrics: Option<PrometheusHandle>,
    /// The bearer token that opens `GET /metrics` to peers off loopback.
    pub metrics_token: Option<MetricsToken>,
    /// Show the library's default `/2fa` pages instead of [`DemoPages`]
    /// (see [`DemoConfig::library_pages`]).
    pub library_pages: bool,
    /// Serve `GET /api/me` without `TotpLayer`, for a load run's
    /// baseline (see [`DemoConfig::load_baseline`]).
    #[cfg(feature = "load-baseline")]
    pub load_baseline: bool,
    /// Accounts `load-1` to `load-N` for load runs (see
    /// [`DemoConfig::load_users`]).
    #[cfg(feature = "load-baseline")]
    pub load_users: u32,
}

impl DemoConfig {
    /// Defaults: password `demo`, cookie not `Secure`, standard hashing
    /// cost, system clock.
    pub fn new(database: Database, keyring: Keyring) -> Self {
        Self {
            database,
            keyring,
            demo_password: "demo".into(),
            secure_cookie: false,
            password_cost: PasswordCost::Standard,
            clock: None,
            redis: None,
            device_key: None,
            store_timeout: STORE_TIMEOUT,
            metrics: None,
            metrics_token: None,
            library_pages: false,
            #[cfg(feature = "load-baseline")]
            load_baseline: false,
            #[cfg(feature = "load-baseline")]
            load_users: 0,
        }
    }

    /// Render the second step, enrollment, recovery codes, authenticators
    /// and refusal pages with the library's
    /// [`DefaultPages`](tower_totp::http::pages::DefaultPages) (in the
    /// request's language) instead of the demo's look: how the
    /// accessibility test shows those pages in a real browser.
    #[must_use]
    pub fn library_pages(mut self, on: bool) -> Self {
        self.library_pages = on;
        self
    }

    /// Serve `GET /api/me` through the same router, sessions and handler
    /// answer but *without* `TotpLayer`: the handler reads the logged-in
    /// user from the session itself, as a service without a second factor
    /// would, and a password login alone is enough. This is the baseline
    /// that `scripts/loadtest` and the `demo` bench compare the guarded
    /// route with; every other route stays as it is. Feature
    /// `load-baseline` only: never for a service people log in to.
    #[cfg(feature = "load-baseline")]
    #[must_use]
    pub fn load_baseline(mut self, on: bool) -> Self {
        self.load_baseline = on;
        self
    }

    /// Create the accounts `load-1` to `load-{count}` (internal, 2FA
    /// required, password [`demo_password`](Self::demo_password)) if they
    /// are missing: many users for a load run of the second step (a user
    /// can have one code accepted per 30-second step). Feature
    /// `load-baseline` only.
    #[cfg(feature = "load-baseline")]
    #[must_use]
    pub fn load_users(mut self, count: u32) -> Self {
        self.load_users = count;
        self
    }

    /// The password of the users created in a new database.
    #[must_use]
    pub fn demo_password(mut self, password: impl Into<String>) -> Self {
        self.demo_password = password.into();
        self
    }

    /// Mark the session cookie `Secure`.
    #[must_use]
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// The cost of password hashes for new users.
    #[must_use]
    pub fn password_cost(mut self, cost: PasswordCost) -> Self {
        self.password_cost = cost;
        self
    }

    /// Drive the TOTP engine with `clock` (tests use a manual clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Sign "remember this device" cookies with `key` (the binary uses
    /// [`DeviceKey::derive`] of its sealing key, so that instances sharing
    /// the key file remember the same devices across restarts).
    #[must_use]
    pub fn device_key(mut self, key: DeviceKey) -> Self {
        self.device_key = Some(key);
        self
    }

    /// Fail every call to the TOTP store and to the session store that
    /// has not answered within `timeout` (default [`STORE_TIMEOUT`]): the
    /// request then gets a 503 `store_unavailable`, and `GET /health`
    /// answers 503 too. A guarded request waits about this long at most
    /// for a store that is down or cut off. The bound is a Tokio timer: the
    /// runtime needs its time driver (`#[tokio::main]` and `enable_all`
    /// have it).
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// Serve `GET /metrics` in the Prometheus text format from `handle`:
    /// the handle of the recorder the process installed (the binary
    /// installs [`prometheus_builder`]'s recorder globally; a test can keep one local
    /// to its thread). Readable from loopback peers only, unless
    /// [`metrics_token`](Self::metrics_token) is set; the peer address is
    /// the connection's (`axum::serve` with
    /// `into_make_service_with_connect_info::<SocketAddr>()`), and a
    /// request without one is not from loopback.
    #[must_use]
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Also let `GET /metrics` through with `Authorization: Bearer
    /// TOKEN`, from any peer.
    #[must_use]
    pub fn metrics_token(mut self, token: MetricsToken) -> Self {
        self.metrics_token = Some(token);
        self
    }

    /// Keep sessions (under [`REDIS_SESSION_PREFIX`]) and the whole TOTP
    /// store in `store`'s Redis, so that several instances sharing it, the
    /// database file and the sealing key act as one service.
    ///
    /// The TOTP store is one object with all four store traits, so
    /// *everything* of TOTP moves to Redis: used steps, drift, throttle,
    /// recovery codes and the enrollments (authenticators and their sealed
    /// secrets) too; the TOTP tables in the database stay unused. Users,
    /// passwords and the admin switches stay in the database; each
    /// instance reads them again at its next request after another
    /// instance changed them.
    #[must_use]
    pub fn redis(mut self, store: RedisStore) -> Self {
        self.redis = Some(store);
        self
    }
}

/// The built demo: the router and handles on its live state.
#[derive(Debug, Clone)]
pub struct Demo {
    router: Router,
    auth: TotpAuth,
    users: Users,
    settings: Settings,
    seeded: bool,
}

impl Demo {
    /// The whole service, ready for `axum::serve` or `oneshot`.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Whether this start created the demo users (the database was new).
    pub fn seeded(&self) -> bool {
        self.seeded
    }

    /// The TOTP handle (engine, live policy).
    pub fn auth(&self) -> &TotpAuth {
        &self.auth
    }

    /// The users.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// The admin switches.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The users a new database starts with.
fn demo_users() -> Vec<User> {
    let user = |username: &str, display_name: &str, kind, is_admin, require_2fa| User {
        username: username.into(),
        display_name: display_name.into(),
        kind,
        is_admin,
        require_2fa,
    };
    vec![
        // Administrators sync an app at their first login like everybody
        // internal: a stolen admin password alone must not switch 2FA off.
        user("admin", "Administrator", UserKind::Internal, true, true),
        user("jsmith", "John Smith", UserKind::Internal, false, true),
        user("portal", "Portal User", UserKind::External, false, true),
    ]
}

/// How old the SQLite store's copy of a user's status may get when
/// another connection changes the file (see
/// `SqliteStore::with_status_cache`): the layer asks for it on every
/// request, and a copy saves an SQLite read and a thread hand-off each time.
const STATUS_STALENESS: Duration = Duration::from_secs(1);

/// Open the database (creating its tables and, if it has no users, the
/// demo users and default switches) and build the service: with the TOTP
/// store in the database and sessions in memory, or both in Redis if
/// [`DemoConfig::redis`] says so. For SQLite only (it blocks the calling
/// thread while it opens the file, and needs no runtime); PostgreSQL is
/// built with [`app_async`].
///
/// # Errors
///
/// [`DemoError::Store`] or [`DemoError::Database`] when the database
/// cannot be opened or set up, [`DemoError::PasswordHash`] if the demo
/// users' passwords cannot be hashed, [`DemoError::Random`] if no random
/// device key could be made, [`DemoError::Setup`] for
/// [`Database::Postgres`].
pub fn app(config: DemoConfig) -> Result<Demo, DemoError> {
    if matches!(config.database, Database::Postgres(_)) {
        return Err(DemoError::Setup(
            "a PostgreSQL database is set up with app_async",
        ));
    }
    // With SQLite every start-up call runs on this thread and never waits
    // (see `db::Db::users`), so the future is ready at its first poll.
    build(config)
        .now_or_never()
        .unwrap_or(Err(DemoError::Setup("the SQLite start-up waited")))
}

/// [`app`] for every [`Database`], PostgreSQL included: there it creates
/// the demo's tables, the TOTP store's and the sessions' if they are
/// missing (any number of instances may start at once on a new database:
/// one creates the demo users, the others find them).
///
/// # Errors
///
/// As [`app`], and [`DemoError::Postgres`] or [`DemoError::Store`] when
/// PostgreSQL fails, [`DemoError::Setup`] for PostgreSQL with
/// [`DemoConfig::redis`].
pub async fn app_async(config: DemoConfig) -> Result<Demo, DemoError> {
    build(config).await
}

async fn build(config: DemoConfig) -> Result<Demo, DemoError> {
    let mut engine = TwoFactor::builder(TotpConfig::new(ISSUER).map_err(DemoError::Config)?)
        .keyring(config.keyring);
    if let Some(clock) = config.clock {
        engine = engine.clock(clock);
    }
    // The TOTP store and the sessions: PostgreSQL, or Redis if given, else
    // the SQLite database (opened first: it creates the file) and memory.
    // The SQLite store is also kept to prune (Redis expires by itself).
    // Every call of either bounded by the store timeout.
    let (engine, sessions, prunable, db) = match (&config.database, config.redis) {
        (Database::Postgres(_), Some(_)) => {
            return Err(DemoError::Setup(
                "PostgreSQL and Redis both given: choose one place for sessions and TOTP state",
            ));
        }
        (Database::Postgres(pool), None) => {
            let db = db::postgres::Db::open(pool.clone(), config.store_timeout).await?;
            let store = tower_totp_postgres::PostgresStore::new(pool.clone())
                .with_schema(POSTGRES_TOTP_SCHEMA)
                .map_err(|_| DemoError::Setup("the TOTP schema name is not plain"))?;
            store.migrate().await.map_err(DemoError::Store)?;
            let sessions = store.session_store();
            (
                engine.store(store_timeout::Bounded::new(store, config.store_timeout)),
                app::Sessions::Postgres(store_timeout::Bounded::new(
                    sessions,
                    config.store_timeout,
                )),
                None,
                db::Db::Postgres(db),
            )
        }
        (_, Some(redis)) => {
            let sessions = redis.session_store().with_prefix(REDIS_SESSION_PREFIX);
            let db = open_sqlite(&config.database)?;
            (
                engine.store(store_timeout::Bounded::new(redis, config.store_timeout)),
                app::Sessions::Redis(store_timeout::Bounded::new(sessions, config.store_timeout)),
                None,
                db,
            )
        }
        (_, None) => {
            let store = match &config.database {
                Database::File(path) => {
                    create_parent(path)?;
                    SqliteStore::open(path)
                }
                _ => SqliteStore::open_in_memory(),
            }
            .map_err(DemoError::Store)?
            // Without `--redis` this process owns the file, so every write
            // to the store's tables goes through this store and is seen at
            // once; the bound only covers someone editing the file by hand.
            .with_status_cache(STATUS_STALENESS);
            let db = open_sqlite(&config.database)?;
            (
                engine.store(store_timeout::Bounded::new(
                    store.clone(),
                    config.store_timeout,
                )),
                app::Sessions::Memory,
                Some(store),
                db,
            )
        }
    };
    let shared = !matches!(sessions, app::Sessions::Memory);
    // The users' security activity, told by the engine after each change.
    let activity = activity::Activity::new(db.clone());
    let engine = engine.security_events(activity.clone());
    let users = Users::load(db.clone(), config.password_cost).await?;
    let seeded = users.seed(&demo_users(), &config.demo_password).await?;
    #[cfg(feature = "load-baseline")]
    if config.load_users > 0 {
        users
            .add_load_users(config.load_users, &config.demo_password)
            .await?;
    }
    let settings = Settings::load(db.clone()).await?;

    let engine = engine.build().map_err(DemoError::Engine)?;
    let idle_throttles = idle_throttles::IdleThrottles::new(
        prunable,
        [password_throttle::policy(), engine.config().throttle()],
    );
    let auth = TotpAuth::builder(engine, users.clone())
        .policy(settings.policy().clone())
        .login_path("/login")
        .after_login("/");
    let auth = if config.library_pages {
        auth.pages(tower_totp::http::pages::DefaultPages)
    } else {
        auth.pages(DemoPages)
    };
    let auth = auth
        .remember_device(remember::settings(
            config.device_key.as_ref(),
            config.secure_cookie,
        )?)
        .build();
    let state = state::AppState::new(state::Shared {
        auth: auth.clone(),
        users: users.clone(),
        settings: settings.clone(),
        idle_throttles,
        health: health::Health::new(db.clone(), config.store_timeout),
        activity,
        scrape: config.metrics.map(|handle| scrape::Scrape {
            handle,
            token: config.metrics_token,
        }),
    });
    let live = shared.then(|| live::Live {
        db,
        users: users.clone(),
        settings: settings.clone(),
    });
    let wiring = app::Wiring {
        sessions,
        live,
        secure_cookie: config.secure_cookie,
        #[cfg(feature = "load-baseline")]
        load_baseline: config.load_baseline,
    };
    Ok(Demo {
        router: app::router(state, wiring),
        auth,
        users,
        settings,
        seeded,
    })
}

/// The demo's tables in the SQLite `database`.
fn open_sqlite(database: &Database) -> Result<db::Db, DemoError> {
    let db = match database {
        Database::File(path) => {
            create_parent(path)?;
            db::sqlite::Db::open(path)?
        }
        _ => db::sqlite::Db::open_in_memory()?,
    };
    Ok(db::Db::Sqlite(db))
}

/// Create the folder of the database file if it is missing.
fn create_parent(path: &std::path::Path) -> Result<(), DemoError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|source| DemoError::KeyFile {
            path: dir.to_owned(),
            source,
        }),
        None => Ok(()),
    }
}
