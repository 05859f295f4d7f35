//! An in-process copy of each user's [`UserStatus`], so that the layer's
//! per-request `status` needs no SQLite call.
//!
//! Asking SQLite costs a read transaction and a hand-off to the blocking
//! pool, most of what the layer costs per request on a busy service (the
//! load run in `docs/performance.md`). The copy stays right by two rules:
//!
//! - **This store's writes.** Every operation that can change a user's
//!   status removes that user's copy while it still holds the connection,
//!   and copies are only ever filled while holding the connection. So a
//!   fill either happens before the write (and is removed by it) or reads
//!   what the write committed: no interleaving leaves a stale copy.
//! - **Other connections' writes** (another process on the same file, or
//!   another connection in this one). SQLite's `PRAGMA data_version`
//!   changes when another connection commits; it is asked at most once per
//!   `max_staleness`, and every copy is dropped when it moved. Until then
//!   a copy may be up to `max_staleness` old: that is the price, and why
//!   the cache is opt-in.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tower_totp::UserId;
use tower_totp::store::UserStatus;

/// Copies kept at most; when full, all are dropped and filled again as
/// users come back. 100,000 copies take a few megabytes.
const MAX_ENTRIES: usize = 100_000;

/// The copies and how fresh they are known to be.
#[derive(Debug)]
pub(crate) struct StatusCache {
    max_staleness: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<UserId, UserStatus>,
    /// The `data_version` the copies were read under.
    data_version: Option<i64>,
    /// When `data_version` was last asked.
    checked_at: Option<Instant>,
}

impl StatusCache {
    pub(crate) fn new(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a cache: whatever a panicking holder left is at
        // worst a missing copy or an old check time, never a wrong copy
        // (copies are inserted whole).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user's copy, if it exists and other connections were checked
    /// within `max_staleness`. Does not touch SQLite.
    pub(crate) fn fresh(&self, user: &UserId) -> Option<UserStatus> {
        let state = self.state();
        let checked = state.checked_at?;
        if checked.elapsed() > self.max_staleness {
            return None;
        }
        state.entries.get(user).copied()
    }

    /// The user's status, from the copy if no other connection committed
    /// since it was read, else from `read`. Call with the connection held.
    pub(crate) fn read_through(
        &self,
        conn: &Connection,
        user: &UserId,
        read: impl FnOnce(&Connection) -> rusqlite::Result<UserStatus>,
    ) -> rusqlite::Result<UserStatus> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        {
            let mut state = self.state();
            if state.data_version != Some(version) {
                state.entries.clear();
                state.data_version = Some(version);
            }
            state.checked_at = Some(Instant::now());
            if let Some(status) = state.entries.get(user) {
                return Ok(*status);
            }
        }
        // Read without holding the cache's lock: other requests keep
        // answering from their copies meanwhile. The connection is held, so
        // no write of this store can land between the read and the insert.
        let status = read(conn)?;
        let mut state = self.state();
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(user.clone(), status);
        Ok(status)
    }

    /// Drop the user's copy. Call with the connection held.
    pub(crate) fn forget(&self, user: &UserId) {
        self.state().entries.remove(user);
    }
}
