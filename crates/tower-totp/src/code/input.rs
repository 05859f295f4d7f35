use std::fmt;

use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::params::DIGITS;

/// Longest input looked at, in bytes: anything longer is [`Malformed`]
/// before any Unicode work is done on it.
const MAX_INPUT_BYTES: usize = 256;

/// The most digits a code may have: every 9-digit value fits in the `u32`
/// a [`Code`] holds (the engine's codes have 6 to 8).
const MAX_DIGITS: u8 = 9;

/// A code as typed, parsed: its value and its number of digits.
///
/// Never printed: `Debug` shows `[redacted]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Code {
    value: u32,
    digits: u8,
}

impl Code {
    /// The numeric value.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// How many digits were typed.
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// Constant-time comparison with a generated code.
    pub fn ct_matches(&self, generated: u32) -> subtle::Choice {
        self.value.ct_eq(&generated)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code([redacted], digits: {})", self.digits)
    }
}

/// The input was not a code of the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected a code of {expected} digits")]
pub struct Malformed {
    /// How many digits were expected.
    pub expected: u8,
}

/// Turn what a person typed into a code, by the input rule:
///
/// 1. Unicode NFKC normalisation, so full-width digits (`１２３`) and
///    full-width spaces from East-Asian keyboards become ASCII;
/// 2. remove spaces, tabs and `-`;
/// 3. what is left must be exactly `digits` decimal digits: any character
///    of Unicode general category `Nd`, each read as its value, scripts
///    mixed or not (`٣٤٥٦٧٨` Arabic-Indic, `۳۴۵۶۷۸` Persian, `३४५६७८`
///    Devanagari are `345678`, which phones set to those locales type into
///    a numeric field).
///
/// Anything else is [`Malformed`], and so is every input when `digits` is
/// over 9 (a code's value is a `u32`); no input makes this panic.
///
/// ```
/// use tower_totp::code::parse_code;
///
/// assert_eq!(parse_code("123 456", 6).unwrap().value(), 123456);
/// assert_eq!(parse_code("１２３-４５６", 6).unwrap().value(), 123456);
/// assert_eq!(parse_code("٣٤٥ ٦٧٨", 6).unwrap().value(), 345678);
/// assert_eq!(parse_code("12३४५६", 6).unwrap().value(), 123456);
/// assert!(parse_code("12345", 6).is_err());
/// assert!(parse_code("12345½", 6).is_err());
/// ```
///
/// # Errors
///
/// [`Malformed`] when the input does not follow the rule.
pub fn parse_code(input: &str, digits: u8) -> Result<Code, Malformed> {
    let malformed = Malformed { expected: digits };
    if digits > MAX_DIGITS {
        return Err(malformed);
    }
    match scan(input, digits) {
        Some(code) if code.digits == digits => Ok(code),
        _ => Err(malformed),
    }
}

/// Turn what a person typed into a code of any digit count that
/// [`CodeParams`](super::CodeParams) allows (6 to 8), by the same input
/// rule as [`parse_code`]: `Some` exactly when `parse_code(input, d)`
/// accepts it for one of those counts `d`, which is then
/// [`Code::digits`].
///
/// The engine asks this once, before it knows the user's authenticators,
/// so that the store can read them and charge the attempt in one
/// operation, and charge nothing for input no authenticator could take.
///
/// ```
/// use tower_totp::code::parse_typed_code;
///
/// assert_eq!(parse_typed_code("123 456").map(|c| c.digits()), Some(6));
/// assert_eq!(parse_typed_code("1234-5678").map(|c| c.digits()), Some(8));
/// assert!(parse_typed_code("12345").is_none());
/// assert!(parse_typed_code("12345a").is_none());
/// ```
pub fn parse_typed_code(input: &str) -> Option<Code> {
    scan(input, *DIGITS.end()).filter(|code| DIGITS.contains(&code.digits))
}

/// The input rule up to the digit count: the digits typed, if there are at
/// most `max` of them and nothing but separators beside them.
fn scan(input: &str, max: u8) -> Option<Code> {
    if input.len() > MAX_INPUT_BYTES {
        return None;
    }
    // ASCII is its own NFKC form: most codes skip the normaliser (bench
    // `verification`, docs/performance.md "Why the code is shaped so").
    if input.is_ascii() {
        return scan_chars(input.chars(), max);
    }
    scan_chars(input.nfkc(), max)
}

fn scan_chars(chars: impl Iterator<Item = char>, max: u8) -> Option<Code> {
    let mut value: u32 = 0;
    let mut count: u8 = 0;
    for c in chars {
        match c {
            ' ' | '\t' | '-' => {}
            _ => {
                let digit = decimal_value(c)?;
                count = count.saturating_add(1);
                if count > max {
                    return None;
                }
                value = value * 10 + digit;
            }
        }
    }
    Some(Code {
        value,
        digits: count,
    })
}

