//! `parse_code`, the input rule for typed codes: never panics, and what it
//! accepts is exactly what the documented rule accepts, with the same value
//! (digits of every script read from the Unicode Character Database's
//! table, `crates/tower-totp/tests/data/ucd.rs`, not from the crate the
//! library reads).
//!
//! Input: the first byte chooses the number of digits (`byte % 11`, so 0 to
//! 10: the engine only uses 6 to 8, but the function is public); the rest,
//! if UTF-8, is what was typed.

#![no_main]

#[path = "../../crates/tower-totp/tests/data/ucd.rs"]
mod ucd;

use libfuzzer_sys::fuzz_target;
use tower_totp::code::parse_code;
use ucd::ucd;
use unicode_normalization::UnicodeNormalization;

/// The rule as documented on `parse_code`, written out again: inputs over
/// 256 bytes, and more than 9 digits, are refused; NFKC; spaces, tabs and
/// `-` removed; what is left must be exactly `digits` decimal digits of
/// any script. Returns their values, or `Err` when a character is one the
/// table's Unicode version had not assigned (newer than the table: it
/// cannot say whether that is a digit).
fn documented_rule(input: &str, digits: u8) -> Result<Option<Vec<u64>>, char> {
    if input.len() > 256 || digits > 9 {
        return Ok(None);
    }
    let table = ucd();
    let mut kept = Vec::new();
    for c in input.nfkc().filter(|c| !matches!(c, ' ' | '\t' | '-')) {
        match table.digits.get(&c) {
            Some(&value) => kept.push(u64::from(value)),
            None if table.unassigned(c) => return Err(c),
            None => return Ok(None),
        }
    }
    Ok((kept.len() == usize::from(digits)).then_some(kept))
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
    let Ok(rule) = documented_rule(input, digits) else {
        return;
    };
    match (&ours, &rule) {
        (Ok(code), Some(kept)) => {
            let expected = kept.iter().fold(0u64, |v, d| v * 10 + d);
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
