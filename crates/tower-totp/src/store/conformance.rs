//! The test suite every store runs, written once.
//!
//! A store crate's test file invokes [`store_conformance_tests!`](crate::store_conformance_tests) with an
//! expression that makes a fresh, empty store; the macro expands to one
//! `#[tokio::test]` per case (multi-threaded: the race cases need it), so a
//! failing case is reported under its own name:
//!
//! ```no_run
//! use tower_totp::store::MemoryStore;
//!
//! tower_totp::store_conformance_tests!(make = MemoryStore::new());
//! # fn main() {}
//! ```
//!
//! A store that needs something kept alive for the case (a temporary
//! directory, a server) names it with `keep`; the `make` expression may
//! borrow it and may `.await`:
//!
//! ```no_run
//! # struct Dir; impl Dir { fn store(&self) -> tower_totp::store::MemoryStore { tower_totp::store::MemoryStore::new() } }
//! # fn tempdir() -> Dir { Dir }
//! tower_totp::store_conformance_tests!(keep dir = tempdir(); make = dir.store());
//! # fn main() {}
//! ```
//!
//! Each case is also a public `async fn` taking the store, to call alone.
//! Each panics with its name and what differed.

use std::sync::Arc;
use std::time::Duration;

use super::{
    Activated, Activation, AuthenticatorId, ConsumeOutcome, PendingEnrollment, PendingLimits,
    PutPending, RecoveryOutcome, ResealOutcome, ResyncCandidate, RevokeOutcome, SyncState,
    TotpStore, UserStatus,
};
use crate::clock::UnixTime;
use crate::code::{Algorithm, CodeParams, Secret};
use crate::recovery::{RecoveryCodes, RecoveryHash};
use crate::seal::Keyring;
use crate::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use crate::user::UserId;

/// How many tasks race in the concurrency cases.
const RACERS: usize = 32;

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh
/// store from `make` (an expression evaluated inside the test, which may
/// `.await`). `keep NAME = EXPR;` first binds a value that lives until the
/// case ends (a temporary directory, a server), for `make` to use. Invoke it
/// once per module: the tests take the cases' names.
///
/// See the [module docs](crate::store::conformance) for examples.
#[macro_export]
macro_rules! store_conformance_tests {
    ($(keep $guard:ident = $setup:expr;)? make = $make:expr $(,)?) => {
        $crate::store_conformance_tests!(@cases [$(let $guard = $setup;)?] $make;
            new_user_is_empty,
            pending_enrollment_lifecycle,
            activation_replaces_an_old_authenticator,
            consume_step_is_compare_and_set,
            consumed_step_clears_the_throttle,
            replayed_step_keeps_the_throttle,
            step_of_a_missing_authenticator_keeps_the_throttle,
            consumed_step_leaves_other_users_throttle_alone,
            resync_candidate_is_kept_until_consumed,
            record_miss_keeps_or_leaves_candidates,
            revoke_and_reset_move_the_epoch_forward,
            pending_enrollments_are_capped_after_pruning,
            remove_pending_removes_one,
            activation_refusals_change_nothing,
            activation_keeps_other_pendings_and_clears_the_throttle,
            activation_issues_recovery_codes_when_due,
            revoking_the_last_authenticator_deletes_recovery_codes,
            reset_ends_sessions_and_pendings,
            reseal_keeps_sync_state,
            throttle_follows_the_reference_model,
            recovery_codes_are_single_use,
            users_are_isolated,
            begin_verification_reads_status_and_authenticators,
            begin_verification_charges_like_begin_attempt,
            begin_verification_charges_nothing_it_cannot_check,
            begin_confirmation_reads_and_charges_like_pending,
            status_at_hand_is_the_status,
        );
        // The races: the store shared by RACERS tasks.
        $crate::store_conformance_tests!(@races [$(let $guard = $setup;)?] $make;
            concurrent_consumption_has_one_winner,
            concurrent_attempts_are_all_charged,
            concurrent_recovery_use_has_one_winner,
            concurrent_first_activations_have_one_winner,
            concurrent_verifications_are_all_charged,
            concurrent_confirmations_are_all_charged,
        );
    };
    (@cases $setup:tt $make:expr; $($case:ident),+ $(,)?) => {
        $( $crate::store_conformance_tests!(@case $setup $make; $case, store => store); )+
    };
    (@races $setup:tt $make:expr; $($case:ident),+ $(,)?) => {
        $( $crate::store_conformance_tests!(@case $setup $make; $case, store => ::std::sync::Arc::new(store)); )+
    };
    (@case [$($setup:tt)*] $make:expr; $case:ident, $store:ident => $arg:expr) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            $($setup)*
            let $store = $make;
            $crate::store::conformance::$case($arg).await;
        }
    };
}

fn user(name: &str) -> UserId {
    UserId::new(name)
}

fn pending(user: &UserId, name: &str, replaces: Option<AuthenticatorId>) -> PendingEnrollment {
    #[allow(clippy::expect_used)]
    let keys = Keyring::ephemeral().expect("random source");
    #[allow(clippy::expect_used)]
    PendingEnrollment {
        id: AuthenticatorId::generate().expect("random source"),
        name: name.to_owned(),
        secret: keys.seal(user, &Secret::generate()).expect("seal"),
        params: CodeParams::new(Algorithm::Sha256, 8, 60).expect("valid params"),
        created_at: UnixTime::from_secs(1_000),
        replaces,
    }
}

/// No pruning, no cap to speak of.
const ROOMY: PendingLimits = PendingLimits {
    expired_before: UnixTime::from_secs(0),
    max: 1_000,
};

/// Put `p` as one more pending enrollment, which must be stored.
async fn put(store: &impl TotpStore, u: &UserId, p: PendingEnrollment, case: &str) {
    assert_eq!(
        store.put_pending(u, p, ROOMY).await.expect("put_pending"),
        PutPending::Stored,
        "{case}: put_pending"
    );
}

/// An activation of `id` at `step` without caps or codes.
fn activation(id: &AuthenticatorId, step: u64, offset: i64, now: UnixTime) -> Activation {
    Activation {
        pending_id: id.clone(),
        step,
        offset,
        now,
        first_only: false,
        max_authenticators: 1_000,
        recovery: Vec::new(),
    }
}

/// The epoch of a `Done` activation; panics naming `case` otherwise.
fn done(outcome: Activated, case: &str) -> u64 {
    match outcome {
        Activated::Done { epoch, .. } => epoch,
        other => panic!("{case}: activation refused: {other:?}"),
    }
}

/// Put a pending enrollment and activate it at `step`; returns its id.
async fn enroll(store: &impl TotpStore, u: &UserId, name: &str, step: u64) -> AuthenticatorId {
    let p = pending(u, name, None);
    let id = p.id.clone();
    put(store, u, p, "enroll").await;
    let outcome = store
        .activate_pending(u, &activation(&id, step, 0, UnixTime::from_secs(2_000)))
        .await
        .expect("activate_pending");
    done(outcome, "enroll");
    id
}

fn hashes(u: &UserId, n: usize) -> Vec<RecoveryHash> {
    RecoveryCodes::generate(n).expect("codes").hashes(u)
}

