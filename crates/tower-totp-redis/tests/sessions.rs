//! `RedisSessionStore` on a real server: the shared session rules
//! (`tower_totp_testkit::session_store`), expiry and failures of its own,
//! and two "instances" sharing sessions through one Redis.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tower_sessions::SessionStore;
use tower_sessions::cookie::time::{Duration as TimeDuration, OffsetDateTime};
use tower_sessions::session::Id;
use tower_sessions::session_store::Error;
use tower_totp_redis::RedisSessionStore;
use tower_totp_redis::redis::AsyncCommands;
use tower_totp_testkit::server::redis::RedisServer;
use tower_totp_testkit::session_store;

async fn store(server: &RedisServer) -> RedisSessionStore {
    RedisSessionStore::new(server.manager().await)
        .with_prefix(tower_totp_testkit::server::redis::fresh_prefix())
}

#[tokio::test]
async fn create_save_load_delete() {
    let server = RedisServer::start();
    session_store::create_save_load_delete(&store(&server).await).await;
}

#[tokio::test]
async fn create_never_overwrites_an_existing_session() {
    let server = RedisServer::start();
    session_store::create_never_overwrites_an_existing_session(&store(&server).await).await;
}

#[tokio::test]
async fn save_does_not_bring_back_a_deleted_session() {
    let server = RedisServer::start();
    session_store::save_does_not_bring_back_a_deleted_session(&store(&server).await).await;
}

#[tokio::test]
async fn cycling_the_id_leaves_only_the_new_session() {
    let server = RedisServer::start();
    session_store::cycling_the_id_leaves_only_the_new_session(Arc::new(store(&server).await)).await;
}

/// Two instances, each with its own connection, share sessions.
#[tokio::test]
async fn two_instances_share_sessions() {
    let server = RedisServer::start();
    let prefix = tower_totp_testkit::server::redis::fresh_prefix();
    // A shares the connection of its TOTP store; B has a connection of its own.
    let a = server
        .store()
        .await
        .session_store()
        .with_prefix(prefix.clone());
    let b = RedisSessionStore::new(server.manager().await).with_prefix(prefix);
    session_store::two_instances_share_sessions(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test]
async fn sessions_expire_at_their_expiry_date() {
    let server = RedisServer::start();
    let store = store(&server).await;

    let mut short = session_store::record(TimeDuration::milliseconds(300));
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
    let mut past = session_store::record(TimeDuration::minutes(-1));
    store.create(&mut past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_none());

    // Saving with a later expiry extends the key's life.
    let mut r = session_store::record(TimeDuration::milliseconds(400));
    store.create(&mut r).await.unwrap();
    r.expiry_date = OffsetDateTime::now_utc() + TimeDuration::minutes(5);
    store.save(&r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(store.load(&r.id).await.unwrap().is_some());
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
    let mut r = session_store::record(TimeDuration::minutes(1));
    let create = tokio::time::timeout(Duration::from_secs(5), store.create(&mut r))
        .await
        .expect("create must fail within the connection timeouts");
    assert!(matches!(create, Err(Error::Backend(_))), "{create:?}");
}
