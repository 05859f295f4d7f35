//! [`RedisStore`]: the four store traits over one Redis connection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Client, FromRedisValue};
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StepStore, StoreError, SyncState, ThrottleStore,
    UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};

use crate::ack::{ReplicaAck, TooFewReplicas};
use crate::codec::{
    corrupt, encode_params, fixed20, parse_i64, parse_params, parse_secret, parse_text, parse_time,
    parse_u64,
};
use crate::conn::Conn;
use crate::error::store_error;
use crate::invoke;
use crate::keys::UserKeys;
use crate::lanes::{ACK_LANES, AckLanes};
use crate::scripts::{self, Lua};
use crate::session::RedisSessionStore;
use crate::throttle::ramp;

/// The key prefix unless [`RedisStore::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "tower-totp:";

/// How long [`RedisStore::connect`] waits for a TCP connection (and the
/// handshake) to Redis before giving up on one attempt.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`RedisStore::connect`]'s connection waits for the reply to one
/// command (or script) before failing it.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How many times a lost connection is retried within one call, after the
/// first attempt, before the call fails.
pub const CONNECTION_RETRIES: usize = 1;

/// The connection settings [`RedisStore::connect`] uses: fail fast, so a
/// request waits at most about three seconds for an unreachable Redis
/// (one attempt and [`CONNECTION_RETRIES`] retry of [`CONNECTION_TIMEOUT`]
/// each, at most half a second apart, then [`RESPONSE_TIMEOUT`]) and
/// usually fails at once (a refused connection). The layer then answers
/// 503. The manager reconnects by itself; a call that finds it still
/// holding a refused connection attempt is sent once more (it never
/// reached Redis), so the first request after Redis comes back works.
///
/// Start from this when building your own [`ConnectionManager`] for
/// [`RedisStore::new`], to change the timeouts or share the manager with
/// other code.
pub fn connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(CONNECTION_RETRIES)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_millis(500))
}