/// A new user has nothing, and asking creates nothing visible.
pub async fn new_user_is_empty(store: impl TotpStore) {
    let u = user("nobody");
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus::default(),
        "new_user_is_empty: status"
    );
    assert!(
        store
            .authenticators(&u)
            .await
            .expect("authenticators")
            .is_empty()
    );
    let unknown = AuthenticatorId::new("0000000000000000");
    assert!(
        store
            .pending(&u, &unknown)
            .await
            .expect("pending")
            .is_none()
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 0);
    assert_eq!(
        store.throttle_state(&u).await.expect("throttle_state"),
        ThrottleState::default()
    );
    assert_eq!(
        store
            .consume_step(&u, &unknown, 5, 0)
            .await
            .expect("consume"),
        ConsumeOutcome::NotFound,
        "new_user_is_empty: consume on an unknown authenticator"
    );
    assert_eq!(
        store.revoke(&u, &unknown).await.expect("revoke"),
        RevokeOutcome::NotFound
    );
}

/// Pending enrollments of one user coexist, each found by its own id, and
/// each activates once.
pub async fn pending_enrollment_lifecycle(store: impl TotpStore) {
    let case = "pending_enrollment_lifecycle";
    let u = user("alice");
    let first = pending(&u, "old phone", None);
    put(&store, &u, first.clone(), case).await;
    assert_eq!(
        store.pending(&u, &first.id).await.expect("pending"),
        Some(first.clone())
    );

    let second = pending(&u, "Pixel 8 — ünïcode", None);
    put(&store, &u, second.clone(), case).await;
    assert_eq!(
        store.pending(&u, &second.id).await.expect("pending"),
        Some(second.clone()),
        "{case}: the second pending enrollment"
    );
    assert_eq!(
        store.pending(&u, &first.id).await.expect("pending"),
        Some(first.clone()),
        "{case}: a second pending enrollment must not disturb the first"
    );
    assert!(
        store
            .pending(&user("alice2"), &first.id)
            .await
            .expect("pending")
            .is_none(),
        "{case}: another user's pending enrollment id"
    );
    let now = UnixTime::from_secs(5_000);
    let epoch = done(
        store
            .activate_pending(&u, &activation(&second.id, 10, -2, now))
            .await
            .expect("activate"),
        case,
    );
    assert!(epoch > 0);
    assert_eq!(
        store.status(&u).await.expect("status"),
        UserStatus {
            epoch,
            enrolled: true,
            sessions_ended_at: None,
        }
    );
    assert!(
        store
            .pending(&u, &second.id)
            .await
            .expect("pending")
            .is_none()
    );
    let list = store.authenticators(&u).await.expect("list");
    assert_eq!(list.len(), 1);
    let a = &list[0];
    assert_eq!(a.id, second.id);
    assert_eq!(a.name, second.name);
    assert_eq!(
        a.secret, second.secret,
        "sealed secret must round-trip exactly"
    );
    assert_eq!(a.params, second.params);
    assert_eq!(a.created_at, now);
    assert_eq!(
        a.sync,
        SyncState {
            last_step: Some(10),
            offset: -2,
            resync: None
        }
    );
    assert_eq!(
        store
            .activate_pending(&u, &activation(&second.id, 11, 0, now))
            .await
            .expect("activate"),
        Activated::NoPending,
        "{case}: activating twice"
    );
    assert_eq!(
        store.pending(&u, &first.id).await.expect("pending"),
        Some(first),
        "{case}: activating one pending enrollment must leave the other"
    );
}

/// Confirming a re-sync to a new phone removes the old authenticator.
pub async fn activation_replaces_an_old_authenticator(store: impl TotpStore) {
    let u = user("bob");
    let old = enroll(&store, &u, "old", 1).await;
    let keep = enroll(&store, &u, "tablet", 1).await;
    let new = pending(&u, "new", Some(old.clone()));
    let new_id = new.id.clone();
    put(&store, &u, new, "activation_replaces_an_old_authenticator").await;
    // Until confirmed, the old one stays.
    assert_eq!(store.authenticators(&u).await.expect("list").len(), 2);
    let mut act = activation(&new_id, 3, 0, UnixTime::from_secs(9));
    // Two active, a cap of two: the replaced one does not count.
    act.max_authenticators = 2;
    done(
        store.activate_pending(&u, &act).await.expect("activate"),
        "activation_replaces_an_old_authenticator",
    );
    let mut ids: Vec<_> = store
        .authenticators(&u)
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    ids.sort();
    let mut want = vec![keep, new_id];
    want.sort();
    assert_eq!(ids, want, "activation_replaces_an_old_authenticator");
}

/// consume_step accepts only newer steps and records the offset.
pub async fn consume_step_is_compare_and_set(store: impl TotpStore) {
    let u = user("carol");
    let id = enroll(&store, &u, "phone", 100).await;
    for (step, want) in [
        (100, ConsumeOutcome::Replayed),
        (99, ConsumeOutcome::Replayed),
        (0, ConsumeOutcome::Replayed),
        (101, ConsumeOutcome::Consumed),
        (101, ConsumeOutcome::Replayed),
        (u64::MAX, ConsumeOutcome::Consumed),
        (u64::MAX, ConsumeOutcome::Replayed),
    ] {
        assert_eq!(
            store.consume_step(&u, &id, step, 3).await.expect("consume"),
            want,
            "consume_step_is_compare_and_set: step {step}"
        );
    }
    let sync = store.authenticators(&u).await.expect("list")[0].sync;
    assert_eq!(sync.last_step, Some(u64::MAX));
    assert_eq!(sync.offset, 3);
    let status = store.status(&u).await.expect("status");
    let epoch_before = status.epoch;
    store.consume_step(&u, &id, 5, 0).await.expect("consume");
    assert_eq!(
        store.status(&u).await.expect("status").epoch,
        epoch_before,
        "consume_step_is_compare_and_set: using a code must not change the epoch"
    );
}

/// Charge `u` three attempts at one instant under a policy with two free
/// ones, so that the state holds both a count and a lockout; returns it.
async fn charge_failures(store: &impl TotpStore, u: &UserId, case: &str) -> ThrottleState {
    let policy = ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(10))
        .expect("policy");
    let now = UnixTime::from_secs(1_700_000_000);
    for _ in 0..3 {
        assert_eq!(
            store.begin_attempt(u, now, &policy).await.expect("attempt"),
            Attempt::Allowed,
            "{case}: charging failures"
        );
    }
    let state = store.throttle_state(u).await.expect("throttle_state");
    // Both fields set, so a store that clears only one of them fails.
    assert_eq!(state.attempts, 3, "{case}: attempts charged");
    assert!(
        state.locked_until > now,
        "{case}: the third attempt must start a lockout"
    );
    state
}

