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

/// Connections per pool.
const CONNECTIONS: u32 = 8;

/// A pool on `url`, as the crate recommends, with a longer wait for a
/// connection: 32 racing tasks share 8 connections on a busy machine.
///
/// All 8 connections are open before it is returned: a pool opens them
/// one by one as calls wait, and racing tasks would then mostly run one
/// after another on the first connection, racing nothing.
pub async fn pool(url: &str) -> PgPool {
    let pool = tower_totp_postgres::pool_options()
        .max_connections(CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .expect("a pool on the test server");
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS {
        open.push(pool.acquire().await.expect("a connection"));
    }
    drop(open);
    pool
}

/// A migrated store in a fresh schema of the server's `postgres` database.
pub async fn store(server: &PostgresServer) -> PostgresStore {
    let store = PostgresStore::new(pool(&server.url()).await)
        .with_schema(&fresh_schema())
        .expect("a plain schema name");
    store.migrate().await.expect("migrations");
    store
}