/// The value of a decimal digit (general category `Nd`), `None` for any
/// other character.
///
/// Unicode encodes every set of decimal digits as ten contiguous code
/// points, zero to nine, and promises to keep doing so (its stability
/// policy for `Numeric_Type=Decimal`). So a digit's value is its distance
/// from the start of the run of `Nd` characters it sits in, modulo ten
/// (runs can touch, as the five sets of mathematical digits do). That needs
/// the category table the crate already has, not a second table of values.
fn decimal_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return Some(c as u32 - '0' as u32);
    }
    if c.general_category() != GeneralCategory::DecimalNumber {
        return None;
    }
    let mut run_start = c as u32;
    while let Some(before) = run_start.checked_sub(1).and_then(char::from_u32) {
        if before.general_category() != GeneralCategory::DecimalNumber {
            break;
        }
        run_start -= 1;
    }
    Some((c as u32 - run_start) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_forms() {
        for ok in [
            "123456",
            "123 456",
            " 123-456 ",
            "1\t2 3-4-5 6",
            "１２３４５６",
            "１２３\u{3000}４５６",
            "123\u{a0}456",
            "１２３－４５６",
            "١٢٣٤٥٦",
            "۱۲۳ ۴۵۶",
            "१२३-४५६",
            "1٢3۴5६",
        ] {
            assert_eq!(parse_code(ok, 6).map(|c| c.value()), Ok(123456), "{ok:?}");
        }
        assert_eq!(parse_code("000001", 6).map(|c| c.value()), Ok(1));
        assert_eq!(parse_code("12345678", 8).map(|c| c.value()), Ok(12345678));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "123_456",
            "١٢٣٤٥",
            "12345½",
            "12345Ⅵ",
            "١٢٣٬٤٥٦",
            "12.3456",
            "+123456",
            "123456\n",
        ] {
            assert_eq!(
                parse_code(bad, 6),
                Err(Malformed { expected: 6 }),
                "{bad:?}"
            );
        }
        assert!(parse_code(&" ".repeat(1000), 6).is_err());
    }

    /// Found by the `code_input` fuzz target: ten digits overflowed the
    /// value (a panic with overflow checks, a wrong value without).
    #[test]
    fn more_digits_than_a_u32_holds_are_refused() {
        assert_eq!(
            parse_code("999999999", 9).map(|c| c.value()),
            Ok(999_999_999)
        );
        for (input, digits) in [("5911111111", 10), ("0000000000", 10), ("", 255)] {
            assert_eq!(
                parse_code(input, digits),
                Err(Malformed { expected: digits }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn typed_codes_have_six_to_eight_digits() {
        for (input, digits) in [("123456", 6), ("123 4567", 7), ("1234-5678", 8)] {
            assert_eq!(parse_typed_code(input).map(|c| c.digits()), Some(digits));
        }
        for bad in [
            "",
            "12345",
            "123456789",
            "1234567890",
            "12345a",
            "1234567\n",
        ] {
            assert_eq!(parse_typed_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_value() {
        let c = parse_code("987654", 6).unwrap();
        assert!(!format!("{c:?}").contains("987"));
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>(), digits in 6u8..=8) {
            let _ = parse_code(&input, digits);
        }

        #[test]
        fn separators_never_matter(value in 0u32..1_000_000, seps in proptest::collection::vec(prop_oneof![Just(" "), Just("-"), Just("\t"), Just("")], 7)) {
            let digits = format!("{value:06}");
            let mut typed = String::new();
            for (i, ch) in digits.chars().enumerate() {
                typed.push_str(seps[i]);
                typed.push(ch);
            }
            typed.push_str(seps[6]);
            prop_assert_eq!(parse_code(&typed, 6).map(|c| c.value()), Ok(value));
        }

        #[test]
        fn fullwidth_digits_equal_ascii(value in 0u32..100_000_000) {
            let ascii = format!("{value:08}");
            let wide: String = ascii.chars().map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap()).collect();
            prop_assert_eq!(parse_code(&wide, 8), parse_code(&ascii, 8));
        }

        #[test]
        fn typed_code_is_parse_code_of_some_allowed_count(input in "[0-9]{0,10}[ a\\-]?[0-9]{0,3}") {
            let by_count = DIGITS.filter_map(|d| parse_code(&input, d).ok()).next();
            prop_assert_eq!(parse_typed_code(&input), by_count);
        }

        #[test]
        fn accepted_means_exact_digit_count(input in "[0-9 \\-]{0,12}", digits in 6u8..=8) {
            let n = input.chars().filter(char::is_ascii_digit).count();
            prop_assert_eq!(parse_code(&input, digits).is_ok(), n == usize::from(digits));
        }
    }
}
