//! The key cache: each authenticator's opened, keyed HMAC state, kept
//! between verifications so that unsealing (AES-256-GCM) and the HMAC key
//! schedule leave the hot path of a login code.
//!
//! An entry is keyed by (user, authenticator) and carries the *version* of
//! the sealed record it was opened from: the record's nonce and
//! authentication tag, which change with every seal (enrollment, re-seal
//! under a new key, a replacement phone). Every verification reads the
//! authenticator from the store anyway, so a record changed by another
//! instance is noticed on the very next read: the versions differ, and the
//! entry is opened again and replaced. This process's own revocations,
//! resets, re-seals and replacements evict at once.
//!
//! What is held, and wiped: the HMAC state (`hmac::Hmac<Sha1 | Sha256 |
//! Sha512>`, the hash states after the key's inner and outer pad blocks,
//! and an empty block buffer). With the `zeroize` features of `hmac`,
//! `sha1` and `sha2` (enabled in the workspace manifest) those types are
//! `ZeroizeOnDrop`: their drop overwrites the hash states and the buffer
//! with zeros through `zeroize`'s volatile writes. So an entry is wiped
//! when it is evicted, replaced, found expired or stale, swept, or when the
//! cache is dropped with its engine; so is every copy handed to a
//! verification, when that verification ends. Each cached state has its
//! own allocation, which never moves (see `Entry`). Not wiped: what the
//! compiler or the CPU copied on the way (a moved value's old stack slot,
//! registers), which no safe Rust can reach; the key (user and
//! authenticator ids) and version, which are not secret. The secret
//! itself is never kept: it is opened into a zeroizing buffer, keyed, and
//! dropped.
//!
//! The bounded map is `quick_cache`'s sharded `sync::Cache` (S3-FIFO): a
//! lookup is one hash and one shard's read lock, without allocation (the
//! borrowed key [`KeyRef`] looks up the owned one), and the value is
//! copied out under the lock. `lru` needs `&mut` (a mutex around the whole
//! map) and an owned key to look up; `moka` does bookkeeping on every read.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Equivalent, OptionsBuilder, UnitWeighter};

use crate::clock::UnixTime;
use crate::code::{CodeParams, Hotp};
use crate::seal::{Keyring, SealError, SealVersion};
use crate::store::{Authenticator, AuthenticatorId};
use crate::user::UserId;

/// How many keyed HMAC states the engine keeps, and for how long.
///
/// On by default ([`KeyCacheConfig::default`]): at most
/// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) authenticators, each for
/// [`DEFAULT_TTL`](Self::DEFAULT_TTL) after it was opened. The trade-off
/// (what an attacker who reads the process's memory gains) is in
/// `docs/security.md`, "The key cache".
///
/// ```
/// use std::time::Duration;
/// use tower_totp::{KeyCacheConfig, TotpConfig, TwoFactor};
///
/// // A smaller cache with a shorter lifetime.
/// let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
///     .key_cache(KeyCacheConfig::new(1_000, Duration::from_secs(60)))
///     .build()
///     .unwrap();
/// assert_eq!(tfa.key_cache_stats().entries, 0);
///
/// // No secret held between requests: every code unseals and keys anew.
/// let strict = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
///     .key_cache(KeyCacheConfig::disabled())
///     .build()
///     .unwrap();
/// assert!(!strict.config().issuer().is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCacheConfig {
    capacity: usize,
    ttl: Duration,
}

impl KeyCacheConfig {
    /// The default capacity: 10,000 authenticators, about 5 MB (an entry
    /// is some 480 bytes: the state, sized for SHA-512 whatever the
    /// algorithm, in its own allocation, and the key and version).
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// The default lifetime of an entry: 10 minutes after it was opened.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

    /// At most `capacity` authenticators, each kept `ttl` after it was
    /// opened (read from the engine's clock). A capacity or lifetime of
    /// zero is [`disabled`](Self::disabled).
    pub const fn new(capacity: usize, ttl: Duration) -> Self {
        Self { capacity, ttl }
    }

