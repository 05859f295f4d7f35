//! What is written stays written: across closing and reopening, and across
//! a writer killed with SIGKILL in the middle of its work.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryCodes;
use tower_totp::store::{
    AuthenticatorId, EnrollmentStore, RecoveryOutcome, RecoveryStore, ResyncCandidate, StepStore,
    ThrottleStore,
};
use tower_totp::throttle::ThrottlePolicy;
use tower_totp_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The directories do not exist yet: open creates them.
    let path = dir.path().join("nested").join("dirs").join("totp.sqlite3");
    let (alice, bob, carol) = (
        UserId::new("alice"),
        UserId::new("bob"),
        UserId::new("carol"),
    );
    let codes = RecoveryCodes::generate(5).expect("codes").hashes(&alice);
    let policy = ThrottlePolicy::default();

    let store = SqliteStore::open(&path).expect("open");
    let clone = store.clone();
    let phone = common::enroll(&store, &alice, "phone", 10).await;
    common::enroll(&clone, &alice, "tablet", 20).await;
    store
        .consume_step(&alice, &phone, u64::MAX - 1, -3)
        .await
        .expect("consume");
    let candidate = ResyncCandidate {
        step: 77,
        offset: i64::MIN,
    };
    store
        .record_miss(&alice, Some((phone.clone(), candidate)))
        .await
        .expect("resync");
    store
        .replace_recovery_codes(&alice, codes.clone())
        .await
        .expect("codes");
    assert_eq!(
        store
            .consume_recovery_code(&alice, &codes[2])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed
    );
    for _ in 0..5 {
        store
            .begin_attempt(&alice, UnixTime::from_secs(1_700_000_000), &policy)
            .await
            .expect("attempt");
    }
    // Two sessions' pending enrollments of one user.
    let (bob_phone, bob_tablet) = (
        common::pending(&bob, "new phone"),
        common::pending(&bob, "tablet"),
    );
    for p in [&bob_phone, &bob_tablet] {
        store
            .put_pending(&bob, p.clone(), common::ROOMY)
            .await
            .expect("pending");
    }
    common::enroll(&store, &carol, "old", 1).await;
    let carol_reset = UnixTime::from_millis(1_700_000_123_456);
    store.reset(&carol, carol_reset).await.expect("reset");

    let before = (
        store.status(&alice).await.expect("status"),
        store.authenticators(&alice).await.expect("list"),
        store.throttle_state(&alice).await.expect("throttle"),
        (
            store.pending(&bob, &bob_phone.id).await.expect("pending"),
            store.pending(&bob, &bob_tablet.id).await.expect("pending"),
        ),
        store.status(&carol).await.expect("status"),
    );
    assert_eq!(
        before.3,
        (Some(bob_phone.clone()), Some(bob_tablet.clone()))
    );
    assert_eq!(before.1.len(), 2);
    assert_eq!(
        before
            .1
            .iter()
            .find(|a| a.id == phone)
            .expect("phone")
            .sync
            .resync,
        Some(candidate)
    );
    drop((store, clone));

    let store = SqliteStore::open(&path).expect("reopen");
    let after = (
        store.status(&alice).await.expect("status"),
        store.authenticators(&alice).await.expect("list"),
        store.throttle_state(&alice).await.expect("throttle"),
        (
            store.pending(&bob, &bob_phone.id).await.expect("pending"),
            store.pending(&bob, &bob_tablet.id).await.expect("pending"),
        ),
        store.status(&carol).await.expect("status"),
    );
    assert_eq!(after, before, "everything reads back as it was");
    assert_eq!(store.recovery_codes_left(&alice).await.expect("left"), 4);
    assert_eq!(
        store
            .consume_recovery_code(&alice, &codes[2])
            .await
            .expect("use"),
        RecoveryOutcome::NoMatch,
        "a used code stays used"
    );
    assert_eq!(
        store
            .consume_recovery_code(&alice, &codes[4])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed
    );
    assert_eq!(
        store
            .consume_step(&alice, &phone, u64::MAX - 1, 0)
            .await
            .expect("consume"),
        tower_totp::store::ConsumeOutcome::Replayed,
        "a used step stays used"
    );
    assert_eq!(after.4.epoch, 2, "the epoch survives a reset and a reopen");
    assert!(!after.4.enrolled);
    assert_eq!(
        after.4.sessions_ended_at,
        Some(carol_reset),
        "the end of carol's sessions survives a reopen"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the database is readable by its owner only"
        );
    }
}

