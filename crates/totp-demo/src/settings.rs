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

impl Settings {
    /// Load the saved switches; a database without them gets the defaults
    /// (2FA on globally and for internal users, off for external users).
    pub(crate) fn load(db: Db) -> Result<Self, DemoError> {
        let saved = db.with_conn(|conn| {
            conn.query_row(
                "SELECT enabled, internal_users, external_users FROM demo_settings WHERE id = 1",
                [],
                |r| {
                    Ok(PolicySettings {
                        enabled: r.get(0)?,
                        internal_users: r.get(1)?,
                        external_users: r.get(2)?,
                    })
                },
            )
            .optional()
        })?;
        let current = match saved {
            Some(s) => s,
            None => {
                let defaults = PolicySettings::default();
                db.with_conn(|conn| save(conn, defaults))?;
                defaults
            }
        };
        Ok(Self {
            db,
            policy: Policy::new(current),
            write: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The live policy, shared with the layer.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The current switches.
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
}
