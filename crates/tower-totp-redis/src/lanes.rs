//! [`AckLanes`]: the connections that acknowledged writes go through.
//!
//! `WAIT` blocks the connection it is sent on until the replicas answer:
//! Redis runs one connection's commands in order, so on the one
//! multiplexed connection every other instance's command to that node
//! would queue behind it, and concurrent codes would be acknowledged one
//! at a time. Acknowledged writes therefore take turns over a few
//! connections of their own, each running its script and `WAIT` in one
//! pipeline (`WAIT` counts what its own connection wrote), so that several
//! wait for their replicas at once and reads never wait behind them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::conn::Conn;

/// How many cluster connections
/// [`RedisStore::connect_nodes`](crate::RedisStore::connect_nodes) opens
/// for acknowledged writes, besides the one for everything else.
pub(crate) const ACK_LANES: usize = 16;

/// Connections taken in turn. Cheap to clone; clones share the turn.
#[derive(Clone)]
pub(crate) struct AckLanes {
    lanes: Arc<[Conn]>,
    next: Arc<AtomicUsize>,
}

impl AckLanes {
    /// Turns over `lanes`.
    ///
    /// # Panics
    ///
    /// If `lanes` is empty.
    pub(crate) fn new(lanes: Vec<Conn>) -> Self {
        assert!(!lanes.is_empty(), "at least one lane");
        Self {
            lanes: lanes.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The next connection.
    pub(crate) fn pick(&self) -> &Conn {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        &self.lanes[n % self.lanes.len()]
    }

    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.lanes.len()
    }
}
