//! One user's record in the memory store, packed into a single allocation.
//!
//! A million users live here at once, so the record is sized by the byte
//! (`docs/performance.md`, "Growth with the number of users", tool
//! `scale`): the user id, the hot state (epoch, throttle, each
//! authenticator's sync state) and the cold (names, sealed secrets,
//! recovery hashes) sit in one boxed byte string instead of a struct with a
//! `String`, a `Vec` and an `Arc` of their own, each of which costs an
//! allocation header, its rounding and a pointer. One allocation is also one
//! place in memory: a verification at ten million users reads the table's
//! slot and this, nothing else.
//!
//! The fields that change on every code (throttle, sync state) have fixed
//! widths and are written in place; the rest changes rarely (activation,
//! revocation, a used recovery code) and is re-packed whole through
//! [`Unpacked`].
//!
//! Layout (integers little-endian; `len` is a LEB128 length):
//!
//! ```text
//! epoch u64 | locked_until ms u64 | attempts u32 | flags u8 | len key
//! len n, then n authenticators:
//!     id     0 u64 (16 lower-case hex digits) | 1 len text
//!     name   len text
//!     secret len SealedSecret::to_bytes
//!     params algorithm u8 | digits u8 | period u32
//!     created_at ms u64
//!     sync   has u8 (1 last_step, 2 resync) | last_step u64 | offset i64
//!            | resync step u64 | resync offset i64
//! len m, then m recovery hashes of RECOVERY_BYTES each
//! ```

use subtle::ConstantTimeEq;

use super::super::{Authenticator, AuthenticatorId, ResyncCandidate, SyncState};
use crate::clock::UnixTime;
use crate::code::{Algorithm, CodeParams};
use crate::recovery::RecoveryHash;
use crate::seal::SealedSecret;
use crate::throttle::ThrottleState;

/// Bytes of a recovery code's SHA-256 kept in memory: 128 bits, so that a
/// guess matching by chance is as unlikely as guessing an AES-128 key
/// (`docs/security.md`, "Recovery codes").
pub(super) const RECOVERY_BYTES: usize = 16;

/// The stored prefix of one recovery hash.
pub(super) type RecoveryPrefix = [u8; RECOVERY_BYTES];

/// The part of a recovery hash the memory store keeps.
pub(super) fn recovery_prefix(hash: &RecoveryHash) -> RecoveryPrefix {
    let mut prefix = [0; RECOVERY_BYTES];
    prefix.copy_from_slice(&hash.as_bytes()[..RECOVERY_BYTES]);
    prefix
}

const EPOCH: usize = 0;
const LOCKED_UNTIL: usize = 8;
const ATTEMPTS: usize = 16;
const FLAGS: usize = 20;
const KEY: usize = 21;
/// `flags`: the shard's side table holds rare state of this user.
const HAS_RARE: u8 = 1;

const SYNC_HAS_LAST: u8 = 1;
const SYNC_HAS_RESYNC: u8 = 2;
const SYNC_BYTES: usize = 33;
const PARAMS_BYTES: usize = 6;
const ID_HEX: u8 = 0;
const ID_TEXT: u8 = 1;

/// A user's record: see the module's documentation for the layout.
#[derive(Debug)]
pub(super) struct PackedUser(Box<[u8]>);

/// A record taken apart, for the rare changes that resize it.
#[derive(Debug, Default)]
pub(super) struct Unpacked {
    pub(super) epoch: u64,
    pub(super) throttle: ThrottleState,
    pub(super) has_rare: bool,
    pub(super) authenticators: Vec<Authenticator>,
    pub(super) recovery: Vec<RecoveryPrefix>,
}

impl PackedUser {
    /// A user with nothing yet: epoch 0, no throttle failures.
    pub(super) fn new(key: &[u8]) -> Self {
        Unpacked::default().pack(key)
    }

    /// The user id's bytes, the table's key.
    pub(super) fn key(&self) -> &[u8] {
        self.key_and_rest().map_or(&[], |(key, _)| key)
    }

    pub(super) fn epoch(&self) -> u64 {
        u64_at(&self.0, EPOCH)
    }

