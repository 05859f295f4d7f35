//! Opening: a fresh file gets the schema, a version 1 file migrates with
//! its data intact, a migrated file is left alone, and a file this build
//! does not understand is refused untouched.

mod common;

use std::error::Error as _;
use std::path::Path;

use rusqlite::{Connection, params};
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::code::{Algorithm, CodeParams, Secret};
use tower_totp::recovery::{RecoveryCodes, RecoveryHash};
use tower_totp::seal::{Keyring, SealedSecret};
use tower_totp::store::{
    Activated, Authenticator, AuthenticatorId, EnrollmentStore, PendingEnrollment, PutPending,
    RecoveryOutcome, RecoveryStore, ResyncCandidate, StepStore, StoreError, SyncState,
    ThrottleStore, UserStatus,
};
use tower_totp::throttle::ThrottleState;
use tower_totp_sqlite::{OpenError, SqliteStore};

/// The schema of version 1 as released.
const SCHEMA_V1: &str = include_str!("fixtures/schema_v1.sql");

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

/// The schema as SQLite keeps it: every table and index with its SQL.
fn schema(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .expect("prepare");
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn a_new_database_gets_the_latest_schema_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(
        store.status(&UserId::new("a")).await.expect("status").epoch,
        0
    );
    drop(store);
    assert_eq!(user_version(&path), SqliteStore::SCHEMA_VERSION);
    let conn = Connection::open(&path).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let tables: Vec<_> = schema(&path)
        .into_iter()
        .filter(|(kind, ..)| kind == "table")
        .map(|(_, name, _)| name)
        .collect();
    assert_eq!(
        tables,
        [
            "authenticators",
            "pending_enrollments",
            "recovery_codes",
            "users"
        ]
    );
}

