//! Concurrency invariants at the engine level: many tasks on a
//! multi-thread runtime log in, use recovery codes, revoke, reset and
//! enroll again for the same user at the same moment (a `ManualClock`,
//! moved between rounds; a barrier releases each round's tasks together).
//! Afterwards: no code was accepted twice, no recovery code twice, the
//! epoch only grew and by exactly the changes made, the recovery codes left
//! are the issued minus the used, and the throttle counted what it should.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tower_totp::ConfirmAs;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::Hotp;
use tower_totp::store::{AuthenticatorId, MemoryStore, RevokeOutcome, ThrottleStore};
use tower_totp::throttle::ThrottlePolicy;
use tower_totp::{
    Confirmation, RecoveryVerdict, RejectReason, TotpConfig, TwoFactor, UserId, Verdict,
};

/// 2023-11-14T22:13:30Z plus 10 s, inside a step.
const T0: u64 = 1_700_000_010;

struct World {
    tfa: TwoFactor,
    clock: ManualClock,
    store: MemoryStore,
    user: UserId,
}

impl World {
    fn new(throttle: ThrottlePolicy) -> Self {
        let clock = ManualClock::new(UnixTime::from_secs(T0));
        let store = MemoryStore::new();
        let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap().with_throttle(throttle))
            .clock(clock.clone())
            .store(store.clone())
            .build()
            .unwrap();
        Self {
            tfa,
            clock,
            store,
            user: UserId::new("u"),
        }
    }

    fn step(&self) -> u64 {
        self.tfa.config().params().step_at(self.clock.now())
    }

    fn next_step(&self) {
        self.clock.advance(Duration::from_secs(30));
    }

    async fn epoch(&self) -> u64 {
        self.tfa.status(&self.user).await.unwrap().epoch
    }

    /// Enroll a phone; its id, the confirming step and any recovery codes.
    async fn enroll(&self, name: &str) -> (AuthenticatorId, Hotp, u64, Vec<String>) {
        let e = self
            .tfa
            .start_enrollment(&self.user, "u", name, None)
            .await
            .unwrap()
            .unwrap();
        let phone = Hotp::new(e.secret(), e.params());
        let step = self.step();
        let confirmed = self
            .tfa
            .confirm_enrollment(
                &self.user,
                e.id(),
                &phone.code_string(step),
                ConfirmAs::AnotherAuthenticator,
            )
            .await
            .unwrap();
        let Confirmation::Confirmed {
            authenticator,
            recovery_codes,
            ..
        } = confirmed
        else {
            panic!("{confirmed:?}");
        };
        let codes = recovery_codes
            .map(|c| c.as_strings().map(str::to_owned).collect())
            .unwrap_or_default();
        (authenticator, phone, step, codes)
    }
}

/// A well-formed code that no phone shows within 15 steps of `step` (so
/// not a resynchronising code either).
fn wrong_code(phones: &[&Hotp], step: u64) -> String {
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| {
            phones
                .iter()
                .all(|p| (step - 15..=step + 15).all(|s| p.code_string(s) != *c))
        })
        .unwrap()
}

/// A policy that never locks out, for tests about something else.
fn lenient() -> ThrottlePolicy {
    ThrottlePolicy::new(u32::MAX, Duration::from_millis(1), Duration::from_millis(1)).unwrap()
}

/// Samples the user's epoch until stopped; asserts it never went down.
fn watch_epoch(tfa: &TwoFactor, user: &UserId) -> (Arc<AtomicBool>, JoinHandle<Vec<u64>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tfa, user, flag) = (tfa.clone(), user.clone(), stop.clone());
    let handle = tokio::spawn(async move {
        let mut seen = Vec::new();
        while !flag.load(Ordering::SeqCst) {
            seen.push(tfa.status(&user).await.unwrap().epoch);
            tokio::task::yield_now().await;
        }
        seen
    });
    (stop, handle)
}

