//! Issue 11's attacks through HTTP against two instances sharing one Redis,
//! with several sessions (cookie jars) of one user, each request sent to
//! whichever instance the test names: what the store keeps per session and
//! per user holds across instances, not only inside one process.
//!
//! - A pending enrollment belongs to the session that started it, on every
//!   instance: in every order of two sessions starting and confirming, on
//!   alternating instances, no secret is shown to both, the first
//!   confirmation activates its own session's authenticator and the other
//!   is refused.
//! - An administrator's reset on one instance ends the user's sessions on
//!   the other (the store's `sessions_ended_at`).

#![allow(clippy::unwrap_used)]

mod stack;

use http::StatusCode;
use serde_json::json;
use stack::{Instance, Phone, Reply, Shared};
use tower_totp::UserId;
use tower_totp::code::{CodeParams, Secret};
use tower_totp_testkit::server::redis::RedisServer;

/// What one session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// `GET /2fa/enroll`: its own pending enrollment (started if none).
    Start(usize),
    /// `POST /2fa/enroll` with the code of the secret it was shown.
    Confirm(usize),
}

/// Every order of the four acts in which each session starts before it
/// confirms.
fn orders() -> Vec<[Act; 4]> {
    let acts = [
        Act::Start(0),
        Act::Start(1),
        Act::Confirm(0),
        Act::Confirm(1),
    ];
    let mut out = Vec::new();
    for a in 0..4 {
        for b in 0..4 {
            for c in 0..4 {
                for d in 0..4 {
                    let idx = [a, b, c, d];
                    let mut seen = [false; 4];
                    if idx.iter().any(|&i| std::mem::replace(&mut seen[i], true)) {
                        continue;
                    }
                    let order = idx.map(|i| acts[i]);
                    let pos = |x| order.iter().position(|&y| y == x).unwrap();
                    if pos(Act::Start(0)) < pos(Act::Confirm(0))
                        && pos(Act::Start(1)) < pos(Act::Confirm(1))
                    {
                        out.push(order);
                    }
                }
            }
        }
    }
    out
}

fn secret_of(r: &Reply) -> String {
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    r.json()["secret"].as_str().unwrap().to_owned()
}

fn problem(r: &Reply, status: StatusCode, reason: &str, what: &str) {
    assert_eq!(r.status(), status, "{what}: {}", r.text());
    assert_eq!(r.problem_reason(), reason, "{what}");
}

