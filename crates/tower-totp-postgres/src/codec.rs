//! How values are written to and read back from PostgreSQL columns, and
//! how failures become [`StoreError`]s.

use sqlx::Row as _;
use sqlx::postgres::PgRow;
use tower_totp::code::{Algorithm, CodeParams};
use tower_totp::seal::SealedSecret;
use tower_totp::store::StoreError;

/// The sign bit of a 64-bit integer.
const SIGN: u64 = 1 << 63;

/// A `u64` (a step, an epoch, a time in milliseconds) as a `BIGINT`.
///
/// PostgreSQL has no unsigned integers, and the conformance suite uses
/// steps up to `u64::MAX`. Flipping the top bit maps `0..=u64::MAX` onto
/// `i64::MIN..=i64::MAX` *in order*, so `last_step < $3` in SQL compares
/// the stored values as Rust compares the `u64`s, and adding one in SQL is
/// adding one to the `u64` (an overflow is PostgreSQL's "bigint out of
/// range" error, never a wrap). Every `u64` column uses this one encoding.
/// It is the SQLite store's, so a row reads the same in both.
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

impl From<Invalid> for StoreError {
    fn from(e: Invalid) -> Self {
        StoreError::corrupt(e)
    }
}

/// Sort an sqlx error into "could not answer" and "the data is bad".
///
/// Bad data: a column that does not decode, a data exception (SQLSTATE
/// class 22, such as an epoch at the top of its range) or damage the
/// server reports (class XX001/XX002). Everything else is
/// [`StoreError::Unavailable`]: no connection within the pool's acquire
/// timeout, a refused or dropped connection, a server shutting down or
/// starting (57P01, 57P03), a lock or serialization conflict, a closed
/// pool. PostgreSQL's messages name columns and constraints; the only
/// values they may quote are user and authenticator ids, never a secret
/// (secrets are sealed and hashes are bound as bytes).
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    let corrupt = match &e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code == "XX001" || code == "XX002"),
        _ => false,
    };
    if corrupt {
        StoreError::corrupt(e)
    } else {
        StoreError::unavailable(e)
    }
}

/// Read column `name` of `row`.
pub(crate) fn get<'r, T>(row: &'r PgRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(db_error)
}

/// Read a `u64` stored by [`u64_to_sql`].
pub(crate) fn get_u64(row: &PgRow, name: &str) -> Result<u64, StoreError> {
    get::<i64>(row, name).map(u64_from_sql)
}

/// Read an optional `u64` stored by [`u64_to_sql`].
pub(crate) fn get_opt_u64(row: &PgRow, name: &str) -> Result<Option<u64>, StoreError> {
    get::<Option<i64>>(row, name).map(|v| v.map(u64_from_sql))
}

/// Read a sealed secret from column `secret`.
pub(crate) fn sealed_secret(row: &PgRow) -> Result<SealedSecret, StoreError> {
    let bytes: Vec<u8> = get(row, "secret")?;
    SealedSecret::from_bytes(&bytes).map_err(|_| Invalid("sealed secret").into())
}

/// Read code parameters from the columns `algorithm`, `digits` and
/// `period` (seconds).
pub(crate) fn code_params(row: &PgRow) -> Result<CodeParams, StoreError> {
    let algorithm: String = get(row, "algorithm")?;
    let algorithm: Algorithm = algorithm.parse().map_err(|_| Invalid("algorithm"))?;
    let digits = u8::try_from(get::<i16>(row, "digits")?).map_err(|_| Invalid("digits"))?;
    let period = u32::try_from(get::<i64>(row, "period")?).map_err(|_| Invalid("period"))?;
    CodeParams::new(algorithm, digits, period).map_err(|_| Invalid("code parameters").into())
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
            // Adding one in SQL is adding one to the u64.
            assert_eq!(u64_to_sql(w[0]).checked_add(1), Some(u64_to_sql(w[0] + 1)));
        }
        for v in values {
            assert_eq!(u64_from_sql(u64_to_sql(v)), v);
        }
        assert_eq!(u64_to_sql(0), i64::MIN);
        assert_eq!(u64_to_sql(u64::MAX), i64::MAX);
    }
}
