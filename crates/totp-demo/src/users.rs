//! The demo's users: a user table (SQLite or PostgreSQL, see
//! [`crate::db`]) with argon2id password hashes, an in-memory copy in front
//! of it (the layer asks about the user on every request), and the
//! [`UserDirectory`] the layer reads.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use serde::Serialize;
use tower_totp::http::{UserDirectory, UserLookup};
use tower_totp::store::StoreError;
use tower_totp::{UserId, UserInfo, UserKind};
use zeroize::Zeroizing;

use crate::db::{Db, UserRecord};
use crate::error::DemoError;

/// Longest user name and password the login form takes, in bytes: longer
/// input is refused before any hashing.
pub(crate) const MAX_USERNAME: usize = 64;
pub(crate) const MAX_PASSWORD: usize = 1024;

/// How many password checks run at once, per CPU. Each argon2id check
/// with the standard cost holds 19 MiB for tens of milliseconds; without a
/// cap a flood of logins would fill Tokio's blocking pool (512 threads,
/// about 10 GiB). Checks beyond the cap wait their turn.
const HASHING_PER_CPU: usize = 2;

/// How expensive password hashes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PasswordCost {
    /// Argon2id with the recommended parameters (19 MiB, 2 passes).
    #[default]
    Standard,
    /// Argon2id with the smallest parameters: for tests only, where debug
    /// builds would make the standard cost take seconds.
    Minimal,
}

impl PasswordCost {
    fn hasher(self) -> Argon2<'static> {
        let params = match self {
            Self::Standard => Params::default(),
            // 8 KiB, one pass: the smallest argon2 accepts.
            Self::Minimal => Params::new(8, 1, 1, None).unwrap_or_default(),
        };
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

/// A user of the demo, as pages and JSON show it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The login name, also the user id given to the TOTP layer.
    pub username: String,
    /// Shown as "Welcome, ..." and in the user menu.
    pub display_name: String,
    /// Internal staff or external users.
    pub kind: UserKind,
    /// May open the admin pages.
    pub is_admin: bool,
    /// The "Require Two Factor Authentication" flag.
    pub require_2fa: bool,
}

impl User {
    /// What the TOTP policy needs to know.
    pub fn info(&self) -> UserInfo {
        UserInfo {
            kind: self.kind,
            require_2fa: self.require_2fa,
            display_name: self.display_name.clone(),
        }
    }
}

#[derive(Clone)]
struct Row {
    /// Shared, so that the per-request lookups ([`Users::get`] and the
    /// layer's [`UserDirectory`] call) copy a pointer, not two strings.
    user: Arc<User>,
    hash: Arc<str>,
}

