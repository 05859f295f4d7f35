//! `PostgresSessionStore` on a real server: the shared session rules
//! (`tower_totp_testkit::session_store`, as for the Redis store), expiry,
//! failures, and two
//! "instances" sharing sessions through one database.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tower_sessions::SessionStore;
use tower_sessions::cookie::time::{Duration as TimeDuration, OffsetDateTime};
use tower_sessions::session::Id;
use tower_sessions::session_store::Error;
use tower_totp_postgres::{PostgresSessionStore, PostgresStore};
use tower_totp_testkit::server::postgres::PostgresServer;
use tower_totp_testkit::session_store;

async fn store(server: &PostgresServer) -> (PostgresStore, PostgresSessionStore) {
    let store = common::store(server).await;
    let sessions = store.session_store();
    (store, sessions)
}

/// Rows in the schema's `sessions` table.
async fn rows(store: &PostgresStore) -> i64 {
    sqlx_count(store, "SELECT COUNT(*) FROM {schema}.sessions").await
}

async fn sqlx_count(store: &PostgresStore, template: &str) -> i64 {
    let sql = template.replace("{schema}", &format!("\"{}\"", store.schema()));
    tower_totp_postgres::sqlx::query_scalar(&sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Expiry is a timestamp compared with the time of each call, so a
/// session whose expiry date has passed is gone without waiting; creating
/// sessions deletes expired rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_save_load_delete() {
    let server = PostgresServer::shared();
    session_store::create_save_load_delete(&store(&server).await.1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_never_overwrites_an_existing_session() {
    let server = PostgresServer::shared();
    session_store::create_never_overwrites_an_existing_session(&store(&server).await.1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_does_not_bring_back_a_deleted_session() {
    let server = PostgresServer::shared();
    session_store::save_does_not_bring_back_a_deleted_session(&store(&server).await.1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycling_the_id_leaves_only_the_new_session() {
    let server = PostgresServer::shared();
    session_store::cycling_the_id_leaves_only_the_new_session(Arc::new(store(&server).await.1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_never_load_and_are_deleted() {
    let server = PostgresServer::shared();
    let (tables, store) = store(&server).await;

    let mut past = session_store::record(TimeDuration::minutes(-1));
    store.create(&mut past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_none());
    assert_eq!(rows(&tables).await, 1);

    // Saving with a later expiry brings it back to life (a request that
    // extends an inactivity expiry), as long as the row is there.
    past.expiry_date = OffsetDateTime::now_utc() + TimeDuration::minutes(5);
    store.save(&past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_some());

    // A new session deletes the expired ones.
    let mut gone = session_store::record(TimeDuration::minutes(-1));
    store.create(&mut gone).await.unwrap();
    let mut fresh = session_store::record(TimeDuration::minutes(5));
    store.create(&mut fresh).await.unwrap();
    assert_eq!(rows(&tables).await, 2, "the expired row is still there");
    assert!(store.load(&gone.id).await.unwrap().is_none());
}

/// Two instances, each with a pool of its own, share sessions; stores in
/// two schemas share none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_and_two_schemas_none() {
    let server = PostgresServer::shared();
    let (tables, a) = store(&server).await;
    let b = PostgresStore::new(common::pool(&server.url()).await)
        .with_schema(tables.schema())
        .unwrap()
        .session_store();
    let (_, elsewhere) = store(&server).await;
    let b = Arc::new(b);
    // Not in another schema.
    let mut r = session_store::record(TimeDuration::minutes(5));
    a.create(&mut r).await.unwrap();
    assert!(elsewhere.load(&r.id).await.unwrap().is_none());
    assert!(b.load(&r.id).await.unwrap().is_some());
    session_store::two_instances_share_sessions(Arc::new(a), b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_a_decode_error() {
    let server = PostgresServer::shared();
    let (tables, store) = store(&server).await;
    let id = Id::default();
    let sql = format!(
        "INSERT INTO \"{}\".sessions (id, record, expires_at) VALUES ($1, '{{not json', $2)",
        tables.schema()
    );
    tower_totp_postgres::sqlx::query(&sql)
        .bind(id.to_string())
        .bind(i64::MAX)
        .execute(tables.pool())
        .await
        .unwrap();
    assert!(matches!(store.load(&id).await, Err(Error::Decode(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_a_backend_error() {
    let mut server = PostgresServer::start();
    // The crate's pool settings (the tests' pools wait longer).
    let pool = tower_totp_postgres::pool_options()
        .connect(&server.url())
        .await
        .unwrap();
    let tables = PostgresStore::new(pool)
        .with_schema(&common::fresh_schema())
        .unwrap();
    tables.migrate().await.unwrap();
    let store = tables.session_store();
    server.stop();
    let load = tokio::time::timeout(Duration::from_secs(5), store.load(&Id::default()))
        .await
        .expect("load must fail within the pool's acquire timeout");
    assert!(matches!(load, Err(Error::Backend(_))), "{load:?}");
    let mut r = session_store::record(TimeDuration::minutes(1));
    let create = tokio::time::timeout(Duration::from_secs(5), store.create(&mut r))
        .await
        .expect("create must fail within the pool's acquire timeout");
    assert!(matches!(create, Err(Error::Backend(_))), "{create:?}");
    server.start_again();
    let mut r = session_store::record(TimeDuration::minutes(1));
    store
        .create(&mut r)
        .await
        .expect("served again after the restart");
}
