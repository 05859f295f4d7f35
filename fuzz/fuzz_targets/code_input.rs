//! `parse_code`, the input rule for typed codes: never panics, and what it
//! accepts is exactly what the documented rule accepts, with the same value
//! (digits of every script read from the Unicode Character Database's
//! table, not from the crate the library reads).
//!
//! Input: the first byte chooses the number of digits (`byte % 11`, so 0 to
//! 10: the engine only uses 6 to 8, but the function is public); the rest,
//! if UTF-8, is what was typed.

#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_totp::code::parse_code;
use unicode_normalization::UnicodeNormalization;

/// The Unicode Character Database's decimal digits (`Nd`) and values, and
/// the code points its version leaves unassigned: the table of
/// `crates/tower-totp/tests/unicode_digits.rs`, independent of the crate
/// the library reads.
struct Table {
    digits: HashMap<char, u64>,
    unassigned: Vec<(u32, u32)>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let text = include_str!("../../crates/tower-totp/tests/data/unicode_nd_digits.txt");
        let hex = |s: &str| u32::from_str_radix(s, 16).unwrap();
        let mut table = Table {
            digits: HashMap::new(),
            unassigned: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut fields = line.split(' ');
            match (fields.next(), fields.next(), fields.next()) {
                (Some("unassigned"), Some(first), Some(last)) => {
                    table.unassigned.push((hex(first), hex(last)));
                }
                (Some(cp), Some(value), None) => {
                    let c = char::from_u32(hex(cp)).unwrap();
                    table.digits.insert(c, value.parse().unwrap());
                }
                _ => panic!("a line of the table: {line:?}"),
            }
        }
        table
    })
}

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
    let table = table();
    let mut kept = Vec::new();
    for c in input.nfkc().filter(|c| !matches!(c, ' ' | '\t' | '-')) {
        match table.digits.get(&c) {
            Some(&value) => kept.push(value),
            None if table
                .unassigned
                .iter()
                .any(|&(a, b)| (a..=b).contains(&(c as u32))) =>
            {
                return Err(c);
            }
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
