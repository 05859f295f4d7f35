//! Two demo instances on a Redis Cluster (six real `redis-server`
//! processes, three masters with a replica each), as `--redis` with a
//! comma-separated list of node URLs starts them: one service, where a
//! code accepted on one instance is a replay on the other.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, START, config};
use http::StatusCode;
use serde_json::json;
use totp_demo::{app, connect_redis};
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::seal::SealingKey;
use tower_totp_testkit::server::redis::RedisServer;
use tower_totp_testkit::server::redis_cluster::RedisCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_act_as_one() {
    let cluster = RedisCluster::start();
    // What `--redis` passes on: the nodes, comma-separated (spaces allowed).
    let flag = cluster.urls().join(", ");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite3");
    let key = SealingKey::generate().unwrap();
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store = connect_redis(&flag).await.unwrap();
        assert!(store.is_cluster(), "a list of URLs is a cluster");
        assert!(store.replica_ack().is_some(), "acknowledged by a replica");
        instances.push(app(config(&db, &key, &clock).redis(store)).unwrap());
    }
    let b = instances.pop().unwrap();
    let a = instances.pop().unwrap();

    // jsmith syncs an app on A; B sees the enrollment.
    let mut c = Client::new(&a);
    assert_eq!(c.login("jsmith", "demo").await, "enroll");
    let secret = c.sync_app(&clock).await;
    c.post_json("/logout", json!({})).await;
    clock.advance(Duration::from_secs(30));

    // Two sessions at the second step, one begun on each instance.
    let mut on_a = Client::new(&a);
    let mut on_b = Client::new(&b);
    assert_eq!(on_a.login("jsmith", "demo").await, "totp");
    assert_eq!(on_b.login("jsmith", "demo").await, "totp");
    let code = common::app_code(&secret, &clock);
    let ok = on_a.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let replay = on_b.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
    assert_eq!(replay.problem().0, "replayed", "{}", replay.text());

    // A's session is B's too (sessions in the cluster); B's is not past
    // its second step.
    let me = on_a.on(&b).get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["second_factor"], "totp");
    let me = on_b.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text());

    // The next code works on B.
    clock.advance(Duration::from_secs(30));
    let ok = on_b.send_code(&secret, &clock).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

#[tokio::test]
async fn one_url_is_one_server_and_no_url_is_an_error() {
    let server = RedisServer::start();
    let store = connect_redis(&server.url()).await.unwrap();
    assert!(!store.is_cluster());
    assert_eq!(store.replica_ack(), None);
    assert!(connect_redis(" , ").await.is_err());
}