async fn stop_watching(stop: Arc<AtomicBool>, handle: JoinHandle<Vec<u64>>) -> Vec<u64> {
    stop.store(true, Ordering::SeqCst);
    let seen = handle.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the epoch went down: {seen:?}"
    );
    seen
}

/// What one task did.
#[derive(Debug)]
enum Outcome {
    Code(Verdict),
    Recovery(String, RecoveryVerdict),
    Revoke(RevokeOutcome),
    Reset,
    Enrolled(Box<Enrolled>),
    EnrollRefused,
}

/// A phone enrolled by a task: its id, the confirming step, and the
/// recovery codes issued with it (if the user had none).
#[derive(Debug)]
struct Enrolled {
    id: AuthenticatorId,
    phone: Hotp,
    step: u64,
    codes: Vec<String>,
}

/// Run every task of a round at once.
async fn round(tasks: Vec<Task>) -> Vec<Outcome> {
    let handles: Vec<_> = tasks.into_iter().map(|spawn| spawn()).collect();
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.unwrap());
    }
    outcomes
}

/// A task, spawned when called.
type Task = Box<dyn FnOnce() -> JoinHandle<Outcome> + Send>;

/// A task still waiting for its round's barrier.
type Plan<'a> = Box<dyn FnOnce(&Arc<Barrier>) -> Task + 'a>;

fn verify_task(w: &World, barrier: &Arc<Barrier>, code: String) -> Task {
    let (tfa, user, barrier) = (w.tfa.clone(), w.user.clone(), barrier.clone());
    Box::new(move || {
        tokio::spawn(async move {
            barrier.wait().await;
            Outcome::Code(tfa.verify(&user, &code).await.unwrap())
        })
    })
}

fn recovery_task(w: &World, barrier: &Arc<Barrier>, code: String) -> Task {
    let (tfa, user, barrier) = (w.tfa.clone(), w.user.clone(), barrier.clone());
    Box::new(move || {
        tokio::spawn(async move {
            barrier.wait().await;
            let v = tfa.use_recovery_code(&user, &code).await.unwrap();
            Outcome::Recovery(code, v)
        })
    })
}

fn revoke_task(w: &World, barrier: &Arc<Barrier>, id: AuthenticatorId) -> Task {
    let (tfa, user, barrier) = (w.tfa.clone(), w.user.clone(), barrier.clone());
    Box::new(move || {
        tokio::spawn(async move {
            barrier.wait().await;
            Outcome::Revoke(tfa.revoke(&user, &id).await.unwrap())
        })
    })
}

fn reset_task(w: &World, barrier: &Arc<Barrier>) -> Task {
    let (tfa, user, barrier) = (w.tfa.clone(), w.user.clone(), barrier.clone());
    Box::new(move || {
        tokio::spawn(async move {
            barrier.wait().await;
            tfa.reset(&user).await.unwrap();
            Outcome::Reset
        })
    })
}

fn enroll_task(w: &World, barrier: &Arc<Barrier>) -> Task {
    let (tfa, user, barrier) = (w.tfa.clone(), w.user.clone(), barrier.clone());
    Box::new(move || {
        tokio::spawn(async move {
            barrier.wait().await;
            let e = tfa
                .start_enrollment(&user, "u", "new", None)
                .await
                .unwrap()
                .unwrap();
            let phone = Hotp::new(e.secret(), e.params());
            let step = e.params().step_at(tfa.now());
            match tfa
                .confirm_enrollment(
                    &user,
                    e.id(),
                    &phone.code_string(step),
                    ConfirmAs::AnotherAuthenticator,
                )
                .await
                .unwrap()
            {
                Confirmation::Confirmed {
                    authenticator,
                    recovery_codes,
                    ..
                } => {
                    let codes = recovery_codes
                        .map(|c| c.as_strings().map(str::to_owned).collect())
                        .unwrap_or_default();
                    Outcome::Enrolled(Box::new(Enrolled {
                        id: authenticator,
                        phone,
                        step,
                        codes,
                    }))
                }
                // Another task replaced or reset the pending enrollment.
                Confirmation::Rejected(_) => Outcome::EnrollRefused,
                other => panic!("a confirmation this test does not know: {other:?}"),
            }
        })
    })
}

