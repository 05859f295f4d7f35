//! Building a [`TwoFactor`]: the configuration and, unless told
//! otherwise, a memory store, the system clock, a random keyring and the
//! default key cache.

use std::sync::Arc;

use super::key_cache::{KeyCache, KeyCacheConfig};
use super::lockouts::Lockouts;
use super::{Inner, TwoFactor};
use crate::clock::{Clock, SystemClock};
use crate::config::TotpConfig;
use crate::error::Error;
use crate::events::SecurityEvents;
use crate::seal::Keyring;
use crate::store::{MemoryStore, TotpStore};

/// Builds a [`TwoFactor`]: memory store, system clock, a random keyring and
/// a key cache of 10,000 authenticators for 10 minutes
/// ([`key_cache`](Self::key_cache)) unless told otherwise.
#[derive(Debug)]
#[must_use]
pub struct TwoFactorBuilder {
    config: TotpConfig,
    store: Option<Arc<dyn TotpStore>>,
    clock: Option<Arc<dyn Clock>>,
    keys: Option<Keyring>,
    key_cache: KeyCacheConfig,
    events: Option<Arc<dyn SecurityEvents>>,
}

impl TwoFactorBuilder {
    /// Use `store` (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl TotpStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Use a shared store.
    pub fn shared_store(mut self, store: Arc<dyn TotpStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Use `clock` (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Seal secrets with `keys` (default: a random key that dies with the
    /// process, which only suits the memory store).
    pub fn keyring(mut self, keys: Keyring) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Keep opened, keyed HMAC states of authenticators between
    /// verifications (default: [`KeyCacheConfig::default`], at most 10,000
    /// authenticators for 10 minutes each). A login code then costs no
    /// unsealing (AES-256-GCM) and no HMAC keying while its authenticator
    /// is cached; a record re-sealed or re-enrolled, here or by another
    /// instance over the same store, is noticed on the next read and
    /// opened again. [`KeyCacheConfig::disabled`] keeps no secret state
    /// between requests. What is held, for how long, when it is wiped, and
    /// what an attacker who reads the process's memory gains from it:
    /// `docs/security.md`, "The key cache".
    pub fn key_cache(mut self, config: KeyCacheConfig) -> Self {
        self.key_cache = config;
        self
    }

    /// Tell `sink` of every security event (`tower_totp::events`):
    /// enrollments completed, authenticators revoked, recovery codes
    /// regenerated and used, administrator resets and lockouts, each after
    /// the change is stored (default: none).
    pub fn security_events(mut self, sink: impl SecurityEvents) -> Self {
        self.events = Some(Arc::new(sink));
        self
    }

    /// The engine.
    ///
    /// # Errors
    ///
    /// [`Error::Seal`] if no random key can be made for the default keyring.
    pub fn build(self) -> Result<TwoFactor, Error> {
        let keys = match self.keys {
            Some(k) => k,
            None => Keyring::ephemeral()?,
        };
        Ok(TwoFactor {
            inner: Arc::new(Inner {
                config: self.config,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                keys,
                key_cache: KeyCache::new(self.key_cache),
                events: self.events,
                lockouts: Lockouts::new(),
            }),
        })
    }
}

impl TwoFactor {
    /// Start building an engine with `config`.
    pub fn builder(config: TotpConfig) -> TwoFactorBuilder {
        TwoFactorBuilder {
            config,
            store: None,
            clock: None,
            keys: None,
            key_cache: KeyCacheConfig::default(),
            events: None,
        }
    }
}
