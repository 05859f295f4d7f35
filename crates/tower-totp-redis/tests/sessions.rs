//! `RedisSessionStore` on a real server: a small conformance of its own,
//! and two "instances" sharing sessions through one Redis.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tower_sessions::cookie::time::{Duration as TimeDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Error;
use tower_sessions::{Expiry, Session, SessionStore};
use tower_totp_redis::RedisSessionStore;
use tower_totp_redis::redis::AsyncCommands;
use tower_totp_testkit::server::redis::RedisServer;

async fn store(server: &RedisServer) -> RedisSessionStore {
    RedisSessionStore::new(server.manager().await)
        .with_prefix(tower_totp_testkit::server::redis::fresh_prefix())
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

#[tokio::test]
async fn create_save_load_delete() {
    let server = RedisServer::start();
    let store = store(&server).await;

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

#[tokio::test]
async fn create_never_overwrites_an_existing_session() {
    let server = RedisServer::start();
    let store = store(&server).await;

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

#[tokio::test]
async fn save_does_not_bring_back_a_deleted_session() {
    let server = RedisServer::start();
    let store = store(&server).await;

    let mut r = record(TimeDuration::minutes(5));
    store.create(&mut r).await.unwrap();
    // Logged out on one instance while a request runs on another...
    store.delete(&r.id).await.unwrap();
    // ...which then saves its copy.
    store.save(&r).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
}

#[tokio::test]
async fn sessions_expire_at_their_expiry_date() {
    let server = RedisServer::start();
    let store = store(&server).await;

    let mut short = record(TimeDuration::milliseconds(300));
    store.create(&mut short).await.unwrap();
    assert!(store.load(&short.id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(store.load(&short.id).await.unwrap().is_none());
    let mut conn = server.manager().await;
    let key = format!("{}{}", store.prefix(), short.id);
    assert!(
        !conn.exists::<_, bool>(&key).await.unwrap(),
        "Redis keeps an expired key"
    );

    // Already expired: never loads.
    let mut past = record(TimeDuration::minutes(-1));
    store.create(&mut past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_none());

    // Saving with a later expiry extends the key's life.
    let mut r = record(TimeDuration::milliseconds(400));
    store.create(&mut r).await.unwrap();
    r.expiry_date = OffsetDateTime::now_utc() + TimeDuration::minutes(5);
    store.save(&r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(store.load(&r.id).await.unwrap().is_some());
}

#[tokio::test]
async fn cycling_the_id_leaves_only_the_new_session() {
    let server = RedisServer::start();
    let store = Arc::new(store(&server).await);

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

/// Two instances, each with its own connection, share sessions.
#[tokio::test]
async fn two_instances_share_sessions() {
    let server = RedisServer::start();
    let prefix = tower_totp_testkit::server::redis::fresh_prefix();
    // A shares the connection of its TOTP store; B has a connection of its own.
    let a = Arc::new(
        server
            .store()
            .await
            .session_store()
            .with_prefix(prefix.clone()),
    );
    let b = Arc::new(RedisSessionStore::new(server.manager().await).with_prefix(prefix));

    let on_a = Session::new(None, Arc::clone(&a), None);
    on_a.insert("user", "alice").await.unwrap();
    on_a.save().await.unwrap();
    let id = on_a.id().unwrap();

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

#[tokio::test]
async fn a_damaged_record_is_a_decode_error() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let id = Id::default();
    let mut conn = server.manager().await;
    let key = format!("{}{id}", store.prefix());
    conn.set::<_, _, ()>(&key, "{not json").await.unwrap();
    assert!(matches!(store.load(&id).await, Err(Error::Decode(_))));
}

#[tokio::test]
async fn a_stopped_server_is_a_backend_error() {
    let mut server = RedisServer::start();
    let store = store(&server).await;
    server.stop();
    let load = tokio::time::timeout(Duration::from_secs(5), store.load(&Id::default()))
        .await
        .expect("load must fail within the connection timeouts");
    assert!(matches!(load, Err(Error::Backend(_))), "{load:?}");
    let mut r = record(TimeDuration::minutes(1));
    let create = tokio::time::timeout(Duration::from_secs(5), store.create(&mut r))
        .await
        .expect("create must fail within the connection timeouts");
    assert!(matches!(create, Err(Error::Backend(_))), "{create:?}");
}