/// How long one call on a cluster may take in all, with its retries,
/// redirections and reconnections, before it fails.
pub const CLUSTER_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a cluster call is sent again (after a `MOVED` during a
/// failover, a lost node, a refused connection) within
/// [`CLUSTER_CALL_TIMEOUT`].
pub const CLUSTER_RETRIES: u32 = 3;

/// The cluster client settings [`RedisStore::connect_nodes`] uses with
/// several `nodes` (URLs of any of the cluster's nodes; it learns the rest
/// from them): [`CONNECTION_TIMEOUT`] and [`RESPONSE_TIMEOUT`] per attempt
/// as on one server, at most [`CLUSTER_RETRIES`] retries 50 to 500 ms
/// apart, and the whole call within [`CLUSTER_CALL_TIMEOUT`]. During a
/// failover a call to the lost master's slots fails within that time (the
/// layer answers 503) until the cluster has promoted a replica and the
/// client has read the new slot map, then works again.
///
/// Start from this to build your own [`ClusterConnection`] for
/// [`RedisStore::new_cluster`].
pub fn cluster_config<T: redis::IntoConnectionInfo>(
    nodes: impl IntoIterator<Item = T>,
) -> ClusterClientBuilder {
    ClusterClientBuilder::new(nodes)
        .connection_timeout(CONNECTION_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .overall_response_timeout(Some(CLUSTER_CALL_TIMEOUT))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(50)
        .max_retry_wait(500)
}

/// A store in Redis, shared by every instance of a service that uses the
/// same server and prefix.
///
/// Each operation the traits require to be atomic is one Lua script, run
/// with `EVALSHA` in one round trip; [`status`](EnrollmentStore::status) is
/// one `MULTI`/`EXEC` round trip (a read-only script on a cluster). Secrets are stored sealed, recovery codes
/// as hashes. See the crate docs for the key layout and
/// `docs/deployment.md` for persistence.
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// Where acknowledged writes go: `conn` itself, or connections of
    /// their own (see [`AckLanes`]).
    lanes: AckLanes,
    prefix: Arc<str>,
    ack: Option<ReplicaAck>,
}

impl fmt::Debug for RedisStore {
    /// Only the prefix: the connection's debug form would show the server
    /// address and maybe its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("cluster", &self.conn.is_cluster())
            .field("replica_ack", &self.ack)
            .field("ack_connections", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store over an existing connection manager, with the
    /// [`DEFAULT_PREFIX`]. Build the manager with [`connection_config`] (or
    /// settings of your own) to choose the timeouts.
    ///
    /// Security writes wait for no replica: see [`RedisStore::with_replica_ack`]
    /// for a server with replicas.
    pub fn new(conn: ConnectionManager) -> Self {
        let conn = Conn::Single(conn);
        Self {
            lanes: AckLanes::new(vec![conn.clone()]),
            conn,
            prefix: Arc::from(DEFAULT_PREFIX),
            ack: None,
        }
    }

    /// A store over a Redis Cluster connection, with the [`DEFAULT_PREFIX`]
    /// and [`ReplicaAck::CLUSTER_DEFAULT`]: every security write waits for
    /// one replica of its master, so that a failover keeps it. Build the
    /// connection with [`cluster_config`] (or settings of your own).
    ///
    /// Every script touches the keys of one user, which share one hash tag
    /// and so one slot: the same scripts run as on one server.
    ///
    /// Acknowledged writes go through `conn` too, one `WAIT` at a time per
    /// node (`WAIT` holds up the connection it runs on);
    /// [`RedisStore::connect_nodes`] opens connections of their own for
    /// them, so that concurrent codes wait for their replicas together.
    pub fn new_cluster(conn: ClusterConnection) -> Self {
        Self::on_cluster(conn, Vec::new())
    }

    /// `conn` for everything but acknowledged writes, which take turns
    /// over `lanes` (over `conn` too if there are none).
    fn on_cluster(conn: ClusterConnection, lanes: Vec<ClusterConnection>) -> Self {
        let conn = Conn::Cluster(conn);
        let mut lanes: Vec<Conn> = lanes.into_iter().map(Conn::Cluster).collect();
        if lanes.is_empty() {
            lanes.push(conn.clone());
        }
        Self {
            conn,
            lanes: AckLanes::new(lanes),
            prefix: Arc::from(DEFAULT_PREFIX),
            ack: Some(ReplicaAck::CLUSTER_DEFAULT),
        }
    }

    /// Connect to the server at `url` (`redis://host:port/db`, or
    /// `rediss://` with the `redis` crate's TLS features) with
    /// [`connection_config`], waiting for the first connection.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the URL does not parse or the server
    /// cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(StoreError::unavailable)?;
        let conn = ConnectionManager::new_with_config(client, connection_config())
            .await
            .map_err(StoreError::unavailable)?;
        Ok(Self::new(conn))
    }

    /// Connect to one server or to a cluster: one URL is one server, as
    /// [`RedisStore::connect`]; several are nodes of one Redis Cluster
    /// (any of them, it finds the others), connected with
    /// [`cluster_config`] and waiting for the slot map, as
    /// [`RedisStore::new_cluster`].
    ///
    /// ```no_run
    /// # async fn doc() -> Result<(), tower_totp::store::StoreError> {
    /// use tower_totp_redis::RedisStore;
    ///
    /// let single = RedisStore::connect_nodes(&["redis://127.0.0.1:6379/"]).await?;
    /// let cluster = RedisStore::connect_nodes(&[
    ///     "redis://127.0.0.1:7000/",
    ///     "redis://127.0.0.1:7001/",
    ///     "redis://127.0.0.1:7002/",
    /// ])
    /// .await?;
    /// # let _ = (single, cluster);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if there is no URL, one does not parse,
    /// or no server (no cluster node) can be reached.
    pub async fn connect_nodes(urls: &[impl AsRef<str>]) -> Result<Self, StoreError> {
        match urls {
            [] => Err(StoreError::unavailable("no Redis URL given")),
            [url] => Self::connect(url.as_ref()).await,
            many => {
                let nodes = many.iter().map(|u| u.as_ref()).collect::<Vec<_>>();
                let client: ClusterClient = cluster_config(nodes)
                    .build()
                    .map_err(StoreError::unavailable)?;
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(StoreError::unavailable)?;
                let mut lanes = Vec::with_capacity(ACK_LANES);
                for _ in 0..ACK_LANES {
                    lanes.push(
                        client
                            .get_async_connection()
                            .await
                            .map_err(StoreError::unavailable)?,
                    );
                }
                Ok(Self::on_cluster(conn, lanes))
            }
        }
    }

    /// After each security write (a consumed step, a throttle charge, a
    /// used recovery code, an activation, a revocation, a reset, replaced
    /// recovery codes), wait until `ack` says enough replicas have it;
    /// otherwise the call fails with [`StoreError::Unavailable`] and the
    /// layer answers 503 (the write stays on the master: a step consumed
    /// there is refused as a replay afterwards, never accepted twice).
    ///
    /// On by default ([`ReplicaAck::CLUSTER_DEFAULT`]) on a cluster
    /// connection; off by default on one server, where it is for a server
    /// with replicas (Sentinel, or a managed Redis that fails over).
    #[must_use]
    pub fn with_replica_ack(mut self, ack: ReplicaAck) -> Self {
        self.ack = Some(ack);
        self
    }

    /// Wait for no replica after a security write: a failover right after
    /// a write may then lose it (and accept a used code once more). For a
    /// cluster without replicas, or tests.
    #[must_use]
    pub fn without_replica_ack(mut self) -> Self {
        self.ack = None;
        self
    }

    /// The acknowledgement security writes wait for, if any.
    pub fn replica_ack(&self) -> Option<ReplicaAck> {
        self.ack
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// Use `prefix` before every key instead of [`DEFAULT_PREFIX`]: several
    /// applications (or tests) can share one server under different
    /// prefixes.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection manager, to share with other code; `None` on a
    /// cluster (see [`RedisStore::cluster_connection`]).
    pub fn connection(&self) -> Option<&ConnectionManager> {
        match &self.conn {
            Conn::Single(m) => Some(m),
            Conn::Cluster(_) => None,
        }
    }

    /// The cluster connection, to share with other code; `None` on one
    /// server.
    pub fn cluster_connection(&self) -> Option<&ClusterConnection> {
        match &self.conn {
            Conn::Single(_) => None,
            Conn::Cluster(c) => Some(c),
        }
    }

    /// A session store on the same connection (one server or the
    /// cluster), so the service has one Redis client.
    pub fn session_store(&self) -> RedisSessionStore {
        RedisSessionStore::on(self.conn.clone())
    }

    fn keys(&self, user: &UserId) -> UserKeys {
        UserKeys::new(&self.prefix, user)
    }

    /// Run one command.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(store_error)
    }

    /// Run `script` with `keys` and `args`: EVALSHA, one round trip (one
    /// more once after a server restart, to load it again).
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Lua,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let ran = invoke::run(&self.conn, script, keys, args, None).await?;
        decode(ran.reply)
    }

    /// [`RedisStore::eval`] of a security write: with the replica
    /// acknowledgement (`WAIT` in the same round trip) when the store asks
    /// for one. If `wrote` says the reply is a write that must be kept and
    /// fewer replicas than asked acknowledged it, the call fails with
    /// [`StoreError::Unavailable`]. A reply that wrote nothing (a replay, a
    /// code that matched nothing) needs no replica.
    async fn eval_acked<T: FromRedisValue>(
        &self,
        script: &Lua,
        keys: &[&str],
        args: &[&[u8]],
        wrote: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        let ran = match self.ack {
            Some(ack) => invoke::run(self.lanes.pick(), script, keys, args, Some(ack)).await?,
            None => invoke::run(&self.conn, script, keys, args, None).await?,
        };
        let reply = decode(ran.reply)?;
        if let (Some(ack), Some(acked)) = (self.ack, ran.acked)
            && wrote(&reply)
        {
            check_ack(ack, acked)?;
        }
        Ok(reply)
    }
}

