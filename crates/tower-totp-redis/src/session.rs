//! [`RedisSessionStore`]: `tower_sessions::SessionStore` on the same
//! `redis` connection as [`RedisStore`](crate::RedisStore).
//!
//! `tower-sessions-redis-store` builds on the `fred` client (and, at 0.16,
//! on `tower-sessions-core` 0.14), so a service using it would hold two
//! Redis clients. This store uses the `redis` crate's [`ConnectionManager`]
//! or, on a Redis Cluster, its [`ClusterConnection`]: each command touches
//! one key, which the cluster connection sends to that key's master.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, Value};
use tower_sessions::SessionStore;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use crate::conn::Conn;

/// The key prefix unless [`RedisSessionStore::with_prefix`] says otherwise.
pub const DEFAULT_SESSION_PREFIX: &str = "tower-sessions:";

/// How often [`SessionStore::create`] draws a new id after a collision
/// before it gives up. With 128-bit random ids even a second draw is
/// astronomically rare.
const CREATE_TRIES: usize = 8;

/// Sessions in Redis, one string key per session: `<prefix><id>` holding
/// the record as JSON, expiring by itself at the record's expiry date
/// (`SET ... PXAT`).
///
/// - [`create`](SessionStore::create) never overwrites: it writes with
///   `NX` and draws a new id on a collision.
/// - [`save`](SessionStore::save) only updates a session that still exists
///   (`XX`): a session deleted by a logout on one instance, or expired,
///   is not brought back by a request that was still running on another.
/// - [`load`](SessionStore::load) returns `None` for a missing or expired
///   session (expired by Redis's clock or by this process's).
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisSessionStore {
    conn: Conn,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessionStore {
    /// A session store over `conn`, with the [`DEFAULT_SESSION_PREFIX`].
    pub fn new(conn: ConnectionManager) -> Self {
        Self::on(Conn::Single(conn))
    }

    /// A session store over a Redis Cluster connection, with the
    /// [`DEFAULT_SESSION_PREFIX`].
    pub fn new_cluster(conn: ClusterConnection) -> Self {
        Self::on(Conn::Cluster(conn))
    }

    pub(crate) fn on(conn: Conn) -> Self {
        Self {
            conn,
            prefix: Arc::from(DEFAULT_SESSION_PREFIX),
        }
    }

    /// Use `prefix` before every session key.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, id: &Id) -> String {
        format!("{}{id}", self.prefix)
    }

    /// `SET key record [NX|XX] PXAT expiry`; whether it was written.
    async fn write(&self, record: &Record, condition: &str) -> Result<bool> {
        let json = serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        // PXAT wants a positive time; a record that expired before 1970 is
        // expired all the same.
        let millis = record.expiry_date.unix_timestamp_nanos() / 1_000_000;
        let at = i64::try_from(millis.max(1)).unwrap_or(i64::MAX);
        let reply: Value = redis::cmd("SET")
            .arg(self.key(&record.id))
            .arg(json)
            .arg(condition)
            .arg("PXAT")
            .arg(at)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(!matches!(reply, Value::Nil))
    }
}

fn backend(e: RedisError) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        for _ in 0..CREATE_TRIES {
            if self.write(record, "NX").await? {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(Error::Backend(format!(
            "no free session id after {CREATE_TRIES} tries"
        )))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.write(record, "XX").await.map(drop)
    }

    async fn load(&self, session_id: &Id) -> Result<Option<Record>> {
        let json: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(session_id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        let Some(json) = json else {
            return Ok(None);
        };
        let record: Record =
            serde_json::from_slice(&json).map_err(|e| Error::Decode(e.to_string()))?;
        // Redis expires the key on its own clock; check ours too, in case
        // the two disagree.
        Ok((record.expiry_date > OffsetDateTime::now_utc()).then_some(record))
    }

    async fn delete(&self, session_id: &Id) -> Result<()> {
        redis::cmd("DEL")
            .arg(self.key(session_id))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
}
