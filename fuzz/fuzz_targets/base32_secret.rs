//! `Secret::from_base32` never panics; what it accepts is the canonical
//! base32 of the secret once layout is removed, and secrets round-trip
//! through base32 in every layout an app may show.
//!
//! Input: the bytes, read both as a base32 text (if UTF-8) and as raw
//! secret bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_totp::code::{MIN_SECRET_BITS, Secret};

fuzz_target!(|data: &[u8]| {
    // As text typed or pasted by a person.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(secret) = Secret::from_base32(text) {
            assert!(secret.len() * 8 >= MIN_SECRET_BITS);
            // Layout (case, spaces, tabs, dashes, padding) is all that was
            // ignored: the rest is the canonical encoding.
            let clean: String = text
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '=' | '\t'))
                .map(|c| c.to_ascii_uppercase())
                .collect();
            assert_eq!(*secret.to_base32(), clean, "accepted {text:?}");
            let again = Secret::from_base32(&secret.to_base32()).expect("own encoding");
            assert_eq!(again, secret);
        }
    }

    // As raw secret bytes.
    match Secret::from_bytes(data) {
        Ok(secret) => {
            assert_eq!(secret.as_bytes(), data);
            let b32 = secret.to_base32();
            assert!(
                b32.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
            );
            let grouped: String = b32
                .to_ascii_lowercase()
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(if data[0] % 2 == 0 { " " } else { "-" });
            let padded = format!("{}{}", &*b32, "=".repeat((8 - b32.len() % 8) % 8));
            for form in [b32.as_str(), grouped.as_str(), padded.as_str()] {
                let back = Secret::from_base32(form).expect("a secret's own base32");
                assert_eq!(back.as_bytes(), data, "{form:?}");
            }
        }
        Err(_) => assert!(data.len() * 8 < MIN_SECRET_BITS),
    }
});