    pub(super) fn throttle(&self) -> ThrottleState {
        ThrottleState {
            attempts: u32::from_le_bytes(array_at(&self.0, ATTEMPTS)),
            locked_until: UnixTime::from_millis(u64_at(&self.0, LOCKED_UNTIL)),
        }
    }

    pub(super) fn set_throttle(&mut self, t: ThrottleState) {
        put(&mut self.0, ATTEMPTS, &t.attempts.to_le_bytes());
        put(
            &mut self.0,
            LOCKED_UNTIL,
            &t.locked_until.as_millis().to_le_bytes(),
        );
    }

    /// Whether the shard's side table holds rare state of this user.
    pub(super) fn has_rare(&self) -> bool {
        self.0.get(FLAGS).is_some_and(|f| f & HAS_RARE != 0)
    }

    pub(super) fn set_has_rare(&mut self, on: bool) {
        if let Some(f) = self.0.get_mut(FLAGS) {
            *f = if on { *f | HAS_RARE } else { *f & !HAS_RARE };
        }
    }

    /// How many authenticators the user has (0 for a damaged record; the
    /// status reads [`checked_authenticator_count`](Self::checked_authenticator_count)
    /// instead, so that a damaged record never reads as not enrolled).
    pub(super) fn authenticator_count(&self) -> usize {
        self.checked_authenticator_count().unwrap_or(0)
    }

    /// How many authenticators the user has; `None` if the record is damaged.
    pub(super) fn checked_authenticator_count(&self) -> Option<usize> {
        let (_, rest) = self.key_and_rest()?;
        Reader::new(rest).len()
    }

    /// The user's authenticators, in order; `None` if the record is damaged.
    pub(super) fn authenticators(&self) -> Option<Vec<Authenticator>> {
        let (_, rest) = self.key_and_rest()?;
        let mut r = Reader::new(rest);
        let n = r.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(read_authenticator(&mut r)?);
        }
        Some(out)
    }

    /// Apply `f` to the sync state of authenticator `id`, in place; `None`
    /// if the user has no such authenticator.
    pub(super) fn update_sync<T>(
        &mut self,
        id: &AuthenticatorId,
        f: impl FnOnce(&mut SyncState) -> T,
    ) -> Option<T> {
        let at = self.sync_offset(id)?;
        let mut sync = read_sync(&mut Reader::new(self.0.get(at..)?))?;
        let out = f(&mut sync);
        put(&mut self.0, at, &sync_bytes(&sync));
        Some(out)
    }

    /// Where authenticator `id`'s sync state starts.
    fn sync_offset(&self, id: &AuthenticatorId) -> Option<usize> {
        let (_, rest) = self.key_and_rest()?;
        let base = self.0.len() - rest.len();
        let mut r = Reader::new(rest);
        for _ in 0..r.len()? {
            let matches = r.id_matches(id)?;
            r.skip_text()?; // name
            r.skip_text()?; // secret
            r.take(PARAMS_BYTES + 8)?;
            if matches {
                return Some(base + r.at);
            }
            r.take(SYNC_BYTES)?;
        }
        None
    }

    pub(super) fn recovery_count(&self) -> usize {
        self.recovery_section()
            .map_or(0, |r| r.len() / RECOVERY_BYTES)
    }

    /// The index of the stored recovery hash equal to `hash`, comparing
    /// against every one in constant time.
    pub(super) fn find_recovery(&self, hash: &RecoveryHash) -> Option<usize> {
        let wanted = recovery_prefix(hash);
        let mut found = None;
        for (i, stored) in self
            .recovery_section()?
            .chunks_exact(RECOVERY_BYTES)
            .enumerate()
        {
            if bool::from(stored.ct_eq(&wanted)) {
                found = Some(i);
            }
        }
        found
    }

    /// The stored recovery hashes.
    fn recovery_section(&self) -> Option<&[u8]> {
        let (_, rest) = self.key_and_rest()?;
        let mut r = Reader::new(rest);
        for _ in 0..r.len()? {
            read_authenticator(&mut r)?;
        }
        let m = r.len()?;
        r.take(m.checked_mul(RECOVERY_BYTES)?)
    }

    /// Take the record apart; `None` if it is damaged.
    pub(super) fn unpack(&self) -> Option<Unpacked> {
        Some(Unpacked {
            epoch: self.epoch(),
            throttle: self.throttle(),
            has_rare: self.has_rare(),
            authenticators: self.authenticators()?,
            recovery: self
                .recovery_section()?
                .chunks_exact(RECOVERY_BYTES)
                .map(|c| {
                    let mut p = [0; RECOVERY_BYTES];
                    p.copy_from_slice(c);
                    p
                })
                .collect(),
        })
    }

    /// The key, and the bytes after it.
    /// This record cut after its user id: damaged, for the store's tests.
    #[cfg(test)]
    pub(super) fn cut_after_key(&self) -> Self {
        let rest = self.key_and_rest().map_or(0, |(_, rest)| rest.len());
        Self(self.0[..self.0.len() - rest].into())
    }

    fn key_and_rest(&self) -> Option<(&[u8], &[u8])> {
        let mut r = Reader::new(self.0.get(KEY..)?);
        let key = r.text()?;
        Some((key, r.rest()))
    }
}

