//! A store on the test binary's shared PostgreSQL server, in a schema of
//! its own.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tower_totp_postgres::PostgresStore;
use tower_totp_postgres::sqlx::PgPool;
use tower_totp_testkit::server::postgres::PostgresServer;

/// A schema name no other store of this process uses.
pub fn fresh_schema() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A pool on `url`, as the crate recommends, with a longer wait for a
/// connection: 32 racing tasks share 8 connections on a busy machine.
pub async fn pool(url: &str) -> PgPool {
    tower_totp_postgres::pool_options()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .expect("a pool on the test server")
}

/// A migrated store in a fresh schema of the server's `postgres` database.
pub async fn store(server: &PostgresServer) -> PostgresStore {
    let store = PostgresStore::new(pool(&server.url()).await)
        .with_schema(&fresh_schema())
        .expect("a plain schema name");
    store.migrate().await.expect("migrations");
    store
}
