//! The demo's own tables in PostgreSQL, in a schema of their own
//! (`totp_demo`: `users`, `settings`, `changes`), beside the TOTP store's
//! schema on the same pool (which also holds the sessions:
//! `tower_totp_postgres::PostgresSessionStore`).
//!
//! Several instances share these tables, so each keeps its in-memory copies
//! fresh with [`Db::if_changed`] before every request. PostgreSQL has no
//! `data_version`; its equivalent here is the one-row table `changes`,
//! whose counter a statement trigger on `users` and `settings` bumps in the
//! transaction of every change: it moves exactly when a change commits,
//! whoever made it (this demo, another instance, an operator in `psql`),
//! and reading it is one primary-key read of one row. Chosen over
//! LISTEN/NOTIFY, which needs a connection held open outside the pool and
//! loses the notifications sent while it is reconnecting (so a reconnect
//! would have to reload anyway): the counter cannot miss a change, and a
//! database that cannot answer it fails the request closed (503), the same
//! as every other store failure.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::PgPool;
use tower_totp::policy::PolicySettings;

use super::{EventRow, SettingsPatch, Snapshot, UserRecord, kind_from_sql, kind_to_sql};
use crate::error::DemoError;
use crate::users::User;

/// Any one key, the same for every instance: [`Db::open`] holds this
/// advisory lock while it creates the tables, because two `CREATE ... IF
/// NOT EXISTS` running at once can still collide in the catalogue.
const SETUP_LOCK: i64 = 0x746f_7470_6465_6d6f; // "totpdemo"

/// The tables, idempotent. `CREATE OR REPLACE TRIGGER` needs PostgreSQL 14.
const SCHEMA: &str = r"
CREATE SCHEMA IF NOT EXISTS totp_demo;

CREATE TABLE IF NOT EXISTS totp_demo.users (
    username      text    NOT NULL PRIMARY KEY,
    display_name  text    NOT NULL,
    kind          text    NOT NULL CHECK (kind IN ('internal', 'external')),
    is_admin      boolean NOT NULL,
    require_2fa   boolean NOT NULL,
    password_hash text    NOT NULL
);

CREATE TABLE IF NOT EXISTS totp_demo.settings (
    id             integer NOT NULL PRIMARY KEY CHECK (id = 1),
    enabled        boolean NOT NULL,
    internal_users boolean NOT NULL,
    external_users boolean NOT NULL
);
-- Added after the first release: a table made before it gets the column.
ALTER TABLE totp_demo.settings ADD COLUMN IF NOT EXISTS
    grace_days integer NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 365);

CREATE TABLE IF NOT EXISTS totp_demo.requirement_since (
    username text   NOT NULL PRIMARY KEY,
    since_ms bigint NOT NULL CHECK (since_ms >= 0)
);

CREATE TABLE IF NOT EXISTS totp_demo.security_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text   NOT NULL,
    at_ms    bigint NOT NULL,
    kind     text   NOT NULL,
    detail   text   NOT NULL
);
CREATE INDEX IF NOT EXISTS security_events_by_user
    ON totp_demo.security_events (username, at_ms, id);

CREATE TABLE IF NOT EXISTS totp_demo.changes (
    id integer NOT NULL PRIMARY KEY CHECK (id = 1),
    n  bigint  NOT NULL
);
INSERT INTO totp_demo.changes (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION totp_demo.count_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totp_demo.changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER count_change
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON totp_demo.users
    FOR EACH STATEMENT EXECUTE FUNCTION totp_demo.count_change();
CREATE OR REPLACE TRIGGER count_change
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON totp_demo.settings
    FOR EACH STATEMENT EXECUTE FUNCTION totp_demo.count_change();

";

const SELECT_USERS: &str = "SELECT username, display_name, kind, is_admin, require_2fa, \
                            password_hash FROM totp_demo.users";

const SELECT_COUNTER: &str = "SELECT n FROM totp_demo.changes WHERE id = 1";

const SELECT_SETTINGS: &str = "SELECT enabled, internal_users, external_users, grace_days \
                               FROM totp_demo.settings WHERE id = 1";

/// A row of `settings` as sqlx decodes it.
type SettingsTuple = (bool, bool, bool, i32);

/// A row of `users` as sqlx decodes it.
type UserTuple = (String, String, String, bool, bool, String);

/// The demo's tables on `pool`. Clones share the pool and what
/// [`Db::if_changed`] has seen.
#[derive(Clone)]
pub(crate) struct Db {
    pool: PgPool,
    /// The store timeout: the bound of every call made while serving (see
    /// [`Db::bounded`]).
    timeout: Duration,
    /// The `changes` counter of the last snapshot applied (`None`: none
    /// yet).
    seen: Arc<Mutex<Option<i64>>>,
    /// Held while a snapshot is read and applied: one at a time, so an
    /// older snapshot is never applied after a newer one.
    reloading: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDb").finish_non_exhaustive()
    }
}

