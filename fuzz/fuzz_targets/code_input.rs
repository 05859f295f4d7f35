//! `parse_code`, the input rule for typed codes: never panics, and what it
//! accepts is exactly what the documented rule accepts, with the same value.
//!
//! Input: the first byte chooses the number of digits (`byte % 11`, so 0 to
//! 10: the engine only uses 6 to 8, but the function is public); the rest,
//! if UTF-8, is what was typed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_totp::code::parse_code;
use unicode_normalization::UnicodeNormalization;

/// The rule as documented on `parse_code`, written out again: inputs over
/// 256 bytes, and more than 9 digits, are refused; NFKC; spaces, tabs and
/// `-` removed; what is left must be exactly `digits` ASCII digits.
/// Returns the digits.
fn documented_rule(input: &str, digits: u8) -> Option<String> {
    if input.len() > 256 || digits > 9 {
        return None;
    }
    let kept: Option<String> = input
        .nfkc()
        .filter(|c| !matches!(c, ' ' | '\t' | '-'))
        .map(|c| c.is_ascii_digit().then_some(c))
        .collect();
    kept.filter(|k| k.len() == usize::from(digits))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let digits = first % 11;
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let ours = parse_code(input, digits);
    let rule = documented_rule(input, digits);
    match (&ours, &rule) {
        (Ok(code), Some(kept)) => {
            let expected = kept.bytes().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
            assert_eq!(
                u64::from(code.value()),
                expected,
                "accepted {input:?} ({digits} digits) with the wrong value"
            );
        }
        (Err(e), None) => assert_eq!(e.expected, digits),
        _ => {
            panic!("parse_code({input:?}, {digits}) = {ours:?}, the documented rule says {rule:?}")
        }
    }
});
