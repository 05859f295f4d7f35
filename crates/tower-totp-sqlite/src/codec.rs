//! How values are written to and read back from SQLite columns, and how
//! failures become [`StoreError`]s.

use rusqlite::ErrorCode;
use rusqlite::types::Type;
use tower_totp::code::{Algorithm, CodeParams};
use tower_totp::seal::SealedSecret;
use tower_totp::store::StoreError;

/// The sign bit of a 64-bit integer.
const SIGN: u64 = 1 << 63;

/// A `u64` (a step, an epoch, a time in milliseconds) as an SQLite integer.
///
/// SQLite integers are `i64`, and the conformance suite uses steps up to
/// `u64::MAX`. Flipping the top bit maps `0..=u64::MAX` onto
/// `i64::MIN..=i64::MAX` *in order*, so `last_step < ?` in SQL compares the
/// stored values exactly as Rust compares the `u64`s. Every `u64` column
/// uses this one encoding, even where SQL never compares it, so that no
/// column is the odd one out. (The stored value of 0 is `i64::MIN`.)
pub(crate) const fn u64_to_sql(v: u64) -> i64 {
    (v ^ SIGN).cast_signed()
}

/// The inverse of [`u64_to_sql`].
pub(crate) const fn u64_from_sql(v: i64) -> u64 {
    v.cast_unsigned() ^ SIGN
}

/// A stored value that does not decode into what it should hold. It names
/// the column, never the value: values include sealed secrets and hashes.
#[derive(Debug, thiserror::Error)]
#[error("stored {0} is invalid")]
pub(crate) struct Invalid(pub(crate) &'static str);

/// Why one operation failed, before it becomes a [`StoreError`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// SQLite or rusqlite said no.
    Db(rusqlite::Error),
    /// A stored value made no sense.
    Corrupt(Invalid),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

impl From<Invalid> for Failure {
    fn from(e: Invalid) -> Self {
        Self::Corrupt(e)
    }
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Db(e) => db_error(e),
            Failure::Corrupt(e) => StoreError::corrupt(e),
        }
    }
}

/// Sort a rusqlite error into "could not answer" and "the data is bad".
///
/// rusqlite's messages name columns and constraints, never bound values,
/// so no secret reaches the error.
pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    let corrupt = match &e {
        rusqlite::Error::SqliteFailure(f, _) => {
            matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => true,
        _ => false,
    };
    if corrupt {
        StoreError::corrupt(e)
    } else {
        StoreError::unavailable(e)
    }
}

/// A decoding failure inside a row closure, which must return a rusqlite
/// error; [`db_error`] files it under corrupt.
fn invalid(column: usize, ty: Type, what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, ty, Box::new(Invalid(what)))
}

/// Read a sealed secret from column `i`.
pub(crate) fn sealed_secret(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<SealedSecret> {
    let bytes: Vec<u8> = row.get(i)?;
    SealedSecret::from_bytes(&bytes).map_err(|_| invalid(i, Type::Blob, "sealed secret"))
}

/// Read code parameters from columns `i` (algorithm), `i + 1` (digits) and
/// `i + 2` (period in seconds).
pub(crate) fn code_params(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<CodeParams> {
    let algorithm: String = row.get(i)?;
    let algorithm: Algorithm = algorithm
        .parse()
        .map_err(|_| invalid(i, Type::Text, "algorithm"))?;
    let digits: u8 = row.get(i + 1)?;
    let period: u32 = row.get(i + 2)?;
    CodeParams::new(algorithm, digits, period)
        .map_err(|_| invalid(i + 1, Type::Integer, "code parameters"))
}

/// Read a `u64` stored by [`u64_to_sql`] from column `i`.
pub(crate) fn get_u64(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    row.get::<_, i64>(i).map(u64_from_sql)
}

/// Read an optional `u64` stored by [`u64_to_sql`] from column `i`.
pub(crate) fn get_opt_u64(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<u64>> {
    row.get::<_, Option<i64>>(i).map(|v| v.map(u64_from_sql))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_u64_encoding_round_trips_and_keeps_order() {
        let values = [
            0,
            1,
            2,
            1 << 62,
            (1 << 63) - 1,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        for w in values.windows(2) {
            assert!(u64_to_sql(w[0]) < u64_to_sql(w[1]), "{} < {}", w[0], w[1]);
        }
        for v in values {
            assert_eq!(u64_from_sql(u64_to_sql(v)), v);
        }
        assert_eq!(u64_to_sql(0), i64::MIN);
        assert_eq!(u64_to_sql(u64::MAX), i64::MAX);
    }
}
