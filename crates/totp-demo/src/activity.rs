//! The security activity of each user: the library's security events
//! ([`tower_totp::events`]) kept in a table of the demo's database
//! (`demo_security_events` in SQLite, `totp_demo.security_events` in
//! PostgreSQL: [`crate::db`]), read back newest first for the home page and
//! `GET /api/me/activity`.

use async_trait::async_trait;
use serde::Serialize;
use tower_totp::clock::UnixTime;
use tower_totp::events::{SecurityEvent, SecurityEvents};

use crate::db::{Db, EventRow};
use crate::error::DemoError;

/// How many events the home page and the API show.
pub(crate) const SHOWN: usize = 20;

/// Events kept per user: older ones are deleted as new ones come.
const KEPT: usize = 200;

/// The demo's event sink and its reader. Clones share the database.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    db: Db,
}

/// One event as the user sees it (`GET /api/me/activity` writes these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Entry {
    /// When, in RFC 3339 (UTC, whole seconds).
    pub(crate) at: String,
    /// The event's name (`enrollment_completed`, `account_locked`...).
    pub(crate) kind: String,
    /// A sentence for the user.
    pub(crate) detail: String,
}

impl Activity {
    /// The events of `db` (whose table the database's set-up made).
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// The newest [`SHOWN`] events of `username`, newest first.
    pub(crate) async fn recent(&self, username: &str) -> Result<Vec<Entry>, DemoError> {
        let rows = self.db.recent_events(username.to_owned(), SHOWN).await?;
        Ok(rows
            .into_iter()
            .map(|r| Entry {
                at: rfc3339(r.at_ms),
                kind: r.kind,
                detail: r.detail,
            })
            .collect())
    }

    async fn insert(&self, event: &SecurityEvent) -> Result<(), DemoError> {
        let row = EventRow {
            at_ms: i64::try_from(event.at.as_millis()).unwrap_or(i64::MAX),
            kind: event.kind.as_str().to_owned(),
            detail: event.kind.to_string(),
        };
        self.db
            .add_event(event.user.as_str().to_owned(), row, KEPT)
            .await
    }
}

#[async_trait]
impl SecurityEvents for Activity {
    /// Kept in the table; a database failure is logged and the event
    /// dropped: the change it tells of is stored already, and the request
    /// that made it must not fail for its history.
    async fn record(&self, event: SecurityEvent) {
        if let Err(e) = self.insert(&event).await {
            tracing::warn!(
                error = %e,
                user = %event.user,
                kind = event.kind.as_str(),
                "security event not kept"
            );
        }
    }
}

/// `ms` after the Unix epoch as RFC 3339 in UTC, whole seconds:
/// `2023-11-14T22:13:30Z`. Times before 1970 (none are written) read as
/// the epoch.
pub(crate) fn rfc3339(ms: i64) -> String {
    UnixTime::from_millis(u64::try_from(ms).unwrap_or(0)).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_010_999), "2023-11-14T22:13:30Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399_000), "2100-02-28T23:59:59Z");
    }
}
