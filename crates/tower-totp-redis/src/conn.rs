//! The connection both stores send their commands through: one Redis
//! server or a Redis Cluster, behind one [`ConnectionLike`], so the same
//! scripts and commands run on either.
//!
//! # One server
//!
//! The `redis` crate's [`ConnectionManager`] reconnects lazily: when a
//! connection attempt fails (Redis down), it keeps the failed attempt, and
//! the next command awaits that failure before the manager starts a new
//! attempt. So after Redis comes back, the first command of every process
//! (and every command sent at the same moment) would still fail, and the
//! layer would answer 503 to requests it could serve.
//!
//! [`Conn`] sends such a command once more. Only when the error is a
//! refused connection ([`RedisError::is_connection_refusal`]): then no
//! connection existed and the command never left this process, so sending
//! it again cannot run a script twice or charge a throttle attempt twice.
//! Any other error (a timeout, a connection dropped while a command was
//! on its way) is returned as it is, since the server may have run the
//! command.
//!
//! # A cluster
//!
//! The cluster connection routes each command by its first key's slot (a
//! script by its `KEYS`, a pipeline by its first keyed command), follows
//! `MOVED` and `ASK` redirections, refreshes its slot map after a failover
//! and reconnects by itself, all within its overall response timeout. It
//! may send a command again after a dropped connection; for our scripts
//! that is safe in the direction that matters: a step consumed by the
//! first run is a replay for the second, so a code is refused, never
//! accepted twice (the throttle may then count one attempt twice).

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A connection to one server or to a cluster. Cheap to clone; clones
/// share the connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server, with the second try after a refused connection.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Whether this is a cluster connection.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// Whether `result` failed before its command was sent.
fn never_sent<T>(result: &Result<T, RedisError>) -> bool {
    matches!(result, Err(e) if e.is_connection_refusal())
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(m) => Box::pin(async move {
                let first = m.send_packed_command(cmd).await;
                if never_sent(&first) {
                    return m.send_packed_command(cmd).await;
                }
                first
            }),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(m) => Box::pin(async move {
                let first = m.send_packed_commands(pipeline, offset, count).await;
                if never_sent(&first) {
                    return m.send_packed_commands(pipeline, offset, count).await;
                }
                first
            }),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(m) => m.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