impl Unpacked {
    /// The record of user `key`, packed into one allocation of exactly its size.
    pub(super) fn pack(&self, key: &[u8]) -> PackedUser {
        let mut out = Vec::with_capacity(self.packed_len(key));
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.throttle.locked_until.as_millis().to_le_bytes());
        out.extend_from_slice(&self.throttle.attempts.to_le_bytes());
        out.push(if self.has_rare { HAS_RARE } else { 0 });
        write_text(&mut out, key);
        write_len(&mut out, self.authenticators.len());
        for a in &self.authenticators {
            write_authenticator(&mut out, a);
        }
        write_len(&mut out, self.recovery.len());
        for p in &self.recovery {
            out.extend_from_slice(p);
        }
        PackedUser(out.into_boxed_slice())
    }

    fn packed_len(&self, key: &[u8]) -> usize {
        let text = |n: usize| len_len(n) + n;
        let auths: usize = self
            .authenticators
            .iter()
            .map(|a| {
                let id = if hex_id(&a.id).is_some() {
                    9
                } else {
                    1 + text(a.id.as_str().len())
                };
                id + text(a.name.len())
                    + text(a.secret.to_bytes().len())
                    + PARAMS_BYTES
                    + 8
                    + SYNC_BYTES
            })
            .sum();
        KEY + text(key.len())
            + len_len(self.authenticators.len())
            + auths
            + len_len(self.recovery.len())
            + self.recovery.len() * RECOVERY_BYTES
    }
}