#[tokio::test]
async fn opening_a_migrated_database_again_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let alice = UserId::new("alice");
    let store = SqliteStore::open(&path).expect("open");
    store
        .reset(&alice, UnixTime::from_secs(1))
        .await
        .expect("reset");
    drop(store);

    let version = user_version(&path);
    let tables = schema(&path);
    let bytes = std::fs::read(&path).expect("read the file");
    for _ in 0..2 {
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.status(&alice).await.expect("status").epoch, 1);
    }
    assert_eq!(user_version(&path), version);
    assert_eq!(schema(&path), tables);
    assert_eq!(
        std::fs::read(&path).expect("read the file"),
        bytes,
        "reopening a migrated database writes nothing"
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("future.sqlite3");
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    {
        // What a later release might have made: another table layout, in
        // the default rollback-journal mode.
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch(&format!(
            "CREATE TABLE users_v2 (id TEXT PRIMARY KEY, data BLOB);
             PRAGMA user_version = {newer};"
        ))
        .expect("set up");
    }
    let bytes = std::fs::read(&path).expect("read the file");

    let err = SqliteStore::open(&path).expect_err("a newer schema must be refused");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let source = err.source().expect("a source");
    match source.downcast_ref::<OpenError>() {
        Some(OpenError::SchemaTooNew { found, supported }) => {
            assert_eq!((*found, *supported), (newer, SqliteStore::SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = source.to_string();
    assert!(message.contains("newer"), "{message}");
    assert!(message.contains(&newer.to_string()), "{message}");

    assert_eq!(
        std::fs::read(&path).expect("read the file"),
        bytes,
        "file untouched"
    );
    assert!(
        !dir.path().join("future.sqlite3-wal").exists(),
        "not switched to WAL"
    );
    assert_eq!(user_version(&path), newer);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.txt");
    let text = "these are not the tables you are looking for\n".repeat(200);
    std::fs::write(&path, &text).expect("write");
    let err = SqliteStore::open(&path).expect_err("not a database");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        text,
        "file untouched"
    );
}

/// The store's order-preserving `u64` encoding (`codec::u64_to_sql`), as a
/// version 1 database holds it.
fn sql_u64(v: u64) -> i64 {
    (v ^ (1 << 63)).cast_signed()
}

/// What a version 1 database of a running service held: `alice` enrolled
/// with two authenticators (one with a resync candidate), recovery codes and
/// throttle failures; `bob` with the one pending enrollment version 1 kept
/// per user; `carol` reset once (a users row, no authenticator).
struct V1Data {
    alice: UserId,
    bob: UserId,
    carol: UserId,
    phone: Authenticator,
    tablet: Authenticator,
    pending: PendingEnrollment,
    codes: Vec<RecoveryHash>,
    throttle: ThrottleState,
}

impl V1Data {
    fn new() -> Self {
        let keys = Keyring::ephemeral().expect("random source");
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
        let sealed =
            |user: &UserId| -> SealedSecret { keys.seal(user, &Secret::generate()).expect("seal") };
        let phone = Authenticator {
            id: AuthenticatorId::new("00000000000000a1"),
            name: "Pixel — ünïcode".to_owned(),
            secret: sealed(&alice),
            params: CodeParams::new(Algorithm::Sha256, 8, 60).expect("params"),
            created_at: UnixTime::from_millis(1_700_000_000_123),
            sync: SyncState {
                last_step: Some(u64::MAX - 1),
                offset: -3,
                resync: Some(ResyncCandidate {
                    step: 77,
                    offset: i64::MIN,
                }),
            },
        };
        let tablet = Authenticator {
            id: AuthenticatorId::new("00000000000000a2"),
            name: "tablet".to_owned(),
            secret: sealed(&alice),
            params: CodeParams::default(),
            created_at: UnixTime::from_millis(1_700_000_100_000),
            sync: SyncState {
                last_step: None,
                offset: 0,
                resync: None,
            },
        };
        let pending = PendingEnrollment {
            id: AuthenticatorId::new("00000000000000b1"),
            name: "new phone".to_owned(),
            secret: sealed(&bob),
            params: CodeParams::new(Algorithm::Sha512, 7, 45).expect("params"),
            created_at: UnixTime::from_millis(1_700_000_200_000),
            replaces: Some(AuthenticatorId::new("00000000000000b0")),
        };
        Self {
            codes: RecoveryCodes::generate(4).expect("codes").hashes(&alice),
            alice,
            bob,
            carol: UserId::new("carol"),
            phone,
            tablet,
            pending,
            throttle: ThrottleState {
                attempts: 5,
                locked_until: UnixTime::from_millis(1_700_000_300_000),
            },
        }
    }

    /// A version 1 database at `path` holding this data, written with
    /// plain SQL as version 1 of the store wrote it.
    fn write_v1(&self, path: &Path) {
        let conn = Connection::open(path).expect("create");
        conn.execute_batch(SCHEMA_V1).expect("schema v1");
        let user = |id: &UserId, epoch: u64, t: ThrottleState| {
            conn.execute(
                "INSERT INTO users VALUES (?1, ?2, ?3, ?4)",
                params![
                    id.as_str(),
                    sql_u64(epoch),
                    t.attempts,
                    sql_u64(t.locked_until.as_millis())
                ],
            )
            .expect("users row");
        };
        user(&self.alice, 2, self.throttle);
        user(&self.bob, 0, ThrottleState::default());
        user(&self.carol, 2, ThrottleState::default());
        for a in [&self.phone, &self.tablet] {
            let resync = a.sync.resync;
            conn.execute(
                "INSERT INTO authenticators VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    self.alice.as_str(),
                    a.id.as_str(),
                    a.name,
                    a.secret.to_bytes(),
                    a.params.algorithm().as_str(),
                    a.params.digits(),
                    a.params.period(),
                    sql_u64(a.created_at.as_millis()),
                    a.sync.last_step.map(sql_u64),
                    a.sync.offset,
                    resync.map(|c| sql_u64(c.step)),
                    resync.map(|c| c.offset),
                ],
            )
            .expect("authenticator row");
        }
        let p = &self.pending;
        conn.execute(
            "INSERT INTO pending_enrollments VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                self.bob.as_str(),
                p.id.as_str(),
                p.name,
                p.secret.to_bytes(),
                p.params.algorithm().as_str(),
                p.params.digits(),
                p.params.period(),
                sql_u64(p.created_at.as_millis()),
                p.replaces.as_ref().map(AuthenticatorId::as_str),
            ],
        )
        .expect("pending row");
        for h in &self.codes {
            conn.execute(
                "INSERT INTO recovery_codes VALUES (?1, ?2)",
                params![self.alice.as_str(), &h.as_bytes()[..]],
            )
            .expect("recovery row");
        }
        conn.execute_batch("PRAGMA user_version = 1")
            .expect("user_version");
    }
}

#[tokio::test]
async fn a_version_1_database_migrates_with_its_data_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("v1.sqlite3");
    let data = V1Data::new();
    data.write_v1(&path);
    assert_eq!(user_version(&path), 1);

    let store = SqliteStore::open(&path).expect("open and migrate");
    assert_eq!(user_version(&path), SqliteStore::SCHEMA_VERSION);
    assert_eq!(SqliteStore::SCHEMA_VERSION, 2);
    {
        let conn = Connection::open(&path).expect("open for the checks");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
        let orphans: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .expect("foreign_key_check");
        assert_eq!(orphans, 0, "every row still has its user");
    }
    // The schema is the one a new database gets.
    let fresh = dir.path().join("fresh.sqlite3");
    drop(SqliteStore::open(&fresh).expect("open a new database"));
    assert_eq!(schema(&path), schema(&fresh), "the migrated schema");

    // Everything reads back as version 1 wrote it.
    let (alice, bob, carol) = (&data.alice, &data.bob, &data.carol);
    assert_eq!(
        store.status(alice).await.expect("status"),
        UserStatus {
            epoch: 2,
            enrolled: true,
            sessions_ended_at: None,
        }
    );
    assert_eq!(
        store.authenticators(alice).await.expect("list"),
        [data.phone.clone(), data.tablet.clone()]
    );
    assert_eq!(
        store.throttle_state(alice).await.expect("throttle"),
        data.throttle
    );
    assert_eq!(
        store.pending(bob, &data.pending.id).await.expect("pending"),
        Some(data.pending.clone()),
        "the one pending enrollment of version 1 is kept under its id"
    );
    assert_eq!(
        store.status(carol).await.expect("status"),
        UserStatus {
            epoch: 2,
            enrolled: false,
            sessions_ended_at: None,
        },
        "a reset before the migration ended no session at a known time"
    );
    assert_eq!(store.recovery_codes_left(alice).await.expect("left"), 4);
    assert_eq!(
        store
            .consume_recovery_code(alice, &data.codes[1])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed
    );
    assert_eq!(
        store
            .consume_step(alice, &data.phone.id, u64::MAX - 1, 0)
            .await
            .expect("consume"),
        tower_totp::store::ConsumeOutcome::Replayed,
        "a used step stays used"
    );

    // And the new schema's rules hold on the migrated data: a second
    // pending enrollment beside the first, misses on migrated rows, a
    // reset that records the end of the sessions.
    let second = common::pending(bob, "second session");
    assert_eq!(
        store
            .put_pending(bob, second.clone(), common::ROOMY)
            .await
            .expect("put"),
        PutPending::Stored
    );
    assert_eq!(
        store.pending(bob, &data.pending.id).await.expect("pending"),
        Some(data.pending.clone())
    );
    let candidate = ResyncCandidate {
        step: 90,
        offset: 4,
    };
    store
        .record_miss(alice, Some((data.tablet.id.clone(), candidate)))
        .await
        .expect("miss");
    store.record_miss(alice, None).await.expect("miss");
    let list = store.authenticators(alice).await.expect("list");
    assert_eq!(list[0].sync, data.phone.sync, "None left the candidate");
    assert_eq!(list[1].sync.resync, Some(candidate));
    let outcome = store
        .activate_pending(bob, &common::activation(&second.id, 3))
        .await
        .expect("activate");
    assert!(
        matches!(outcome, Activated::Done { epoch: 1, .. }),
        "{outcome:?}"
    );
    let ended = UnixTime::from_secs(1_700_001_000);
    store.reset(alice, ended).await.expect("reset");
    assert_eq!(
        store.status(alice).await.expect("status"),
        UserStatus {
            epoch: 3,
            enrolled: false,
            sessions_ended_at: Some(ended),
        }
    );
    assert_eq!(store.recovery_codes_left(alice).await.expect("left"), 0);
}

/// Several processes starting the new release on one version 1 file: one
/// migrates, the others find it migrated, and no data is copied twice.
#[test]
fn stores_opened_together_on_a_version_1_file_migrate_it_once() {
    const AT_ONCE: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("v1.sqlite3");
    let data = V1Data::new();
    data.write_v1(&path);
    common::open_at_once(&path, AT_ONCE);
    assert_eq!(user_version(&path), SqliteStore::SCHEMA_VERSION);
    let conn = Connection::open(&path).expect("open");
    let pendings: i64 = conn
        .query_row("SELECT COUNT(*) FROM pending_enrollments", [], |row| {
            row.get(0)
        })
        .expect("count");
    assert_eq!(pendings, 1);
}