/// The (authenticator, step) pairs accepted, asserting none twice.
fn accepted_pairs(
    outcomes: &[Outcome],
    seen: &mut HashSet<(AuthenticatorId, u64)>,
) -> Vec<AuthenticatorId> {
    let mut accepted = Vec::new();
    for o in outcomes {
        let pair = match o {
            Outcome::Code(Verdict::Accepted {
                authenticator,
                step,
                ..
            }) => (authenticator.clone(), *step),
            Outcome::Enrolled(e) => (e.id.clone(), e.step),
            _ => continue,
        };
        assert!(seen.insert(pair.clone()), "accepted twice: {pair:?}");
        accepted.push(pair.0);
    }
    accepted
}

/// Rounds of simultaneous logins with two phones (the same code sent by 8
/// tasks each), recovery codes (each sent by 4 tasks), wrong codes, and in
/// one round two revocations of the second phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_logins_accept_each_code_and_recovery_code_once() {
    const ROUNDS: u64 = 6;
    const REVOKE_ROUND: u64 = 3;
    let w = World::new(lenient());
    let (a_id, a, _, recovery) = w.enroll("A").await;
    w.next_step();
    let (b_id, b, b_step, none) = w.enroll("B").await;
    assert!(
        none.is_empty(),
        "codes are issued with the first phone only"
    );
    assert_eq!(recovery.len(), 10);
    let mut seen = HashSet::from([(b_id.clone(), b_step)]);
    let epoch0 = w.epoch().await;
    let (stop, watcher) = watch_epoch(&w.tfa, &w.user);

    let mut used = HashSet::new();
    let mut charged_failures = 0u32;
    for r in 0..ROUNDS {
        w.next_step();
        let step = w.step();
        let revoking = r == REVOKE_ROUND;
        let tasks_n = 8 + 8 + 4 + 2 + if revoking { 2 } else { 0 };
        let barrier = Arc::new(Barrier::new(tasks_n));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            tasks.push(verify_task(&w, &barrier, a.code_string(step)));
            tasks.push(verify_task(&w, &barrier, b.code_string(step)));
        }
        let rc = recovery[r as usize].clone();
        for _ in 0..4 {
            tasks.push(recovery_task(&w, &barrier, rc.clone()));
        }
        let wrong = wrong_code(&[&a, &b], step);
        for _ in 0..2 {
            tasks.push(verify_task(&w, &barrier, wrong.clone()));
        }
        if revoking {
            tasks.push(revoke_task(&w, &barrier, b_id.clone()));
            tasks.push(revoke_task(&w, &barrier, b_id.clone()));
        }
        let outcomes = round(tasks).await;

        let accepted = accepted_pairs(&outcomes, &mut seen);
        let by = |id: &AuthenticatorId| accepted.iter().filter(|a| *a == id).count();
        assert_eq!(by(&a_id), 1, "round {r}: A's code once: {outcomes:?}");
        match r.cmp(&REVOKE_ROUND) {
            std::cmp::Ordering::Less => assert_eq!(by(&b_id), 1, "round {r}"),
            std::cmp::Ordering::Equal => assert!(by(&b_id) <= 1, "round {r}"),
            std::cmp::Ordering::Greater => assert_eq!(by(&b_id), 0, "round {r}: revoked"),
        }
        let recovered: Vec<_> = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Recovery(_, RecoveryVerdict::Accepted { .. })))
            .collect();
        assert_eq!(recovered.len(), 1, "round {r}: {outcomes:?}");
        assert!(used.insert(rc));
        let revoked = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Revoke(RevokeOutcome::Revoked)))
            .count();
        assert_eq!(revoked, usize::from(revoking), "round {r}: revoked once");
        for o in &outcomes {
            match o {
                Outcome::Code(Verdict::Rejected(
                    RejectReason::Invalid | RejectReason::Replayed,
                ))
                | Outcome::Recovery(_, RecoveryVerdict::Rejected(RejectReason::Invalid)) => {
                    charged_failures += 1;
                }
                Outcome::Code(Verdict::Rejected(RejectReason::Throttled { .. })) => {
                    panic!("the lenient policy never locks")
                }
                _ => {}
            }
        }
    }
    stop_watching(stop, watcher).await;

    // Counts add up.
    assert_eq!(
        w.epoch().await,
        epoch0 + 1,
        "one revocation changed the epoch"
    );
    assert_eq!(
        w.tfa.recovery_codes_left(&w.user).await.unwrap(),
        recovery.len() - used.len()
    );
    for rc in &used {
        assert_eq!(
            w.tfa.use_recovery_code(&w.user, rc).await.unwrap(),
            RecoveryVerdict::Rejected(RejectReason::Invalid),
            "a used recovery code stays used"
        );
    }
    charged_failures += u32::try_from(used.len()).unwrap();
    let list = w.tfa.authenticators(&w.user).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, a_id);
    // The throttle counted no more than the attempts charged since the last
    // success, and a success clears it.
    let state = w.store.throttle_state(&w.user).await.unwrap();
    assert!(state.attempts <= charged_failures, "{state:?}");
    w.next_step();
    assert!(
        w.tfa
            .verify(&w.user, &a.code_string(w.step()))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(w.store.throttle_state(&w.user).await.unwrap().attempts, 0);
}

