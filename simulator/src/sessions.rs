//! [`ShardedSessions`]: the in-process stack's session store, the same as
//! tower-sessions' `MemoryStore` but split into shards behind plain
//! mutexes, so that threads logging in at once
//! ([`LoginBench::threads`](crate::bench::LoginBench::threads)) do not
//! queue on one lock.
//!
//! tower-sessions' own memory store keeps every session in one map behind
//! one `tokio::sync::Mutex`: each of the five session operations of a login
//! takes it, and a thread that finds it taken parks until the other one
//! wakes it. Here the session id picks one of [`SHARDS`] maps, each behind a
//! `std::sync::Mutex` held for one map operation (nothing awaits under it).
//! What a store does is unchanged: a created session gets a fresh id if
//! its id is taken, an expired one does not load.
//!
//! ```
//! use tower_sessions::session::{Id, Record};
//! use tower_sessions::cookie::time::{Duration, OffsetDateTime};
//! use tower_sessions::SessionStore;
//! use totp_sim::sessions::ShardedSessions;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = ShardedSessions::default();
//! let mut record = Record {
//!     id: Id::default(),
//!     data: Default::default(),
//!     expiry_date: OffsetDateTime::now_utc() + Duration::minutes(5),
//! };
//! store.create(&mut record).await.unwrap();
//! assert_eq!(store.load(&record.id).await.unwrap(), Some(record.clone()));
//! store.delete(&record.id).await.unwrap();
//! assert_eq!(store.load(&record.id).await.unwrap(), None);
//! # });
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tower_sessions::SessionStore;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

/// Shards: more than threads, so two of them rarely meet on one.
pub const SHARDS: usize = 16;

/// Sessions in process memory, in [`SHARDS`] maps by id. Clones share them.
#[derive(Debug, Clone)]
pub struct ShardedSessions {
    shards: Arc<[Mutex<HashMap<Id, Record>>]>,
}

impl Default for ShardedSessions {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl ShardedSessions {
    /// How many sessions are stored.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard of `id`. Ids are random 128-bit numbers: their low bits
    /// are as good as a hash.
    fn shard(&self, id: &Id) -> MutexGuard<'_, HashMap<Id, Record>> {
        lock(&self.shards[(id.0 as u64 as usize) % SHARDS])
    }
}

/// Every operation leaves its map consistent before it can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl SessionStore for ShardedSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A new id may land in another shard: look again under its lock.
        loop {
            let mut shard = self.shard(&record.id);
            if let Entry::Vacant(free) = shard.entry(record.id) {
                free.insert(record.clone());
                return Ok(());
            }
            drop(shard);
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.shard(&record.id).insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self
            .shard(id)
            .get(id)
            .filter(|r| r.expiry_date > OffsetDateTime::now_utc())
            .cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.shard(id).remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tower_sessions::cookie::time::Duration;

    use super::*;

    fn record(id: Id, minutes: i64) -> Record {
        Record {
            id,
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + Duration::minutes(minutes),
        }
    }

    #[tokio::test]
    async fn a_taken_id_is_replaced_on_create() {
        let store = ShardedSessions::default();
        let mut first = record(Id(7), 5);
        store.create(&mut first).await.unwrap();
        let mut second = record(Id(7), 5);
        store.create(&mut second).await.unwrap();
        assert_ne!(second.id, first.id);
        assert_eq!(store.len(), 2);
        assert_eq!(store.load(&Id(7)).await.unwrap(), Some(first));
    }

    #[tokio::test]
    async fn an_expired_session_does_not_load() {
        let store = ShardedSessions::default();
        let old = record(Id(9), -1);
        store.save(&old).await.unwrap();
        assert_eq!(store.load(&old.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sessions_spread_over_the_shards() {
        let store = ShardedSessions::default();
        for i in 0..(SHARDS as i128 * 4) {
            store.save(&record(Id(i), 5)).await.unwrap();
        }
        assert!(store.shards.iter().all(|s| lock(s).len() == 4));
    }
}