/// A script's reply as `T`; a reply of another shape is corrupt data.
fn decode<T: FromRedisValue>(reply: redis::Value) -> Result<T, StoreError> {
    T::from_redis_value(reply).map_err(|e| store_error(e.into()))
}

/// Whether `WAIT` counted enough replicas for `ack`.
fn check_ack(ack: ReplicaAck, acked: redis::RedisResult<i64>) -> Result<(), StoreError> {
    let acked = acked.map_err(StoreError::unavailable)?;
    if acked >= i64::from(ack.replicas()) {
        return Ok(());
    }
    Err(StoreError::unavailable(TooFewReplicas {
        wanted: ack.replicas(),
        acked,
        timeout_ms: ack.timeout_ms(),
    }))
}

/// The fields of one authenticator in the `auth` hash (`<field>:<id>`).
#[derive(Default)]
struct AuthFields {
    name: Option<Vec<u8>>,
    secret: Option<Vec<u8>>,
    params: Option<Vec<u8>>,
    created: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
    offset: Option<Vec<u8>>,
    rstep: Option<Vec<u8>>,
    roff: Option<Vec<u8>>,
}

/// The fields of pending enrollment `id` in the `pending` hash, in the
/// order [`EnrollmentStore::pending`] reads them.
fn pending_fields(id: &AuthenticatorId) -> [String; 5] {
    ["name", "secret", "params", "created", "replaces"].map(|f| format!("{f}:{}", id.as_str()))
}