/// Rounds in which logins with every known phone, an enrollment, recovery
/// codes and, in some rounds, a reset or a revocation all happen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_resets_revocations_and_enrollments_at_once() {
    const ROUNDS: u64 = 10;
    let w = World::new(lenient());
    let (id, phone, step, codes) = w.enroll("first").await;
    let mut seen = HashSet::from([(id.clone(), step)]);
    let mut phones = vec![(id, phone)];
    let mut issued: Vec<String> = codes;
    let mut all_issued: HashSet<String> = issued.iter().cloned().collect();
    let mut recovered = HashSet::new();
    let (mut activations, mut revocations, mut resets) = (0u64, 0u64, 0u64);
    let epoch0 = w.epoch().await;
    let (stop, watcher) = watch_epoch(&w.tfa, &w.user);

    for r in 0..ROUNDS {
        w.next_step();
        let step = w.step();
        let wr = &w;
        // The round's tasks, then a barrier of the right size.
        let mut plan: Vec<Plan<'_>> = Vec::new();
        for (_, p) in phones.iter().rev().take(3) {
            let code = p.code_string(step);
            for _ in 0..3 {
                let code = code.clone();
                plan.push(Box::new(move |b| verify_task(wr, b, code)));
            }
        }
        plan.push(Box::new(move |b| enroll_task(wr, b)));
        for c in issued.iter().take(2) {
            for _ in 0..2 {
                let c = c.clone();
                plan.push(Box::new(move |b| recovery_task(wr, b, c)));
            }
        }
        if r % 4 == 2 {
            plan.push(Box::new(move |b| reset_task(wr, b)));
        }
        if let (3, Some((id, _))) = (r % 4, phones.first()) {
            for _ in 0..2 {
                let id = id.clone();
                plan.push(Box::new(move |b| revoke_task(wr, b, id)));
            }
        }
        let barrier = Arc::new(Barrier::new(plan.len()));
        let tasks = plan.into_iter().map(|p| p(&barrier)).collect();
        let outcomes = round(tasks).await;

        accepted_pairs(&outcomes, &mut seen);
        for o in outcomes {
            match o {
                Outcome::Enrolled(e) => {
                    activations += 1;
                    phones.push((e.id, e.phone));
                    if !e.codes.is_empty() {
                        all_issued.extend(e.codes.iter().cloned());
                        issued = e.codes;
                    }
                }
                Outcome::Revoke(RevokeOutcome::Revoked) => {
                    revocations += 1;
                    phones.remove(0);
                }
                Outcome::Reset => resets += 1,
                Outcome::Recovery(code, RecoveryVerdict::Accepted { .. }) => {
                    assert!(recovered.insert(code.clone()), "{code} accepted twice");
                    issued.retain(|c| *c != code);
                }
                Outcome::Code(Verdict::Rejected(RejectReason::Throttled { .. })) => {
                    panic!("the lenient policy never locks")
                }
                _ => {}
            }
        }
        // What the store holds is what the round left: every active
        // authenticator is one we confirmed and did not revoke.
        let active: HashSet<_> = w
            .tfa
            .authenticators(&w.user)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        let ours: HashSet<_> = phones.iter().map(|(id, _)| id.clone()).collect();
        assert!(active.is_subset(&ours), "round {r}: {active:?} vs {ours:?}");
        // A reset removed phones we still hold: forget them.
        phones.retain(|(id, _)| active.contains(id));
        let status = w.tfa.status(&w.user).await.unwrap();
        assert_eq!(status.enrolled, !active.is_empty(), "round {r}");
        if !status.enrolled {
            issued.clear();
        }
    }
    stop_watching(stop, watcher).await;

    assert!(activations > 0 && resets > 0 && revocations > 0);
    assert_eq!(
        w.epoch().await,
        epoch0 + activations + revocations + resets,
        "every activation, revocation and reset moved the epoch by one"
    );
    assert!(recovered.is_subset(&all_issued));
    let left = w.tfa.recovery_codes_left(&w.user).await.unwrap();
    assert!(left <= 10, "{left}");
    // Whatever is left can be used, once.
    w.next_step();
    for (_, p) in &phones {
        let v = w
            .tfa
            .verify(&w.user, &p.code_string(w.step()))
            .await
            .unwrap();
        assert!(v.is_accepted(), "{v:?}");
        let again = w
            .tfa
            .verify(&w.user, &p.code_string(w.step()))
            .await
            .unwrap();
        assert_eq!(again, Verdict::Rejected(RejectReason::Replayed));
    }
}