/// A consumed step forgets the user's failures and lockout, in the same
/// call: the engine no longer clears the throttle after a consumed step.
pub async fn consumed_step_clears_the_throttle(store: impl TotpStore) {
    let case = "consumed_step_clears_the_throttle";
    let u = user("kate");
    let id = enroll(&store, &u, "phone", 100).await;
    charge_failures(&store, &u, case).await;
    assert_eq!(
        store.consume_step(&u, &id, 101, 1).await.expect("consume"),
        ConsumeOutcome::Consumed,
        "{case}: step 101"
    );
    assert_eq!(
        store.throttle_state(&u).await.expect("throttle_state"),
        ThrottleState::default(),
        "{case}: a consumed step must clear the throttle"
    );
    // Also with several authenticators, consuming on the second one.
    let other = enroll(&store, &u, "tablet", 100).await;
    charge_failures(&store, &u, case).await;
    assert_eq!(
        store
            .consume_step(&u, &other, 102, 0)
            .await
            .expect("consume"),
        ConsumeOutcome::Consumed,
        "{case}: second authenticator"
    );
    assert_eq!(
        store.throttle_state(&u).await.expect("throttle_state"),
        ThrottleState::default(),
        "{case}: a consumed step of another authenticator must clear the throttle"
    );
    // Cleared, not just hidden: inside the old lockout, the next attempt
    // passes and counting restarts from zero.
    assert_eq!(
        store
            .begin_attempt(
                &u,
                UnixTime::from_secs(1_700_000_000),
                &ThrottlePolicy::default()
            )
            .await
            .expect("attempt"),
        Attempt::Allowed,
        "{case}: the lockout must be gone"
    );
    assert_eq!(
        store
            .throttle_state(&u)
            .await
            .expect("throttle_state")
            .attempts,
        1,
        "{case}: counting restarts from zero"
    );
}

/// A replayed step changes nothing, the throttle state included: a replay
/// is no success.
pub async fn replayed_step_keeps_the_throttle(store: impl TotpStore) {
    let case = "replayed_step_keeps_the_throttle";
    let u = user("liam");
    let id = enroll(&store, &u, "phone", 100).await;
    let before = charge_failures(&store, &u, case).await;
    for step in [100, 99, 0] {
        assert_eq!(
            store.consume_step(&u, &id, step, 0).await.expect("consume"),
            ConsumeOutcome::Replayed,
            "{case}: step {step}"
        );
        assert_eq!(
            store.throttle_state(&u).await.expect("throttle_state"),
            before,
            "{case}: replaying step {step} must leave the throttle as it was"
        );
    }
    // After a success, new failures are kept by a replay of that success.
    assert_eq!(
        store.consume_step(&u, &id, 101, 0).await.expect("consume"),
        ConsumeOutcome::Consumed
    );
    let before = charge_failures(&store, &u, case).await;
    assert_eq!(
        store.consume_step(&u, &id, 101, 0).await.expect("consume"),
        ConsumeOutcome::Replayed,
        "{case}: step 101 again"
    );
    assert_eq!(
        store.throttle_state(&u).await.expect("throttle_state"),
        before,
        "{case}: replaying the last accepted step must leave the throttle as it was"
    );
}

/// A step for an authenticator the user does not have (unknown, revoked,
/// or none at all) changes nothing, the throttle state included.
pub async fn step_of_a_missing_authenticator_keeps_the_throttle(store: impl TotpStore) {
    let case = "step_of_a_missing_authenticator_keeps_the_throttle";
    let u = user("mia");
    enroll(&store, &u, "phone", 10).await;
    let revoked = enroll(&store, &u, "old phone", 10).await;
    assert_eq!(
        store.revoke(&u, &revoked).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    let before = charge_failures(&store, &u, case).await;
    for id in [AuthenticatorId::new("0000000000000000"), revoked] {
        assert_eq!(
            store.consume_step(&u, &id, 50, 0).await.expect("consume"),
            ConsumeOutcome::NotFound,
            "{case}: {}",
            id.as_str()
        );
        assert_eq!(
            store.throttle_state(&u).await.expect("throttle_state"),
            before,
            "{case}: {} must leave the throttle as it was",
            id.as_str()
        );
    }
    assert_eq!(
        store.authenticators(&u).await.expect("list")[0]
            .sync
            .last_step,
        Some(10),
        "{case}: the remaining authenticator is untouched"
    );

    // A user with failures and no authenticator at all.
    let v = user("noah");
    let before = charge_failures(&store, &v, case).await;
    assert_eq!(
        store
            .consume_step(&v, &AuthenticatorId::new("0000000000000000"), 50, 0)
            .await
            .expect("consume"),
        ConsumeOutcome::NotFound,
        "{case}: a user without authenticators"
    );
    assert_eq!(
        store.throttle_state(&v).await.expect("throttle_state"),
        before,
        "{case}: a user without authenticators keeps the throttle"
    );
}

/// A consumed step clears its own user's throttle only.
pub async fn consumed_step_leaves_other_users_throttle_alone(store: impl TotpStore) {
    let case = "consumed_step_leaves_other_users_throttle_alone";
    let (a, b, c) = (user("olga"), user("pete"), user("olga2"));
    let id_a = enroll(&store, &a, "phone", 10).await;
    let id_b = enroll(&store, &b, "phone", 10).await;
    charge_failures(&store, &a, case).await;
    let before_b = charge_failures(&store, &b, case).await;
    // A user id that shares a prefix with `a`'s, for stores keyed by text.
    let before_c = charge_failures(&store, &c, case).await;
    assert_eq!(
        store.consume_step(&a, &id_a, 11, 0).await.expect("consume"),
        ConsumeOutcome::Consumed
    );
    assert_eq!(
        store.throttle_state(&a).await.expect("throttle_state"),
        ThrottleState::default(),
        "{case}: the consuming user is cleared"
    );
    assert_eq!(
        store.throttle_state(&b).await.expect("throttle_state"),
        before_b,
        "{case}: another user's throttle must be untouched"
    );
    assert_eq!(
        store.throttle_state(&c).await.expect("throttle_state"),
        before_c,
        "{case}: another user's throttle must be untouched"
    );
    // `b`'s authenticator id under `a` is not `b`'s: nothing is cleared.
    charge_failures(&store, &a, case).await;
    let before_a = store.throttle_state(&a).await.expect("throttle_state");
    assert_eq!(
        store.consume_step(&a, &id_b, 12, 0).await.expect("consume"),
        ConsumeOutcome::NotFound,
        "{case}: another user's authenticator id"
    );
    assert_eq!(
        store.throttle_state(&a).await.expect("throttle_state"),
        before_a,
        "{case}: another user's authenticator id must not clear the throttle"
    );
    assert_eq!(
        store.throttle_state(&b).await.expect("throttle_state"),
        before_b,
        "{case}: nor its owner's"
    );
}

/// A resync candidate is stored per authenticator and cleared by a consumption.
pub async fn resync_candidate_is_kept_until_consumed(store: impl TotpStore) {
    let u = user("dave");
    let id = enroll(&store, &u, "phone", 10).await;
    let c = ResyncCandidate {
        step: 20,
        offset: -7,
    };
    store
        .record_miss(&u, Some((id.clone(), c)))
        .await
        .expect("miss");
    assert_eq!(
        store.authenticators(&u).await.expect("list")[0].sync.resync,
        Some(c)
    );
    let c2 = ResyncCandidate {
        step: 21,
        offset: 6,
    };
    store
        .record_miss(&u, Some((id.clone(), c2)))
        .await
        .expect("miss");
    assert_eq!(
        store.authenticators(&u).await.expect("list")[0].sync.resync,
        Some(c2)
    );
    assert_eq!(
        store.consume_step(&u, &id, 22, 6).await.expect("consume"),
        ConsumeOutcome::Consumed
    );
    let sync = store.authenticators(&u).await.expect("list")[0].sync;
    assert_eq!(
        sync,
        SyncState {
            last_step: Some(22),
            offset: 6,
            resync: None
        },
        "resync_candidate_is_kept_until_consumed"
    );
}

/// The epoch only ever grows, through revocation and reset too.
pub async fn revoke_and_reset_move_the_epoch_forward(store: impl TotpStore) {
    let u = user("erin");
    let a = enroll(&store, &u, "a", 1).await;
    let b = enroll(&store, &u, "b", 1).await;
    let e1 = store.status(&u).await.expect("status").epoch;
    assert_eq!(
        store.revoke(&u, &a).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    let e2 = store.status(&u).await.expect("status").epoch;
    assert!(e2 > e1, "revoke_and_reset: revoke must increase the epoch");
    assert_eq!(
        store.revoke(&u, &a).await.expect("revoke"),
        RevokeOutcome::NotFound,
        "revoking twice"
    );
    assert_eq!(store.status(&u).await.expect("status").epoch, e2);
    assert!(store.status(&u).await.expect("status").enrolled);

    let codes = RecoveryCodes::generate(3).expect("codes");
    store
        .replace_recovery_codes(&u, codes.hashes(&u))
        .await
        .expect("replace");
    let p = pending(&u, "p", None);
    let p_id = p.id.clone();
    put(&store, &u, p, "revoke_and_reset").await;
    let policy = ThrottlePolicy::default();
    store
        .begin_attempt(&u, UnixTime::from_secs(1), &policy)
        .await
        .expect("attempt");

    store
        .reset(&u, UnixTime::from_secs(7_000))
        .await
        .expect("reset");
    let status = store.status(&u).await.expect("status");
    assert!(
        status.epoch > e2,
        "revoke_and_reset: reset must increase the epoch"
    );
    assert!(!status.enrolled);
    assert!(store.authenticators(&u).await.expect("list").is_empty());
    assert!(store.pending(&u, &p_id).await.expect("pending").is_none());
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 0);
    assert_eq!(
        store.throttle_state(&u).await.expect("throttle").attempts,
        1,
        "revoke_and_reset: a reset keeps the throttle state"
    );
    assert_eq!(
        store.consume_step(&u, &b, 50, 0).await.expect("consume"),
        ConsumeOutcome::NotFound
    );
    // Enrolling again continues from the epoch, never back to an old value.
    enroll(&store, &u, "again", 1).await;
    assert!(store.status(&u).await.expect("status").epoch > status.epoch);
}

/// Re-sealing replaces only the secret.
pub async fn reseal_keeps_sync_state(store: impl TotpStore) {
    let u = user("frank");
    let id = enroll(&store, &u, "phone", 40).await;
    store.consume_step(&u, &id, 41, 2).await.expect("consume");
    let before = store.authenticators(&u).await.expect("list")[0].clone();
    let keys = Keyring::ephemeral().expect("keys");
    let sealed = keys.seal(&u, &Secret::generate()).expect("seal");
    assert_eq!(
        store.reseal(&u, &id, sealed.clone()).await.expect("reseal"),
        ResealOutcome::Resealed
    );
    let after = store.authenticators(&u).await.expect("list")[0].clone();
    assert_eq!(after.secret, sealed, "reseal_keeps_sync_state: secret");
    assert_eq!(after.sync, before.sync, "reseal_keeps_sync_state: sync");
    assert_eq!(after.name, before.name);
    assert_eq!(
        store
            .reseal(&u, &AuthenticatorId::new("ffffffffffffffff"), sealed)
            .await
            .expect("reseal"),
        ResealOutcome::NotFound
    );
}

/// begin_attempt behaves as `ThrottleState::begin` on the same inputs.
pub async fn throttle_follows_the_reference_model(store: impl TotpStore) {
    let u = user("grace");
    let policy = ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(10))
        .expect("policy");
    let mut model = ThrottleState::default();
    let start = UnixTime::from_secs(1_700_000_000);
    // A schedule with attempts inside and after lockouts.
    let offsets_ms = [
        0, 0, 0, 100, 1_500, 1_600, 4_500, 4_600, 10_000, 30_000, 30_001,
    ];
    for ms in offsets_ms {
        let now = start.saturating_add(Duration::from_millis(ms));
        let want = model.begin(now, &policy);
        let got = store
            .begin_attempt(&u, now, &policy)
            .await
            .expect("attempt");
        assert_eq!(
            got, want,
            "throttle_follows_the_reference_model at +{ms} ms"
        );
        assert_eq!(store.throttle_state(&u).await.expect("state"), model);
    }
    store.clear_throttle(&u).await.expect("clear");
    assert_eq!(
        store.throttle_state(&u).await.expect("state"),
        ThrottleState::default()
    );
    assert_eq!(
        store
            .begin_attempt(&u, start, &policy)
            .await
            .expect("attempt"),
        Attempt::Allowed
    );
}

