//! Service instances over one Redis, for the tests across instances.
//!
//! Each [`Instance`] is the test kit's reference app as one process of a
//! service would run it: the session guard and `SessionManagerLayer` over a
//! [`RedisSessionStore`], its own `TwoFactor` engine over its own
//! [`RedisStore`] connection. Instances built from one [`Shared`] act as one
//! service behind a load balancer: the same Redis and prefixes, the same
//! sealing key (each instance builds its own `Keyring` from the same bytes,
//! as each process would load it from a secret store), the same user
//! directory and the same [`ManualClock`]. A [`client`] sends each request
//! to whichever instance the test names (`client.on(&a)`), every request
//! bounded by [`BOUND`].

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::ops::Deref;
use std::time::Duration;

use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::http::StaticDirectory;
use tower_totp::seal::{Keyring, SealingKey};
use tower_totp::{ConfirmAs, TotpConfig, UserId, UserInfo, UserKind};
use tower_totp_redis::redis::aio::ConnectionManager;
use tower_totp_redis::{RedisSessionStore, RedisStore};
use tower_totp_testkit::app::{App, AppService, Target};
pub use tower_totp_testkit::app::{Client, Reply};
pub use tower_totp_testkit::phone::Phone;
use tower_totp_testkit::server::redis::{RedisServer, fresh_prefix};
use tower_totp_testkit::server::redis_cluster::RedisCluster;
use tower_totp_testkit::{START, STEP};

/// No request may take longer than this, whatever Redis does: the
/// connection settings promise about three seconds at worst.
pub const BOUND: Duration = Duration::from_secs(10);

/// The sealing key every instance loads.
const SEALING_KEY: [u8; 32] = [7; 32];

/// A browser with no cookies yet, each answer bounded by [`BOUND`].
pub fn client() -> Client {
    Client::new().bounded(BOUND)
}

/// What the instances of one service share.
#[derive(Clone)]
pub struct Shared {
    pub clock: ManualClock,
    pub users: StaticDirectory,
    config: TotpConfig,
    totp_prefix: String,
    session_prefix: String,
}

impl Shared {
    /// One service with `config`, under fresh key prefixes (tests sharing a
    /// server never see each other's keys).
    pub fn new(config: TotpConfig) -> Self {
        Self {
            clock: ManualClock::new(UnixTime::from_secs(START)),
            users: StaticDirectory::default(),
            config,
            totp_prefix: fresh_prefix(),
            session_prefix: format!("{}session:", fresh_prefix()),
        }
    }

    /// The default configuration.
    pub fn standard() -> Self {
        Self::new(TotpConfig::new("Acme").expect("config"))
    }

    /// An internal user whom the default policy asks for a code.
    pub fn user(&self, name: &str) -> UserId {
        self.users.insert(
            name,
            UserInfo {
                kind: UserKind::Internal,
                require_2fa: true,
                display_name: name.to_owned(),
            },
        );
        UserId::new(name)
    }

    /// An instance with a connection of its own to `server`, its sessions
    /// on the same connection (one Redis client per process).
    pub async fn instance(&self, name: &'static str, server: &RedisServer) -> Instance {
        let conn = server.manager().await;
        self.instance_on(name, conn.clone(), conn)
    }

    /// An instance whose TOTP store uses `store_conn` and whose sessions
    /// use `session_conn`.
    pub fn instance_on(
        &self,
        name: &'static str,
        store_conn: ConnectionManager,
        session_conn: ConnectionManager,
    ) -> Instance {
        self.instance_with(
            name,
            RedisStore::new(store_conn),
            RedisSessionStore::new(session_conn),
        )
    }

    /// An instance on a Redis Cluster: a cluster connection of its own
    /// (`RedisStore::connect_nodes` with every node), its sessions on it.
    pub async fn cluster_instance(&self, name: &'static str, cluster: &RedisCluster) -> Instance {
        let store = RedisStore::connect_nodes(&cluster.urls())
            .await
            .expect("a connection to the test cluster");
        let sessions = store.session_store();
        self.instance_with(name, store, sessions)
    }

    /// An instance over `store` and `sessions`, under this service's
    /// prefixes.
    pub fn instance_with(
        &self,
        name: &'static str,
        store: RedisStore,
        sessions: RedisSessionStore,
    ) -> Instance {
        let store = store.with_prefix(self.totp_prefix.clone());
        let sessions = sessions.with_prefix(self.session_prefix.clone());
        let config = self.config.clone();
        let app = App::setup()
            .store(store)
            .config(|_| config)
            .clock(self.clock.clone())
            .keyring(Keyring::new(1, SealingKey::from_bytes(SEALING_KEY)))
            .users(self.users.clone())
            .session_store(sessions)
            .session_guard()
            .build();
        Instance { name, app }
    }

    /// A key of `user` in the TOTP store (its `auth` hash): every key of
    /// the user is in this key's slot.
    pub fn user_key(&self, user: &UserId) -> String {
        format!("{{{}{}}}:auth", self.totp_prefix, user.as_str())
    }

    /// Move the shared clock on by one code step.
    pub fn next_step(&self) {
        self.clock.advance(STEP);
    }
}

/// One instance of the service: the app, and its name for messages.
#[derive(Clone)]
pub struct Instance {
    pub name: &'static str,
    app: App<RedisStore>,
}

impl Deref for Instance {
    type Target = App<RedisStore>;

    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

impl Target for Instance {
    fn service(&self) -> &AppService {
        &self.app.service
    }
}

impl Instance {
    /// Enrol `user` through this instance's engine (no HTTP) as their first
    /// authenticator, then move the clock to the next step so the
    /// confirming code is not the next one asked for: the user's phone.
    pub async fn enroll(&self, user: &UserId, clock: &ManualClock) -> Phone {
        let phone = self
            .app
            .enroll_as(user, ConfirmAs::FirstAuthenticator)
            .await;
        clock.advance(STEP);
        phone
    }
}