fn required(v: Option<Vec<u8>>, id: &str, field: &str) -> Result<Vec<u8>, StoreError> {
    v.ok_or_else(|| corrupt(format!("authenticator {id} has no {field}")))
}

impl AuthFields {
    fn decode(self, id: String) -> Result<Authenticator, StoreError> {
        let what = |field: &str| format!("{field} of authenticator {id}");
        let name = parse_text(required(self.name, &id, "name")?, &what("name"))?;
        let secret = parse_secret(&required(self.secret, &id, "secret")?, &what("secret"))?;
        let params = parse_params(&required(self.params, &id, "params")?, &what("params"))?;
        let created_at = parse_time(&required(self.created, &id, "created")?, &what("created"))?;
        let last_step = self
            .last
            .map(|v| parse_u64(&v, &what("last step")))
            .transpose()?;
        let offset = match self.offset {
            Some(v) => parse_i64(&v, &what("offset"))?,
            None => 0,
        };
        let resync = match (self.rstep, self.roff) {
            // Written back empty by a plain miss (`scripts::RECORD_MISS`).
            (Some(step), Some(offset)) if step.is_empty() && offset.is_empty() => None,
            (Some(step), Some(offset)) => Some(ResyncCandidate {
                step: parse_u64(&step, &what("resync step"))?,
                offset: parse_i64(&offset, &what("resync offset"))?,
            }),
            (None, None) => None,
            _ => return Err(corrupt(format!("half a resync candidate for {id}"))),
        };
        Ok(Authenticator {
            id: AuthenticatorId::new(id),
            name,
            secret,
            params,
            created_at,
            sync: SyncState {
                last_step,
                offset,
                resync,
            },
        })
    }
}

/// The status from its three keys: the epoch, whether the `auth` hash
/// exists, the end of sessions.
fn decode_status(
    epoch: Option<Vec<u8>>,
    enrolled: bool,
    ended: Option<Vec<u8>>,
) -> Result<UserStatus, StoreError> {
    let epoch = match epoch {
        Some(e) => parse_u64(&e, "epoch")?,
        None => 0,
    };
    let sessions_ended_at = ended
        .map(|t| parse_time(&t, "end of sessions"))
        .transpose()?;
    Ok(UserStatus {
        epoch,
        enrolled,
        sessions_ended_at,
    })
}

/// The authenticators from the `auth` hash's fields, oldest first.
fn decode_authenticators(
    fields: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
) -> Result<Vec<Authenticator>, StoreError> {
    let mut by_id: BTreeMap<String, AuthFields> = BTreeMap::new();
    for (field, value) in fields {
        let field = parse_text(field, "authenticator field name")?;
        let Some((kind, id)) = field.split_once(':') else {
            return Err(corrupt(format!("authenticator field {field:?}")));
        };
        let a = by_id.entry(id.to_owned()).or_default();
        let slot = match kind {
            "name" => &mut a.name,
            "secret" => &mut a.secret,
            "params" => &mut a.params,
            "created" => &mut a.created,
            "last" => &mut a.last,
            "offset" => &mut a.offset,
            "rstep" => &mut a.rstep,
            "roff" => &mut a.roff,
            _ => return Err(corrupt(format!("authenticator field {field:?}"))),
        };
        *slot = Some(value);
    }
    let mut list = by_id
        .into_iter()
        .map(|(id, fields)| fields.decode(id))
        .collect::<Result<Vec<_>, _>>()?;
    // Oldest first, as they were added.
    list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(list)
}

