//! Why a `--target` run cannot start. Below both [`crate::run`] (whose
//! [`SimError`](crate::run::SimError) carries it) and [`crate::target`]
//! (which runs on top of `run` and re-exports it), so neither imports the
//! other's error.

/// A `--target` run cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not an `http://host:port` URL.
    #[error("--target {url}: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A non-loopback host without `--allow-remote`.
    #[error(
        "--target {host} is not a loopback address; pass --allow-remote to load a remote server"
    )]
    Remote {
        /// The host given.
        host: String,
    },
    /// More users than accounts.
    #[error("{users} users but only {accounts} accounts on the target (one account per user)")]
    TooFewAccounts {
        /// Users in the scenario.
        users: u32,
        /// Accounts given.
        accounts: usize,
    },
    /// An accounts file line that is not `name` or `name:password`.
    #[error("accounts line {line}: empty user name")]
    Accounts {
        /// The line, from 1.
        line: usize,
    },
}