/// Each recovery code works once; a new set replaces the old.
pub async fn recovery_codes_are_single_use(store: impl TotpStore) {
    let u = user("heidi");
    let codes = RecoveryCodes::generate(10).expect("codes");
    let hashes = codes.hashes(&u);
    store
        .replace_recovery_codes(&u, hashes.clone())
        .await
        .expect("replace");
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 10);
    assert_eq!(
        store
            .consume_recovery_code(&u, &hashes[3])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed
    );
    assert_eq!(
        store
            .consume_recovery_code(&u, &hashes[3])
            .await
            .expect("use"),
        RecoveryOutcome::NoMatch,
        "recovery_codes_are_single_use: used twice"
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 9);
    let fresh = RecoveryCodes::generate(2).expect("codes").hashes(&u);
    store
        .replace_recovery_codes(&u, fresh.clone())
        .await
        .expect("replace");
    assert_eq!(
        store
            .consume_recovery_code(&u, &hashes[0])
            .await
            .expect("use"),
        RecoveryOutcome::NoMatch,
        "recovery_codes_are_single_use: old set still valid after replacement"
    );
    assert_eq!(
        store
            .consume_recovery_code(&u, &fresh[1])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 1);
}

/// One user's state never shows up under another.
pub async fn users_are_isolated(store: impl TotpStore) {
    let (a, b) = (user("ivan"), user("judy"));
    let id = enroll(&store, &a, "phone", 7).await;
    let codes = RecoveryCodes::generate(1).expect("codes");
    store
        .replace_recovery_codes(&a, codes.hashes(&a))
        .await
        .expect("replace");
    store
        .begin_attempt(&a, UnixTime::from_secs(1), &ThrottlePolicy::default())
        .await
        .expect("attempt");
    assert_eq!(
        store.status(&b).await.expect("status"),
        UserStatus::default()
    );
    assert_eq!(
        store.consume_step(&b, &id, 8, 0).await.expect("consume"),
        ConsumeOutcome::NotFound,
        "users_are_isolated: another user's authenticator id"
    );
    assert_eq!(
        store
            .consume_recovery_code(&b, &codes.hashes(&a)[0])
            .await
            .expect("use"),
        RecoveryOutcome::NoMatch
    );
    assert_eq!(
        store.throttle_state(&b).await.expect("state"),
        ThrottleState::default()
    );
    assert_eq!(
        store.revoke(&b, &id).await.expect("revoke"),
        RevokeOutcome::NotFound
    );
    assert!(store.status(&a).await.expect("status").enrolled);
}

