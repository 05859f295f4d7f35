//! The Redis store against the store conformance suite, on a real server.

mod common;

use common::RedisServer;
use tower_totp::store::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let base = server.store().await;
    // A fresh store per case: the same connection, a new random prefix.
    conformance::run_all(|| {
        let store = base.clone().with_prefix(common::fresh_prefix());
        async move { store }
    })
    .await;
}