/// Pending enrollment `id` from its fields, in [`pending_fields`]' order.
fn decode_pending(
    id: &AuthenticatorId,
    [name, secret, params, created, replaces]: [Option<Vec<u8>>; 5],
) -> Result<Option<PendingEnrollment>, StoreError> {
    let Some(name) = name else {
        if secret.is_some() || params.is_some() || created.is_some() || replaces.is_some() {
            return Err(corrupt(format!("pending enrollment {id} has no name")));
        }
        return Ok(None);
    };
    let what = |field: &str| format!("{field} of pending enrollment {id}");
    let take = |v: Option<Vec<u8>>, field: &str| {
        v.ok_or_else(|| corrupt(format!("pending enrollment {id} has no {field}")))
    };
    Ok(Some(PendingEnrollment {
        id: id.clone(),
        name: parse_text(name, &what("name"))?,
        secret: parse_secret(&take(secret, "secret")?, &what("secret"))?,
        params: parse_params(&take(params, "params")?, &what("params"))?,
        created_at: parse_time(&take(created, "created")?, &what("creation time"))?,
        replaces: replaces
            .map(|r| parse_text(r, &what("replaced id")))
            .transpose()?
            .map(AuthenticatorId::new),
    }))
}

/// The charge's arguments for [`scripts::BEGIN_ATTEMPT`] and the scripts
/// that charge with it: now, the free attempts, the ramp.
struct ChargeArgs {
    head: [String; 3],
    steps: Vec<crate::throttle::Step>,
}

impl ChargeArgs {
    fn new(now: UnixTime, policy: &ThrottlePolicy) -> Self {
        let steps = ramp(now, policy);
        let head = [
            fixed20(now.as_millis()),
            policy.free_attempts().to_string(),
            (steps.len() - 1).to_string(),
        ];
        Self { head, steps }
    }

    fn push_onto<'a>(&'a self, args: &mut Vec<&'a [u8]>) {
        args.extend(self.head.iter().map(|a| a.as_bytes()));
        for s in &self.steps {
            args.push(s.until.as_bytes());
            args.push(s.ttl.as_bytes());
        }
    }
}

/// A charging script's answer: `-1` nothing charged, `0` locked until
/// `until`, `1` charged.
fn decode_charge(charged: i64, until: &[u8], now: UnixTime) -> Result<Option<Attempt>, StoreError> {
    match charged {
        -1 => Ok(None),
        1 => Ok(Some(Attempt::Allowed)),
        0 => {
            let until = parse_time(until, "throttle lockout")?;
            Ok(Some(Attempt::Locked {
                retry_after: until.duration_since(now),
            }))
        }
        other => Err(corrupt(format!("throttle charge replied {other}"))),
    }
}

