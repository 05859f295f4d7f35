//! Running one of our scripts, and `WAIT` for its replicas after it.
//!
//! A script goes out as `EVALSHA` in a pipeline, followed by `WAIT` when
//! replicas must acknowledge it ([`ReplicaAck`]). One pipeline is one
//! write on one connection: on a cluster it is routed by the script's keys
//! (which share one slot) to the master of that slot, so `WAIT` runs on the
//! node that ran the script, on the connection that wrote, right after it
//! (`WAIT` counts the replicas that have everything that connection wrote).
//! A `MOVED` reply (a failover the slot map has not seen yet) sends the
//! whole pipeline again to the new master: a redirected script never ran.
//!
//! After `NOSCRIPT` (a restarted server, a cluster node that never ran the
//! script) the pipeline is sent once more with `EVAL` and the source,
//! which runs the script and caches it on that node. Not `SCRIPT LOAD`: on
//! a cluster that goes to every node, and fails while one of them is down.

use redis::{Cmd, ErrorKind, RedisResult, ServerErrorKind, Value};
use tower_totp::store::StoreError;

use crate::ack::ReplicaAck;
use crate::conn::Conn;
use crate::error::store_error;
use crate::scripts::Lua;

/// What a script replied, and how many replicas `WAIT` counted after it
/// (`None` when no acknowledgement was asked for).
pub(crate) struct Ran {
    pub(crate) reply: Value,
    pub(crate) acked: Option<RedisResult<i64>>,
}

/// `EVALSHA <hash>` or `EVAL <source>`, with `keys` and `args`.
fn script_cmd(verb: &str, body: &str, keys: &[&str], args: &[&[u8]]) -> Cmd {
    let mut cmd = redis::cmd(verb);
    cmd.arg(body).arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// Run `script` on `conn`, then `WAIT` as `ack` says, in one round trip
/// (two after `NOSCRIPT`).
///
/// # Errors
///
/// The connection's errors and the script's own error replies, as store
/// errors. A failed `WAIT` is not an error here: [`Ran::acked`] holds it,
/// for the caller to judge (a script that wrote nothing needs no replica).
pub(crate) async fn run(
    conn: &Conn,
    script: &Lua,
    keys: &[&str],
    args: &[&[u8]],
    ack: Option<ReplicaAck>,
) -> Result<Ran, StoreError> {
    let mut conn = conn.clone();
    let mut ran = send(
        &mut conn,
        script_cmd("EVALSHA", script.hash(), keys, args),
        ack,
    )
    .await?;
    if matches!(&ran.0, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)) {
        ran = send(
            &mut conn,
            script_cmd("EVAL", script.code(), keys, args),
            ack,
        )
        .await?;
    }
    let (reply, acked) = ran;
    Ok(Ran {
        reply: reply.map_err(store_error)?,
        acked,
    })
}

/// One pipeline: `script`, and `WAIT` if `ack`.
async fn send(
    conn: &mut Conn,
    script: Cmd,
    ack: Option<ReplicaAck>,
) -> Result<(RedisResult<Value>, Option<RedisResult<i64>>), StoreError> {
    let mut pipe = redis::pipe();
    // Each reply on its own, so that the script's error reply (NOSCRIPT,
    // TOTPCORRUPT) and WAIT's count are told apart.
    pipe.ignore_errors().add_command(script);
    if let Some(ack) = ack {
        pipe.cmd("WAIT").arg(ack.replicas()).arg(ack.timeout_ms());
    }
    let mut replies: Vec<RedisResult<Value>> = pipe.query_async(conn).await.map_err(store_error)?;
    let acked = match (ack, replies.len()) {
        (None, 1) => None,
        (Some(_), 2) => replies
            .pop()
            .map(|wait| wait.and_then(|v| redis::from_redis_value::<i64>(v).map_err(Into::into))),
        _ => {
            return Err(crate::codec::corrupt(
                "a script's pipeline replied out of shape",
            ));
        }
    };
    let reply = replies
        .pop()
        .ok_or_else(|| crate::codec::corrupt("a script's pipeline replied nothing"))?;
    Ok((reply, acked))
}
