//! [`PostgresServer`]: a real PostgreSQL server on a free loopback port,
//! with its data in a temporary directory.
//!
//! `initdb` makes a fresh cluster (superuser `postgres`, trust
//! authentication: the server listens on loopback only and lives as long
//! as a test), then `postgres` runs on a [`free_port`] with its Unix socket
//! in the same temporary directory, ready on its log line. PostgreSQL
//! refuses to run as root, so as root both run as the `postgres` system
//! user, which owns the directory.
//!
//! ```no_run
//! use tower_totp_testkit::server::postgres::PostgresServer;
//!
//! let mut server = PostgresServer::start();
//! let url = server.create_database("case_1");
//! assert!(url.ends_with("/case_1"));
//! server.stop();
//! server.start_again();
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::free_port;
use super::process::{self, StartError};

/// What `postgres` logs once it accepts connections (after recovery, when
/// it was stopped uncleanly).
const READY: &str = "database system is ready to accept connections";

/// Where Debian installs the server binaries, one directory per major
/// version (`/usr/lib/postgresql/15/bin`).
const INSTALL_ROOT: &str = "/usr/lib/postgresql";

/// The system user PostgreSQL runs as when we are root.
const SYSTEM_USER: &str = "postgres";

/// How many free ports to try: another process may take the port between
/// our probe and the server's bind.
const PORT_TRIES: usize = 5;

/// How long a fast shutdown (SIGINT) may take before the server is killed.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);

/// A running PostgreSQL server, stopped when dropped (its data directory
/// is removed with it).
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    child: Option<Child>,
    /// The directory of `initdb`, `postgres` and `createdb`.
    bin: PathBuf,
    /// The user (uid, gid) the server runs as, when we are root.
    run_as: Option<(u32, u32)>,
    /// The cluster in `data/`, the Unix socket beside it.
    dir: tempfile::TempDir,
}

impl PostgresServer {
    /// Make a fresh cluster and start a server on it.
    ///
    /// # Panics
    ///
    /// If PostgreSQL is not installed (`apt-get install postgresql`;
    /// `scripts/test` does it) or does not come up.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{}", explain(&e)))
    }

    /// Make a fresh cluster and start a server on it, or say why not (a
    /// bench that measures what it can).
    ///
    /// # Errors
    ///
    /// [`StartError::Spawn`] if the binaries are missing, the system user
    /// cannot be found or `initdb` fails; [`StartError::Exited`] if the
    /// server exits on every port tried.
    pub fn try_start() -> Result<Self, StartError> {
        let bin = newest_bin().map_err(StartError::Spawn)?;
        let run_as = if rustix::process::getuid().is_root() {
            Some(system_user(SYSTEM_USER).map_err(StartError::Spawn)?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("tower-totp-pg-")
            .tempdir()
            .map_err(StartError::Spawn)?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(StartError::Spawn)?;
        }
        let mut server = Self {
            port: 0,
            child: None,
            bin,
            run_as,
            dir,
        };
        server.initdb()?;
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

    /// One server for the tests of a test binary that run at the same
    /// time: started by the first caller, stopped when the last caller
    /// drops its handle (a test binary ends only after its tests, so none
    /// outlives it; a static server would never be dropped). Give each test
    /// its own database or schema on it.
    ///
    /// # Panics
    ///
    /// As [`PostgresServer::start`].
    pub fn shared() -> Arc<Self> {
        static SHARED: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(Self::start());
        *shared = Arc::downgrade(&server);
        server
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `postgres` database, as the superuser `postgres`.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Create the database `name` and return its URL: tests sharing one
    /// server each take a database of their own.
    ///
    /// # Panics
    ///
    /// If `name` is not a plain identifier (ASCII lowercase letters,
    /// digits and `_`, not starting with a digit), if the server is not
    /// running, or if the database exists already.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            is_plain_identifier(name),
            "database name {name:?}: use lowercase ASCII letters, digits and _"
        );
        let output = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "--", name])
            .output()
            .expect("createdb runs");
        assert!(
            output.status.success(),
            "createdb {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.url_of(name)
    }

    /// Stop the server: a fast shutdown (SIGINT, by its pid), which ends
    /// every connection, and wait until it has exited. Its data stays for
    /// [`PostgresServer::start_again`]. Nothing happens if it is stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if process::signal(&child, Signal::INT).is_err() {
            // Gone already: reap it.
            let _ = child.wait();
            return;
        }
        // A fast shutdown takes a moment (a checkpoint); poll its exit,
        // bounded, then kill what hangs.
        let deadline = Instant::now() + SHUTDOWN_BOUND;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        process::stop(&mut child);
    }

    /// Start it again on the same data directory and port (stopping it
    /// first if it runs): what it had committed is there again.
    ///
    /// # Panics
    ///
    /// If it does not come up (another process took the port meanwhile).
    pub fn start_again(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("postgres did not start again on {}: {e}", self.port);
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Make the cluster in `data/`.
    fn initdb(&self) -> Result<(), StartError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data())
            .args(["-U", "postgres", "-A", "trust"])
            // Tests need no durability across machine crashes, and the
            // locale of the machine must not matter.
            .args(["--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"]);
        let output = cmd.output().map_err(StartError::Spawn)?;
        check("initdb", &output).map_err(StartError::Spawn)
    }

    /// Spawn on `self.port` and wait for the ready line.
    fn spawn(&mut self) -> Result<(), StartError> {
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(self.dir.path())
            // Throwaway data: no fsync. The log goes to stderr, where we
            // read the ready line.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "logging_collector=off"]);
        self.child = Some(process::start_logging_to_stderr(&mut cmd, READY)?);
        Ok(())
    }

    /// A command for one of the binaries, as the system user when we are
    /// root, in the temporary directory (the user may not enter ours).
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt as _;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `bin` directory of the newest major version installed.
fn newest_bin() -> std::io::Result<PathBuf> {
    let newest = std::fs::read_dir(INSTALL_ROOT)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<f64>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no {INSTALL_ROOT}/*/bin/postgres"),
        )
    })
}

/// The uid and gid of `user`, from `/etc/passwd`.
fn system_user(user: &str) -> std::io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    parse_passwd(&passwd, user).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no system user {user:?} in /etc/passwd"),
        )
    })
}

fn parse_passwd(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// An error with the tool's own words when it failed.
fn check(tool: &str, output: &Output) -> std::io::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "{tool} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

fn explain(e: &StartError) -> String {
    match e {
        StartError::Spawn(e) => format!(
            "cannot start PostgreSQL ({e}); install it with `apt-get install postgresql` \
             (scripts/test does)"
        ),
        StartError::Exited => {
            format!("postgres did not start on any of {PORT_TRIES} free ports")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plain_identifier, parse_passwd};

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgres:x:101:104:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(parse_passwd(passwd, "postgres"), Some((101, 104)));
        assert_eq!(parse_passwd(passwd, "post"), None);
    }

    #[test]
    fn database_names_are_plain() {
        assert!(is_plain_identifier("case_12"));
        assert!(!is_plain_identifier("1case"));
        assert!(!is_plain_identifier("a-b"));
        assert!(!is_plain_identifier("Case"));
        assert!(!is_plain_identifier(""));
    }
}