#[async_trait]
impl EnrollmentStore for RedisStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        let k = self.keys(user);
        type Reply = (Option<Vec<u8>>, bool, Option<Vec<u8>>);
        if self.conn.is_cluster() {
            // A script, not MULTI/EXEC: the cluster client reads a
            // transaction's `MOVED` (after a failover) only as EXECABORT,
            // which it neither follows nor learns the new slot map from,
            // so the user's status would fail until some other command
            // refreshed the map. A script's `MOVED` is followed.
            let (epoch, enrolled, ended): Reply = self
                .eval(
                    &scripts::STATUS,
                    &[&k.epoch(), &k.auth(), &k.sessions_ended()],
                    &[],
                )
                .await?;
            return decode_status(epoch, enrolled, ended);
        }
        let (epoch, enrolled, ended): Reply = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(k.epoch())
            .cmd("EXISTS")
            .arg(k.auth())
            .cmd("GET")
            .arg(k.sessions_ended())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        decode_status(epoch, enrolled, ended)
    }

    /// Every answer is a round trip to Redis: never at hand.
    fn status_now(&self, _user: &UserId) -> tower_totp::store::StatusLookup {
        tower_totp::store::StatusLookup::NotAtHand
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = self
            .query(redis::cmd("HGETALL").arg(self.keys(user).auth()))
            .await?;
        decode_authenticators(fields)
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        let head = [
            pending.id.as_str().to_owned(),
            fixed20(limits.expired_before.as_millis()),
            limits.max.to_string(),
        ];
        let params = encode_params(&pending.params)?;
        let secret = pending.secret.to_bytes();
        let created = fixed20(pending.created_at.as_millis());
        let mut args: Vec<&[u8]> = head.iter().map(|a| a.as_bytes()).collect();
        args.extend([
            pending.name.as_bytes(),
            &secret,
            params.as_bytes(),
            created.as_bytes(),
        ]);
        if let Some(replaces) = &pending.replaces {
            args.push(replaces.as_str().as_bytes());
        }
        let stored: i64 = self
            .eval(&scripts::PUT_PENDING, &[&self.keys(user).pending()], &args)
            .await?;
        match stored {
            1 => Ok(PutPending::Stored),
            0 => Ok(PutPending::TooMany),
            other => Err(corrupt(format!("put_pending replied {other}"))),
        }
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        let fields = pending_fields(id);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys(user).pending()).arg(&fields);
        let values: Vec<Option<Vec<u8>>> = self.query(&cmd).await?;
        let values: [Option<Vec<u8>>; 5] = values
            .try_into()
            .map_err(|_| corrupt("HMGET of a pending enrollment"))?;
        decode_pending(id, values)
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        let k = self.keys(user);
        let charge = ChargeArgs::new(now, policy);
        let digits = digits.map(|d| d.to_string()).unwrap_or_default();
        let mut args: Vec<&[u8]> = vec![id.as_str().as_bytes(), digits.as_bytes()];
        charge.push_onto(&mut args);
        type Reply = (
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            i64,
            Vec<u8>,
        );
        let (name, secret, params, created, replaces, charged, until): Reply = self
            .eval_acked(
                &scripts::BEGIN_CONFIRMATION,
                &[&k.pending(), &k.throttle()],
                &args,
                |r: &Reply| r.5 == 1,
            )
            .await?;
        Ok(ConfirmationStart {
            pending: decode_pending(id, [name, secret, params, created, replaces])?,
            attempt: decode_charge(charged, &until, now)?,
        })
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        // One command: atomic without a script.
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.keys(user).pending()).arg(&pending_fields(id));
        self.query::<i64>(&cmd).await.map(drop)
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        let k = self.keys(user);
        let head = [
            activation.pending_id.as_str().to_owned(),
            fixed20(activation.step),
            activation.offset.to_string(),
            activation.now.as_millis().to_string(),
            if activation.first_only { "1" } else { "0" }.to_owned(),
            activation.max_authenticators.to_string(),
        ];
        let mut args: Vec<&[u8]> = head.iter().map(|a| a.as_bytes()).collect();
        args.extend(activation.recovery.iter().map(|h| &h.as_bytes()[..]));
        let (outcome, epoch, issued): (i64, Vec<u8>, i64) = self
            .eval_acked(
                &scripts::ACTIVATE,
                &[
                    &k.pending(),
                    &k.auth(),
                    &k.epoch(),
                    &k.recovery(),
                    &k.throttle(),
                ],
                &args,
                |r: &(i64, Vec<u8>, i64)| r.0 == 3,
            )
            .await?;
        match outcome {
            0 => Ok(Activated::NoPending),
            1 => Ok(Activated::AlreadyEnrolled),
            2 => Ok(Activated::TooMany),
            3 => Ok(Activated::Done {
                epoch: parse_u64(&epoch, "epoch")?,
                recovery_issued: issued == 1,
            }),
            other => Err(corrupt(format!("activate_pending replied {other}"))),
        }
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        let k = self.keys(user);
        let revoked: bool = self
            .eval_acked(
                &scripts::REVOKE,
                &[&k.auth(), &k.epoch(), &k.recovery()],
                &[id.as_str().as_bytes()],
                |revoked| *revoked,
            )
            .await?;
        Ok(if revoked {
            RevokeOutcome::Revoked
        } else {
            RevokeOutcome::NotFound
        })
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        let resealed: bool = self
            .eval(
                &scripts::RESEAL,
                &[&self.keys(user).auth()],
                &[id.as_str().as_bytes(), &secret.to_bytes()],
            )
            .await?;
        Ok(if resealed {
            ResealOutcome::Resealed
        } else {
            ResealOutcome::NotFound
        })
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        let k = self.keys(user);
        let _done: i64 = self
            .eval_acked(
                &scripts::RESET,
                &[
                    &k.auth(),
                    &k.pending(),
                    &k.recovery(),
                    &k.epoch(),
                    &k.sessions_ended(),
                ],
                &[now.as_millis().to_string().as_bytes()],
                |_| true,
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl StepStore for RedisStore {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        let k = self.keys(user);
        let charge = ChargeArgs::new(now, policy);
        let digits = digits.map(|d| d.to_string()).unwrap_or_default();
        let mut args: Vec<&[u8]> = vec![digits.as_bytes()];
        charge.push_onto(&mut args);
        type Reply = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<Vec<u8>>, i64, Vec<u8>);
        let (epoch, ended, fields, charged, until): Reply = self
            .eval_acked(
                &scripts::BEGIN_VERIFICATION,
                &[&k.epoch(), &k.auth(), &k.sessions_ended(), &k.throttle()],
                &args,
                |r: &Reply| r.3 == 1,
            )
            .await?;
        // HGETALL's flat list inside the script's reply: field, value, ...
        if fields.len() % 2 != 0 {
            return Err(corrupt("begin_verification's authenticator fields"));
        }
        let enrolled = !fields.is_empty();
        let mut flat = fields.into_iter();
        let pairs = std::iter::from_fn(|| Some((flat.next()?, flat.next()?)));
        Ok(VerificationStart {
            status: decode_status(epoch, enrolled, ended)?,
            authenticators: decode_authenticators(pairs)?,
            attempt: decode_charge(charged, &until, now)?,
        })
    }

    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        let k = self.keys(user);
        let outcome: i64 = self
            .eval_acked(
                &scripts::CONSUME_STEP,
                // The throttle key too: a consumed step clears it in the
                // same script.
                &[&k.auth(), &k.throttle()],
                &[
                    id.as_str().as_bytes(),
                    fixed20(step).as_bytes(),
                    offset.to_string().as_bytes(),
                ],
                // The write a failover must keep above all: the step.
                |outcome| *outcome == 1,
            )
            .await?;
        match outcome {
            0 => Ok(ConsumeOutcome::NotFound),
            1 => Ok(ConsumeOutcome::Consumed),
            2 => Ok(ConsumeOutcome::Replayed),
            other => Err(corrupt(format!("consume_step replied {other}"))),
        }
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        // The same script and arguments of the same shape for both forms;
        // the script makes the same one write for both (see RECORD_MISS).
        let (id, c) = match &candidate {
            Some((id, c)) => (id.as_str(), *c),
            None => ("", ResyncCandidate { step: 0, offset: 0 }),
        };
        let _written: i64 = self
            .eval(
                &scripts::RECORD_MISS,
                &[&self.keys(user).auth()],
                &[
                    id.as_bytes(),
                    fixed20(c.step).as_bytes(),
                    c.offset.to_string().as_bytes(),
                ],
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ThrottleStore for RedisStore {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        let charge = ChargeArgs::new(now, policy);
        let mut args = Vec::new();
        charge.push_onto(&mut args);
        let (charged, until): (i64, Vec<u8>) = self
            .eval_acked(
                &scripts::BEGIN_ATTEMPT,
                &[&self.keys(user).throttle()],
                &args,
                |r: &(i64, Vec<u8>)| r.0 == 1,
            )
            .await?;
        decode_charge(charged, &until, now)?.ok_or_else(|| corrupt("begin_attempt charged nothing"))
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.query(redis::cmd("DEL").arg(self.keys(user).throttle()))
            .await
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        let (attempts, until): (Option<Vec<u8>>, Option<Vec<u8>>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys(user).throttle())
                    .arg("attempts")
                    .arg("until"),
            )
            .await?;
        let attempts = match attempts {
            Some(a) => u32::try_from(parse_u64(&a, "throttle attempts")?)
                .map_err(|_| corrupt("throttle attempts out of range"))?,
            None => 0,
        };
        let locked_until = match until {
            Some(u) => parse_time(&u, "throttle lockout")?,
            None => UnixTime::EPOCH,
        };
        Ok(ThrottleState {
            attempts,
            locked_until,
        })
    }
}

#[async_trait]
impl RecoveryStore for RedisStore {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        let args: Vec<&[u8]> = hashes.iter().map(|h| &h.as_bytes()[..]).collect();
        let _replaced: i64 = self
            .eval_acked(
                &scripts::REPLACE_RECOVERY,
                &[&self.keys(user).recovery()],
                &args,
                |_| true,
            )
            .await?;
        Ok(())
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        let consumed: bool = self
            .eval_acked(
                &scripts::CONSUME_RECOVERY,
                &[&self.keys(user).recovery()],
                &[&hash.as_bytes()[..]],
                |consumed| *consumed,
            )
            .await?;
        Ok(if consumed {
            RecoveryOutcome::Consumed
        } else {
            RecoveryOutcome::NoMatch
        })
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.query(redis::cmd("SCARD").arg(self.keys(user).recovery()))
            .await
    }
}
