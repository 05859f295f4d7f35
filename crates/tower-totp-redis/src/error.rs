//! Redis errors as store errors.

use redis::{ErrorKind, RedisError};
use tower_totp::store::StoreError;

/// The error code our scripts reply with when they find data they cannot
/// use; they check everything before their first write, so such a script
/// has changed nothing.
pub(crate) const CORRUPT_CODE: &str = "TOTPCORRUPT";

/// Data problems are [`StoreError::Corrupt`]: a reply of an unexpected type,
/// a key of the wrong type (`WRONGTYPE`) or a script's own [`CORRUPT_CODE`].
/// Everything else (refused or dropped connections, timeouts, a server that
/// is loading, read-only or out of memory) is [`StoreError::Unavailable`].
pub(crate) fn store_error(e: RedisError) -> StoreError {
    let data_problem = matches!(e.kind(), ErrorKind::UnexpectedReturnType | ErrorKind::Parse)
        || matches!(e.code(), Some("WRONGTYPE") | Some(CORRUPT_CODE));
    if data_problem {
        StoreError::corrupt(e)
    } else {
        StoreError::unavailable(e)
    }
}
