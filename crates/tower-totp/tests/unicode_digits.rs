//! The input rule's digits against the Unicode Character Database: every
//! decimal digit (general category `Nd`) of every script is read as its
//! value, mixed scripts included, and no other character is a digit.
//!
//! The oracle is `tests/data/unicode_nd_digits.txt`, written from Python's
//! `unicodedata` by `scripts/gen-unicode-digits.py`; the library reads the
//! category from the `unicode-properties` crate, so a wrong value or a
//! missing script in either shows here.

#[path = "data/ucd.rs"]
mod ucd;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use tower_totp::code::{parse_code, parse_typed_code};
use ucd::ucd;
use unicode_normalization::UnicodeNormalization;

/// Every `Nd` character of the table, with its value.
fn nd_digits() -> &'static BTreeMap<char, u32> {
    let digits = &ucd().digits;
    assert!(digits.len() > 600, "the table covers every script");
    digits
}

fn digit_list() -> Vec<(char, u32)> {
    nd_digits().iter().map(|(c, v)| (*c, *v)).collect()
}

#[test]
fn every_decimal_digit_of_every_script_is_read_as_its_value() {
    for (&digit, &value) in nd_digits() {
        // The digit in each of the six places, ASCII digits around it.
        for place in 0..6 {
            let mut typed: Vec<char> = "000000".chars().collect();
            typed[place] = digit;
            let typed: String = typed.into_iter().collect();
            let expected = value * 10u32.pow(5 - place as u32);
            assert_eq!(
                parse_code(&typed, 6).map(|c| c.value()),
                Ok(expected),
                "U+{:04X} in place {place}",
                digit as u32
            );
        }
        let all_six: String = std::iter::repeat_n(digit, 6).collect();
        assert_eq!(
            parse_typed_code(&all_six).map(|c| (c.value(), c.digits())),
            Some((value * 111_111, 6)),
            "U+{:04X} six times",
            digit as u32
        );
    }
}

/// The named scripts of the issue, as a phone set to those locales types
/// them.
#[test]
fn arabic_indic_persian_and_devanagari_codes_are_accepted() {
    for typed in ["٣٤٥٦٧٨", "۳۴۵۶۷۸", "३४५६७८", "٣٤٥ ٦٧٨", "۳۴۵-۶۷۸", "3٤5۶7८"]
    {
        assert_eq!(
            parse_code(typed, 6).map(|c| c.value()),
            Ok(345678),
            "{typed}"
        );
    }
}

/// No character outside the table is a digit, except the compatibility
/// forms that NFKC turns into one ASCII digit (superscripts, circled
/// digits), which the rule has always accepted as that digit. A character
/// the table's Unicode version had not assigned yet may be a digit of a
/// newer version (Garay, U+10D40, came with Unicode 16).
#[test]
fn nothing_else_is_a_digit() {
    for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
        if nd_digits().contains_key(&c) || matches!(c, ' ' | '\t' | '-') {
            continue;
        }
        let typed = format!("12345{c}");
        let read = parse_code(&typed, 6).map(|code| code.value() % 10);
        let nfkc: String = c.nfkc().collect();
        let as_one_digit = match nfkc.chars().collect::<Vec<_>>()[..] {
            [d] => nd_digits().get(&d).copied(),
            _ => None,
        };
        match (read, as_one_digit) {
            (Ok(value), Some(expected)) => assert_eq!(value, expected, "U+{:04X}", c as u32),
            (Err(_), _) => {}
            (Ok(_), None) => assert!(
                ucd().unassigned(c),
                "U+{:04X} is not a decimal digit, yet it was read as one",
                c as u32
            ),
        }
    }
}

proptest! {
    /// Codes typed in any mix of scripts, with separators anywhere: the
    /// value is the digits' values, and the count is the digits' count.
    #[test]
    fn mixed_scripts_read_as_their_values(
        picks in proptest::collection::vec((any::<Index>(), prop_oneof![Just(""), Just(" "), Just("-"), Just("\u{a0}")]), 6..=8),
    ) {
        let digits = digit_list();
        let mut typed = String::new();
        let mut expected = 0u32;
        for (pick, sep) in &picks {
            let (c, value) = digits[pick.index(digits.len())];
            typed.push_str(sep);
            typed.push(c);
            expected = expected * 10 + value;
        }
        let code = parse_typed_code(&typed).expect("a code of six to eight digits");
        prop_assert_eq!(code.value(), expected);
        prop_assert_eq!(usize::from(code.digits()), picks.len());
        prop_assert_eq!(parse_code(&typed, code.digits()).map(|c| c.value()), Ok(expected));
    }

    /// One non-digit anywhere among digits of any script is malformed.
    #[test]
    fn a_letter_among_digits_is_malformed(
        picks in proptest::collection::vec(any::<Index>(), 6),
        at in 0usize..=6,
        intruder in prop_oneof![Just('a'), Just('_'), Just('.'), Just('٬'), Just('½'), Just('Ⅵ'), Just('\n')],
    ) {
        let digits = digit_list();
        let mut chars: Vec<char> = picks.iter().map(|p| digits[p.index(digits.len())].0).collect();
        chars.insert(at, intruder);
        let typed: String = chars.into_iter().collect();
        prop_assert!(parse_code(&typed, 6).is_err());
        prop_assert!(parse_typed_code(&typed).is_none());
    }
}
