//! [`RedisStore`]: the four store traits over one Redis connection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Authenticator, AuthenticatorId, ConsumeOutcome, EnrollmentStore, PendingEnrollment,
    RecoveryStore, ResyncCandidate, StepStore, StoreError, SyncState, ThrottleStore, UserStatus,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};

use crate::codec::{
    corrupt, encode_params, fixed20, parse_i64, parse_params, parse_secret, parse_text, parse_time,
    parse_u64,
};
use crate::conn::Conn;
use crate::error::store_error;
use crate::keys::UserKeys;
use crate::scripts;
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

/// A store in Redis, shared by every instance of a service that uses the
/// same server and prefix.
///
/// Each operation the traits require to be atomic is one Lua script, run
/// with `EVALSHA` in one round trip; [`status`](EnrollmentStore::status) is
/// one `MULTI`/`EXEC` round trip. Secrets are stored sealed, recovery codes
/// as hashes. See the crate docs for the key layout and
/// `docs/deployment.md` for persistence.
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisStore {
    /// Only the prefix: the connection's debug form would show the server
    /// address and maybe its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store over an existing connection manager, with the
    /// [`DEFAULT_PREFIX`]. Build the manager with [`connection_config`] (or
    /// settings of your own) to choose the timeouts.
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn: Conn::new(conn),
            prefix: Arc::from(DEFAULT_PREFIX),
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

    /// The connection manager, to share with other code.
    pub fn connection(&self) -> &ConnectionManager {
        self.conn.manager()
    }

    /// A session store on the same connection, so the service has one
    /// Redis client.
    pub fn session_store(&self) -> RedisSessionStore {
        RedisSessionStore::new(self.conn.manager().clone())
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

    /// Run `script` with `keys` and `args`: EVALSHA, one round trip (two
    /// more once after a server restart, to load it again).
    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut call = script.prepare_invoke();
        for k in keys {
            call.key(*k);
        }
        for a in args {
            call.arg(*a);
        }
        call.invoke_async(&mut self.conn.clone())
            .await
            .map_err(store_error)
    }
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

#[async_trait]
impl EnrollmentStore for RedisStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        let k = self.keys(user);
        let (epoch, enrolled): (Option<Vec<u8>>, bool) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(k.epoch())
            .cmd("EXISTS")
            .arg(k.auth())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        let epoch = match epoch {
            Some(e) => parse_u64(&e, "epoch")?,
            None => 0,
        };
        Ok(UserStatus { epoch, enrolled })
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = self
            .query(redis::cmd("HGETALL").arg(self.keys(user).auth()))
            .await?;
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

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
    ) -> Result<(), StoreError> {
        let key = self.keys(user).pending();
        let mut set = redis::cmd("HSET");
        set.arg(&key)
            .arg("id")
            .arg(pending.id.as_str())
            .arg("name")
            .arg(&pending.name)
            .arg("secret")
            .arg(pending.secret.to_bytes())
            .arg("params")
            .arg(encode_params(&pending.params)?)
            .arg("created")
            .arg(pending.created_at.as_millis().to_string());
        if let Some(replaces) = &pending.replaces {
            set.arg("replaces").arg(replaces.as_str());
        }
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .add_command(set)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(store_error)
    }

    async fn pending(&self, user: &UserId) -> Result<Option<PendingEnrollment>, StoreError> {
        let mut fields: BTreeMap<String, Vec<u8>> = self
            .query(redis::cmd("HGETALL").arg(self.keys(user).pending()))
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut take = |name: &str| {
            fields
                .remove(name)
                .ok_or_else(|| corrupt(format!("pending enrollment has no {name}")))
        };
        let id = parse_text(take("id")?, "pending enrollment id")?;
        let name = parse_text(take("name")?, "pending enrollment name")?;
        let secret = parse_secret(&take("secret")?, "pending enrollment secret")?;
        let params = parse_params(&take("params")?, "pending enrollment params")?;
        let created_at = parse_time(&take("created")?, "pending enrollment time")?;
        let replaces = fields
            .remove("replaces")
            .map(|r| parse_text(r, "replaced authenticator id"))
            .transpose()?
            .map(AuthenticatorId::new);
        Ok(Some(PendingEnrollment {
            id: AuthenticatorId::new(id),
            name,
            secret,
            params,
            created_at,
            replaces,
        }))
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        pending_id: &AuthenticatorId,
        step: u64,
        offset: i64,
        now: UnixTime,
    ) -> Result<Option<u64>, StoreError> {
        let k = self.keys(user);
        let epoch: Option<i64> = self
            .eval(
                &scripts::ACTIVATE,
                &[&k.pending(), &k.auth(), &k.epoch()],
                &[
                    pending_id.as_str().as_bytes(),
                    fixed20(step).as_bytes(),
                    offset.to_string().as_bytes(),
                    now.as_millis().to_string().as_bytes(),
                ],
            )
            .await?;
        epoch
            .map(|e| u64::try_from(e).map_err(|_| corrupt("negative epoch")))
            .transpose()
    }

    async fn revoke(&self, user: &UserId, id: &AuthenticatorId) -> Result<bool, StoreError> {
        let k = self.keys(user);
        self.eval(
            &scripts::REVOKE,
            &[&k.auth(), &k.epoch()],
            &[id.as_str().as_bytes()],
        )
        .await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<bool, StoreError> {
        self.eval(
            &scripts::RESEAL,
            &[&self.keys(user).auth()],
            &[id.as_str().as_bytes(), &secret.to_bytes()],
        )
        .await
    }

    async fn reset(&self, user: &UserId) -> Result<(), StoreError> {
        let k = self.keys(user);
        let _epoch: i64 = self
            .eval(
                &scripts::RESET,
                &[&k.auth(), &k.pending(), &k.recovery(), &k.epoch()],
                &[],
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl StepStore for RedisStore {
    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        let k = self.keys(user);
        let outcome: i64 = self
            .eval(
                &scripts::CONSUME_STEP,
                // The throttle key too: a consumed step clears it in the
                // same script.
                &[&k.auth(), &k.throttle()],
                &[
                    id.as_str().as_bytes(),
                    fixed20(step).as_bytes(),
                    offset.to_string().as_bytes(),
                ],
            )
            .await?;
        match outcome {
            0 => Ok(ConsumeOutcome::NotFound),
            1 => Ok(ConsumeOutcome::Consumed),
            2 => Ok(ConsumeOutcome::Replayed),
            other => Err(corrupt(format!("consume_step replied {other}"))),
        }
    }

    async fn set_resync_candidate(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        candidate: ResyncCandidate,
    ) -> Result<(), StoreError> {
        let _found: i64 = self
            .eval(
                &scripts::SET_RESYNC,
                &[&self.keys(user).auth()],
                &[
                    id.as_str().as_bytes(),
                    fixed20(candidate.step).as_bytes(),
                    candidate.offset.to_string().as_bytes(),
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
        let steps = ramp(now, policy);
        let head = [
            fixed20(now.as_millis()),
            policy.free_attempts().to_string(),
            (steps.len() - 1).to_string(),
        ];
        let mut args: Vec<&[u8]> = head.iter().map(|a| a.as_bytes()).collect();
        for s in &steps {
            args.push(s.until.as_bytes());
            args.push(s.ttl.as_bytes());
        }
        let (charged, until): (i64, Vec<u8>) = self
            .eval(
                &scripts::BEGIN_ATTEMPT,
                &[&self.keys(user).throttle()],
                &args,
            )
            .await?;
        let until = parse_time(&until, "throttle lockout")?;
        match charged {
            1 => Ok(Attempt::Allowed),
            0 => Ok(Attempt::Locked {
                retry_after: until.duration_since(now),
            }),
            other => Err(corrupt(format!("begin_attempt replied {other}"))),
        }
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
        let key = self.keys(user).recovery();
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        if !hashes.is_empty() {
            let mut add = redis::cmd("SADD");
            add.arg(&key);
            for h in &hashes {
                add.arg(&h.as_bytes()[..]);
            }
            pipe.add_command(add).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(store_error)
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<bool, StoreError> {
        self.eval(
            &scripts::CONSUME_RECOVERY,
            &[&self.keys(user).recovery()],
            &[&hash.as_bytes()[..]],
        )
        .await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.query(redis::cmd("SCARD").arg(self.keys(user).recovery()))
            .await
    }
}
