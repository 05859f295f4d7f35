//! The "Two Factor Auth" switches, kept in `demo_settings` and applied to
//! the live [`Policy`] the layer reads.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use tower_totp::policy::{Policy, PolicySettings};

use crate::db::Db;
use crate::error::DemoError;

/// The saved switches and the live policy. Clones share both.
#[derive(Debug, Clone)]
pub struct Settings {
    db: Db,
    policy: Policy,
    /// Serialises writers, so the table and the policy change together.
    write: Arc<tokio::sync::Mutex<()>>,
}

fn save(conn: &rusqlite::Connection, s: PolicySettings) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO demo_settings (id, enabled, internal_users, external_users) \
         VALUES (1, ?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET enabled = ?1, internal_users = ?2, external_users = ?3",
        params![s.enabled, s.internal_users, s.external_users],
    )
    .map(|_| ())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PolicySettings> {
    Ok(PolicySettings {
        enabled: r.get(0)?,
        internal_users: r.get(1)?,
        external_users: r.get(2)?,
    })
}

fn read(conn: &rusqlite::Connection) -> rusqlite::Result<Option<PolicySettings>> {
    conn.query_row(
        "SELECT enabled, internal_users, external_users FROM demo_settings WHERE id = 1",
        [],
        row,
    )
    .optional()
}

/// Any of the three switches; `None` keeps the saved value.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SettingsPatch {
    pub(crate) enabled: Option<bool>,
    pub(crate) internal_users: Option<bool>,
    pub(crate) external_users: Option<bool>,
}

impl Settings {
    /// Load the saved switches; a database without them gets the defaults
    /// (2FA on globally and for internal users, off for external users).
    pub(crate) fn load(db: Db) -> Result<Self, DemoError> {
        let defaults = PolicySettings::default();
        // Another instance starting at the same moment may write the
        // defaults too: insert them only where there is nothing, then use
        // what is saved.
        let current = db.with_conn(|conn| {
            conn.execute(
                "INSERT INTO demo_settings (id, enabled, internal_users, external_users) \
                 VALUES (1, ?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
                params![
                    defaults.enabled,
                    defaults.internal_users,
                    defaults.external_users
                ],
            )?;
            Ok(read(conn)?.unwrap_or(defaults))
        })?;
        Ok(Self {
            db,
            policy: Policy::new(current),
            write: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Apply the switches as `conn` reads them now (another instance
    /// changed them). A missing row (never written) changes nothing.
    pub(crate) fn reload(&self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        if let Some(saved) = read(conn)? {
            self.policy.set(saved);
        }
        Ok(())
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
    /// [`DemoError::Database`] if it could not be saved; nothing changed then.
    pub async fn set(&self, new: PolicySettings) -> Result<(), DemoError> {
        let _writer = self.write.lock().await;
        self.db.call(move |conn| save(conn, new)).await?;
        self.policy.set(new);
        Ok(())
    }

    /// Change only the switches `patch` names, in one statement, and apply
    /// the result: another instance changing another switch at the same
    /// moment is not undone by a stale copy of it here.
    ///
    /// # Errors
    ///
    /// [`DemoError::Database`] if it could not be saved; nothing changed then.
    pub(crate) async fn patch(&self, patch: SettingsPatch) -> Result<PolicySettings, DemoError> {
        let _writer = self.write.lock().await;
        let new = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "UPDATE demo_settings SET \
                     enabled = COALESCE(?1, enabled), \
                     internal_users = COALESCE(?2, internal_users), \
                     external_users = COALESCE(?3, external_users) \
                     WHERE id = 1 \
                     RETURNING enabled, internal_users, external_users",
                    params![patch.enabled, patch.internal_users, patch.external_users],
                    row,
                )
            })
            .await?;
        self.policy.set(new);
        Ok(new)
    }
}
