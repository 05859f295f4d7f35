//! The connection both stores send their commands through.
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

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A [`ConnectionManager`] that sends a command a second time when the
/// first could not connect. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(crate) struct Conn(ConnectionManager);

impl Conn {
    pub(crate) fn new(manager: ConnectionManager) -> Self {
        Self(manager)
    }

    /// The manager underneath.
    pub(crate) fn manager(&self) -> &ConnectionManager {
        &self.0
    }
}

/// Whether `result` failed before its command was sent.
fn never_sent<T>(result: &Result<T, RedisError>) -> bool {
    matches!(result, Err(e) if e.is_connection_refusal())
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let first = self.0.send_packed_command(cmd).await;
            if never_sent(&first) {
                return self.0.send_packed_command(cmd).await;
            }
            first
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let first = self.0.send_packed_commands(pipeline, offset, count).await;
            if never_sent(&first) {
                return self.0.send_packed_commands(pipeline, offset, count).await;
            }
            first
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}