/// Of many concurrent submissions of one step, exactly one wins.
pub async fn concurrent_consumption_has_one_winner<S: TotpStore>(store: Arc<S>) {
    let u = user("mallory");
    let id = enroll(&*store, &u, "phone", 1).await;
    for step in [2u64, 3, 1_000] {
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let (store, u, id) = (Arc::clone(&store), u.clone(), id.clone());
                tokio::spawn(async move { store.consume_step(&u, &id, step, 0).await })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            match t.await.expect("task").expect("consume") {
                ConsumeOutcome::Consumed => wins += 1,
                ConsumeOutcome::Replayed => {}
                ConsumeOutcome::NotFound => {
                    panic!("concurrent_consumption: authenticator vanished")
                }
            }
        }
        assert_eq!(
            wins, 1,
            "concurrent_consumption_has_one_winner: step {step}"
        );
    }
}

/// Concurrent attempts at one instant: the free ones pass, and the first
/// charged lockout stops all the rest.
pub async fn concurrent_attempts_are_all_charged<S: TotpStore>(store: Arc<S>) {
    let u = user("trudy");
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_800_000_000);
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, u) = (Arc::clone(&store), u.clone());
            tokio::spawn(async move { store.begin_attempt(&u, now, &policy).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.expect("task").expect("attempt") == Attempt::Allowed {
            allowed += 1;
        }
    }
    // Free attempts, plus the one that started the first lockout.
    assert_eq!(
        allowed,
        policy.free_attempts() + 1,
        "concurrent_attempts_are_all_charged"
    );
}

/// Of many concurrent uses of one recovery code, exactly one wins.
pub async fn concurrent_recovery_use_has_one_winner<S: TotpStore>(store: Arc<S>) {
    let u = user("oscar");
    let codes = RecoveryCodes::generate(3).expect("codes");
    let hashes = codes.hashes(&u);
    store
        .replace_recovery_codes(&u, hashes.clone())
        .await
        .expect("replace");
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, u, h) = (Arc::clone(&store), u.clone(), hashes[1]);
            tokio::spawn(async move { store.consume_recovery_code(&u, &h).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("task").expect("use") == RecoveryOutcome::Consumed {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "concurrent_recovery_use_has_one_winner");
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 2);
}

/// `record_miss` with a candidate keeps it on that authenticator only;
/// without one it leaves every candidate (and every other user) alone.
pub async fn record_miss_keeps_or_leaves_candidates(store: impl TotpStore) {
    let case = "record_miss_keeps_or_leaves_candidates";
    let (u, v) = (user("rita"), user("rita2"));
    let phone = enroll(&store, &u, "phone", 10).await;
    let tablet = enroll(&store, &u, "tablet", 10).await;
    let other = enroll(&store, &v, "phone", 10).await;
    let c = ResyncCandidate {
        step: 30,
        offset: 9,
    };
    let c_other = ResyncCandidate {
        step: 31,
        offset: -9,
    };
    store
        .record_miss(&v, Some((other.clone(), c_other)))
        .await
        .expect("miss");
    store
        .record_miss(&u, Some((phone.clone(), c)))
        .await
        .expect("miss");
    let resync_of = |list: Vec<crate::store::Authenticator>, id: &AuthenticatorId| {
        list.into_iter()
            .find(|a| &a.id == id)
            .and_then(|a| a.sync.resync)
    };
    let list = store.authenticators(&u).await.expect("list");
    assert_eq!(
        resync_of(list.clone(), &phone),
        Some(c),
        "{case}: Some sets it"
    );
    assert_eq!(
        resync_of(list, &tablet),
        None,
        "{case}: only on that authenticator"
    );
    store.record_miss(&u, None).await.expect("miss");
    assert_eq!(
        resync_of(store.authenticators(&u).await.expect("list"), &phone),
        Some(c),
        "{case}: None leaves the candidate"
    );
    // An authenticator of another user under this user: nothing happens.
    store
        .record_miss(&u, Some((other.clone(), c)))
        .await
        .expect("miss");
    assert_eq!(
        resync_of(store.authenticators(&v).await.expect("list"), &other),
        Some(c_other),
        "{case}: another user's candidate is untouched"
    );
    // A user without authenticators: no error, nothing visible.
    store
        .record_miss(&user("nobody"), None)
        .await
        .expect("miss");
    assert_eq!(
        store.status(&user("nobody")).await.expect("status"),
        UserStatus::default(),
        "{case}: a miss of an unknown user"
    );
}

/// Expired pending enrollments are dropped first; then at `max` a new one
/// is refused and nothing changes.
pub async fn pending_enrollments_are_capped_after_pruning(store: impl TotpStore) {
    let case = "pending_enrollments_are_capped_after_pruning";
    let u = user("sam");
    let at = |secs: u64, name: &str| {
        let mut p = pending(&u, name, None);
        p.created_at = UnixTime::from_secs(secs);
        p
    };
    let limits = |expired_before: u64| PendingLimits {
        expired_before: UnixTime::from_secs(expired_before),
        max: 2,
    };
    let old = at(100, "old");
    let a = at(200, "a");
    let b = at(300, "b");
    for p in [&old, &a] {
        assert_eq!(
            store
                .put_pending(&u, p.clone(), limits(0))
                .await
                .expect("put"),
            PutPending::Stored,
            "{case}: under the cap"
        );
    }
    assert_eq!(
        store
            .put_pending(&u, b.clone(), limits(0))
            .await
            .expect("put"),
        PutPending::TooMany,
        "{case}: at the cap"
    );
    assert!(
        store.pending(&u, &b.id).await.expect("pending").is_none(),
        "{case}: a refused pending enrollment is not stored"
    );
    assert!(store.pending(&u, &old.id).await.expect("pending").is_some());
    // `old` was created before 150: pruned, which makes room.
    assert_eq!(
        store
            .put_pending(&u, b.clone(), limits(150))
            .await
            .expect("put"),
        PutPending::Stored,
        "{case}: an expired one does not count"
    );
    assert!(
        store.pending(&u, &old.id).await.expect("pending").is_none(),
        "{case}: the expired one is dropped"
    );
    // Created exactly at `expired_before`: not expired.
    for p in [&a, &b] {
        assert_eq!(
            store.pending(&u, &p.id).await.expect("pending").as_ref(),
            Some(p),
            "{case}: the others stay"
        );
    }
    assert_eq!(
        store
            .put_pending(&u, at(400, "c"), limits(200))
            .await
            .expect("put"),
        PutPending::TooMany,
        "{case}: created at expired_before still counts"
    );
    // Another user has a cap of their own.
    assert_eq!(
        store
            .put_pending(&user("sam2"), pending(&user("sam2"), "x", None), limits(0))
            .await
            .expect("put"),
        PutPending::Stored,
        "{case}: per user"
    );
}

/// remove_pending forgets one pending enrollment and leaves the others.
pub async fn remove_pending_removes_one(store: impl TotpStore) {
    let case = "remove_pending_removes_one";
    let u = user("tina");
    let (a, b) = (pending(&u, "a", None), pending(&u, "b", None));
    put(&store, &u, a.clone(), case).await;
    put(&store, &u, b.clone(), case).await;
    store.remove_pending(&u, &a.id).await.expect("remove");
    assert!(store.pending(&u, &a.id).await.expect("pending").is_none());
    assert_eq!(
        store.pending(&u, &b.id).await.expect("pending"),
        Some(b.clone()),
        "{case}: the other stays"
    );
    // Removing again, or an unknown id: no error.
    store.remove_pending(&u, &a.id).await.expect("remove");
    assert_eq!(
        store
            .activate_pending(&u, &activation(&a.id, 5, 0, UnixTime::from_secs(9)))
            .await
            .expect("activate"),
        Activated::NoPending,
        "{case}: a removed pending enrollment must not activate"
    );
}

