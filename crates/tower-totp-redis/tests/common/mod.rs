//! A real `redis-server` for the tests, on a free loopback port.
//!
//! Tests never assume a server is running: each starts its own and the
//! server is killed when the handle is dropped. [`RedisServer::start`] keeps
//! nothing on disk; [`RedisServer::start_persistent`] keeps an append-only
//! file in a temporary directory, so its data survives
//! [`RedisServer::restart`] (even after a kill).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_totp_redis::redis::Client;
use tower_totp_redis::redis::aio::ConnectionManager;
use tower_totp_redis::{RedisStore, connection_config};

/// How many times to poll PING (50 ms apart) before giving up.
const READY_TRIES: u32 = 100;

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Where the append-only file lives, for a persistent server.
    data: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Start a server on a free loopback port and wait until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed (`apt-get install redis-server`;
    /// `scripts/test` does it) or does not come up.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Start a server that writes every acknowledged write to an
    /// append-only file before it answers (`appendonly yes`, `appendfsync
    /// always`), in a fresh temporary directory: [`RedisServer::restart`]
    /// (which kills the server, a crash) brings back everything it had
    /// acknowledged. No RDB snapshots, so the append-only file alone is what
    /// keeps the data.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`], or if the directory cannot be made.
    pub fn start_persistent() -> Self {
        Self::start_with(Some(
            tempfile::tempdir().expect("a temporary data directory"),
        ))
    }

    fn start_with(mut data: Option<tempfile::TempDir>) -> Self {
        // Another process may grab the port between our probe and the
        // server's bind: try a few ports.
        for _ in 0..5 {
            let port = free_port();
            let mut server = Self {
                port,
                child: None,
                data: data.take(),
            };
            if server.spawn() {
                return server;
            }
            data = server.data.take();
        }
        panic!("redis-server did not start on any of 5 free ports");
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
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freeze the server (SIGSTOP): connections stay open, nothing answers.
    ///
    /// # Panics
    ///
    /// If it is not running or `kill` fails.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Let a paused server go on (SIGCONT).
    ///
    /// # Panics
    ///
    /// If it is not running or `kill` fails.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Start it again on the same port (killing it first if it runs). A
    /// persistent server loads its append-only file before it answers.
    ///
    /// # Panics
    ///
    /// If it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not restart on {}",
            self.port
        );
    }

    /// A store with the crate's connection settings and a fresh random
    /// prefix, so tests sharing the server never see each other's keys.
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
            self.port
        ))
        .await
    }

    /// Spawn and wait for PING; false if it exited or never answered.
    fn spawn(&mut self) -> bool {
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
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot run redis-server ({e}); install it with `apt-get install redis-server`"
            ),
        };
        for _ in 0..READY_TRIES {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // exited: port taken
            }
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused server would ignore nothing, but be sure it can die.
            let _ = Command::new("kill")
                .args([
                    "-CONT",
                    &self.child.as_ref().map_or(0, Child::id).to_string(),
                ])
                .status();
        }
        self.stop();
    }
}

async fn manager_for(url: &str) -> ConnectionManager {
    let client = Client::open(url).expect("client");
    ConnectionManager::new_with_config(client, connection_config())
        .await
        .expect("connect to the test server")
}

/// Keep an append-only file in `dir`, written and fsynced before each
/// write is acknowledged.
fn persistence_args(cmd: &mut Command, dir: &Path) {
    cmd.arg("--dir")
        .arg(dir)
        .args(["--appendonly", "yes"])
        .args(["--appendfsync", "always"]);
}

/// A port nobody listens on right now: bind port 0, read it, let it go.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Whether a server on `port` answers PING with PONG.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A prefix no other store in this process uses.
pub fn fresh_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("test:{}:{t:x}:{n}:", std::process::id())
}
