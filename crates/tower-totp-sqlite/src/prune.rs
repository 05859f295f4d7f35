//! Forgetting throttle state nobody needs any more.
//!
//! `users` rows are never deleted by the store traits (they hold the epoch,
//! which must never go back). But a row that holds nothing but throttle
//! state whose lockout ended more than the policy's
//! [`retention`](ThrottlePolicy::retention) ago carries nothing a later
//! decision needs: epoch 0 is what a missing row reads as, and a fresh
//! throttle state decides later attempts no more leniently than waiting
//! would have (the Redis store lets such a key expire for the same
//! reason). Applications that throttle names nobody owns (a password
//! throttle keyed by the typed user name) create such rows for every name
//! typed; pruning keeps them from piling up.

use rusqlite::params;
use tower_totp::clock::UnixTime;
use tower_totp::store::StoreError;
use tower_totp::throttle::ThrottlePolicy;

use crate::SqliteStore;
use crate::codec::u64_to_sql;

/// One statement, so atomic against concurrent attempts: a row charged
/// meanwhile has a fresh `throttle_locked_until` and no longer matches. The
/// conditions are those of a row `ensure_user` would create plus throttle
/// state: epoch 0, no reset, nothing referring to it.
const PRUNE: &str = "
DELETE FROM users WHERE user_id IN (
    SELECT u.user_id FROM users AS u
    WHERE u.epoch = ?1
      AND u.sessions_ended_at IS NULL
      AND u.throttle_locked_until < ?2
      AND NOT EXISTS (SELECT 1 FROM authenticators AS a WHERE a.user_id = u.user_id)
      AND NOT EXISTS (SELECT 1 FROM pending_enrollments AS p WHERE p.user_id = u.user_id)
      AND NOT EXISTS (SELECT 1 FROM recovery_codes AS r WHERE r.user_id = u.user_id)
    LIMIT ?3
)";

impl SqliteStore {
    /// The most rows one [`prune_idle_throttles`](Self::prune_idle_throttles)
    /// call deletes, so that one call holds the connection briefly; call
    /// again while it returns this many.
    pub const PRUNE_BATCH: usize = 1000;

    /// Delete up to [`PRUNE_BATCH`](Self::PRUNE_BATCH) users rows that hold
    /// only throttle state (epoch 0, no authenticator, pending enrollment,
    /// recovery code or reset) whose lockout ended more than `policy`'s
    /// [`retention`](ThrottlePolicy::retention) before `now`; how many went.
    ///
    /// A user still locked out, or within the retention, keeps its row, so
    /// pruning never shortens a lockout nor resets a counter early: the
    /// bound of [`ThrottlePolicy::max_attempts_within`] holds. A policy
    /// without a retention prunes nothing. Pass the policy the rows were
    /// charged with (the longest, if several share the table).
    ///
    /// The statement scans `users` (there is no index on the lockout end),
    /// stopping at a full batch: call it now and then, not per request.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if SQLite cannot run the delete.
    pub async fn prune_idle_throttles(
        &self,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<usize, StoreError> {
        let Some(keep) = policy.retention() else {
            return Ok(0);
        };
        let Some(cutoff) = now.as_millis().checked_sub(millis(keep)) else {
            return Ok(0);
        };
        let batch = i64::try_from(Self::PRUNE_BATCH).unwrap_or(i64::MAX);
        // No status copy needs dropping: a pruned row read as the default
        // status (epoch 0, not enrolled, no reset) and a missing row reads
        // the same.
        self.run(move |conn| {
            Ok(conn.prepare_cached(PRUNE)?.execute(params![
                u64_to_sql(0),
                u64_to_sql(cutoff),
                batch
            ])?)
        })
        .await
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