/// One order, played on a fresh service of two instances.
async fn play(server: &RedisServer, order: [Act; 4]) {
    let shared = Shared::standard();
    let instances = [
        shared.instance("A", server).await,
        shared.instance("B", server).await,
    ];
    // Each act goes to the other instance than the one before.
    let at = |i: usize| -> &Instance { &instances[i % 2] };
    let ann = shared.user("ann");
    let mut sessions = [stack::client(), stack::client()];
    for (i, s) in sessions.iter_mut().enumerate() {
        assert_eq!(s.on(at(i)).login(&ann).await, "enroll", "{order:?}");
    }
    let mut shown: [Option<String>; 2] = [None, None];
    let mut winner: Option<usize> = None;
    for (i, act) in order.into_iter().enumerate() {
        let to = at(i + 1);
        let what = format!("{order:?}, act {i} {act:?} on {}", to.name);
        match act {
            Act::Start(x) => {
                let r = sessions[x].on(to).get("/2fa/enroll").await;
                if winner.is_some() {
                    // Enrolled meanwhile: another app needs a second step.
                    problem(&r, StatusCode::UNAUTHORIZED, "step_up_required", &what);
                    continue;
                }
                let secret = secret_of(&r);
                // Its own, whichever instance answers.
                let again = sessions[x].on(at(i)).get("/2fa/enroll").await;
                assert_eq!(secret_of(&again), secret, "{what}: looking again");
                shown[x] = Some(secret);
            }
            Act::Confirm(x) => {
                let Some(secret) = &shown[x] else {
                    continue; // It was never shown one.
                };
                let phone = Phone::new(
                    &Secret::from_base32(secret).unwrap(),
                    CodeParams::default(),
                    shared.clock.clone(),
                );
                let r = sessions[x]
                    .on(to)
                    .post_json("/2fa/enroll", json!({ "code": phone.code() }))
                    .await;
                if winner.is_some() {
                    problem(&r, StatusCode::UNAUTHORIZED, "step_up_required", &what);
                } else {
                    assert_eq!(r.status(), StatusCode::OK, "{what}: {}", r.text());
                    let codes = r.json()["recovery_codes"].as_array().map(Vec::len);
                    assert_eq!(codes, Some(10), "{what}: recovery codes shown once");
                    winner = Some(x);
                }
            }
        }
    }
    if let [Some(a), Some(b)] = &shown {
        assert_ne!(a, b, "{order:?}: one secret shown to both sessions");
    }
    let winner = winner.unwrap_or_else(|| panic!("{order:?}: nobody confirmed"));
    // The active authenticator is the one its confirming session was shown:
    // the winner's phone logs in on either instance, the loser's does not.
    let engine = instances[0].auth.engine();
    assert_eq!(engine.authenticators(&ann).await.unwrap().len(), 1);
    shared.next_step();
    for (x, secret) in shown.iter().enumerate() {
        let Some(secret) = secret else { continue };
        let phone = Phone::new(
            &Secret::from_base32(secret).unwrap(),
            CodeParams::default(),
            shared.clock.clone(),
        );
        let accepted = engine
            .verify(&ann, &phone.code())
            .await
            .unwrap()
            .is_accepted();
        assert_eq!(accepted, x == winner, "{order:?}: session {x}'s secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_on_two_instances_in_every_order_never_share_a_secret() {
    let server = RedisServer::start();
    let orders = orders();
    assert_eq!(orders.len(), 6);
    for order in orders {
        play(&server, order).await;
    }
}

/// Another session's secret never confirms this session's enrollment, on
/// any instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_of_another_sessions_secret_confirms_nothing() {
    let server = RedisServer::start();
    let shared = Shared::standard();
    let (a, b) = (
        shared.instance("A", &server).await,
        shared.instance("B", &server).await,
    );
    let ann = shared.user("ann");
    let (mut victim, mut attacker) = (stack::client(), stack::client());
    assert_eq!(victim.on(&a).login(&ann).await, "enroll");
    assert_eq!(attacker.on(&b).login(&ann).await, "enroll");
    let victims = secret_of(&victim.on(&a).get("/2fa/enroll").await);
    let _ = secret_of(&attacker.on(&b).get("/2fa/enroll").await);
    let phone = Phone::new(
        &Secret::from_base32(&victims).unwrap(),
        CodeParams::default(),
        shared.clock.clone(),
    );
    for to in [&a, &b] {
        let r = attacker
            .on(to)
            .post_json("/2fa/enroll", json!({ "code": phone.code() }))
            .await;
        problem(&r, StatusCode::UNAUTHORIZED, "invalid", to.name);
    }
    assert!(
        a.auth
            .engine()
            .authenticators(&ann)
            .await
            .unwrap()
            .is_empty()
    );
    let r = victim
        .on(&b)
        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_on_one_instance_ends_the_users_sessions_on_the_other() {
    let server = RedisServer::start();
    let shared = Shared::standard();
    let (a, b) = (
        shared.instance("A", &server).await,
        shared.instance("B", &server).await,
    );
    let (ann, bob) = (shared.user("ann"), shared.user("bob"));
    let phone = a.enroll(&ann, &shared.clock).await;
    let bobs_phone = a.enroll(&bob, &shared.clock).await;
    let mut verified = stack::client();
    assert_eq!(verified.on(&a).login(&ann).await, "totp");
    let r = verified.on(&a).submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let mut halfway = stack::client();
    assert_eq!(halfway.on(&b).login(&ann).await, "totp");
    let mut bobs = stack::client();
    assert_eq!(bobs.on(&b).login(&bob).await, "totp");
    let r = bobs.on(&b).submit(&bobs_phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(verified.on(&b).hello().await.hello_factor(), "verified");

    a.auth.reset_user(&UserId::new("root"), &ann).await.unwrap();

    // On the other instance: ann's sessions are over, bob's is not.
    problem(
        &verified.on(&b).hello().await,
        StatusCode::UNAUTHORIZED,
        "not_logged_in",
        "the verified session on B",
    );
    shared.next_step();
    let r = halfway.on(&b).submit(&phone.code()).await;
    problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "not_logged_in",
        "the halfway session",
    );
    assert_eq!(bobs.on(&b).hello().await.hello_factor(), "verified");
    assert_eq!(bobs.on(&a).hello().await.hello_factor(), "verified");
    let engine = b.auth.engine();
    assert!(engine.authenticators(&ann).await.unwrap().is_empty());
    assert_eq!(engine.recovery_codes_left(&ann).await.unwrap(), 0);
    // A new login after the reset starts over with enrollment.
    shared.clock.advance(std::time::Duration::from_millis(1));
    let mut again = stack::client();
    assert_eq!(again.on(&b).login(&ann).await, "enroll");
}

/// Sessions of one user on both instances confirm their own pending
/// enrollments at the same moment: the store's activation, which checks
/// "no authenticator yet" in the same script, lets exactly one win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_confirmations_across_instances_have_one_winner() {
    const SESSIONS: usize = 8;
    let server = RedisServer::start();
    let policy = tower_totp::throttle::ThrottlePolicy::new(
        64,
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(900),
    )
    .unwrap();
    let config = tower_totp::TotpConfig::new("Acme")
        .unwrap()
        .with_throttle(policy)
        .with_max_pending_enrollments(SESSIONS)
        .unwrap();
    for round in 0..4 {
        let shared = Shared::new(config.clone());
        let instances = [
            shared.instance("A", &server).await,
            shared.instance("B", &server).await,
        ];
        let ann = shared.user("ann");
        let mut ready = Vec::new();
        for i in 0..SESSIONS {
            let to = instances[i % 2].clone();
            let mut c = stack::client();
            assert_eq!(c.on(&to).login(&ann).await, "enroll");
            let secret = secret_of(&c.on(&to).get("/2fa/enroll").await);
            let phone = Phone::new(
                &Secret::from_base32(&secret).unwrap(),
                CodeParams::default(),
                shared.clock.clone(),
            );
            // Confirmed on the other instance than the one that started it.
            ready.push((c, instances[(i + 1) % 2].clone(), phone));
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(SESSIONS));
        let tasks: Vec<_> = ready
            .into_iter()
            .map(|(mut c, to, phone)| {
                let start = std::sync::Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    let r = c
                        .on(&to)
                        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
                        .await;
                    (r, phone)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (r, phone) = t.await.unwrap();
            if r.status() == StatusCode::OK {
                winners.push(phone);
            } else {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
                let reason = r.problem_reason();
                assert!(
                    reason == "step_up_required" || reason == "already_enrolled",
                    "round {round}: {reason}"
                );
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: one winner");
        let engine = instances[0].auth.engine();
        assert_eq!(engine.authenticators(&ann).await.unwrap().len(), 1);
        shared.next_step();
        assert!(
            engine
                .verify(&ann, &winners[0].code())
                .await
                .unwrap()
                .is_accepted(),
            "round {round}: the winner's own app is the active one"
        );
    }
}
