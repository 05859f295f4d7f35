//! The table in `unicode_nd_digits.txt`, read: the Unicode Character
//! Database's decimal digits (`Nd`) with their values, and the code points
//! its version leaves unassigned. Shared by `tests/unicode_digits.rs` and
//! the `code_input` fuzz target (which includes this file by path), so the
//! two oracles read the table one way.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The table, parsed once.
pub(crate) struct Ucd {
    /// Every `Nd` character with its value.
    pub(crate) digits: BTreeMap<char, u32>,
    /// Inclusive ranges of code points unassigned in the table's version.
    unassigned: Vec<(u32, u32)>,
}

impl Ucd {
    /// Whether the table's Unicode version had not assigned `c` yet: a
    /// newer Unicode may make it a digit, and the table cannot say.
    pub(crate) fn unassigned(&self, c: char) -> bool {
        let cp = c as u32;
        self.unassigned
            .iter()
            .any(|&(first, last)| (first..=last).contains(&cp))
    }
}

/// The table of `unicode_nd_digits.txt`.
pub(crate) fn ucd() -> &'static Ucd {
    static TABLE: OnceLock<Ucd> = OnceLock::new();
    TABLE.get_or_init(|| {
        let hex = |s: &str| u32::from_str_radix(s, 16).expect("hex code point");
        let mut table = Ucd {
            digits: BTreeMap::new(),
            unassigned: Vec::new(),
        };
        for line in include_str!("unicode_nd_digits.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
        {
            let mut fields = line.split(' ');
            match (fields.next(), fields.next(), fields.next()) {
                (Some("unassigned"), Some(first), Some(last)) => {
                    table.unassigned.push((hex(first), hex(last)));
                }
                (Some(cp), Some(value), None) => {
                    let c = char::from_u32(hex(cp)).expect("a scalar value");
                    table
                        .digits
                        .insert(c, value.parse().expect("a digit value"));
                }
                _ => panic!("not a line of the table: {line:?}"),
            }
        }
        table
    })
}