/// The id's 8 bytes, when it is the generated form (16 lower-case hex
/// digits), which encodes back to exactly the same text.
///
/// By hand rather than through `data_encoding`, whose general encoder costs
/// hundreds of instructions for eight bytes, on every verification
/// (callgrind, `totp-sim bench`).
fn hex_id(id: &AuthenticatorId) -> Option<[u8; 8]> {
    /// A lower-case hex digit's value; upper case is refused, so that the
    /// text round-trips exactly.
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let s: &[u8; 16] = id.as_str().as_bytes().try_into().ok()?;
    let mut raw = [0; 8];
    for (byte, pair) in raw.iter_mut().zip(s.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(raw)
}

/// [`hex_id`] backwards.
fn hex_text(raw: [u8; 8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(16);
    for b in raw {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
}

fn write_authenticator(out: &mut Vec<u8>, a: &Authenticator) {
    match hex_id(&a.id) {
        Some(raw) => {
            out.push(ID_HEX);
            out.extend_from_slice(&raw);
        }
        None => {
            out.push(ID_TEXT);
            write_text(out, a.id.as_str().as_bytes());
        }
    }
    write_text(out, a.name.as_bytes());
    write_text(out, &a.secret.to_bytes());
    out.push(match a.params.algorithm() {
        Algorithm::Sha1 => 1,
        Algorithm::Sha256 => 2,
        Algorithm::Sha512 => 3,
    });
    out.push(a.params.digits());
    out.extend_from_slice(&a.params.period().to_le_bytes());
    out.extend_from_slice(&a.created_at.as_millis().to_le_bytes());
    out.extend_from_slice(&sync_bytes(&a.sync));
}

fn read_authenticator(r: &mut Reader<'_>) -> Option<Authenticator> {
    let id = match r.byte()? {
        ID_HEX => AuthenticatorId::new(hex_text(r.array()?)),
        ID_TEXT => AuthenticatorId::new(std::str::from_utf8(r.text()?).ok()?),
        _ => return None,
    };
    let name = std::str::from_utf8(r.text()?).ok()?.to_owned();
    let secret = SealedSecret::from_bytes(r.text()?).ok()?;
    let algorithm = match r.byte()? {
        1 => Algorithm::Sha1,
        2 => Algorithm::Sha256,
        3 => Algorithm::Sha512,
        _ => return None,
    };
    let digits = r.byte()?;
    let period = u32::from_le_bytes(r.array()?);
    let params = CodeParams::new(algorithm, digits, period).ok()?;
    let created_at = UnixTime::from_millis(r.u64()?);
    let sync = read_sync(r)?;
    Some(Authenticator {
        id,
        name,
        secret,
        params,
        created_at,
        sync,
    })
}

/// A sync state's fixed-width form, written in place on every accepted code.
fn sync_bytes(s: &SyncState) -> [u8; SYNC_BYTES] {
    let mut out = [0; SYNC_BYTES];
    out[0] = u8::from(s.last_step.is_some()) * SYNC_HAS_LAST
        + u8::from(s.resync.is_some()) * SYNC_HAS_RESYNC;
    let resync = s.resync.unwrap_or(ResyncCandidate { step: 0, offset: 0 });
    out[1..9].copy_from_slice(&s.last_step.unwrap_or(0).to_le_bytes());
    out[9..17].copy_from_slice(&s.offset.to_le_bytes());
    out[17..25].copy_from_slice(&resync.step.to_le_bytes());
    out[25..33].copy_from_slice(&resync.offset.to_le_bytes());
    out
}

fn read_sync(r: &mut Reader<'_>) -> Option<SyncState> {
    let has = r.byte()?;
    let last_step = r.u64()?;
    let offset = i64::from_le_bytes(r.array()?);
    let step = r.u64()?;
    let resync_offset = i64::from_le_bytes(r.array()?);
    Some(SyncState {
        last_step: (has & SYNC_HAS_LAST != 0).then_some(last_step),
        offset,
        resync: (has & SYNC_HAS_RESYNC != 0).then_some(ResyncCandidate {
            step,
            offset: resync_offset,
        }),
    })
}

fn write_text(out: &mut Vec<u8>, text: &[u8]) {
    write_len(out, text.len());
    out.extend_from_slice(text);
}

/// LEB128: one byte for lengths under 128, which is every length here but
/// a very long user id or name.
fn write_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn len_len(mut n: usize) -> usize {
    let mut bytes = 1;
    while n >= 0x80 {
        n >>= 7;
        bytes += 1;
    }
    bytes
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array_at(bytes, at))
}

/// `N` bytes at `at`, zeros past the end (a record is never that short:
/// [`Unpacked::pack`] writes the whole header).
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    if let Some(dst) = bytes.get_mut(at..at + value.len()) {
        dst.copy_from_slice(value);
    }
}

/// A cursor over a packed record; every read is checked, and `None` means
/// the record is damaged.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..usize::BITS).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn text(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    fn skip_text(&mut self) -> Option<()> {
        self.text().map(drop)
    }

    /// Read an id and say whether it is `id`, without allocating.
    fn id_matches(&mut self, id: &AuthenticatorId) -> Option<bool> {
        match self.byte()? {
            ID_HEX => {
                let raw = self.array::<8>()?;
                Some(hex_id(id) == Some(raw))
            }
            ID_TEXT => Some(self.text()? == id.as_str().as_bytes()),
            _ => None,
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sealed secret's bytes (key id, nonce, ciphertext with its tag);
    /// the store never opens it.
    fn sealed() -> SealedSecret {
        let mut bytes = vec![0, 0, 0, 9];
        bytes.extend((0..12 + 36).map(|i| i as u8));
        SealedSecret::from_bytes(&bytes).expect("long enough")
    }

    fn authenticator(id: &str, name: &str, sync: SyncState) -> Authenticator {
        Authenticator {
            id: AuthenticatorId::new(id),
            name: name.to_owned(),
            secret: sealed(),
            params: CodeParams::new(Algorithm::Sha256, 8, 60).unwrap(),
            created_at: UnixTime::from_millis(1_700_000_000_123),
            sync,
        }
    }

    #[test]
    fn a_record_packs_and_unpacks_to_the_same_values() {
        let long_name = "n".repeat(300);
        let unpacked = Unpacked {
            epoch: u64::MAX - 1,
            throttle: ThrottleState {
                attempts: 7,
                locked_until: UnixTime::from_millis(u64::MAX),
            },
            has_rare: true,
            authenticators: vec![
                authenticator("00ff00ff00ff00ff", "Phone", SyncState::default()),
                // Not the generated form: kept as text, upper case and all.
                authenticator(
                    "00FF00FF00FF00FF",
                    &long_name,
                    SyncState {
                        last_step: Some(u64::MAX),
                        offset: -3,
                        resync: Some(ResyncCandidate {
                            step: 9,
                            offset: i64::MIN,
                        }),
                    },
                ),
                authenticator("x", "", SyncState::default()),
            ],
            recovery: vec![[1; RECOVERY_BYTES], [2; RECOVERY_BYTES]],
        };
        let key = "ü".repeat(100);
        let packed = unpacked.pack(key.as_bytes());
        assert_eq!(packed.key(), key.as_bytes());
        assert_eq!(packed.0.len(), unpacked.packed_len(key.as_bytes()));
        let back = packed.unpack().expect("unpacks");
        assert_eq!(back.epoch, unpacked.epoch);
        assert_eq!(back.throttle, unpacked.throttle);
        assert!(back.has_rare);
        assert_eq!(back.authenticators, unpacked.authenticators);
        assert_eq!(back.recovery, unpacked.recovery);
        assert_eq!(packed.authenticator_count(), 3);
        assert_eq!(packed.recovery_count(), 2);
    }

    #[test]
    fn sync_state_is_written_in_place_for_the_named_authenticator_only() {
        let unpacked = Unpacked {
            authenticators: vec![
                authenticator("0000000000000001", "a", SyncState::default()),
                authenticator("other", "b", SyncState::default()),
            ],
            ..Unpacked::default()
        };
        let mut packed = unpacked.pack(b"bob");
        let new = SyncState {
            last_step: Some(42),
            offset: 1,
            resync: None,
        };
        let other = AuthenticatorId::new("other");
        assert_eq!(
            packed.update_sync(&other, |s| std::mem::replace(s, new)),
            Some(SyncState::default())
        );
        assert_eq!(
            packed.update_sync(&AuthenticatorId::new("missing"), |_| ()),
            None
        );
        let back = packed.authenticators().expect("reads");
        assert_eq!(back[0].sync, SyncState::default());
        assert_eq!(back[1].sync, new);
    }

    #[test]
    fn a_recovery_hash_is_found_by_its_first_128_bits() {
        let mut a = [3; 32];
        let unpacked = Unpacked {
            recovery: vec![
                [1; RECOVERY_BYTES],
                recovery_prefix(&RecoveryHash::from_bytes(a)),
            ],
            ..Unpacked::default()
        };
        let packed = unpacked.pack(b"carol");
        assert_eq!(packed.find_recovery(&RecoveryHash::from_bytes(a)), Some(1));
        a[RECOVERY_BYTES - 1] ^= 1;
        assert_eq!(packed.find_recovery(&RecoveryHash::from_bytes(a)), None);
    }

    #[test]
    fn only_the_generated_id_form_is_packed_as_a_number() {
        assert_eq!(
            hex_id(&AuthenticatorId::new("00000000000000ff")),
            Some([0, 0, 0, 0, 0, 0, 0, 0xff])
        );
        let id = AuthenticatorId::generate().unwrap();
        assert_eq!(hex_text(hex_id(&id).unwrap()), id.as_str());
        for text in [
            "00000000000000FF",
            "0000000000000ff",
            "+0000000000000ff",
            "g000000000000000",
            "00000000000000ff0",
        ] {
            assert_eq!(hex_id(&AuthenticatorId::new(text)), None, "{text}");
        }
    }
}
