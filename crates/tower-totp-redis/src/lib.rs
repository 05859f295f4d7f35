//! A Redis store for [`tower_totp`]: several instances of a service share
//! one Redis (one server, or a Redis Cluster) and see the same
//! enrollments, used steps, drift, throttle and recovery codes. Plus
//! [`RedisSessionStore`], a `tower-sessions` store on the same connection,
//! so sessions are shared too.
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use tower_totp::store::TotpStore;
//! use tower_totp::{TotpConfig, TwoFactor, UserId};
//! use tower_totp_redis::RedisStore;
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379/")
//!     .await?
//!     .with_prefix("acme:totp:");
//! // Sessions on the same connection, for tower_sessions::SessionManagerLayer.
//! let sessions = store.session_store();
//!
//! let store: Arc<dyn TotpStore> = Arc::new(store);
//! # let keys = tower_totp::seal::Keyring::ephemeral()?;
//! let tfa = TwoFactor::builder(TotpConfig::new("Acme")?)
//!     .shared_store(Arc::clone(&store))
//!     .keyring(keys) // the same sealing keys on every instance
//!     .build()?;
//! let status = tfa.status(&UserId::new("alice")).await?;
//! assert!(!status.enrolled);
//! # let _ = sessions;
//! # Ok(())
//! # }
//! ```
//!
//! # What is atomic
//!
//! Every operation the store traits require to be atomic is one Lua script,
//! run with `EVALSHA` in one round trip (after `NOSCRIPT`, as after a
//! server restart, it is sent once more with `EVAL`, which loads it):
//! `consume_step` (the
//! compare-and-set of the last step together with the drift, deleting the
//! user's throttle key when it consumes), `begin_attempt`
//! (the throttle, mirroring `ThrottleState::begin` exactly),
//! `begin_verification` (the status, the authenticators and, if one of
//! them has the code's digit count, the same throttle charge: with
//! `consume_step` or `record_miss`, a code is two round trips),
//! `begin_confirmation` (the pending enrollment and the charge),
//! `consume_recovery_code` (a constant-time scan of the user's hashes, then
//! removal), `put_pending` (prune the expired, check the cap, add),
//! `activate_pending` (the `first_only` and cap checks, the activation, the
//! recovery codes when due and the throttle reset together), `revoke` (with
//! the recovery codes when it removes the last authenticator), `reseal`,
//! `reset` (recording when the user's sessions ended),
//! `replace_recovery_codes` and `record_miss` (one write whether or not it
//! keeps a resync candidate, so a plain miss and an out-of-window match
//! cost the server the same).
//! [`status`](tower_totp::store::EnrollmentStore::status), asked on every
//! request, is one `MULTI`/`EXEC` round trip (on a cluster one read-only
//! script, whose `MOVED` after a failover the cluster client follows);
//! `pending` and `remove_pending`
//! are one command each. Redis runs a script to its end before any other
//! command, so of many instances racing to use one code, exactly one wins.
//!
//! # Keys
//!
//! All of a user's keys share the hash tag `{<prefix><user>}` (prefix and
//! user id escaped so neither can end the tag), so they sit on one Redis
//! Cluster slot and a script can touch them together:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{prefix user}:epoch` | string | the epoch, grown with `INCR`; never expires |
//! | `{prefix user}:auth` | hash | authenticators, fields `name:<id>`, `secret:<id>` (sealed bytes), `params:<id>`, `created:<id>`, `last:<id>`, `offset:<id>`, `rstep:<id>`, `roff:<id>` |
//! | `{prefix user}:pending` | hash | pending enrollments, one per session that started one: fields `name:<id>`, `secret:<id>`, `params:<id>`, `created:<id>`, `replaces:<id>` |
//! | `{prefix user}:recovery` | set | recovery code hashes (32 bytes each) |
//! | `{prefix user}:throttle` | hash | `attempts`, `until`; expires by itself |
//! | `{prefix user}:sessions_ended` | string | when the last reset ended the user's sessions (ms); never expires |
//!
//! A pending hash written before issue 11 (one enrollment, fields without
//! `:<id>`) is never read as an enrollment, and the next `put_pending` for
//! that user deletes it: a user who was halfway through enrolling during
//! the upgrade starts again. Upgrade every instance together: an older
//! instance does not read the new layout.
//!
//! Steps and times are 20-digit zero-padded decimals, compared in the
//! scripts without ever becoming Lua numbers (doubles, exact only to
//! 2^53): `u64::MAX` is a valid step.
//!
//! The throttle key expires a *retention* (`ThrottlePolicy::retention`)
//! after its lockout ends: long enough that a guesser who waits for it to
//! expire never guesses faster than one who keeps going (for the default policy, 10,677 s, just under
//! three hours; at least twice the longest delay). A policy that would
//! need more than a year keeps the key until the next success.
//!
//! # Failures
//!
//! A server that cannot be reached, times out or refuses a write gives
//! [`StoreError::Unavailable`](tower_totp::store::StoreError::Unavailable);
//! data that does not decode (a key of the wrong type, a damaged number or
//! sealed secret) gives
//! [`StoreError::Corrupt`](tower_totp::store::StoreError::Corrupt), never a
//! panic. The layer fails closed on both (503). [`RedisStore::connect`]
//! uses [`connection_config`]: [`CONNECTION_TIMEOUT`] and
//! [`RESPONSE_TIMEOUT`] of one second each and [`CONNECTION_RETRIES`] retry,
//! so a call fails within about three seconds when Redis is gone, and
//! within about a second when its port refuses connections. The connection
//! manager reconnects by itself, and a call that could not connect at all
//! (its command never left the process) is sent once more on the new
//! connection: after Redis comes back on the same address, the very next
//! call works again with the same store. A call that timed out or lost its
//! connection on the way is never repeated, since Redis may have run it;
//! after a frozen Redis wakes up, the first call on each connection may
//! still fail.
//!
//! # Redis Cluster
//!
//! [`RedisStore::connect_nodes`] with several node URLs (or
//! [`RedisStore::new_cluster`] with a connection built from
//! [`cluster_config`]) puts the store and its sessions on a Redis Cluster.
//! The same scripts run there: each touches the keys of one user, which
//! share a hash tag and so a slot. A call is bounded by
//! [`CLUSTER_CALL_TIMEOUT`] with its retries and redirections, so during a
//! failover the users of the lost master get 503 until a replica is
//! promoted, then are served again by the same store.
//!
//! Replication is asynchronous, so on a cluster every security write (a
//! consumed step, a throttle charge, a used recovery code, an activation,
//! a revocation, a reset, replaced recovery codes) is followed by `WAIT`
//! in the same round trip ([`ReplicaAck`], by default one replica within
//! 500 ms): a write that too few replicas acknowledged fails with
//! [`StoreError::Unavailable`](tower_totp::store::StoreError::Unavailable)
//! (503), so a code is accepted only once a replica has its step, and the
//! replica promoted after its master dies refuses the code as a replay.
//! `WAIT` holds up the connection it runs on, so
//! [`RedisStore::connect_nodes`] sends acknowledged writes over
//! connections of their own, and concurrent codes wait for their replicas
//! together. `WAIT` does not make Redis strongly consistent:
//! `docs/deployment.md`, "Redis Cluster", says what it promises.
//!
//! [`_guide::deployment`] (`docs/deployment.md`) covers running several
//! instances: what lives where, and which Redis persistence settings keep
//! enrollments across a restart.

#![forbid(unsafe_code)]

/// The guide to running several instances on one Redis
/// (`docs/deployment.md` in the repository), here so that its examples are
/// compiled as doc tests. Only rustdoc reads it: the Markdown lives outside
/// this crate's folder.
#[cfg(any(doc, doctest))]
pub mod _guide {
    #[doc = include_str!("../../../docs/deployment.md")]
    pub mod deployment {}
}

mod ack;
mod codec;
mod conn;
mod error;
mod invoke;
mod keys;
mod lanes;
mod scripts;
mod session;
mod store;
mod throttle;

pub use ack::ReplicaAck;
pub use session::{DEFAULT_SESSION_PREFIX, RedisSessionStore};
pub use store::{
    CLUSTER_CALL_TIMEOUT, CLUSTER_RETRIES, CONNECTION_RETRIES, CONNECTION_TIMEOUT, DEFAULT_PREFIX,
    RESPONSE_TIMEOUT, RedisStore, cluster_config, connection_config,
};

/// The `redis` crate this store is built on, to build a
/// [`ConnectionManager`](redis::aio::ConnectionManager) of your own.
pub use redis;