    /// No cache: every verification unseals the secret and keys the HMAC
    /// anew, and no keyed state outlives the request.
    pub const fn disabled() -> Self {
        Self::new(0, Duration::ZERO)
    }

    /// Whether anything is kept.
    pub const fn is_enabled(&self) -> bool {
        self.capacity > 0 && !self.ttl.is_zero()
    }

    /// The most authenticators kept (0 when disabled).
    pub const fn capacity(&self) -> usize {
        if self.is_enabled() { self.capacity } else { 0 }
    }

    /// How long an entry lives after it was opened.
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_TTL)
    }
}

/// What the key cache holds and has done, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KeyCacheStats {
    /// Authenticators whose keyed state is held now.
    pub entries: usize,
    /// Sealed secrets opened for login codes since the engine was built
    /// (cache misses, and every code when the cache is disabled).
    pub opens: u64,
}

/// The owned key of an entry.
#[derive(Clone, PartialEq, Eq)]
struct CacheKey {
    user: UserId,
    id: AuthenticatorId,
}

/// The borrowed form of [`CacheKey`], to look up without allocating.
/// Hashes exactly as [`CacheKey`] does.
struct KeyRef<'a> {
    user: &'a str,
    id: &'a str,
}

fn hash_key<H: Hasher>(user: &str, id: &str, state: &mut H) {
    user.hash(state);
    id.hash(state);
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.user.as_str(), self.id.as_str(), state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.user, self.id, state);
    }
}

impl Equivalent<CacheKey> for KeyRef<'_> {
    fn equivalent(&self, key: &CacheKey) -> bool {
        self.user == key.user.as_str() && self.id == key.id.as_str()
    }
}

/// One authenticator's keyed state and what it was made from.
///
/// The state sits in its own allocation, which never moves: quick_cache
/// keeps its values in a growing slab, and a grown slab frees its old
/// buffer unwiped, so the slab holds only the pointer. (Cloning an entry,
/// as a lookup does, is then a reference count, not an allocation.)
#[derive(Clone)]
struct Entry {
    version: SealVersion,
    params: CodeParams,
    expires_at: UnixTime,
    hotp: Arc<Hotp>,
}