/// Of many wrong guesses sent at the same moment, the throttle lets through
/// exactly the free attempts and the one that starts the first lockout; the
/// rest are refused without being counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_guesses_are_throttled_exactly() {
    let policy = ThrottlePolicy::default();
    let w = World::new(policy);
    let (_, phone, _, _) = w.enroll("phone").await;
    w.next_step();
    let step = w.step();
    let wrong = wrong_code(&[&phone], step);
    let barrier = Arc::new(Barrier::new(32));
    let tasks: Vec<Task> = (0..32)
        .map(|_| verify_task(&w, &barrier, wrong.clone()))
        .collect();
    let outcomes = round(tasks).await;
    let checked = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Code(Verdict::Rejected(RejectReason::Invalid))))
        .count();
    let throttled = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Outcome::Code(Verdict::Rejected(RejectReason::Throttled { .. }))
            )
        })
        .count();
    let allowed = policy.free_attempts() + 1;
    assert_eq!(checked, allowed as usize, "{outcomes:?}");
    assert_eq!(throttled, 32 - checked);
    let state = w.store.throttle_state(&w.user).await.unwrap();
    assert_eq!(state.attempts, allowed);
    assert_eq!(
        state.locked_until,
        w.clock.now().saturating_add(policy.delay_after(allowed))
    );
    // After the lockout, the right code gets in and clears the count.
    w.clock.advance(policy.delay_after(allowed));
    assert!(
        w.tfa
            .verify(&w.user, &phone.code_string(w.step()))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(w.store.throttle_state(&w.user).await.unwrap().attempts, 0);
}
