//! Why a scenario cannot be read, parsed, changed or used. Below both
//! [`crate::scenario`] (which re-exports it) and [`crate::overrides`]
//! (which the scenario calls for `--set`), so neither imports the other.

use std::path::PathBuf;

/// A scenario could not be read or does not make sense.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, or a key is unknown or of the wrong type.
    #[error("{context}: {source}")]
    Parse {
        /// The file, or what was being parsed.
        context: String,
        /// The parser's message, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of its range.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// The key, dotted (`fleet.typo_rate`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An override (`--set`, `--param`) names no key that can be set.
    #[error("cannot set `{key}`: {reason}")]
    Override {
        /// The key as given.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
}
