//! The server key that seals TOTP secrets at rest: read from a key file,
//! or generated into one on first start, readable by its owner only.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tower_totp::seal::SealingKey;

use crate::error::DemoError;

/// The key file for a database when none is given: beside it, with the
/// extension `.key` (`data/totp-demo.sqlite3` → `data/totp-demo.key`).
pub fn default_key_path(db: &Path) -> PathBuf {
    db.with_extension("key")
}

/// The key in `path`, if the file exists.
///
/// # Errors
///
/// [`DemoError::KeyFile`] if it exists but cannot be read,
/// [`DemoError::KeyFormat`] if it does not hold 64 hexadecimal digits.
pub fn read_key(path: &Path) -> Result<Option<SealingKey>, DemoError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DemoError::KeyFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    warn_if_readable_by_others(path);
    SealingKey::from_hex(&text)
        .map(Some)
        .map_err(|source| DemoError::KeyFormat {
            path: path.to_owned(),
            source,
        })
}

/// Generate a new key into `path`, which must not exist yet; the file is
/// created with mode 0600 (owner read and write only) on Unix.
///
/// # Errors
///
/// [`DemoError::KeyFile`] if the file exists or cannot be written,
/// [`DemoError::KeyFormat`] if no random key could be made.
pub fn create_key(path: &Path) -> Result<SealingKey, DemoError> {
    let key = SealingKey::generate().map_err(|source| DemoError::KeyFormat {
        path: path.to_owned(),
        source,
    })?;
    let io = |source| DemoError::KeyFile {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    let mut line = key.to_hex();
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the key file is readable by other users; run chmod 600 on it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The key for the database `db`: read from `key_path`, or generated into
/// it (mode 0600) when both are new. Also says whether it was generated.
///
/// # Errors
///
/// [`DemoError::KeyMissing`] if `db` exists but `key_path` does not: a new
/// key could not open the secrets already stored. Otherwise as
/// [`read_key`] and [`create_key`].
pub fn open_or_create_key(db: &Path, key_path: &Path) -> Result<(SealingKey, bool), DemoError> {
    if let Some(key) = read_key(key_path)? {
        return Ok((key, false));
    }
    if db.exists() {
        return Err(DemoError::KeyMissing {
            db: db.to_owned(),
            key: key_path.to_owned(),
        });
    }
    Ok((create_key(key_path)?, true))
}

/// [`open_or_create_key`] for a PostgreSQL database: a new key only while
/// the demo has no users in it yet (a new key could not open the secrets an
/// existing database holds).
///
/// # Errors
///
/// As [`open_or_create_key`], [`DemoError::KeyMissingPostgres`] if the
/// key file is missing but the database has the demo's users, and
/// [`DemoError::Postgres`] if the database cannot be asked.
pub async fn open_or_create_key_for_postgres(
    pool: &sqlx::PgPool,
    key_path: &Path,
) -> Result<(SealingKey, bool), DemoError> {
    if let Some(key) = read_key(key_path)? {
        return Ok((key, false));
    }
    if crate::db::postgres::has_users(pool).await? {
        return Err(DemoError::KeyMissingPostgres {
            key: key_path.to_owned(),
        });
    }
    Ok((create_key(key_path)?, true))
}
