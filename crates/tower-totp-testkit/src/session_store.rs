//! The rules every shared session store of ours keeps (the Redis crate's
//! `RedisSessionStore`, the PostgreSQL crate's `PostgresSessionStore`),
//! written once: each function runs one case against the store it is
//! given and panics where the store breaks the rule.
//!
//! Why these rules: several instances share the store, so `create` must
//! never take over another session's id, a `save` from a request still
//! running must not bring back a session a logout deleted, and cycling
//! the id (at every login step) must leave the old id dead.

use std::collections::HashMap;
use std::sync::Arc;

use tower_sessions::cookie::time::{Duration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::{Expiry, Session, SessionStore};

/// A record of alice's, expiring `expires_in` from now, with a fresh id.
pub fn record(expires_in: Duration) -> Record {
    let mut data = HashMap::new();
    data.insert("user".to_owned(), serde_json::json!("alice"));
    data.insert("verified_epoch".to_owned(), serde_json::json!(3));
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

/// Whether `a` came back as `b`: JSON keeps the time to the nanosecond.
fn same(a: &Record, b: &Record) -> bool {
    a.id == b.id && a.data == b.data && a.expiry_date == b.expiry_date
}

/// Created, loaded, saved, loaded with the change, deleted (twice: deleting
/// what is gone is fine); an unknown id loads nothing.
///
/// # Panics
///
/// Where the store differs, or fails.
pub async fn create_save_load_delete(store: &impl SessionStore) {
    let mut r = record(Duration::minutes(5));
    store.create(&mut r).await.expect("create");
    let loaded = store
        .load(&r.id)
        .await
        .expect("load")
        .expect("a created session loads");
    assert!(same(&loaded, &r), "{loaded:?} is not {r:?}");

    r.data
        .insert("step".to_owned(), serde_json::json!("verified"));
    store.save(&r).await.expect("save");
    let loaded = store.load(&r.id).await.expect("load").expect("saved");
    assert_eq!(loaded.data["step"], "verified");

    store.delete(&r.id).await.expect("delete");
    assert!(store.load(&r.id).await.expect("load").is_none());
    store.delete(&r.id).await.expect("deleting what is gone");
    assert!(store.load(&Id::default()).await.expect("load").is_none());
}

/// A second session that drew an id in use gets a new one; the first is
/// kept as it was.
///
/// # Panics
///
/// Where the store overwrites, or fails.
pub async fn create_never_overwrites_an_existing_session(store: &impl SessionStore) {
    let mut first = record(Duration::minutes(5));
    store.create(&mut first).await.expect("create");
    let mut second = record(Duration::minutes(5));
    second.id = first.id;
    second
        .data
        .insert("user".to_owned(), serde_json::json!("mallory"));
    store.create(&mut second).await.expect("create");

    assert_ne!(
        second.id, first.id,
        "create must draw a new id on collision"
    );
    let kept = store.load(&first.id).await.expect("load").expect("kept");
    assert_eq!(
        kept.data["user"], "alice",
        "the existing session was overwritten"
    );
    let new = store.load(&second.id).await.expect("load").expect("new");
    assert_eq!(new.data["user"], "mallory");
}

/// A logout on one instance, then a `save` of a request still running on
/// another: the session stays gone.
///
/// # Panics
///
/// Where the save brings it back, or the store fails.
pub async fn save_does_not_bring_back_a_deleted_session(store: &impl SessionStore) {
    let mut r = record(Duration::minutes(5));
    store.create(&mut r).await.expect("create");
    store.delete(&r.id).await.expect("delete");
    store.save(&r).await.expect("save");
    assert!(store.load(&r.id).await.expect("load").is_none());
}

/// A session through tower-sessions' `Session`: after `cycle_id` (a step
/// up in privilege) only the new id loads, with the data.
///
/// # Panics
///
/// Where the old id still loads, or the store fails.
pub async fn cycling_the_id_leaves_only_the_new_session<S: SessionStore>(store: Arc<S>) {
    let session = Session::new(
        None,
        Arc::clone(&store),
        Some(Expiry::OnInactivity(Duration::minutes(10))),
    );
    session.insert("user", "alice").await.expect("insert");
    session.save().await.expect("save");
    let old = session.id().expect("an id");

    session.cycle_id().await.expect("cycle");
    session.insert("verified", true).await.expect("insert");
    session.save().await.expect("save");
    let new = session.id().expect("an id");

    assert_ne!(old, new);
    assert!(
        store.load(&old).await.expect("load").is_none(),
        "old id still loads"
    );
    let r = store.load(&new).await.expect("load").expect("new id loads");
    assert_eq!(r.data["user"], "alice");
    assert_eq!(r.data["verified"], true);
}

/// Two instances' stores on one database: a session saved through `a`
/// loads through `b`, and a logout through `b` ends it for `a`.
///
/// # Panics
///
/// Where they do not share, or a store fails.
pub async fn two_instances_share_sessions<A: SessionStore, B: SessionStore>(a: Arc<A>, b: Arc<B>) {
    let on_a = Session::new(None, Arc::clone(&a), None);
    on_a.insert("user", "alice").await.expect("insert");
    on_a.save().await.expect("save");
    let id = on_a.id().expect("an id");

    let on_b = Session::new(Some(id), Arc::clone(&b), None);
    assert_eq!(
        on_b.get::<String>("user").await.expect("get").as_deref(),
        Some("alice")
    );

    on_b.flush().await.expect("flush");
    let again_on_a = Session::new(Some(id), a, None);
    assert!(
        again_on_a
            .get::<String>("user")
            .await
            .expect("get")
            .is_none()
    );
}
