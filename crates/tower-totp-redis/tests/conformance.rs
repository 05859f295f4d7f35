//! The Redis store against the store conformance suite, on a real server:
//! one test per case, each on a server of its own.

use tower_totp_testkit::server::redis::RedisServer;

tower_totp::store_conformance_tests!(
    keep server = RedisServer::start();
    make = server.store().await
);