impl Db {
    /// Create the tables if they are missing (any number of instances at
    /// once); calls made while serving are bounded by `timeout`.
    pub(crate) async fn open(pool: PgPool, timeout: Duration) -> Result<Self, DemoError> {
        // One simple-protocol string: PostgreSQL runs it as one implicit
        // transaction, so the lock is held to its end. (Not `pool.begin()`
        // with `raw_sql` on the transaction: that future is not `Send`, a
        // known rustc limitation with sqlx's executor lifetimes.)
        sqlx::raw_sql(&format!(
            "SELECT pg_advisory_xact_lock({SETUP_LOCK});\n{SCHEMA}"
        ))
        .execute(&pool)
        .await
        .map_err(DemoError::Postgres)?;
        Ok(Self {
            pool,
            timeout,
            seen: Arc::new(Mutex::new(None)),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// `call`, or [`DemoError::TimedOut`] after the store timeout, as the
    /// TOTP and session stores are bounded (`store_timeout.rs`). The pool's
    /// acquire, which pings the connection first, already fails a call
    /// that starts while the server is silent (a cut network: no reset, no
    /// answer); it cannot bound a query already past it when the network
    /// goes quiet, which would hang the request until TCP gives up. This
    /// bound does (without the ping, `tests/postgres.rs`'s silent-server
    /// test shows it). Dropping a query half way is safe: sqlx drains or
    /// closes that connection before it is used again.
    pub(super) async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, DemoError>>,
    ) -> Result<T, DemoError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(DemoError::TimedOut(self.timeout)))
    }

    /// One cheap read (the change counter), for `GET /health`.
    pub(super) async fn ping(&self) -> Result<(), DemoError> {
        self.counter().await.map(drop)
    }

    pub(super) async fn users(&self) -> Result<Vec<UserRecord>, DemoError> {
        let rows: Vec<UserTuple> = sqlx::query_as(SELECT_USERS)
            .fetch_all(&self.pool)
            .await
            .map_err(DemoError::Postgres)?;
        Ok(rows.into_iter().map(user_record).collect())
    }

