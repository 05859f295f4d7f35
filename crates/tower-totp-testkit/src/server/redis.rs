//! [`RedisServer`]: a real `redis-server` on a free loopback port.

use std::path::Path;
use std::process::{Child, Command};

use rustix::process::Signal;

use super::free_port;
use super::process::{self, StartError};

/// What `redis-server` logs once it accepts connections (after loading its
/// append-only file, when it has one).
const READY: &str = "Ready to accept connections";

/// How many free ports to try: another process may take the port between
/// our probe and the server's bind.
const PORT_TRIES: usize = 5;

/// A running `redis-server`, killed when dropped. [`RedisServer::start`]
/// keeps nothing on disk; [`RedisServer::start_persistent`] keeps an
/// append-only file in a temporary directory, so its data survives
/// [`RedisServer::restart`] (even after a kill).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Where the append-only file lives, for a persistent server.
    data: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Start a server without persistence.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed (`apt-get install redis-server`;
    /// `scripts/test` does it) or does not come up.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{}", explain(&e)))
    }

    /// Start a server without persistence, or say why not (a bench that
    /// measures what it can).
    ///
    /// # Errors
    ///
    /// If `redis-server` cannot be run or exits on every port tried.
    pub fn try_start() -> Result<Self, StartError> {
        Self::start_with(None)
    }

    /// Start a server that writes every acknowledged write to an
    /// append-only file before it answers (`appendonly yes`, `appendfsync
    /// always`), in a fresh temporary directory: [`RedisServer::restart`]
    /// (which kills the server, a crash) brings back everything it had
    /// acknowledged. No RDB snapshots, so the append-only file alone keeps
    /// the data.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`], or if the directory cannot be made.
    pub fn start_persistent() -> Self {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        Self::start_with(Some(dir)).unwrap_or_else(|e| panic!("{}", explain(&e)))
    }

    fn start_with(data: Option<tempfile::TempDir>) -> Result<Self, StartError> {
        let mut server = Self {
            port: 0,
            child: None,
            data,
        };
        let mut last = StartError::Exited;
        for _ in 0..PORT_TRIES {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e @ StartError::Spawn(_)) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kill the server (SIGKILL, a crash). Without persistence its data is
    /// gone; a persistent server keeps what it acknowledged.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::stop(&mut child);
        }
    }

    /// Freeze the server (SIGSTOP): connections stay open, nothing answers.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn pause(&self) {
        self.signal(Signal::STOP);
    }

    /// Let a paused server go on (SIGCONT).
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn resume(&self) {
        self.signal(Signal::CONT);
    }

    fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("the server running");
        process::signal(child, signal).expect("a signal to the server");
    }

    /// Start it again on the same port (killing it first if it runs). A
    /// persistent server loads its append-only file before it is ready.
    ///
    /// # Panics
    ///
    /// If it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("redis-server did not restart on {}: {e}", self.port);
        }
    }

    /// Spawn on `self.port` and wait for the ready line.
    fn spawn(&mut self) -> Result<(), StartError> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""]);
        match self.data.as_ref().map(tempfile::TempDir::path) {
            Some(dir) => persistence_args(&mut cmd, dir),
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        self.child = Some(process::start(&mut cmd, READY)?);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keep an append-only file in `dir`, written and fsynced before each
/// write is acknowledged.
fn persistence_args(cmd: &mut Command, dir: &Path) {
    cmd.arg("--dir")
        .arg(dir)
        .args(["--appendonly", "yes"])
        .args(["--appendfsync", "always"]);
}

fn explain(e: &StartError) -> String {
    match e {
        StartError::Spawn(e) => {
            format!("cannot run redis-server ({e}); install it with `apt-get install redis-server`")
        }
        StartError::Exited => {
            format!("redis-server did not start on any of {PORT_TRIES} free ports")
        }
    }
}

/// Connections and stores on the server, with the Redis store crate's
/// connection settings.
#[cfg(feature = "redis")]
mod connect {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tower_totp_redis::redis::Client;
    use tower_totp_redis::redis::aio::ConnectionManager;
    use tower_totp_redis::{RedisStore, connection_config};

    use super::RedisServer;

    impl RedisServer {
        /// A store with the crate's connection settings and a
        /// [`fresh_prefix`], so tests sharing the server never see each
        /// other's keys.
        pub async fn store(&self) -> RedisStore {
            RedisStore::new(self.manager().await).with_prefix(fresh_prefix())
        }

        /// A connection manager with the crate's settings.
        pub async fn manager(&self) -> ConnectionManager {
            manager_for(&self.url()).await
        }

        /// A connection manager with the crate's settings, logged in as the
        /// ACL user `user` (made with `ACL SETUSER`).
        pub async fn manager_as(&self, user: &str, password: &str) -> ConnectionManager {
            manager_for(&format!(
                "redis://{user}:{password}@127.0.0.1:{}/",
                self.port()
            ))
            .await
        }
    }

    async fn manager_for(url: &str) -> ConnectionManager {
        let client = Client::open(url).expect("a Redis client");
        ConnectionManager::new_with_config(client, connection_config())
            .await
            .expect("a connection to the test server")
    }

    /// A key prefix no other store in this process uses (the process id
    /// and a counter: tests of other processes on the same server differ
    /// by pid).
    pub fn fresh_prefix() -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("test:{}:{n}:", std::process::id())
    }
}

#[cfg(feature = "redis")]
pub use connect::fresh_prefix;
