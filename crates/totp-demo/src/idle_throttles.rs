//! Forgetting the password counters of names nobody types any more.
//!
//! The password throttle counts every typed name, known or not (so the
//! answers never say whether a user exists), and each count is a row of
//! the TOTP store. Without pruning, every name anyone ever typed would stay
//! for good: unauthenticated clients could grow the SQLite file without
//! bound. So the rows that hold nothing but throttle state past the
//! policy's retention are deleted now and then
//! ([`SqliteStore::prune_idle_throttles`]). With Redis the keys expire by
//! themselves, after the same retention.
//!
//! When: on a password attempt, once the engine's clock has moved
//! [`PRUNE_EVERY`] past the last pruning, and again at the very next
//! attempt while a pruning deletes a full batch. Driven by the attempts
//! and the injected clock rather than by a background task: nothing to
//! spawn, own or stop, one scan a minute at most on a quiet server, and a
//! flood, which adds one row per attempt, is pruned a full batch per
//! attempt until it has caught up. Tests drive it with the manual clock.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tower_totp::clock::UnixTime;
use tower_totp::throttle::ThrottlePolicy;
use tower_totp_sqlite::SqliteStore;

/// How often, at most, the store is scanned while batches come back short.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The pruning schedule of one instance.
#[derive(Debug)]
pub(crate) struct IdleThrottles {
    /// `None` with Redis: its keys expire by themselves.
    store: Option<SqliteStore>,
    /// The policy the rows were charged with: of the password and the
    /// code throttle, the one kept longer.
    policy: Option<ThrottlePolicy>,
    /// No pruning before this moment.
    next_at: Mutex<UnixTime>,
}

impl IdleThrottles {
    /// Prune `store` (if any) for rows charged under `policies`.
    pub(crate) fn new(store: Option<SqliteStore>, policies: [ThrottlePolicy; 2]) -> Self {
        Self {
            store,
            policy: longest_kept(policies),
            next_at: Mutex::new(UnixTime::EPOCH),
        }
    }

    /// Prune if it is due at `now`. A failure is logged and otherwise
    /// ignored: pruning is housekeeping, and a store that fails refuses
    /// the login anyway at its charge.
    pub(crate) async fn tick(&self, now: UnixTime) {
        let (Some(store), Some(policy)) = (&self.store, &self.policy) else {
            return;
        };
        {
            let mut next_at = self.next_at.lock().unwrap_or_else(PoisonError::into_inner);
            // Not due yet, unless the clock was set back (which would
            // otherwise pause pruning until it caught up).
            if now < *next_at && now.saturating_add(PRUNE_EVERY) >= *next_at {
                return;
            }
            // Claimed before the await: concurrent attempts do not all prune.
            *next_at = now.saturating_add(PRUNE_EVERY);
        }
        match store.prune_idle_throttles(now, policy).await {
            Ok(n) if n >= SqliteStore::PRUNE_BATCH => {
                // More may be waiting: the next attempt prunes again.
                *self.next_at.lock().unwrap_or_else(PoisonError::into_inner) = now;
            }
            Ok(n) if n > 0 => tracing::debug!(rows = n, "idle throttle state pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning idle throttle state failed"),
        }
    }
}

/// Of `policies`, the one whose state is kept longest; `None` if one is
/// kept until the next success (then nothing may be pruned).
fn longest_kept(policies: [ThrottlePolicy; 2]) -> Option<ThrottlePolicy> {
    let mut longest: Option<(Duration, ThrottlePolicy)> = None;
    for p in policies {
        let keep = p.retention()?;
        if longest.is_none_or(|(k, _)| keep > k) {
            longest = Some((keep, p));
        }
    }
    longest.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_kept_longest_decides() {
        let short = ThrottlePolicy::default();
        let long = ThrottlePolicy::new(3, Duration::from_secs(1), Duration::from_secs(3600))
            .unwrap_or_default();
        assert_eq!(longest_kept([short, long]), Some(long));
        assert_eq!(longest_kept([long, short]), Some(long));
        let forever = ThrottlePolicy::new(3, Duration::from_micros(1), Duration::from_secs(1))
            .unwrap_or_default();
        assert_eq!(longest_kept([short, forever]), None);
    }
}