impl Entry {
    /// Whether this entry still stands for `a` at `now`.
    fn serves(&self, a: &Authenticator, now: UnixTime) -> bool {
        now < self.expires_at && self.params == a.params && self.version == a.secret.version()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Hotp`'s own Debug prints its key as "[redacted]".
        f.debug_struct("Entry")
            .field("params", &self.params)
            .field("expires_at", &self.expires_at)
            .field("hotp", &self.hotp)
            .finish_non_exhaustive()
    }
}

type Map = Cache<CacheKey, Entry, UnitWeighter, DefaultHashBuilder>;

/// The engine's key cache (or, disabled, only its counter of opens).
pub(crate) struct KeyCache {
    map: Option<Map>,
    ttl: Duration,
    /// When the next sweep of expired entries is due, in milliseconds.
    next_sweep: AtomicU64,
    opens: AtomicU64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: neither keys nor states.
        f.debug_struct("KeyCache")
            .field("enabled", &self.map.is_some())
            .field("ttl", &self.ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

impl KeyCache {
    pub(crate) fn new(config: KeyCacheConfig) -> Self {
        let map = config.is_enabled().then(|| bounded(config.capacity));
        Self {
            map,
            ttl: config.ttl,
            next_sweep: AtomicU64::new(0),
            opens: AtomicU64::new(0),
        }
    }

    /// The keyed code generator of `a`: a copy of the cached one when it
    /// was opened from the same sealed record and has not expired, else
    /// opened with `keys`, keyed, and cached.
    ///
    /// # Errors
    ///
    /// [`SealError`] when the record does not open; nothing is cached then.
    pub(crate) fn keyed(
        &self,
        keys: &Keyring,
        user: &UserId,
        a: &Authenticator,
        now: UnixTime,
    ) -> Result<Hotp, SealError> {
        let Some(map) = &self.map else {
            return self.open(keys, user, a);
        };
        self.sweep_if_due(map, now);
        let key = KeyRef {
            user: user.as_str(),
            id: a.id.as_str(),
        };
        match map.get(&key) {
            Some(entry) if entry.serves(a, now) => return Ok(Hotp::clone(&entry.hotp)),
            // Stale (re-sealed or re-enrolled elsewhere) or expired: wipe
            // it now, even if the record no longer opens.
            Some(_) => {
                map.remove(&key);
            }
            None => {}
        }
        let hotp = self.open(keys, user, a)?;
        map.insert(
            CacheKey {
                user: user.clone(),
                id: a.id.clone(),
            },
            Entry {
                version: a.secret.version(),
                params: a.params,
                expires_at: now.saturating_add(self.ttl),
                hotp: Arc::new(hotp.clone()),
            },
        );
        Ok(hotp)
    }

    fn open(&self, keys: &Keyring, user: &UserId, a: &Authenticator) -> Result<Hotp, SealError> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        let secret = keys.open(user, &a.secret)?;
        Ok(Hotp::new(&secret, a.params))
    }

    /// Forget (and wipe) the state of one authenticator.
    pub(crate) fn evict(&self, user: &UserId, id: &AuthenticatorId) {
        if let Some(map) = &self.map {
            map.remove(&KeyRef {
                user: user.as_str(),
                id: id.as_str(),
            });
        }
    }

    /// Forget (and wipe) every state of `user`. A scan of the whole cache:
    /// resets are rare.
    pub(crate) fn evict_user(&self, user: &UserId) {
        if let Some(map) = &self.map {
            map.retain(|key, _| key.user != *user);
        }
    }

    pub(crate) fn stats(&self) -> KeyCacheStats {
        KeyCacheStats {
            entries: self.map.as_ref().map_or(0, Map::len),
            opens: self.opens.load(Ordering::Relaxed),
        }
    }

    /// Wipe expired entries, at most every quarter of the lifetime, so an
    /// entry nobody asks for again does not outlive its lifetime by more
    /// than that (as long as codes are verified at all). The hot path pays
    /// one relaxed atomic load.
    fn sweep_if_due(&self, map: &Map, now: UnixTime) {
        let now_ms = now.as_millis();
        if now_ms < self.next_sweep.load(Ordering::Relaxed) {
            return;
        }
        let next = now
            .saturating_add(self.ttl / 4)
            .as_millis()
            .max(now_ms.saturating_add(1));
        self.next_sweep.store(next, Ordering::Relaxed);
        map.retain(|_, entry| now < entry.expires_at);
    }
}

/// A map that never holds more than `capacity` entries: quick_cache gives
/// each shard an equal share, rounded up, so the shard count is a power of
/// two and the total is rounded down to a multiple of it.
fn bounded(capacity: usize) -> Map {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // At least 32 entries a shard (quick_cache's own rule), at most 4 shards a core.
    let mut shards = (cores * 4).next_power_of_two();
    while shards > 1 && capacity / shards < 32 {
        shards /= 2;
    }
    let weight = (capacity / shards * shards).max(1) as u64;
    let options = OptionsBuilder::new()
        .shards(shards)
        .estimated_items_capacity(capacity)
        .weight_capacity(weight)
        .build();
    // Every option is set above; `build` fails only on a missing one.
    #[allow(clippy::expect_used)]
    let options = options.expect("all options set");
    Cache::with_options(
        options,
        UnitWeighter,
        DefaultHashBuilder::default(),
        Default::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::Secret;
    use crate::store::SyncState;

    const T: UnixTime = UnixTime::from_secs(1_700_000_000);

    fn authenticator(keys: &Keyring, user: &UserId, id: &str, secret: &Secret) -> Authenticator {
        Authenticator {
            id: AuthenticatorId::new(id),
            name: "phone".into(),
            secret: keys.seal(user, secret).unwrap(),
            params: CodeParams::default(),
            created_at: T,
            sync: SyncState::default(),
        }
    }

    #[test]
    fn a_hit_opens_nothing_and_gives_the_same_codes() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let secret = Secret::generate();
        let a = authenticator(&keys, &user, "a1", &secret);
        let cache = KeyCache::new(KeyCacheConfig::default());
        let first = cache.keyed(&keys, &user, &a, T).unwrap();
        let second = cache.keyed(&keys, &user, &a, T).unwrap();
        assert_eq!(cache.stats().opens, 1);
        let fresh = Hotp::new(&secret, a.params);
        for step in [0, 1, 56_666_666] {
            assert_eq!(first.code(step), fresh.code(step));
            assert_eq!(second.code(step), fresh.code(step));
        }
    }

    #[test]
    fn a_new_seal_of_the_same_record_is_a_new_version() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let secret = Secret::generate();
        let mut a = authenticator(&keys, &user, "a1", &secret);
        let cache = KeyCache::new(KeyCacheConfig::default());
        cache.keyed(&keys, &user, &a, T).unwrap();
        // The same secret sealed again (a re-seal): a new nonce.
        a.secret = keys.seal(&user, &secret).unwrap();
        cache.keyed(&keys, &user, &a, T).unwrap();
        assert_eq!(cache.stats().opens, 2);
        // Other parameters under the same record: keyed again too.
        a.params = CodeParams::new(crate::code::Algorithm::Sha256, 6, 30).unwrap();
        let sha256 = cache.keyed(&keys, &user, &a, T).unwrap();
        assert_eq!(cache.stats().opens, 3);
        assert_eq!(sha256.code(7), Hotp::new(&secret, a.params).code(7));
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn a_record_that_no_longer_opens_leaves_nothing_behind() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let mut a = authenticator(&keys, &user, "a1", &Secret::generate());
        let cache = KeyCache::new(KeyCacheConfig::default());
        cache.keyed(&keys, &user, &a, T).unwrap();
        // Re-sealed under a key this engine does not hold.
        a.secret = Keyring::ephemeral()
            .unwrap()
            .seal(&user, &Secret::generate())
            .unwrap();
        assert!(cache.keyed(&keys, &user, &a, T).is_err());
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn expired_entries_are_opened_again_and_swept() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let a = authenticator(&keys, &user, "a1", &Secret::generate());
        let b = authenticator(&keys, &user, "a2", &Secret::generate());
        let ttl = Duration::from_secs(60);
        let cache = KeyCache::new(KeyCacheConfig::new(100, ttl));
        cache.keyed(&keys, &user, &a, T).unwrap();
        cache.keyed(&keys, &user, &b, T).unwrap();
        let just_before = T.saturating_add(ttl - Duration::from_millis(1));
        cache.keyed(&keys, &user, &a, just_before).unwrap();
        assert_eq!(cache.stats().opens, 2);
        cache
            .keyed(&keys, &user, &a, T.saturating_add(ttl))
            .unwrap();
        assert_eq!(cache.stats().opens, 3);
        // The last sweep ran at `just_before`; the next is due a quarter
        // lifetime later. Then `b`, never asked for again, is wiped.
        let later = just_before.saturating_add(ttl / 4);
        cache.keyed(&keys, &user, &a, later).unwrap();
        assert_eq!(cache.stats().opens, 3);
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn the_capacity_is_a_bound() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let secret = Secret::generate();
        for capacity in [1, 5, 31, 100, 1000] {
            let cache = KeyCache::new(KeyCacheConfig::new(capacity, Duration::from_secs(60)));
            for i in 0..capacity * 3 {
                let a = authenticator(&keys, &user, &format!("a{i}"), &secret);
                cache.keyed(&keys, &user, &a, T).unwrap();
                assert!(cache.stats().entries <= capacity, "capacity {capacity}");
            }
            assert!(cache.stats().entries > 0);
        }
    }

    #[test]
    fn disabled_keeps_nothing() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let a = authenticator(&keys, &user, "a1", &Secret::generate());
        for config in [
            KeyCacheConfig::disabled(),
            KeyCacheConfig::new(0, Duration::from_secs(60)),
            KeyCacheConfig::new(10, Duration::ZERO),
        ] {
            let cache = KeyCache::new(config);
            cache.keyed(&keys, &user, &a, T).unwrap();
            cache.keyed(&keys, &user, &a, T).unwrap();
            assert_eq!(
                cache.stats(),
                KeyCacheStats {
                    entries: 0,
                    opens: 2
                }
            );
            assert_eq!(config.capacity(), 0);
        }
    }

    #[test]
    fn eviction_by_authenticator_and_by_user() {
        let keys = Keyring::ephemeral().unwrap();
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
        let secret = Secret::generate();
        let a1 = authenticator(&keys, &alice, "a1", &secret);
        let a2 = authenticator(&keys, &alice, "a2", &secret);
        let b1 = authenticator(&keys, &bob, "a1", &secret);
        let cache = KeyCache::new(KeyCacheConfig::default());
        for (user, a) in [(&alice, &a1), (&alice, &a2), (&bob, &b1)] {
            cache.keyed(&keys, user, a, T).unwrap();
        }
        cache.evict(&alice, &a1.id);
        assert_eq!(cache.stats().entries, 2);
        cache.evict_user(&alice);
        assert_eq!(cache.stats().entries, 1);
        cache.keyed(&keys, &bob, &b1, T).unwrap();
        assert_eq!(cache.stats().opens, 3, "bob's entry stayed");
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = Keyring::ephemeral().unwrap();
        let user = UserId::new("alice");
        let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
        let a = authenticator(&keys, &user, "a1", &secret);
        let cache = KeyCache::new(KeyCacheConfig::default());
        let hotp = cache.keyed(&keys, &user, &a, T).unwrap();
        let entry = Entry {
            version: a.secret.version(),
            params: a.params,
            expires_at: T,
            hotp: Arc::new(hotp),
        };
        for text in [format!("{cache:?}"), format!("{entry:?}")] {
            assert!(!text.contains("1234"), "{text}");
            assert!(!text.contains("alice"), "{text}");
            assert!(!text.contains("SealVersion"), "{text}");
        }
    }

    /// The states the cache holds wipe themselves when dropped: the
    /// `zeroize` features of hmac, sha1 and sha2 are on. `Hmac<D>` itself
    /// carries no `ZeroizeOnDrop` marker in hmac 0.13, but it is made of
    /// two hash states of `D`'s core and a block buffer, and each of those
    /// wipes itself in its `Drop`. A compile-time check: it fails to build
    /// without the features.
    #[test]
    fn keyed_states_zeroize_on_drop() {
        use hmac::block_api::HmacCore;
        use hmac::digest::block_api::{Buffer, CoreProxy};

        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        wipes::<<sha1::Sha1 as CoreProxy>::Core>();
        wipes::<<sha2::Sha256 as CoreProxy>::Core>();
        wipes::<<sha2::Sha512 as CoreProxy>::Core>();
        wipes::<Buffer<HmacCore<sha1::Sha1>>>();
        wipes::<Buffer<HmacCore<sha2::Sha256>>>();
        wipes::<Buffer<HmacCore<sha2::Sha512>>>();
        // And `HmacCore` is those two states and nothing else.
        assert_eq!(
            std::mem::size_of::<HmacCore<sha1::Sha1>>(),
            2 * std::mem::size_of::<<sha1::Sha1 as CoreProxy>::Core>()
        );
    }
}
