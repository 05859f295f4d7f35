//! A real `redis-server` for the demo's tests, on a free loopback port,
//! keeping nothing on disk, killed when dropped. Tests never assume a
//! server is running.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, ChildStdout, Command, Stdio};

/// What `redis-server` logs once it listens.
const READY: &str = "Ready to accept connections";

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    /// Start a server on a free loopback port; returns once it logged that
    /// it accepts connections (no polling, no sleeping).
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed (`apt-get install redis-server`;
    /// `scripts/test` does it) or does not come up on any of five ports.
    pub fn start() -> Self {
        // Another process may take the port between our probe and the
        // server's bind: then the server exits, and we try another port.
        for _ in 0..5 {
            if let Some(server) = Self::try_port(free_port()) {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn try_port(port: u16) -> Option<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); install it with `apt-get install redis-server`"
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        if wait_ready(stdout) {
            Some(Self { port, child })
        } else {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read the log until the server says it is ready (true) or exits (false:
/// the log ends). After ready, a thread keeps draining the log so the
/// server never blocks on a full pipe.
fn wait_ready(stdout: ChildStdout) -> bool {
    let mut log = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match log.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.contains(READY) => break,
            Ok(_) => {}
        }
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    true
}

/// A port nobody listens on right now: bind port 0, read it, let it go.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