/// The user table and its in-memory copy. Clones share both.
#[derive(Clone)]
pub struct Users {
    db: Db,
    cache: Arc<RwLock<BTreeMap<String, Row>>>,
    /// Serialises writers, so the table and the copy change together.
    write: Arc<tokio::sync::Mutex<()>>,
    cost: PasswordCost,
    /// Checked against when the user name is unknown, so that a wrong name
    /// takes as long as a wrong password.
    dummy_hash: Arc<str>,
    /// Caps the password checks running at once ([`HASHING_PER_CPU`]).
    hashing: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("count", &self.read().len())
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// Load the table into memory (start-up only: with SQLite, blocks).
    pub(crate) async fn load(db: Db, cost: PasswordCost) -> Result<Self, DemoError> {
        let rows = db.users().await?;
        let dummy_hash = hash_password(cost, "not a password of anyone")?.into();
        Ok(Self {
            db,
            cache: Arc::new(RwLock::new(by_name(rows))),
            write: Arc::new(tokio::sync::Mutex::new(())),
            cost,
            dummy_hash,
            hashing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(1, std::num::NonZeroUsize::get)
                    .saturating_mul(HASHING_PER_CPU),
            )),
        })
    }

    /// Replace the in-memory copy with `rows` (the table as another
    /// instance left it).
    pub(crate) fn replace(&self, rows: Vec<UserRecord>) {
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) = by_name(rows);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Row>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether there are no users at all (a new database).
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// If the table is empty, create `users`, each with `password`;
    /// whether this call created them (start-up only: with SQLite, blocks).
    ///
    /// Safe when several instances start at once on a new database: the
    /// check and the inserts are one transaction that waits out the
    /// others, so exactly one instance seeds and the others load what it
    /// wrote.
    pub(crate) async fn seed(&self, users: &[User], password: &str) -> Result<bool, DemoError> {
        if !self.is_empty() {
            return Ok(false);
        }
        // Hash before the transaction: hashing is the slow part.
        let mut rows = Vec::with_capacity(users.len());
        for user in users {
            rows.push(UserRecord {
                user: user.clone(),
                password_hash: hash_password(self.cost, password)?,
            });
        }
        let (created, now) = self.db.seed_users(rows).await?;
        self.replace(now);
        Ok(created)
    }

    /// Create the accounts `load-1` to `load-{count}` that are missing,
    /// internal, 2FA required, each with `password` (start-up only: with
    /// SQLite, blocks). For load runs only (feature `load-baseline`): they
    /// share one password hash of the smallest argon2id cost, so that
    /// thousands of logins measure the second step, not the password.
    #[cfg(feature = "load-baseline")]
    pub(crate) async fn add_load_users(&self, count: u32, password: &str) -> Result<(), DemoError> {
        let hash = hash_password(PasswordCost::Minimal, password)?;
        let rows = (1..=count)
            .map(|i| UserRecord {
                user: User {
                    username: format!("load-{i}"),
                    display_name: format!("Load User {i}"),
                    kind: UserKind::Internal,
                    is_admin: false,
                    require_2fa: true,
                },
                password_hash: hash.clone(),
            })
            .collect();
        let now = self.db.add_missing_users(rows).await?;
        self.replace(now);
        Ok(())
    }

    /// A user by name (with several instances, as of this instance's last
    /// request, like [`Settings::get`](crate::Settings::get)).
    pub fn get(&self, username: &str) -> Option<Arc<User>> {
        self.read().get(username).map(|r| Arc::clone(&r.user))
    }

    /// Every user, by name.
    pub fn list(&self) -> Vec<Arc<User>> {
        self.read().values().map(|r| Arc::clone(&r.user)).collect()
    }

    /// The user if `password` is theirs. Takes about as long for an unknown
    /// name as for a wrong password.
    ///
    /// # Errors
    ///
    /// [`DemoError::Interrupted`] if the hashing task was cancelled.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Arc<User>>, DemoError> {
        if username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
            return Ok(None);
        }
        let row = self.read().get(username).cloned();
        let hash = row
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |r| r.hash.clone());
        let password = Zeroizing::new(password.to_owned());
        let _turn = self
            .hashing
            .acquire()
            .await
            .map_err(|_| DemoError::Interrupted)?;
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(|_| DemoError::Interrupted)?;
        Ok(row.filter(|_| matches).map(|r| r.user))
    }

    /// Set a user's "Require Two Factor Authentication" flag; the changed
    /// user, or `None` if there is no such user. Seen by the next request.
    ///
    /// # Errors
    ///
    /// [`DemoError::Database`] or [`DemoError::Postgres`] if the change
    /// could not be saved (nothing changed then).
    pub async fn set_require_2fa(
        &self,
        username: &str,
        require: bool,
    ) -> Result<Option<Arc<User>>, DemoError> {
        let _writer = self.write.lock().await;
        if self.get(username).is_none() {
            return Ok(None);
        }
        if !self
            .db
            .set_require_2fa(username.to_owned(), require)
            .await?
        {
            return Ok(None);
        }
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.get_mut(username).map(|r| {
            Arc::make_mut(&mut r.user).require_2fa = require;
            Arc::clone(&r.user)
        }))
    }
}

fn by_name(rows: Vec<UserRecord>) -> BTreeMap<String, Row> {
    rows.into_iter()
        .map(|r| {
            let row = Row {
                user: Arc::new(r.user),
                hash: r.password_hash.into(),
            };
            (row.user.username.clone(), row)
        })
        .collect()
}

fn hash_password(cost: PasswordCost, password: &str) -> Result<String, DemoError> {
    let salt = SaltString::generate(&mut OsRng);
    cost.hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DemoError::PasswordHash(e.to_string()))
}

#[async_trait]
impl UserDirectory for Users {
    async fn user_info(&self, user: &UserId) -> Result<Option<UserInfo>, StoreError> {
        Ok(self.get(user.as_str()).map(|u| u.info()))
    }

    /// The in-memory copy answers at once: no boxed future per request,
    /// and no copy of the display name, which the layer does not read.
    fn user_info_now(&self, user: &UserId) -> UserLookup {
        match self.read().get(user.as_str()) {
            Some(r) => UserLookup::Found(UserInfo {
                kind: r.user.kind,
                require_2fa: r.user.require_2fa,
                display_name: String::new(),
            }),
            None => UserLookup::NoSuchUser,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_quick_answer_agrees_with_the_awaited_one() {
        let db = Db::Sqlite(crate::db::sqlite::Db::open_in_memory().unwrap());
        let users = Users::load(db, PasswordCost::Minimal).await.unwrap();
        let jsmith = User {
            username: "jsmith".into(),
            display_name: "John Smith".into(),
            kind: UserKind::Internal,
            is_admin: false,
            require_2fa: true,
        };
        users.seed(&[jsmith], "pw").await.unwrap();
        let id = UserId::new("jsmith");
        for require in [true, false, true] {
            users.set_require_2fa("jsmith", require).await.unwrap();
            let awaited = users.user_info(&id).await.unwrap().unwrap();
            let UserLookup::Found(now) = users.user_info_now(&id) else {
                panic!("the in-memory copy answers at once");
            };
            assert_eq!((now.kind, now.require_2fa), (awaited.kind, require));
            assert_eq!(awaited.require_2fa, require);
        }
        assert_eq!(
            users.user_info_now(&UserId::new("nobody")),
            UserLookup::NoSuchUser
        );
    }
}