    pub(super) async fn seed_users(
        &self,
        rows: &[UserRecord],
    ) -> Result<(bool, Vec<UserRecord>), DemoError> {
        let mut tx = self.pool.begin().await.map_err(DemoError::Postgres)?;
        // SHARE ROW EXCLUSIVE conflicts with itself: a second instance
        // waits here until the first commits, then finds the table full.
        sqlx::query("LOCK TABLE totp_demo.users IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM totp_demo.users)")
            .fetch_one(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        if empty {
            insert_users(&mut tx, rows, "").await?;
        }
        let now: Vec<UserTuple> = sqlx::query_as(SELECT_USERS)
            .fetch_all(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        tx.commit().await.map_err(DemoError::Postgres)?;
        Ok((empty, now.into_iter().map(user_record).collect()))
    }

    #[cfg(feature = "load-baseline")]
    pub(super) async fn add_missing_users(
        &self,
        rows: &[UserRecord],
    ) -> Result<Vec<UserRecord>, DemoError> {
        let mut tx = self.pool.begin().await.map_err(DemoError::Postgres)?;
        insert_users(&mut tx, rows, "ON CONFLICT (username) DO NOTHING").await?;
        let now: Vec<UserTuple> = sqlx::query_as(SELECT_USERS)
            .fetch_all(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        tx.commit().await.map_err(DemoError::Postgres)?;
        Ok(now.into_iter().map(user_record).collect())
    }

    pub(super) async fn init_settings(
        &self,
        defaults: PolicySettings,
    ) -> Result<PolicySettings, DemoError> {
        // Only where there is nothing (another instance may be starting
        // too), then what is saved.
        sqlx::query(
            "INSERT INTO totp_demo.settings \
             (id, enabled, internal_users, external_users, grace_days) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(defaults.enabled)
        .bind(defaults.internal_users)
        .bind(defaults.external_users)
        .bind(days_to_sql(defaults.grace_days))
        .execute(&self.pool)
        .await
        .map_err(DemoError::Postgres)?;
        let saved: Option<SettingsTuple> = sqlx::query_as(SELECT_SETTINGS)
            .fetch_optional(&self.pool)
            .await
            .map_err(DemoError::Postgres)?;
        Ok(saved.map_or(defaults, settings))
    }

    pub(super) async fn set_require_2fa(
        &self,
        username: &str,
        require: bool,
    ) -> Result<bool, DemoError> {
        let done = sqlx::query("UPDATE totp_demo.users SET require_2fa = $2 WHERE username = $1")
            .bind(username)
            .bind(require)
            .execute(&self.pool)
            .await
            .map_err(DemoError::Postgres)?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn save_settings(&self, s: PolicySettings) -> Result<(), DemoError> {
        sqlx::query(
            "INSERT INTO totp_demo.settings \
             (id, enabled, internal_users, external_users, grace_days) \
             VALUES (1, $1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE \
             SET enabled = $1, internal_users = $2, external_users = $3, grace_days = $4",
        )
        .bind(s.enabled)
        .bind(s.internal_users)
        .bind(s.external_users)
        .bind(days_to_sql(s.grace_days))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(DemoError::Postgres)
    }

    pub(super) async fn patch_settings(
        &self,
        patch: SettingsPatch,
    ) -> Result<PolicySettings, DemoError> {
        let row: SettingsTuple = sqlx::query_as(
            "UPDATE totp_demo.settings SET \
             enabled = COALESCE($1, enabled), \
             internal_users = COALESCE($2, internal_users), \
             external_users = COALESCE($3, external_users), \
             grace_days = COALESCE($4, grace_days) \
             WHERE id = 1 \
             RETURNING enabled, internal_users, external_users, grace_days",
        )
        .bind(patch.enabled)
        .bind(patch.internal_users)
        .bind(patch.external_users)
        .bind(patch.grace_days.map(days_to_sql))
        .fetch_one(&self.pool)
        .await
        .map_err(DemoError::Postgres)?;
        Ok(settings(row))
    }

    pub(super) async fn requirement_since(
        &self,
        username: &str,
        now_ms: i64,
    ) -> Result<i64, DemoError> {
        // `DO NOTHING` would return no row for a kept one: the no-op update
        // returns it, under the row lock, so two logins agree.
        sqlx::query_scalar(
            "INSERT INTO totp_demo.requirement_since (username, since_ms) VALUES ($1, $2) \
             ON CONFLICT (username) DO UPDATE \
             SET since_ms = totp_demo.requirement_since.since_ms \
             RETURNING since_ms",
        )
        .bind(username)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(DemoError::Postgres)
    }

    pub(super) async fn recent_events(
        &self,
        username: &str,
        limit: usize,
    ) -> Result<Vec<EventRow>, DemoError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT at_ms, kind, detail FROM totp_demo.security_events \
             WHERE username = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
        )
        .bind(username)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(DemoError::Postgres)?;
        Ok(rows
            .into_iter()
            .map(|(at_ms, kind, detail)| EventRow {
                at_ms,
                kind,
                detail,
            })
            .collect())
    }

    /// The insert and the trim of the user's oldest in one statement.
    pub(super) async fn add_event(
        &self,
        username: &str,
        event: EventRow,
        kept: usize,
    ) -> Result<(), DemoError> {
        sqlx::query(
            "WITH added AS ( \
                 INSERT INTO totp_demo.security_events (username, at_ms, kind, detail) \
                 VALUES ($1, $2, $3, $4) RETURNING id \
             ) \
             DELETE FROM totp_demo.security_events WHERE username = $1 AND id NOT IN ( \
                 SELECT id FROM totp_demo.security_events WHERE username = $1 \
                 ORDER BY at_ms DESC, id DESC LIMIT $5 - 1 \
             ) AND id NOT IN (SELECT id FROM added)",
        )
        .bind(username)
        .bind(event.at_ms)
        .bind(event.kind)
        .bind(event.detail)
        .bind(i64::try_from(kept).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(DemoError::Postgres)
    }

    /// The counter of `changes` moves with every committed change,
    /// including this instance's own: after a write here the next request
    /// reads the tables once more than it strictly needs, never once too
    /// few. The snapshot and its counter are read in one `REPEATABLE READ`
    /// transaction, so the counter recorded is exactly the snapshot's: a
    /// change committing meanwhile moves the counter past it and is read
    /// at the next request.
    pub(super) async fn if_changed(
        &self,
        apply: impl FnOnce(Snapshot) + Send + 'static,
    ) -> Result<bool, DemoError> {
        let now = self.counter().await?;
        if self.has_seen(now) {
            return Ok(false);
        }
        let _one = self.reloading.lock().await;
        // Another request may have read it while this one waited.
        if self.has_seen(now) {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await.map_err(DemoError::Postgres)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        let at: i64 = sqlx::query_scalar(SELECT_COUNTER)
            .fetch_one(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        let users: Vec<UserTuple> = sqlx::query_as(SELECT_USERS)
            .fetch_all(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        let saved: Option<SettingsTuple> = sqlx::query_as(SELECT_SETTINGS)
            .fetch_optional(&mut *tx)
            .await
            .map_err(DemoError::Postgres)?;
        tx.commit().await.map_err(DemoError::Postgres)?;
        apply(Snapshot {
            users: users.into_iter().map(user_record).collect(),
            settings: saved.map(settings),
        });
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
        Ok(true)
    }

    /// Whether a snapshot at least as new as counter `n` was applied (the
    /// counter only grows).
    fn has_seen(&self, n: i64) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|seen| seen >= n)
    }

    /// The `changes` counter, on the pool.
    async fn counter(&self) -> Result<i64, DemoError> {
        sqlx::query_scalar(SELECT_COUNTER)
            .fetch_one(&self.pool)
            .await
            .map_err(DemoError::Postgres)
    }
}

/// Whether the demo's user table exists in `pool`'s database and has a
/// row (before [`Db::open`]: it creates nothing).
pub(crate) async fn has_users(pool: &PgPool) -> Result<bool, DemoError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('totp_demo.users')::text")
        .fetch_one(pool)
        .await
        .map_err(DemoError::Postgres)?;
    if table.is_none() {
        return Ok(false);
    }
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM totp_demo.users)")
        .fetch_one(pool)
        .await
        .map_err(DemoError::Postgres)
}

/// Insert `rows` in one statement (`conflict`: what to do with a name that
/// is there already; empty: fail).
async fn insert_users(
    tx: &mut sqlx::PgConnection,
    rows: &[UserRecord],
    conflict: &str,
) -> Result<(), DemoError> {
    let column = |f: fn(&UserRecord) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let flag = |f: fn(&UserRecord) -> bool| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(&format!(
        "INSERT INTO totp_demo.users \
         (username, display_name, kind, is_admin, require_2fa, password_hash) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::boolean[], \
         $5::boolean[], $6::text[]) {conflict}"
    ))
    .bind(column(|r| r.user.username.clone()))
    .bind(column(|r| r.user.display_name.clone()))
    .bind(column(|r| kind_to_sql(r.user.kind).to_owned()))
    .bind(flag(|r| r.user.is_admin))
    .bind(flag(|r| r.user.require_2fa))
    .bind(column(|r| r.password_hash.clone()))
    .execute(tx)
    .await
    .map(drop)
    .map_err(DemoError::Postgres)
}

fn user_record(
    (username, display_name, kind, is_admin, require_2fa, password_hash): UserTuple,
) -> UserRecord {
    UserRecord {
        user: User {
            username,
            display_name,
            kind: kind_from_sql(&kind),
            is_admin,
            require_2fa,
        },
        password_hash,
    }
}

fn settings(
    (enabled, internal_users, external_users, grace_days): SettingsTuple,
) -> PolicySettings {
    PolicySettings {
        enabled,
        internal_users,
        external_users,
        // The column's check keeps it within 0..=365.
        grace_days: u32::try_from(grace_days).unwrap_or(0),
    }
}

/// The days as the `integer` column holds them; the caller keeps them
/// within [`crate::settings::MAX_GRACE_DAYS`].
fn days_to_sql(days: u32) -> i32 {
    i32::try_from(days).unwrap_or(i32::MAX)
}
