//! The PostgreSQL store against the store conformance suite, on a real
//! server: one server for the binary's tests, each test in a schema of its
//! own.

mod common;

use tower_totp_testkit::server::postgres::PostgresServer;

tower_totp::store_conformance_tests!(
    keep server = PostgresServer::shared();
    make = common::store(&server).await
);
