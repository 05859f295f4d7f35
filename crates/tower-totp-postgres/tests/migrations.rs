//! Migrations on a real server: a fresh schema gets every table, a second
//! run changes nothing, instances migrating one schema at once are safe,
//! a newer schema is refused, and stores in two schemas of one database
//! share nothing.

mod common;

use tower_totp::UserId;
use tower_totp::recovery::RecoveryHash;
use tower_totp::store::{RecoveryStore, StoreError};
use tower_totp_postgres::sqlx::{self, PgPool};
use tower_totp_postgres::{PostgresStore, SchemaTooNew};
use tower_totp_testkit::server::postgres::PostgresServer;

async fn tables(pool: &PgPool, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("tables")
}

/// The versions applied, with when.
async fn versions(pool: &PgPool, schema: &str) -> Vec<(i64, String)> {
    sqlx::query_as(&format!(
        "SELECT version, applied_at::text FROM \"{schema}\".schema_migrations ORDER BY 1"
    ))
    .fetch_all(pool)
    .await
    .expect("versions")
}

fn hashes(seed: u8) -> Vec<RecoveryHash> {
    (0..3)
        .map(|i| RecoveryHash::from_bytes([seed + i; 32]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_schema_gets_every_table_at_the_latest_version() {
    let server = PostgresServer::shared();
    let pool = common::pool(&server.url()).await;
    let schema = common::fresh_schema();
    let store = PostgresStore::new(pool.clone())
        .with_schema(&schema)
        .expect("plain name");
    assert!(tables(&pool, &schema).await.is_empty());

    store.migrate().await.expect("migrate");

    assert_eq!(
        tables(&pool, &schema).await,
        [
            "authenticators",
            "pending_enrollments",
            "recovery_codes",
            "schema_migrations",
            "users"
        ]
    );
    let applied: Vec<i64> = versions(&pool, &schema)
        .await
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(
        applied,
        (1..=PostgresStore::SCHEMA_VERSION).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_again_changes_nothing() {
    let server = PostgresServer::shared();
    let store = common::store(&server).await;
    let alice = UserId::new("alice");
    store
        .replace_recovery_codes(&alice, hashes(1))
        .await
        .expect("codes");
    let before = versions(store.pool(), store.schema()).await;

    store.migrate().await.expect("second run");
    store.migrate().await.expect("third run");

    assert_eq!(versions(store.pool(), store.schema()).await, before);
    assert_eq!(store.recovery_codes_left(&alice).await.expect("left"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_migrating_one_schema_at_once_apply_each_migration_once() {
    let server = PostgresServer::shared();
    let schema = common::fresh_schema();
    let mut instances = Vec::new();
    for _ in 0..6 {
        // Each instance with a pool of its own, as separate processes have.
        let pool = common::pool(&server.url()).await;
        let store = PostgresStore::new(pool)
            .with_schema(&schema)
            .expect("plain name");
        instances.push(tokio::spawn(async move {
            store.migrate().await.map(|()| store)
        }));
    }
    let mut stores = Vec::new();
    for instance in instances {
        stores.push(
            instance
                .await
                .expect("joined")
                .expect("every migrate succeeds"),
        );
    }
    let applied = versions(stores[0].pool(), &schema).await;
    assert_eq!(
        applied.len(),
        usize::try_from(PostgresStore::SCHEMA_VERSION).expect("small")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schemas_side_by_side_share_nothing() {
    let server = PostgresServer::shared();
    let pool = common::pool(&server.url()).await;
    let (a, b) = (common::fresh_schema(), common::fresh_schema());
    let store_a = PostgresStore::new(pool.clone())
        .with_schema(&a)
        .expect("plain");
    let store_b = PostgresStore::new(pool.clone())
        .with_schema(&b)
        .expect("plain");
    store_a.migrate().await.expect("migrate a");
    store_b.migrate().await.expect("migrate b");
    let alice = UserId::new("alice");

    store_a
        .replace_recovery_codes(&alice, hashes(1))
        .await
        .expect("codes in a");

    assert_eq!(store_a.recovery_codes_left(&alice).await.expect("a"), 3);
    assert_eq!(store_b.recovery_codes_left(&alice).await.expect("b"), 0);
    // Each schema keeps its own migration record.
    assert_eq!(
        versions(&pool, &a).await.len(),
        versions(&pool, &b).await.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_a_newer_release_is_refused_and_left_alone() {
    let server = PostgresServer::shared();
    let store = common::store(&server).await;
    let newer = PostgresStore::SCHEMA_VERSION + 1;
    sqlx::query(&format!(
        "INSERT INTO \"{}\".schema_migrations (version) VALUES ($1)",
        store.schema()
    ))
    .bind(newer)
    .execute(store.pool())
    .await
    .expect("a newer version");
    let before = versions(store.pool(), store.schema()).await;

    let err = store.migrate().await.expect_err("refused");

    let StoreError::Unavailable(source) = &err else {
        panic!("unavailable, not {err:?}");
    };
    let too_new = source.downcast_ref::<SchemaTooNew>().expect("SchemaTooNew");
    assert_eq!(
        (too_new.found, too_new.supported),
        (newer, PostgresStore::SCHEMA_VERSION)
    );
    assert_eq!(versions(store.pool(), store.schema()).await, before);
}

#[tokio::test]
async fn schema_names_that_need_quoting_are_refused() {
    // A pool that never connects: the name is checked before any query.
    let pool = tower_totp_postgres::pool_options()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool");
    for bad in ["Acme", "a-b", "a\"; DROP SCHEMA public; --", "pg_x", ""] {
        assert!(
            PostgresStore::new(pool.clone()).with_schema(bad).is_err(),
            "{bad:?}"
        );
    }
}
