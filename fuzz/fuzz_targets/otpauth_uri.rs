//! Our otpauth URI, for any issuer, account and parameters, reads back in
//! totp-rs as the same issuer, account, secret and parameters whenever
//! totp-rs accepts it, and totp-rs accepts every URI for a label the Key URI
//! format allows (no `:` in either part).
//!
//! Input: `issuer NUL account NUL params secret`, where params are three
//! bytes (algorithm, digits, period) and the secret is the raw bytes after
//! them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_totp::TotpConfig;
use tower_totp::code::{Algorithm, CodeParams, Secret};
use tower_totp::enroll::otpauth_uri;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(issuer), Some(account), Some(rest)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Some((params, secret)) = rest.split_first_chunk::<3>() else {
        return;
    };
    let (Ok(issuer), Ok(account)) = (std::str::from_utf8(issuer), std::str::from_utf8(account))
    else {
        return;
    };
    let [alg, digits, period] = *params;
    let algorithm = match alg % 3 {
        0 => Algorithm::Sha1,
        1 => Algorithm::Sha256,
        _ => Algorithm::Sha512,
    };
    // Periods 1 to 256 s, and the usual 30 s more often.
    let period = if period < 128 {
        30
    } else {
        u32::from(period) - 127
    };
    let Ok(params) = CodeParams::new(algorithm, 6 + digits % 3, period) else {
        return;
    };
    let Ok(secret) = Secret::from_bytes(secret) else {
        return;
    };

    let uri = otpauth_uri(&secret, params, issuer, account);
    assert!(uri.is_ascii(), "{uri}");
    let label = uri
        .strip_prefix("otpauth://totp/")
        .and_then(|rest| rest.split('?').next())
        .expect("otpauth://totp/LABEL?...");
    assert_eq!(label.matches(':').count(), 1, "one separator in {uri}");
    assert!(!label.contains(['/', '?', '#', '&']), "{uri}");

    let theirs = totp_rs::Totp::from_url(&uri);
    // What our configuration accepts as an issuer, with an account of the
    // same shape, is a label the format allows: an app must read it.
    let allowed = TotpConfig::new(issuer).is_ok() && !account.contains(':') && !account.is_empty();
    match theirs {
        Ok(t) => {
            assert_eq!(t.issuer(), Some(issuer), "{uri}");
            assert_eq!(t.account_name(), account, "{uri}");
            assert_eq!(t.secret().as_bytes(), secret.as_bytes(), "{uri}");
            assert_eq!(t.digits(), params.digits(), "{uri}");
            assert_eq!(t.step(), u64::from(params.period()), "{uri}");
        }
        Err(e) => assert!(!allowed, "totp-rs refused {uri}: {e}"),
    }
});
