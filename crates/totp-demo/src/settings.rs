//! The "Two Factor Auth" switches, kept in the database (see
//! [`crate::db`]) and applied to the live [`Policy`] the layer reads.

use std::sync::Arc;

use tower_totp::policy::{Policy, PolicySettings};

use crate::db::Db;
pub(crate) use crate::db::SettingsPatch;
use crate::error::DemoError;

/// The saved switches and the live policy. Clones share both.
#[derive(Debug, Clone)]
pub struct Settings {
    db: Db,
    policy: Policy,
    /// Serialises writers, so the table and the policy change together.
    write: Arc<tokio::sync::Mutex<()>>,
}

impl Settings {
    /// Load the saved switches; a database without them gets the defaults
    /// (2FA on globally and for internal users, off for external users).
    /// Start-up only: with SQLite, blocks.
    pub(crate) async fn load(db: Db) -> Result<Self, DemoError> {
        let current = db.init_settings(PolicySettings::default()).await?;
        Ok(Self {
            db,
            policy: Policy::new(current),
            write: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Apply `saved` (the switches as another instance left them); `None`
    /// (never saved) changes nothing.
    pub(crate) fn replace(&self, saved: Option<PolicySettings>) {
        if let Some(saved) = saved {
            self.policy.set(saved);
        }
    }

    /// The live policy, shared with the layer.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The current switches. With several instances (Redis), as of this
    /// instance's last request: changes made elsewhere are read at the
    /// start of the next one.
    pub fn get(&self) -> PolicySettings {
        self.policy.get()
    }

    /// Save `new` and apply it: the next request sees it.
    ///
    /// # Errors
    ///
    /// [`DemoError::Database`] or [`DemoError::Postgres`] if it could not be
    /// saved; nothing changed then.
    pub async fn set(&self, new: PolicySettings) -> Result<(), DemoError> {
        let _writer = self.write.lock().await;
        self.db.save_settings(new).await?;
        self.policy.set(new);
        Ok(())
    }

    /// Change only the switches `patch` names, in one statement, and apply
    /// the result: another instance changing another switch at the same
    /// moment is not undone by a stale copy of it here.
    ///
    /// # Errors
    ///
    /// [`DemoError::Database`] or [`DemoError::Postgres`] if it could not be
    /// saved; nothing changed then.
    pub(crate) async fn patch(&self, patch: SettingsPatch) -> Result<PolicySettings, DemoError> {
        let _writer = self.write.lock().await;
        let new = self.db.patch_settings(patch).await?;
        self.policy.set(new);
        Ok(new)
    }
}
