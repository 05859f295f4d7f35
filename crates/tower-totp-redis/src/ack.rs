//! [`ReplicaAck`]: how many replicas must hold a security write before the
//! store reports it done.
//!
//! Redis replicates asynchronously: a master answers a script before its
//! replicas have the write. If it dies right then, the replica promoted in
//! its place never saw the write, and a step consumed on the dead master
//! could be consumed again. So after each security write the store sends
//! `WAIT <replicas> <timeout>` in the same pipeline as the script: the same
//! connection to the same node, right after the script, where `WAIT`
//! counts the replicas that acknowledged everything this connection wrote.
//! Too few in time, and the operation fails with
//! [`StoreError::Unavailable`](tower_totp::store::StoreError::Unavailable)
//! (the layer answers 503): the write stays on the master, so a code is
//! then refused, never accepted on a write a failover could lose.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// How many replicas must acknowledge a security write (a consumed step, a
/// throttle charge, a used recovery code, an activation, a revocation, a
/// reset) and how long the master waits for them, with Redis's `WAIT`.
///
/// [`RedisStore`](crate::RedisStore) asks for [`ReplicaAck::CLUSTER_DEFAULT`]
/// on a cluster connection and for nothing on one server; change it with
/// [`RedisStore::with_replica_ack`](crate::RedisStore::with_replica_ack) or
/// [`RedisStore::without_replica_ack`](crate::RedisStore::without_replica_ack).
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
///
/// use tower_totp_redis::ReplicaAck;
///
/// let ack = ReplicaAck::new(NonZeroU32::new(2).unwrap(), Duration::from_millis(200));
/// assert_eq!(ack.replicas(), 2);
/// assert_eq!(ack.timeout(), Duration::from_millis(200));
/// // `WAIT n 0` would wait forever: a zero timeout is one millisecond.
/// let ack = ReplicaAck::new(NonZeroU32::MIN, Duration::ZERO);
/// assert_eq!(ack.timeout(), Duration::from_millis(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaAck {
    replicas: NonZeroU32,
    /// Whole milliseconds, at least one: what `WAIT` takes.
    timeout_ms: u64,
}

impl ReplicaAck {
    /// One replica within 500 ms: a cluster of masters with one replica
    /// each survives the loss of any one node without losing a consumed
    /// step, and a request waits at most half a second for a replica that
    /// stopped answering (below the one-second
    /// [`RESPONSE_TIMEOUT`](crate::RESPONSE_TIMEOUT)).
    pub const CLUSTER_DEFAULT: Self = Self {
        replicas: NonZeroU32::MIN,
        timeout_ms: 500,
    };

    /// `replicas` acknowledgements within `timeout`, rounded up to whole
    /// milliseconds and at least one (Redis reads `WAIT n 0` as "wait
    /// forever", which would hang requests on a lost replica).
    ///
    /// Keep `timeout` below the connection's response timeout, or a
    /// missing acknowledgement shows up as a timed-out connection instead
    /// of a plain refusal (both fail closed).
    pub fn new(replicas: NonZeroU32, timeout: Duration) -> Self {
        let ms = timeout.as_nanos().div_ceil(1_000_000).max(1);
        Self {
            replicas,
            timeout_ms: u64::try_from(ms).unwrap_or(u64::MAX),
        }
    }

    /// How many replicas must acknowledge.
    pub fn replicas(&self) -> u32 {
        self.replicas.get()
    }

    /// How long the master waits for them.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `WAIT`'s timeout argument.
    pub(crate) fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
}

/// A security write that fewer replicas acknowledged than required: the
/// source of the [`StoreError::Unavailable`](tower_totp::store::StoreError)
/// the store then returns.
#[derive(Debug)]
pub(crate) struct TooFewReplicas {
    pub(crate) wanted: u32,
    pub(crate) acked: i64,
    pub(crate) timeout_ms: u64,
}

impl fmt::Display for TooFewReplicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} replicas acknowledged the write within {} ms",
            self.acked, self.wanted, self.timeout_ms
        )
    }
}

impl std::error::Error for TooFewReplicas {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        let one = NonZeroU32::MIN;
        assert_eq!(
            ReplicaAck::new(one, Duration::from_micros(1)).timeout_ms(),
            1
        );
        assert_eq!(
            ReplicaAck::new(one, Duration::from_micros(1500)).timeout_ms(),
            2
        );
        assert_eq!(ReplicaAck::new(one, Duration::MAX).timeout_ms(), u64::MAX);
    }
}
