//! A server process for the starters: spawned with its log on a pipe,
//! ready once the log shows a given line, signalled by its own pid.

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Child, Command, Stdio};

use rustix::process::{Pid, Signal, kill_process};

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// The program could not be run (not installed?).
    Spawn(std::io::Error),
    /// It ran, and its log ended before the ready line (it exited: most
    /// often, another process took the port first).
    Exited,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawn(e) => write!(f, "cannot run the server: {e}"),
            Self::Exited => f.write_str("the server exited before it was ready"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(e) => Some(e),
            Self::Exited => None,
        }
    }
}

/// Run `cmd` with its standard output on a pipe and return once a log line
/// contains `ready`. A thread then keeps draining the log, so the server
/// never blocks on a full pipe.
///
/// # Errors
///
/// [`StartError::Spawn`] if it cannot be run, [`StartError::Exited`] if its
/// log ends first (the child is reaped).
pub fn start(cmd: &mut Command, ready: &str) -> Result<Child, StartError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(StartError::Spawn)?;
    let stdout = child.stdout.take().expect("a piped stdout");
    if wait_ready(stdout, ready) {
        Ok(child)
    } else {
        stop(&mut child);
        Err(StartError::Exited)
    }
}

/// As [`start`], for a server that logs to its standard error
/// (`postgres` does); its standard output goes nowhere.
///
/// # Errors
///
/// As [`start`].
pub fn start_logging_to_stderr(cmd: &mut Command, ready: &str) -> Result<Child, StartError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(StartError::Spawn)?;
    let stderr = child.stderr.take().expect("a piped stderr");
    if wait_ready(stderr, ready) {
        Ok(child)
    } else {
        stop(&mut child);
        Err(StartError::Exited)
    }
}

/// Read the log until a line contains `ready` (true) or it ends (false).
fn wait_ready(log: impl Read + Send + 'static, ready: &str) -> bool {
    let mut log = BufReader::new(log);
    let mut line = String::new();
    loop {
        line.clear();
        match log.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.contains(ready) => break,
            Ok(_) => {}
        }
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    true
}

/// Send `signal` to `child` (by its pid).
///
/// # Errors
///
/// If the signal cannot be sent (the process is gone).
pub fn signal(child: &Child, signal: Signal) -> std::io::Result<()> {
    kill_process(Pid::from_child(child), signal).map_err(std::io::Error::from)
}

/// Kill `child` (SIGKILL, a crash) and reap it; a stopped (SIGSTOP) child
/// dies as well.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