#[test]
fn debug_shows_the_path_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    let shown = format!("{store:?}");
    assert!(shown.starts_with("SqliteStore"), "{shown}");
    assert!(shown.contains("totp.sqlite3"), "{shown}");
    let memory = format!("{:?}", SqliteStore::open_in_memory().expect("open"));
    assert_eq!(memory, r#"SqliteStore { path: ":memory:", .. }"#);
}

/// Set to the database path when this test binary runs as the crash
/// test's child.
const CHILD_ENV: &str = "TOWER_TOTP_SQLITE_CRASH_CHILD_DB";
/// The test that is the child's body.
const CHILD_TEST: &str = "crash_child_writes_until_killed";
/// How many confirmations the parent reads before it kills the child.
const CONFIRMED_BEFORE_KILL: usize = 60;
/// The child stops on its own after this many, should its parent be gone.
const CHILD_LIMIT: usize = 100_000;

/// The child of [`confirmed_enrollments_survive_sigkill`]: run on its own
/// (without the variable) it does nothing and passes.
///
/// Enrolls one user after another, and prints `confirmed USER ID` once
/// `activate_pending` has returned, that is once the store said the
/// enrollment is durable.
#[test]
fn crash_child_writes_until_killed() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = SqliteStore::open(&path).expect("child: open");
        let mut out = std::io::stdout();
        for i in 0..CHILD_LIMIT {
            let user = UserId::new(format!("user-{i}"));
            let id = common::enroll(&store, &user, "phone", 1).await;
            if writeln!(out, "confirmed {user} {id}")
                .and_then(|()| out.flush())
                .is_err()
            {
                return; // The parent is gone.
            }
        }
    });
}

#[test]
fn confirmed_enrollments_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.sqlite3");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();

    let parse = |line: &str| -> Option<(UserId, AuthenticatorId)> {
        let mut words = line.strip_prefix("confirmed ")?.split(' ');
        Some((
            UserId::new(words.next()?),
            AuthenticatorId::new(words.next()?),
        ))
    };
    let mut confirmed = Vec::new();
    while confirmed.len() < CONFIRMED_BEFORE_KILL {
        match lines.next() {
            Some(line) => confirmed.extend(parse(&line.expect("read child stdout"))),
            None => {
                let status = child.wait().expect("wait");
                panic!(
                    "the child stopped early ({status}) after {} enrollments",
                    confirmed.len()
                );
            }
        }
    }
    // SIGKILL, mid-write: the child never stops writing on its own.
    child.kill().expect("kill the child");
    let status = child.wait().expect("wait");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child died of SIGKILL ({status})"
        );
    }
    #[cfg(not(unix))]
    assert!(!status.success());
    // Whatever it printed before dying was confirmed too.
    for line in lines {
        confirmed.extend(parse(&line.expect("read child stdout")));
    }

    {
        let conn = rusqlite::Connection::open(&path).expect("open for the check");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(&path).expect("reopen after the crash");
        for (user, id) in &confirmed {
            let status = store.status(user).await.expect("status");
            assert!(status.enrolled && status.epoch == 1, "{user}: {status:?}");
            let list = store.authenticators(user).await.expect("list");
            assert!(list.iter().any(|a| &a.id == id), "{user}: {id} lost");
            assert_eq!(store.pending(user, id).await.expect("pending"), None);
        }
    });
    eprintln!("{} confirmed enrollments survived SIGKILL", confirmed.len());
}
