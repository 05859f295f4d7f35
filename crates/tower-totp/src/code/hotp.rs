use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::{Algorithm, CodeParams, Secret};

/// A keyed code generator: the HMAC key schedule is done once, and each step
/// clones that state rather than keying anew (cheaper: `docs/performance.md`,
/// bench `verification`, group `raw`).
///
/// ```
/// use tower_totp::code::{CodeParams, Hotp, Secret};
///
/// // RFC 4226 Appendix D, counter 0.
/// let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
/// let hotp = Hotp::new(&secret, CodeParams::default());
/// assert_eq!(hotp.code(0), 755224);
/// ```
#[derive(Clone)]
pub struct Hotp {
    mac: KeyedMac,
    params: CodeParams,
}

#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl std::fmt::Debug for Hotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hotp")
            .field("key", &"[redacted]")
            .field("params", &self.params)
            .finish()
    }
}

fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
    // HMAC takes keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

impl Hotp {
    /// Key a generator for `secret` with `params`.
    pub fn new(secret: &Secret, params: CodeParams) -> Self {
        let key = secret.as_bytes();
        let mac = match params.algorithm() {
            Algorithm::Sha1 => KeyedMac::Sha1(keyed(key)),
            Algorithm::Sha256 => KeyedMac::Sha256(keyed(key)),
            Algorithm::Sha512 => KeyedMac::Sha512(keyed(key)),
        };
        Self { mac, params }
    }

    /// The parameters this generator was keyed with.
    pub fn params(&self) -> CodeParams {
        self.params
    }

    /// The code for counter (or time step) `counter`, as a number below
    /// `10^digits`; print it with leading zeros.
    pub fn code(&self, counter: u64) -> u32 {
        let msg = counter.to_be_bytes();
        let value = match &self.mac {
            KeyedMac::Sha1(m) => truncate(&finish(m.clone(), &msg)),
            KeyedMac::Sha256(m) => truncate(&finish(m.clone(), &msg)),
            KeyedMac::Sha512(m) => truncate(&finish(m.clone(), &msg)),
        };
        reduce(value, self.params.digits())
    }

    /// The code for `counter` with leading zeros.
    pub fn code_string(&self, counter: u64) -> String {
        format!(
            "{:0width$}",
            self.code(counter),
            width = usize::from(self.params.digits())
        )
    }
}

fn finish<M: Mac>(mut mac: M, msg: &[u8]) -> impl AsRef<[u8]> {
    mac.update(msg);
    mac.finalize().into_bytes()
}

/// `value mod 10^digits`. The digit counts codes use are matched so that
/// each remainder is by a constant, which the compiler turns into a
/// multiplication: a division by a run-time modulus costs about as much
/// again as the rest of the code's arithmetic (`docs/verification.md`,
/// "What it costs").
fn reduce(value: u32, digits: u8) -> u32 {
    match digits {
        6 => value % 1_000_000,
        7 => value % 10_000_000,
        8 => value % 100_000_000,
        _ => value % 10u32.pow(u32::from(digits)),
    }
}

/// RFC 4226 section 5.3 dynamic truncation.
fn truncate(hash: &impl AsRef<[u8]>) -> u32 {
    let hash = hash.as_ref();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let bytes = [
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ];
    u32::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixTime;

    fn hotp(secret: &[u8], alg: Algorithm, digits: u8) -> Hotp {
        Hotp::new(
            &Secret::from_bytes(secret).unwrap(),
            CodeParams::new(alg, digits, 30).unwrap(),
        )
    }

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        let h = hotp(b"12345678901234567890", Algorithm::Sha1, 6);
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(h.code(counter as u64), *code, "counter {counter}");
        }
    }

    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, c1, c256, c512) in table {
            for (secret, alg, want) in [
                (sha1, Algorithm::Sha1, c1),
                (sha256, Algorithm::Sha256, c256),
                (sha512, Algorithm::Sha512, c512),
            ] {
                let h = hotp(secret, alg, 8);
                let step = h.params().step_at(UnixTime::from_secs(time));
                assert_eq!(h.code_string(step), want, "{alg} at {time}");
            }
        }
    }

    #[test]
    fn reduce_is_the_remainder_for_every_digit_count() {
        for digits in 1..=9u8 {
            let modulus = 10u32.pow(u32::from(digits));
            for value in [0, 1, 999_999, 1_000_000, 123_456_789, 0x7fff_ffff] {
                assert_eq!(reduce(value, digits), value % modulus, "{digits} digits");
            }
        }
    }

    #[test]
    fn leading_zeros_are_kept() {
        let h = hotp(b"12345678901234567890", Algorithm::Sha1, 8);
        assert_eq!(h.code_string(1111111109 / 30), "07081804");
    }

    #[test]
    fn debug_hides_the_key() {
        let h = hotp(b"12345678901234567890", Algorithm::Sha1, 6);
        assert!(!format!("{h:?}").contains("1234"));
    }
}