/// NoPending, AlreadyEnrolled (first_only) and TooMany change nothing.
pub async fn activation_refusals_change_nothing(store: impl TotpStore) {
    let case = "activation_refusals_change_nothing";
    let u = user("uma");
    let now = UnixTime::from_secs(9_000);
    assert_eq!(
        store
            .activate_pending(
                &u,
                &activation(&AuthenticatorId::new("0123456789abcdef"), 1, 0, now)
            )
            .await
            .expect("activate"),
        Activated::NoPending,
        "{case}: unknown id"
    );
    // first_only with no authenticator yet activates.
    let first = pending(&u, "first", None);
    put(&store, &u, first.clone(), case).await;
    let mut act = activation(&first.id, 1, 0, now);
    act.first_only = true;
    done(
        store.activate_pending(&u, &act).await.expect("activate"),
        case,
    );
    let codes = hashes(&u, 4);
    store
        .replace_recovery_codes(&u, codes)
        .await
        .expect("replace");
    let before = (
        store.status(&u).await.expect("status"),
        store.authenticators(&u).await.expect("list"),
        store.recovery_codes_left(&u).await.expect("left"),
    );

    let second = pending(&u, "second", None);
    put(&store, &u, second.clone(), case).await;
    let mut act = activation(&second.id, 2, 0, now);
    act.first_only = true;
    act.recovery = hashes(&u, 7);
    assert_eq!(
        store.activate_pending(&u, &act).await.expect("activate"),
        Activated::AlreadyEnrolled,
        "{case}: first_only with an active authenticator"
    );
    act.first_only = false;
    act.max_authenticators = 1;
    assert_eq!(
        store.activate_pending(&u, &act).await.expect("activate"),
        Activated::TooMany,
        "{case}: at max_authenticators"
    );
    let after = (
        store.status(&u).await.expect("status"),
        store.authenticators(&u).await.expect("list"),
        store.recovery_codes_left(&u).await.expect("left"),
    );
    assert_eq!(
        after, before,
        "{case}: a refused activation changes nothing"
    );
    assert_eq!(
        store.pending(&u, &second.id).await.expect("pending"),
        Some(second),
        "{case}: a refused activation keeps its pending enrollment"
    );
}

/// An activation removes its own pending enrollment only, and clears the
/// throttle.
pub async fn activation_keeps_other_pendings_and_clears_the_throttle(store: impl TotpStore) {
    let case = "activation_keeps_other_pendings_and_clears_the_throttle";
    let u = user("vera");
    let (a, b) = (pending(&u, "a", None), pending(&u, "b", None));
    put(&store, &u, a.clone(), case).await;
    put(&store, &u, b.clone(), case).await;
    let other = user("vera2");
    let before_other = charge_failures(&store, &other, case).await;
    charge_failures(&store, &u, case).await;
    done(
        store
            .activate_pending(&u, &activation(&a.id, 3, 0, UnixTime::from_secs(1)))
            .await
            .expect("activate"),
        case,
    );
    assert_eq!(
        store.throttle_state(&u).await.expect("throttle_state"),
        ThrottleState::default(),
        "{case}: an activation clears the throttle"
    );
    assert_eq!(
        store.throttle_state(&other).await.expect("throttle_state"),
        before_other,
        "{case}: of its own user only"
    );
    assert_eq!(
        store.pending(&u, &b.id).await.expect("pending"),
        Some(b),
        "{case}: the other pending enrollment stays"
    );
}

/// Recovery codes come with the first activation, and with a later one
/// only when none are left.
pub async fn activation_issues_recovery_codes_when_due(store: impl TotpStore) {
    let case = "activation_issues_recovery_codes_when_due";
    let u = user("wes");
    let now = UnixTime::from_secs(1);
    // Codes left from before any authenticator (not the authenticators'):
    // a first activation replaces them all the same.
    let stale = hashes(&u, 2);
    store
        .replace_recovery_codes(&u, stale.clone())
        .await
        .expect("replace");
    let activate = |recovery: Vec<RecoveryHash>| {
        let p = pending(&u, "phone", None);
        let id = p.id.clone();
        let store = &store;
        let u = &u;
        async move {
            put(store, u, p, case).await;
            let mut act = activation(&id, 1, 0, now);
            act.recovery = recovery;
            store.activate_pending(u, &act).await.expect("activate")
        }
    };
    let first = hashes(&u, 5);
    assert!(
        matches!(
            activate(first.clone()).await,
            Activated::Done {
                recovery_issued: true,
                ..
            }
        ),
        "{case}: the first activation issues codes"
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 5);
    assert_eq!(
        store
            .consume_recovery_code(&u, &stale[0])
            .await
            .expect("use"),
        RecoveryOutcome::NoMatch,
        "{case}: the stale set is gone"
    );
    assert!(
        matches!(
            activate(hashes(&u, 8)).await,
            Activated::Done {
                recovery_issued: false,
                ..
            }
        ),
        "{case}: a second authenticator keeps the user's codes"
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 5);
    assert_eq!(
        store
            .consume_recovery_code(&u, &first[0])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed,
        "{case}: the first set still works"
    );
    // Use up the rest: the next activation issues a new set.
    for h in &first[1..] {
        assert_eq!(
            store.consume_recovery_code(&u, h).await.expect("use"),
            RecoveryOutcome::Consumed
        );
    }
    let fresh = hashes(&u, 3);
    assert!(
        matches!(
            activate(fresh.clone()).await,
            Activated::Done {
                recovery_issued: true,
                ..
            }
        ),
        "{case}: no codes left: a new set"
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 3);
    assert_eq!(
        store
            .consume_recovery_code(&u, &fresh[2])
            .await
            .expect("use"),
        RecoveryOutcome::Consumed
    );
}

/// Revoking one of two authenticators keeps the recovery codes; revoking
/// the last deletes them.
pub async fn revoking_the_last_authenticator_deletes_recovery_codes(store: impl TotpStore) {
    let case = "revoking_the_last_authenticator_deletes_recovery_codes";
    let u = user("xena");
    let a = enroll(&store, &u, "a", 1).await;
    let b = enroll(&store, &u, "b", 1).await;
    store
        .replace_recovery_codes(&u, hashes(&u, 4))
        .await
        .expect("replace");
    assert_eq!(
        store.revoke(&u, &a).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        store.recovery_codes_left(&u).await.expect("left"),
        4,
        "{case}: one of two revoked: codes kept"
    );
    assert_eq!(
        store.revoke(&u, &b).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        store.recovery_codes_left(&u).await.expect("left"),
        0,
        "{case}: the last revoked: codes gone"
    );
    // An unknown id for a user without authenticators changes nothing.
    store
        .replace_recovery_codes(&u, hashes(&u, 2))
        .await
        .expect("replace");
    assert_eq!(
        store.revoke(&u, &b).await.expect("revoke"),
        RevokeOutcome::NotFound
    );
    assert_eq!(store.recovery_codes_left(&u).await.expect("left"), 2);
}

