//! Sessions in PostgreSQL: `tower_sessions::SessionStore` on the demo's
//! pool, in the table `totp_demo.sessions` (created with the demo's other
//! tables in [`super::postgres`]).
//!
//! Why not `tower-sessions-sqlx-store`'s `PostgresStore`: its release 0.15.0
//! implements the `SessionStore` of tower-sessions-core 0.14, not of the
//! tower-sessions 0.15 the demo uses (maxcountryman/tower-sessions-stores#83),
//! and it turns on sqlx's `time` feature, whose weak dependency on
//! `sqlx-sqlite` makes Cargo see two `links = "sqlite3"` crates (sqlx's and
//! rusqlite's) and refuse the whole workspace (rust-lang/cargo#10801). This
//! store keeps its shape (one row per session, the id as text) and the
//! Redis session store's rules:
//!
//! - [`create`](SessionStore::create) never overwrites: `ON CONFLICT DO
//!   NOTHING`, and a new id on a collision;
//! - [`save`](SessionStore::save) only updates a session that still exists,
//!   so a logout on one instance is not undone by a request still running
//!   on another;
//! - [`load`](SessionStore::load) returns `None` for a missing or expired
//!   session.
//!
//! Calls are not bounded here: the demo wraps this store in
//! `store_timeout::Bounded`, as it does every session store.
//!
//! Expired rows are deleted a batch at a time by each `create`: the table
//! stays bounded by the sessions made recently, with no task to spawn or
//! stop (as the demo prunes its idle throttle state, `idle_throttles.rs`).

use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::SessionStore;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

/// How often [`SessionStore::create`] draws a new id after a collision
/// before it gives up (128-bit random ids: a second draw is already rare).
const CREATE_TRIES: usize = 8;

/// How many expired sessions one `create` deletes at most.
const PRUNE_BATCH: i64 = 100;

/// Sessions in `totp_demo.sessions`. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub(crate) struct PgSessionStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSessionStore").finish_non_exhaustive()
    }
}

impl PgSessionStore {
    /// Sessions on `pool`, whose database [`super::postgres::Db::open`]
    /// has set up.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn encode(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        sqlx::query(
            "DELETE FROM totp_demo.sessions WHERE id IN \
             (SELECT id FROM totp_demo.sessions WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now())
        .bind(PRUNE_BATCH)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        for _ in 0..CREATE_TRIES {
            let done = sqlx::query(
                "INSERT INTO totp_demo.sessions (id, record, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(encode(record)?)
            .bind(record.expiry_date.unix_timestamp())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(Error::Backend(format!(
            "no free session id after {CREATE_TRIES} tries"
        )))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        sqlx::query("UPDATE totp_demo.sessions SET record = $2, expires_at = $3 WHERE id = $1")
            .bind(record.id.to_string())
            .bind(encode(record)?)
            .bind(record.expiry_date.unix_timestamp())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn load(&self, session_id: &Id) -> Result<Option<Record>> {
        let json: Option<String> = sqlx::query_scalar(
            "SELECT record FROM totp_demo.sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(session_id.to_string())
        .bind(now())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    async fn delete(&self, session_id: &Id) -> Result<()> {
        sqlx::query("DELETE FROM totp_demo.sessions WHERE id = $1")
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }
}
