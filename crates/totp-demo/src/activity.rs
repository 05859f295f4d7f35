//! The security activity of each user: the library's security events
//! ([`tower_totp::events`]) kept in a table of the demo's database
//! (`demo_security_events`), read back newest first for the home page and
//! `GET /api/me/activity`.
//!
//! The table and its two queries are all there is: one insert per event,
//! one select of a user's newest. Another database needs the same table
//! (`username`, `at_ms`, `kind`, `detail`, and an order for events of the
//! same millisecond) and the same two statements.

use async_trait::async_trait;
use rusqlite::params;
use serde::Serialize;
use tower_totp::events::{SecurityEvent, SecurityEvents};

use crate::db::Db;
use crate::error::DemoError;

/// How many events the home page and the API show.
pub(crate) const SHOWN: usize = 20;

/// Events kept per user: older ones are deleted as new ones come.
const KEPT: usize = 200;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS demo_security_events (
    id       INTEGER NOT NULL PRIMARY KEY,
    username TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS demo_security_events_by_user
    ON demo_security_events (username, at_ms, id);
";

/// The demo's event sink and its reader. Clones share the connection.
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
    /// The table on `db` (created if missing).
    pub(crate) fn open(db: Db) -> Result<Self, DemoError> {
        db.with_conn(|c| c.execute_batch(SCHEMA))?;
        Ok(Self { db })
    }

    /// The newest [`SHOWN`] events of `username`, newest first.
    pub(crate) async fn recent(&self, username: &str) -> Result<Vec<Entry>, DemoError> {
        let username = username.to_owned();
        self.db
            .call(move |c| {
                let mut q = c.prepare_cached(
                    "SELECT at_ms, kind, detail FROM demo_security_events \
                     WHERE username = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2",
                )?;
                let rows = q.query_map(params![username, SHOWN as i64], |r| {
                    Ok(Entry {
                        at: rfc3339(r.get::<_, i64>(0)?),
                        kind: r.get(1)?,
                        detail: r.get(2)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn insert(&self, event: &SecurityEvent) -> Result<(), DemoError> {
        let username = event.user.as_str().to_owned();
        let at = i64::try_from(event.at.as_millis()).unwrap_or(i64::MAX);
        let kind = event.kind.as_str();
        let detail = event.kind.to_string();
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT INTO demo_security_events (username, at_ms, kind, detail) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![username, at, kind, detail],
                )?;
                // A bound per user, so that a guesser who locks an account
                // again and again cannot grow the table without end.
                tx.execute(
                    "DELETE FROM demo_security_events WHERE username = ?1 AND id NOT IN \
                     (SELECT id FROM demo_security_events WHERE username = ?1 \
                      ORDER BY at_ms DESC, id DESC LIMIT ?2)",
                    params![username, KEPT as i64],
                )?;
                tx.commit()
            })
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
/// `2023-11-14T22:13:30Z`. (Days to a civil date: Howard Hinnant's
/// `civil_from_days`.)
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
