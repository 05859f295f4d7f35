//! [`PostgresSessionStore`]: tower-sessions' sessions in the store's schema,
//! on the same pool.
//!
//! Why here: `tower-sessions-sqlx-store` 0.15.0, the PostgreSQL session
//! store of tower-sessions' own family, implements the `SessionStore` of
//! tower-sessions-core 0.14, not of the tower-sessions 0.15 this workspace
//! is built on (maxcountryman/tower-sessions-stores#83), and it turns on
//! sqlx's `time` feature, whose weak dependency on `sqlx-sqlite` makes
//! Cargo see two `links = "sqlite3"` crates in a workspace that also builds
//! rusqlite, and refuse it (rust-lang/cargo#10801). So a service on
//! PostgreSQL gets its sessions from this crate, as a Redis one does from
//! `tower-totp-redis`, with the same rules:
//!
//! - [`create`](SessionStore::create) never overwrites another session:
//!   `ON CONFLICT DO NOTHING`, and a new id on a collision;
//! - [`save`](SessionStore::save) only updates a session that still
//!   exists, so a logout on one instance is not undone by a request still
//!   running on another;
//! - [`load`](SessionStore::load) returns `None` for a missing or expired
//!   session. Expired rows are deleted a batch at a time when sessions are
//!   created, so the table holds about the live sessions.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::SessionStore;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use crate::schema::Schema;

/// How often [`SessionStore::create`] draws a new id after a collision
/// before it gives up (128-bit random ids: a second draw is already rare).
const CREATE_TRIES: usize = 8;

/// How many expired sessions one `create` deletes at most: a bounded cost
/// per login, and enough to keep up with the sessions that expire.
const PRUNE_BATCH: i64 = 100;

/// Sessions in the `sessions` table of a [`PostgresStore`](crate::PostgresStore)'s
/// schema (made by its [`migrate`](crate::PostgresStore::migrate)), from
/// [`PostgresStore::session_store`](crate::PostgresStore::session_store).
///
/// Cheap to clone; clones share the pool. `Debug` shows the schema only.
#[derive(Clone)]
pub struct PostgresSessionStore {
    pool: PgPool,
    schema: Arc<Schema>,
}

impl fmt::Debug for PostgresSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSessionStore")
            .field("schema", &self.schema.name())
            .finish_non_exhaustive()
    }
}

impl PostgresSessionStore {
    pub(crate) fn new(pool: PgPool, schema: Arc<Schema>) -> Self {
        Self { pool, schema }
    }

    fn sql(&self, template: &str) -> String {
        self.schema.sql(template)
    }
}

/// What tower-sessions shows of a database failure: the error's text
/// (sqlx's errors carry no parameters, so no session data).
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
impl SessionStore for PostgresSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        sqlx::query(&self.sql(
            "DELETE FROM {schema}.sessions WHERE id IN \
             (SELECT id FROM {schema}.sessions WHERE expires_at <= $1 LIMIT $2)",
        ))
        .bind(now())
        .bind(PRUNE_BATCH)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        let insert = self.sql(
            "INSERT INTO {schema}.sessions (id, record, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        );
        for _ in 0..CREATE_TRIES {
            let done = sqlx::query(&insert)
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
        sqlx::query(
            &self.sql("UPDATE {schema}.sessions SET record = $2, expires_at = $3 WHERE id = $1"),
        )
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
            &self.sql("SELECT record FROM {schema}.sessions WHERE id = $1 AND expires_at > $2"),
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
        sqlx::query(&self.sql("DELETE FROM {schema}.sessions WHERE id = $1"))
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }
}
