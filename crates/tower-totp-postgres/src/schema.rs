//! The schema the tables live in, and the versioned migrations that make
//! them.
//!
//! Migrations are embedded SQL files, numbered from 1 and only ever
//! appended: a released one is never edited. The schema's own table
//! `schema_migrations` lists the versions applied. Each migration runs in
//! a transaction of its own together with its row in that table, under a
//! transaction-scoped advisory lock keyed by the schema name: instances
//! that start together queue up, and each one re-reads the version under
//! the lock, so every migration runs exactly once. Schemas side by side
//! take different locks and never wait for each other.
//!
//! `sqlx::migrate::Migrator` keeps one `_sqlx_migrations` table per
//! database, in whatever schema comes first on the search path: two stores
//! in two schemas of one database (and the service's own migrations) would
//! share it and mix their versions. Hence our own small runner.

use sqlx::{Executor as _, PgPool};
use tower_totp::store::StoreError;

use crate::codec::db_error;

/// The schema unless [`PostgresStore::with_schema`](crate::PostgresStore::with_schema)
/// says otherwise.
pub const DEFAULT_SCHEMA: &str = "tower_totp";

/// Every migration, in order: `MIGRATIONS[i]` makes version `i + 1`.
/// `{schema}` stands for the quoted schema name.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_tables.sql")];

/// The schema version this build creates and understands.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Class of the advisory locks this crate takes (the first key of
/// `pg_advisory_xact_lock(int, int)`), so they never collide with the
/// application's own advisory locks on one key: "TOTP" in ASCII.
const LOCK_CLASS: i32 = 0x544F_5450;

/// A schema name that was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "schema name {0:?} is not a plain identifier: use 1 to 63 lowercase ASCII letters, digits \
     and _, not starting with a digit, and not starting with pg_"
)]
pub struct InvalidSchemaName(String);

/// A checked schema name, kept quoted for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schema {
    name: String,
    quoted: String,
}

impl Schema {
    /// Check `name`: only names that need no quoting and that PostgreSQL
    /// does not reserve (`pg_*`), so the name in SQL is the name in
    /// `psql` and in `search_path` alike. It is still quoted in SQL, so
    /// that no keyword can ever be read as one.
    pub(crate) fn new(name: &str) -> Result<Self, InvalidSchemaName> {
        let mut chars = name.chars();
        let plain = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && name.len() <= 63
            && !name.starts_with("pg_");
        if !plain {
            return Err(InvalidSchemaName(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            quoted: format!("\"{name}\""),
        })
    }

    /// The name as given.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `template` with every `{schema}` replaced by the quoted name.
    pub(crate) fn sql(&self, template: &str) -> String {
        template.replace("{schema}", &self.quoted)
    }

    /// The second key of this schema's migration lock: a stable hash of
    /// the name (FNV-1a, folded to 32 bits), the same in every process.
    fn lock_key(&self) -> i32 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let folded = (hash >> 32) ^ (hash & 0xFFFF_FFFF);
        u32::try_from(folded).unwrap_or_default().cast_signed()
    }
}

/// The schema was made by a newer release of this crate; found as the
/// [`source`](std::error::Error::source) of the [`StoreError::Unavailable`]
/// that [`PostgresStore::migrate`](crate::PostgresStore::migrate) returns.
/// Nothing is changed: upgrade every instance, or restore a backup.
#[derive(Debug, thiserror::Error)]
#[error(
    "schema {schema} has version {found}, newer than the latest this build knows ({supported})"
)]
pub struct SchemaTooNew {
    /// The schema.
    pub schema: String,
    /// The newest version applied in it.
    pub found: i64,
    /// The newest version this build knows.
    pub supported: i64,
}

/// Bring the schema up to [`LATEST`], one migration per transaction.
pub(crate) async fn migrate(pool: &PgPool, schema: &Schema) -> Result<(), StoreError> {
    while apply_next(pool, schema).await? {}
    Ok(())
}

/// Apply the next migration, if one is due: true if it did.
async fn apply_next(pool: &PgPool, schema: &Schema) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    // Held until this transaction ends: the version read below cannot
    // change before our commit.
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(schema.lock_key())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    // Several statements without parameters: the simple query protocol
    // (a `&str` as the query) runs them all.
    let setup = schema.sql(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version    BIGINT      NOT NULL PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    );
    tx.execute(setup.as_str()).await.map_err(db_error)?;
    let found: i64 = sqlx::query_scalar(
        &schema.sql("SELECT COALESCE(max(version), 0) FROM {schema}.schema_migrations"),
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    if found > LATEST {
        return Err(StoreError::unavailable(SchemaTooNew {
            schema: schema.name().to_owned(),
            found,
            supported: LATEST,
        }));
    }
    let Some(sql) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
        // Up to date: the transaction only made what already existed.
        tx.commit().await.map_err(db_error)?;
        return Ok(false);
    };
    let migration = schema.sql(sql);
    tx.execute(migration.as_str()).await.map_err(db_error)?;
    sqlx::query(&schema.sql("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"))
        .bind(found + 1)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_schemas() {
        for good in ["tower_totp", "_x", "a1", &"a".repeat(63)] {
            assert!(Schema::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "Tower",
            "a-b",
            "a\"b",
            "a;drop",
            "pg_catalog",
            "é",
            &"a".repeat(64),
        ] {
            assert!(Schema::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_get_the_quoted_name() {
        let s = Schema::new("acme").expect("plain");
        assert_eq!(
            s.sql("SELECT 1 FROM {schema}.users"),
            "SELECT 1 FROM \"acme\".users"
        );
    }

    #[test]
    fn lock_keys_differ_by_schema_and_stay_put() {
        let a = Schema::new("a").expect("plain");
        let b = Schema::new("b").expect("plain");
        assert_ne!(a.lock_key(), b.lock_key());
        assert_eq!(a.lock_key(), Schema::new("a").expect("plain").lock_key());
    }
}
