//! What the store's scripts do to the server, beyond what the conformance
//! suite can see: `record_miss` makes the same writes whether or not it
//! keeps a resync candidate, and a pending enrollment in the layout from
//! before issue 11 is never read and is cleaned up.

#![allow(clippy::unwrap_used)]

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::code::{CodeParams, Secret};
use tower_totp::seal::Keyring;
use tower_totp::store::{
    Activated, Activation, AuthenticatorId, EnrollmentStore, PendingEnrollment, PendingLimits,
    PutPending, ResyncCandidate, StepStore,
};
use tower_totp_redis::RedisStore;
use tower_totp_redis::redis::aio::ConnectionManager;
use tower_totp_redis::redis::{self, AsyncCommands};
use tower_totp_testkit::server::redis::RedisServer;

const ROOMY: PendingLimits = PendingLimits {
    expired_before: UnixTime::EPOCH,
    max: 1_000,
};

fn pending(user: &UserId, name: &str) -> PendingEnrollment {
    PendingEnrollment {
        id: AuthenticatorId::generate().unwrap(),
        name: name.to_owned(),
        secret: Keyring::ephemeral()
            .unwrap()
            .seal(user, &Secret::generate())
            .unwrap(),
        params: CodeParams::default(),
        created_at: UnixTime::from_secs(1_000),
        replaces: None,
    }
}

async fn enroll(store: &RedisStore, user: &UserId, name: &str) -> AuthenticatorId {
    let p = pending(user, name);
    let id = p.id.clone();
    assert_eq!(
        store.put_pending(user, p, ROOMY).await.unwrap(),
        PutPending::Stored
    );
    let activation = Activation {
        pending_id: id.clone(),
        step: 10,
        offset: 0,
        now: UnixTime::from_secs(1_001),
        first_only: false,
        max_authenticators: 1_000,
        recovery: Vec::new(),
    };
    let outcome = store.activate_pending(user, &activation).await.unwrap();
    assert!(matches!(outcome, Activated::Done { .. }), "{outcome:?}");
    id
}

/// One number from `INFO <section>`: `field:N`, or for `commandstats`
/// the calls of `cmdstat_<command>:calls=N,usec=...` (0 if never called).
async fn info(conn: &mut ConnectionManager, section: &str, field: &str) -> u64 {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap();
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'));
    let Some(value) = value else { return 0 };
    let number = match value.strip_prefix("calls=") {
        Some(stats) => stats.split(',').next().unwrap_or_default(),
        None => value.trim(),
    };
    number.parse().unwrap()
}

/// What the server counts for one call: writes (`rdb_changes_since_last_save`,
/// every change that goes to the append-only file and the replicas),
/// scripts run, and the commands they ran.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Work {
    writes: u64,
    scripts: u64,
    hset: u64,
    hmget: u64,
    hkeys: u64,
}

async fn counters(conn: &mut ConnectionManager) -> Work {
    Work {
        writes: info(conn, "persistence", "rdb_changes_since_last_save").await,
        scripts: info(conn, "commandstats", "cmdstat_evalsha").await,
        hset: info(conn, "commandstats", "cmdstat_hset").await,
        hmget: info(conn, "commandstats", "cmdstat_hmget").await,
        hkeys: info(conn, "commandstats", "cmdstat_hkeys").await,
    }
}

#[tokio::test]
async fn a_miss_makes_the_same_writes_with_or_without_a_candidate() {
    let server = RedisServer::start();
    let store = server.store().await;
    let mut conn = server.manager().await;
    let u = UserId::new("alice");
    let phone = enroll(&store, &u, "phone").await;
    enroll(&store, &u, "tablet").await;
    let candidate = |step| Some((phone.clone(), ResyncCandidate { step, offset: 7 }));
    let unknown = Some((
        AuthenticatorId::new("ffffffffffffffff"),
        ResyncCandidate { step: 1, offset: 0 },
    ));
    // Load the script once, so that no call below pays for a NOSCRIPT.
    store.record_miss(&u, None).await.unwrap();

    let mut seen = Vec::new();
    for round in 0..3 {
        for (what, c) in [
            ("none", None),
            ("some", candidate(40 + round)),
            ("same again", candidate(40 + round)),
            ("none", None),
            ("unknown id", unknown.clone()),
        ] {
            let before = counters(&mut conn).await;
            store.record_miss(&u, c).await.unwrap();
            let after = counters(&mut conn).await;
            seen.push((
                what,
                Work {
                    writes: after.writes - before.writes,
                    scripts: after.scripts - before.scripts,
                    hset: after.hset - before.hset,
                    hmget: after.hmget - before.hmget,
                    hkeys: after.hkeys - before.hkeys,
                },
            ));
        }
    }
    let first = seen[0].1;
    assert!(first.writes > 0, "a miss is a write: {seen:?}");
    assert_eq!(first.scripts, 1, "one round trip: {seen:?}");
    assert!(
        seen.iter().all(|(_, w)| *w == first),
        "every miss does the same work: {seen:?}"
    );
    // And the candidate is where the last Some put it.
    let list = store.authenticators(&u).await.unwrap();
    let kept = list.iter().find(|a| a.id == phone).unwrap().sync.resync;
    assert_eq!(
        kept,
        Some(ResyncCandidate {
            step: 42,
            offset: 7
        })
    );
    assert!(
        list.iter()
            .filter(|a| a.id != phone)
            .all(|a| a.sync.resync.is_none()),
        "a plain miss writes no candidate: {list:?}"
    );
}

#[tokio::test]
async fn a_pending_enrollment_of_the_old_layout_is_never_read_and_is_cleaned_up() {
    let server = RedisServer::start();
    let store = server.store().await;
    let mut conn = server.manager().await;
    let u = UserId::new("bob");
    let key = format!("{{{}bob}}:pending", store.prefix());
    // What the store wrote before issue 11: one enrollment per user.
    conn.hset_multiple::<_, _, _, ()>(
        &key,
        &[
            ("id", "00000000000000aa"),
            ("name", "old phone"),
            ("secret", "sealed"),
            ("params", "{}"),
            ("created", "1000"),
        ],
    )
    .await
    .unwrap();
    let old = AuthenticatorId::new("00000000000000aa");
    assert_eq!(store.pending(&u, &old).await.unwrap(), None);

    let p = pending(&u, "new phone");
    assert_eq!(
        store.put_pending(&u, p.clone(), ROOMY).await.unwrap(),
        PutPending::Stored
    );
    assert_eq!(store.pending(&u, &p.id).await.unwrap(), Some(p.clone()));
    let mut fields: Vec<String> = conn.hkeys(&key).await.unwrap();
    fields.sort();
    let id = p.id.as_str();
    assert_eq!(
        fields,
        [
            format!("created:{id}"),
            format!("name:{id}"),
            format!("params:{id}"),
            format!("secret:{id}"),
        ],
        "only the new enrollment is left"
    );
}
