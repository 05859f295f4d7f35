//! `PostgresSessionStore` on a real server: the Redis session store's
//! small conformance (`crates/tower-totp-redis/tests/sessions.rs`), and two
//! "instances" sharing sessions through one database.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tower_sessions::cookie::time::{Duration as TimeDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Error;
use tower_sessions::{Expiry, Session, SessionStore};
use tower_totp_postgres::{PostgresSessionStore, PostgresStore};
use tower_totp_testkit::server::postgres::PostgresServer;

async fn store(server: &PostgresServer) -> (PostgresStore, PostgresSessionStore) {
    let store = common::store(server).await;
    let sessions = store.session_store();
    (store, sessions)
}

fn record(expires_in: TimeDuration) -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert("user".to_owned(), serde_json::json!("alice"));
    data.insert("verified_epoch".to_owned(), serde_json::json!(3));
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

/// The record as it comes back: JSON keeps the time to the nanosecond.
fn same(a: &Record, b: &Record) -> bool {
    a.id == b.id && a.data == b.data && a.expiry_date == b.expiry_date
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_save_load_delete() {
    let server = PostgresServer::shared();
    let (_, store) = store(&server).await;

    let mut r = record(TimeDuration::minutes(5));
    store.create(&mut r).await.unwrap();
    let loaded = store
        .load(&r.id)
        .await
        .unwrap()
        .expect("created session loads");
    assert!(same(&loaded, &r));

    r.data
        .insert("step".to_owned(), serde_json::json!("verified"));
    store.save(&r).await.unwrap();
    let loaded = store.load(&r.id).await.unwrap().unwrap();
    assert_eq!(loaded.data["step"], "verified");

    store.delete(&r.id).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    // Deleting what is gone is fine.
    store.delete(&r.id).await.unwrap();
    assert!(store.load(&Id::default()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_never_overwrites_an_existing_session() {
    let server = PostgresServer::shared();
    let (_, store) = store(&server).await;

    let mut first = record(TimeDuration::minutes(5));
    store.create(&mut first).await.unwrap();
    // A second session that drew the same id.
    let mut second = record(TimeDuration::minutes(5));
    second.id = first.id;
    second
        .data
        .insert("user".to_owned(), serde_json::json!("mallory"));
    store.create(&mut second).await.unwrap();

    assert_ne!(
        second.id, first.id,
        "create must draw a new id on collision"
    );
    let kept = store.load(&first.id).await.unwrap().unwrap();
    assert_eq!(
        kept.data["user"], "alice",
        "the existing session was overwritten"
    );
    let new = store.load(&second.id).await.unwrap().unwrap();
    assert_eq!(new.data["user"], "mallory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_does_not_bring_back_a_deleted_session() {
    let server = PostgresServer::shared();
    let (_, store) = store(&server).await;

    let mut r = record(TimeDuration::minutes(5));
    store.create(&mut r).await.unwrap();
    // Logged out on one instance while a request runs on another...
    store.delete(&r.id).await.unwrap();
    // ...which then saves its copy.
    store.save(&r).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
}

/// Expiry is a timestamp compared with the time of each call, so a
/// session whose expiry date has passed is gone without waiting; creating
/// sessions deletes expired rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_never_load_and_are_deleted() {
    let server = PostgresServer::shared();
    let (tables, store) = store(&server).await;

    let mut past = record(TimeDuration::minutes(-1));
    store.create(&mut past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_none());
    assert_eq!(rows(&tables).await, 1);

    // Saving with a later expiry brings it back to life (a request that
    // extends an inactivity expiry), as long as the row is there.
    past.expiry_date = OffsetDateTime::now_utc() + TimeDuration::minutes(5);
    store.save(&past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_some());

    // A new session deletes the expired ones.
    let mut gone = record(TimeDuration::minutes(-1));
    store.create(&mut gone).await.unwrap();
    let mut fresh = record(TimeDuration::minutes(5));
    store.create(&mut fresh).await.unwrap();
    assert_eq!(rows(&tables).await, 2, "the expired row is still there");
    assert!(store.load(&gone.id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycling_the_id_leaves_only_the_new_session() {
    let server = PostgresServer::shared();
    let (_, store) = store(&server).await;
    let store = Arc::new(store);

    let session = Session::new(
        None,
        Arc::clone(&store),
        Some(Expiry::OnInactivity(TimeDuration::minutes(10))),
    );
    session.insert("user", "alice").await.unwrap();
    session.save().await.unwrap();
    let old = session.id().unwrap();

    // Step up in privilege: a new id, the old one gone.
    session.cycle_id().await.unwrap();
    session.insert("verified", true).await.unwrap();
    session.save().await.unwrap();
    let new = session.id().unwrap();

    assert_ne!(old, new);
    assert!(
        store.load(&old).await.unwrap().is_none(),
        "old id still loads"
    );
    let r = store.load(&new).await.unwrap().unwrap();
    assert_eq!(r.data["user"], "alice");
    assert_eq!(r.data["verified"], true);
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
    let (a, b) = (Arc::new(a), Arc::new(b));

    let on_a = Session::new(None, Arc::clone(&a), None);
    on_a.insert("user", "alice").await.unwrap();
    on_a.save().await.unwrap();
    let id = on_a.id().unwrap();
    assert!(elsewhere.load(&id).await.unwrap().is_none());

    let on_b = Session::new(Some(id), Arc::clone(&b), None);
    assert_eq!(
        on_b.get::<String>("user").await.unwrap().as_deref(),
        Some("alice")
    );

    // Logout on B; A sees no session any more.
    on_b.flush().await.unwrap();
    let again_on_a = Session::new(Some(id), a, None);
    assert!(again_on_a.get::<String>("user").await.unwrap().is_none());
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
    let mut r = record(TimeDuration::minutes(1));
    let create = tokio::time::timeout(Duration::from_secs(5), store.create(&mut r))
        .await
        .expect("create must fail within the pool's acquire timeout");
    assert!(matches!(create, Err(Error::Backend(_))), "{create:?}");
    server.start_again();
    let mut r = record(TimeDuration::minutes(1));
    store
        .create(&mut r)
        .await
        .expect("served again after the restart");
}
