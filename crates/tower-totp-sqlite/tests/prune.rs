//! `SqliteStore::prune_idle_throttles`: rows that hold only throttle state
//! go once the policy's retention after their lockout has passed; locked
//! users, users within the retention and users with anything else stay,
//! and pruning never lets a guesser beat the policy's 30-day bound.

use std::time::Duration;

use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::store::{EnrollmentStore, RecoveryStore, ThrottleStore};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use tower_totp_sqlite::SqliteStore;

const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

fn keep() -> Duration {
    ThrottlePolicy::default().retention().expect("a retention")
}

async fn charge(store: &SqliteStore, user: &UserId, now: UnixTime) -> Attempt {
    store
        .begin_attempt(user, now, &ThrottlePolicy::default())
        .await
        .expect("begin_attempt")
}

async fn attempts(store: &SqliteStore, user: &UserId) -> u32 {
    store.throttle_state(user).await.expect("state").attempts
}

#[tokio::test]
async fn idle_throttle_only_rows_go_and_everything_else_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("totp.sqlite3");
    let store = SqliteStore::open(&path).expect("open");
    let policy = ThrottlePolicy::default();
    let ghosts: Vec<UserId> = (0..300)
        .map(|i| UserId::new(format!("ghost-{i}")))
        .collect();
    for g in &ghosts {
        assert_eq!(charge(&store, g, T0).await, Attempt::Allowed);
    }
    // Past the retention after the ghosts' (zero) lockout, by 1 ms.
    let prune_at = T0.saturating_add(keep() + Duration::from_millis(1));

    // Users with more than throttle state, charged with the ghosts.
    let with_codes = UserId::new("with-codes");
    store
        .replace_recovery_codes(&with_codes, vec![RecoveryHash::from_bytes([7; 32])])
        .await
        .expect("codes");
    charge(&store, &with_codes, T0).await;
    let was_reset = UserId::new("was-reset");
    store.reset(&was_reset, T0).await.expect("reset");
    charge(&store, &was_reset, T0).await;
    // Within the retention: charged a second before the pruning.
    let recent = UserId::new("recent");
    charge(
        &store,
        &recent,
        prune_at.saturating_sub(Duration::from_secs(1)),
    )
    .await;
    // Locked out at the moment of the pruning.
    let locked = UserId::new("locked");
    for _ in 0..4 {
        assert_eq!(charge(&store, &locked, prune_at).await, Attempt::Allowed);
    }

    // Not a millisecond early.
    let early = T0.saturating_add(keep());
    assert_eq!(
        store
            .prune_idle_throttles(early, &policy)
            .await
            .expect("prune"),
        0
    );

    let pruned = store
        .prune_idle_throttles(prune_at, &policy)
        .await
        .expect("prune");
    assert_eq!(pruned, ghosts.len());
    for g in &ghosts {
        assert_eq!(
            store.throttle_state(g).await.expect("state"),
            ThrottleState::default()
        );
    }
    assert_eq!(attempts(&store, &with_codes).await, 1);
    assert_eq!(
        store.recovery_codes_left(&with_codes).await.expect("left"),
        1
    );
    assert_eq!(attempts(&store, &was_reset).await, 1);
    assert_eq!(store.status(&was_reset).await.expect("status").epoch, 1);
    assert_eq!(attempts(&store, &recent).await, 1);
    assert_eq!(attempts(&store, &locked).await, 4);
    assert!(matches!(
        charge(&store, &locked, prune_at).await,
        Attempt::Locked { .. }
    ));

    // The rows are gone from the file, not just reset.
    let conn = rusqlite::Connection::open(&path).expect("open");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 4);
    // Nothing left to prune.
    assert_eq!(
        store
            .prune_idle_throttles(prune_at, &policy)
            .await
            .expect("prune"),
        0
    );
}

#[tokio::test]
async fn one_call_deletes_at_most_a_batch() {
    let store = SqliteStore::open_in_memory().expect("open");
    let n = SqliteStore::PRUNE_BATCH + 5;
    for i in 0..n {
        charge(&store, &UserId::new(format!("ghost-{i}")), T0).await;
    }
    let later = T0.saturating_add(keep() * 2);
    let policy = ThrottlePolicy::default();
    let first = store
        .prune_idle_throttles(later, &policy)
        .await
        .expect("prune");
    assert_eq!(first, SqliteStore::PRUNE_BATCH);
    assert_eq!(
        store
            .prune_idle_throttles(later, &policy)
            .await
            .expect("prune"),
        5
    );
}

#[tokio::test]
async fn a_policy_kept_until_success_prunes_nothing() {
    let store = SqliteStore::open_in_memory().expect("open");
    let forever =
        ThrottlePolicy::new(3, Duration::from_micros(1), Duration::from_secs(1)).expect("policy");
    let u = UserId::new("ghost");
    store.begin_attempt(&u, T0, &forever).await.expect("charge");
    let far = UnixTime::from_millis(u64::MAX);
    assert_eq!(
        store
            .prune_idle_throttles(far, &forever)
            .await
            .expect("prune"),
        0
    );
    assert_eq!(attempts(&store, &u).await, 1);
}

/// A guesser who makes bursts of `k` attempts and then waits until pruning
/// has forgotten the counter, with pruning run before every attempt,
/// gets no more guesses in 30 days than the policy's bound (2,892 for the
/// default): waiting for pruning never pays.
#[tokio::test]
async fn waiting_for_pruning_never_beats_the_30_day_bound() {
    let policy = ThrottlePolicy::default();
    let month = Duration::from_secs(30 * 24 * 3600);
    let bound = policy.max_attempts_within(month);
    assert_eq!(bound, 2892);
    for k in [3u32, 4, 8, 12, 13, 14, 20] {
        let store = SqliteStore::open_in_memory().expect("open");
        let u = UserId::new("victim");
        let end = T0.saturating_add(month);
        let (mut now, mut tries) = (T0, 0u64);
        while now < end {
            store
                .prune_idle_throttles(now, &policy)
                .await
                .expect("prune");
            let state = store.throttle_state(&u).await.expect("state");
            if state.attempts >= k {
                // Wait for the pruning to forget the counter, looking
                // every `max_delay` (the steady rate's gap).
                now = now.saturating_add(policy.max_delay());
                continue;
            }
            match charge(&store, &u, now).await {
                Attempt::Allowed => tries += 1,
                Attempt::Locked { retry_after } => now = now.saturating_add(retry_after),
            }
        }
        assert!(tries <= bound, "bursts of {k}: {tries} guesses in 30 days");
    }
}