/// A reset records when the user's sessions ended, moves the epoch and
/// drops every pending enrollment.
pub async fn reset_ends_sessions_and_pendings(store: impl TotpStore) {
    let case = "reset_ends_sessions_and_pendings";
    let u = user("yuri");
    enroll(&store, &u, "phone", 1).await;
    let (a, b) = (pending(&u, "a", None), pending(&u, "b", None));
    put(&store, &u, a.clone(), case).await;
    put(&store, &u, b.clone(), case).await;
    let before = store.status(&u).await.expect("status");
    assert_eq!(
        before.sessions_ended_at, None,
        "{case}: none before a reset"
    );
    let t = UnixTime::from_millis(1_700_000_000_123);
    store.reset(&u, t).await.expect("reset");
    let after = store.status(&u).await.expect("status");
    assert_eq!(
        after.sessions_ended_at,
        Some(t),
        "{case}: sessions_ended_at"
    );
    assert!(after.epoch > before.epoch, "{case}: epoch");
    for p in [&a, &b] {
        assert!(
            store.pending(&u, &p.id).await.expect("pending").is_none(),
            "{case}: pending enrollments gone"
        );
    }
    let t2 = UnixTime::from_millis(1_700_000_100_000);
    store.reset(&u, t2).await.expect("reset");
    assert_eq!(
        store.status(&u).await.expect("status").sessions_ended_at,
        Some(t2),
        "{case}: a later reset moves it"
    );
    assert_eq!(
        store.status(&user("yuri2")).await.expect("status"),
        UserStatus::default(),
        "{case}: other users untouched"
    );
}

/// 32 concurrent first-only activations of two pending enrollments of one
/// user: exactly one wins, whichever it is.
pub async fn concurrent_first_activations_have_one_winner<S: TotpStore>(store: Arc<S>) {
    let case = "concurrent_first_activations_have_one_winner";
    let u = user("zoe");
    let (a, b) = (pending(&u, "a", None), pending(&u, "b", None));
    put(&*store, &u, a.clone(), case).await;
    put(&*store, &u, b.clone(), case).await;
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let id = if i % 2 == 0 {
                a.id.clone()
            } else {
                b.id.clone()
            };
            let (store, u) = (Arc::clone(&store), u.clone());
            tokio::spawn(async move {
                let mut act = activation(&id, 5, 0, UnixTime::from_secs(1));
                act.first_only = true;
                store.activate_pending(&u, &act).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task").expect("activate") {
            Activated::Done { .. } => wins += 1,
            Activated::NoPending | Activated::AlreadyEnrolled => {}
            Activated::TooMany => panic!("{case}: no cap was set"),
        }
    }
    assert_eq!(wins, 1, "{case}");
    assert_eq!(
        store.authenticators(&u).await.expect("list").len(),
        1,
        "{case}: one authenticator"
    );
}

/// `begin_verification` reads what `status` and `authenticators` read, for
/// a new user, an enrolled one (with sync state and a resync candidate)
/// and one a reset ended.
pub async fn begin_verification_reads_status_and_authenticators(store: impl TotpStore) {
    let case = "begin_verification_reads_status_and_authenticators";
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_700_000_000);
    let nobody = user("nobody-bv");
    let start = store
        .begin_verification(&nobody, now, &policy, Some(8))
        .await
        .expect("begin_verification");
    assert_eq!(start.status, UserStatus::default(), "{case}: new user");
    assert!(start.authenticators.is_empty(), "{case}: new user");
    assert_eq!(start.attempt, None, "{case}: new user charged");

    let u = user("victor");
    let phone = enroll(&store, &u, "phone", 10).await;
    enroll(&store, &u, "tablet", 20).await;
    store
        .consume_step(&u, &phone, 12, 1)
        .await
        .expect("consume");
    let candidate = ResyncCandidate {
        step: 40,
        offset: 5,
    };
    store
        .record_miss(&u, Some((phone.clone(), candidate)))
        .await
        .expect("record_miss");
    let start = store
        .begin_verification(&u, now, &policy, Some(8))
        .await
        .expect("begin_verification");
    assert_eq!(
        start.status,
        store.status(&u).await.expect("status"),
        "{case}: status"
    );
    assert_eq!(
        start.authenticators,
        store.authenticators(&u).await.expect("authenticators"),
        "{case}: authenticators"
    );
    assert_eq!(start.authenticators.len(), 2, "{case}: both");
    assert_eq!(start.attempt, Some(Attempt::Allowed), "{case}: charged");

    let ended = user("victor-reset");
    enroll(&store, &ended, "phone", 10).await;
    store.reset(&ended, now).await.expect("reset");
    let start = store
        .begin_verification(&ended, now, &policy, Some(8))
        .await
        .expect("begin_verification");
    assert_eq!(
        start.status,
        store.status(&ended).await.expect("status"),
        "{case}: after a reset"
    );
    assert!(start.status.sessions_ended_at.is_some(), "{case}: reset");
    assert!(start.authenticators.is_empty(), "{case}: after a reset");
    assert_eq!(start.attempt, None, "{case}: after a reset");
}

/// `begin_verification` with a code of the authenticators' digit count
/// charges exactly as `begin_attempt` does (the reference model), lockouts
/// included.
pub async fn begin_verification_charges_like_begin_attempt(store: impl TotpStore) {
    let case = "begin_verification_charges_like_begin_attempt";
    let u = user("wendy");
    enroll(&store, &u, "phone", 10).await;
    let policy = ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(10))
        .expect("policy");
    let mut model = ThrottleState::default();
    let start = UnixTime::from_secs(1_700_000_000);
    let offsets_ms = [
        0, 0, 0, 100, 1_500, 1_600, 4_500, 4_600, 10_000, 30_000, 30_001,
    ];
    for ms in offsets_ms {
        let now = start.saturating_add(Duration::from_millis(ms));
        let want = model.begin(now, &policy);
        let got = store
            .begin_verification(&u, now, &policy, Some(8))
            .await
            .expect("begin_verification");
        assert_eq!(got.attempt, Some(want), "{case} at +{ms} ms");
        assert_eq!(
            store.throttle_state(&u).await.expect("state"),
            model,
            "{case}: state at +{ms} ms"
        );
    }
}

