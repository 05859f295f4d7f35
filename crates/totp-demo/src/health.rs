//! What `GET /health` checks: that this instance reaches its stores, so
//! that a load balancer sends no requests to an instance that could only
//! answer them with 503.
//!
//! Two cheap reads, at once, each bounded by the store timeout: the
//! throttle state of [`PROBE`] in the TOTP store (one `HMGET` in Redis,
//! one indexed `SELECT` in SQLite or PostgreSQL: a read every store answers
//! and no store caches) and one cheap read of the demo's own tables in the
//! database (`Db::ping`).

use std::time::Duration;

use tower_totp::UserId;
use tower_totp::http::TotpAuth;

use crate::db::Db;
use crate::error::DemoError;

/// The id the TOTP store read asks for. It starts with a space, like the
/// password counters' keys (`password_throttle`): the login trims user
/// names, so no user has it, and reading it changes nothing.
pub(crate) const PROBE: &str = " health";

/// Why an instance is not healthy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unhealthy {
    /// The TOTP store failed or did not answer in time.
    #[error("the TOTP store failed")]
    Store(#[source] tower_totp::store::StoreError),
    /// The database failed.
    #[error("the database failed")]
    Database(#[source] DemoError),
    /// The database did not answer within the store timeout.
    #[error("the database did not answer within {} ms", .0.as_millis())]
    DatabaseTimedOut(Duration),
}

/// The database and the store timeout, for the check.
#[derive(Debug)]
pub(crate) struct Health {
    db: Db,
    timeout: Duration,
}

impl Health {
    pub(crate) fn new(db: Db, timeout: Duration) -> Self {
        Self { db, timeout }
    }

    /// Both reads; the first failure.
    pub(crate) async fn check(&self, auth: &TotpAuth) -> Result<(), Unhealthy> {
        let probe = UserId::new(PROBE);
        // The engine's store is bounded by the store timeout already.
        let store = auth.engine().store().throttle_state(&probe);
        let db = tokio::time::timeout(self.timeout, self.db.ping());
        let (store, db) = tokio::join!(store, db);
        store.map_err(Unhealthy::Store)?;
        match db {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Unhealthy::Database(e)),
            Err(_) => Err(Unhealthy::DatabaseTimedOut(self.timeout)),
        }
    }
}
