//! The place of the PostgreSQL starter (`PostgresServer`), which comes with
//! the PostgreSQL store: `initdb` into a temporary directory, `postgres` on
//! a [`free_port`](super::free_port) with its socket directory inside it,
//! ready on the log line "database system is ready to accept connections"
//! through [`process::start`](super::process::start), stopped by its pid as
//! [`RedisServer`](super::redis::RedisServer) is. Nothing here yet.