/// No charge, and no change, for a malformed code (`None`), a digit count
/// none of the authenticators has, or a user without authenticators;
/// a locked-out user's code is refused without a change either.
pub async fn begin_verification_charges_nothing_it_cannot_check(store: impl TotpStore) {
    let case = "begin_verification_charges_nothing_it_cannot_check";
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_700_000_000);
    let u = user("xavier");
    enroll(&store, &u, "phone", 10).await;
    store
        .begin_attempt(&u, now, &policy)
        .await
        .expect("attempt");
    let before = store.throttle_state(&u).await.expect("state");
    for digits in [None, Some(6), Some(7)] {
        let start = store
            .begin_verification(&u, now, &policy, digits)
            .await
            .expect("begin_verification");
        assert_eq!(start.attempt, None, "{case}: {digits:?} charged");
        assert_eq!(start.authenticators.len(), 1, "{case}: {digits:?} read");
        assert_eq!(
            store.throttle_state(&u).await.expect("state"),
            before,
            "{case}: {digits:?} changed the throttle"
        );
    }
    // Not enrolled, with throttle state of its own (a password throttle).
    let bare = user("xavier-bare");
    store
        .begin_attempt(&bare, now, &policy)
        .await
        .expect("attempt");
    let bare_before = store.throttle_state(&bare).await.expect("state");
    let start = store
        .begin_verification(&bare, now, &policy, Some(6))
        .await
        .expect("begin_verification");
    assert_eq!(start.attempt, None, "{case}: not enrolled charged");
    assert_eq!(
        store.throttle_state(&bare).await.expect("state"),
        bare_before,
        "{case}: not enrolled changed the throttle"
    );
    // Locked out: refused, and the lockout is what it was.
    let locked = user("xavier-locked");
    enroll(&store, &locked, "phone", 10).await;
    while store
        .begin_attempt(&locked, now, &policy)
        .await
        .expect("attempt")
        == Attempt::Allowed
    {}
    let locked_before = store.throttle_state(&locked).await.expect("state");
    let start = store
        .begin_verification(&locked, now, &policy, Some(8))
        .await
        .expect("begin_verification");
    assert!(
        matches!(start.attempt, Some(Attempt::Locked { .. })),
        "{case}: locked: {:?}",
        start.attempt
    );
    assert_eq!(
        store.throttle_state(&locked).await.expect("state"),
        locked_before,
        "{case}: locked changed the throttle"
    );
}

/// Concurrent verifications at one instant: exactly as many are allowed as
/// concurrent `begin_attempt` calls would be.
pub async fn concurrent_verifications_are_all_charged<S: TotpStore>(store: Arc<S>) {
    let u = user("yvonne");
    enroll(&*store, &u, "phone", 10).await;
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_800_000_000);
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, u) = (Arc::clone(&store), u.clone());
            tokio::spawn(async move { store.begin_verification(&u, now, &policy, Some(8)).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        let start = t.await.expect("task").expect("begin_verification");
        if start.attempt == Some(Attempt::Allowed) {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed,
        policy.free_attempts() + 1,
        "concurrent_verifications_are_all_charged"
    );
}

/// `begin_confirmation` reads what `pending` reads and charges like
/// `begin_attempt`, only for an existing pending enrollment and a code of
/// its digit count; otherwise it changes nothing.
pub async fn begin_confirmation_reads_and_charges_like_pending(store: impl TotpStore) {
    let case = "begin_confirmation_reads_and_charges_like_pending";
    let policy = ThrottlePolicy::new(2, Duration::from_millis(1500), Duration::from_secs(10))
        .expect("policy");
    let now = UnixTime::from_secs(1_700_000_000);
    let nobody = user("nobody-bc");
    let unknown = AuthenticatorId::new("0000000000000000");
    let start = store
        .begin_confirmation(&nobody, &unknown, now, &policy, Some(8))
        .await
        .expect("begin_confirmation");
    assert_eq!(start.pending, None, "{case}: new user");
    assert_eq!(start.attempt, None, "{case}: new user charged");
    assert_eq!(
        store.status(&nobody).await.expect("status"),
        UserStatus::default(),
        "{case}: new user"
    );

    let u = user("zoe");
    let p = pending(&u, "phone", None);
    let id = p.id.clone();
    put(&store, &u, p, case).await;
    let mut model = ThrottleState::default();
    for digits in [None, Some(6), Some(7)] {
        let start = store
            .begin_confirmation(&u, &id, now, &policy, digits)
            .await
            .expect("begin_confirmation");
        assert_eq!(
            start.pending,
            store.pending(&u, &id).await.expect("pending"),
            "{case}: {digits:?} read"
        );
        assert_eq!(start.attempt, None, "{case}: {digits:?} charged");
        assert_eq!(
            store.throttle_state(&u).await.expect("state"),
            model,
            "{case}: {digits:?} changed the throttle"
        );
    }
    let start = store
        .begin_confirmation(&u, &unknown, now, &policy, Some(8))
        .await
        .expect("begin_confirmation");
    assert_eq!(start.pending, None, "{case}: unknown id");
    assert_eq!(start.attempt, None, "{case}: unknown id charged");
    assert_eq!(
        store.throttle_state(&u).await.expect("state"),
        model,
        "{case}: unknown id changed the throttle"
    );
    for ms in [0, 0, 0, 100, 1_500, 1_600, 4_500, 30_000] {
        let at = now.saturating_add(Duration::from_millis(ms));
        let want = model.begin(at, &policy);
        let start = store
            .begin_confirmation(&u, &id, at, &policy, Some(8))
            .await
            .expect("begin_confirmation");
        assert!(start.pending.is_some(), "{case}: read at +{ms} ms");
        assert_eq!(start.attempt, Some(want), "{case} at +{ms} ms");
        assert_eq!(
            store.throttle_state(&u).await.expect("state"),
            model,
            "{case}: state at +{ms} ms"
        );
    }
}

/// Concurrent confirmations at one instant: exactly as many are allowed as
/// concurrent `begin_attempt` calls would be.
pub async fn concurrent_confirmations_are_all_charged<S: TotpStore>(store: Arc<S>) {
    let u = user("zack");
    let p = pending(&u, "phone", None);
    let id = p.id.clone();
    put(&*store, &u, p, "concurrent_confirmations_are_all_charged").await;
    let policy = ThrottlePolicy::default();
    let now = UnixTime::from_secs(1_800_000_000);
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, u, id) = (Arc::clone(&store), u.clone(), id.clone());
            tokio::spawn(async move {
                store
                    .begin_confirmation(&u, &id, now, &policy, Some(8))
                    .await
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        let start = t.await.expect("task").expect("begin_confirmation");
        if start.attempt == Some(Attempt::Allowed) {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed,
        policy.free_attempts() + 1,
        "concurrent_confirmations_are_all_charged"
    );
}

/// `status_now`, when it answers, answers what `status` does: for a new
/// user, after an activation, a revocation and a reset (a copy that missed
/// one of them would let a revoked or reset login through).
pub async fn status_at_hand_is_the_status(store: impl TotpStore) {
    async fn check(store: &impl TotpStore, u: &UserId, when: &str) -> UserStatus {
        // `status` first: a store with a cache may fill it then.
        let status = store.status(u).await.expect("status");
        if let super::StatusLookup::Found(now) = store.status_now(u) {
            assert_eq!(now, status, "status_now {when}");
        }
        status
    }
    let u = user("zoe");
    let new = check(&store, &u, "of a new user").await;
    assert!(!new.enrolled);
    let a = enroll(&store, &u, "a", 1).await;
    let enrolled = check(&store, &u, "after an activation").await;
    assert!(enrolled.enrolled && enrolled.epoch > new.epoch);
    assert_eq!(
        store.revoke(&u, &a).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    let revoked = check(&store, &u, "after a revocation").await;
    assert!(!revoked.enrolled && revoked.epoch > enrolled.epoch);
    enroll(&store, &u, "b", 1).await;
    check(&store, &u, "after a second activation").await;
    store
        .reset(&u, UnixTime::from_secs(9_000))
        .await
        .expect("reset");
    let reset = check(&store, &u, "after a reset").await;
    assert_eq!(reset.sessions_ended_at, Some(UnixTime::from_secs(9_000)));
}
