//! Real database servers for tests and benches: each on a free loopback
//! port, in a temporary directory of its own when it keeps data, ready when
//! its log says so (one readiness check, no polling), and stopped by its own
//! pid when dropped. Tests never assume a server is running.
//!
//! - [`RedisServer`](redis::RedisServer), in [`redis`].
//! - `RedisCluster`, six nodes with replicas, in `redis_cluster` (feature
//!   `redis`).
//! - `PostgresServer` (feature `postgres`), in `postgres`.
//! - What they share, in [`process`]: spawning a server, waiting for its
//!   ready line, signals by pid.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod process;
pub mod redis;
#[cfg(feature = "redis")]
pub mod redis_cluster;

use std::net::{Ipv4Addr, TcpListener};

/// A port nobody listens on right now: bind port 0, read it, let it go.
/// Another process may take it before the server binds it; the starters
/// then try another.
///
/// # Panics
///
/// If no loopback port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
