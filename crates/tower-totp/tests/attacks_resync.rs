//! Resynchronisation attacked: a shoulder surfer who saw the code the user
//! typed (and the codes around it on the phone) tries them after a delay,
//! hoping the used code starts a resynchronisation and its successor
//! finishes it. Steps at or before the last used one count for nothing
//! outside the window; inside it the store's compare-and-set refuses them.
//! Each of those tests runs twice: with the default window, and with the
//! drift-rate rule off, so the used-step rule is seen to hold on its own.
//!
//! Then the surfer who saw two codes the phone showed *after* the login,
//! never typed, replayed one step apart minutes later: they look like a
//! slow phone, but a real one was exact at its last code a moment ago and
//! cannot have drifted minutes since (`Window::allows_offset_change`).
//! A phone that really drifted, over a week or months, still
//! resynchronises.
//!
//! And the oracle: a wrong guess that matches a step outside the window
//! must cost the store exactly what a plain miss costs. Counted by store
//! calls per outcome (the test store logs each call by name), not by
//! timing.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use http::StatusCode;
use tower_totp::store::{ResyncCandidate, SyncState};
use tower_totp::verify::Window;
use tower_totp::{RejectReason, UserId, UserKind, Verdict};
use tower_totp_testkit::app::{App, Client};
use tower_totp_testkit::phone::Phone;

/// Steps in a day at the default 30 s.
const A_DAY: u64 = 24 * 120;

/// The default app, and one whose window lets any offset change within
/// the maximum drift (the drift-rate rule off).
fn apps() -> [(&'static str, App); 2] {
    let any_rate = Window::default().with_max_drift_rate(1_000_000).unwrap();
    [
        ("default", App::new()),
        (
            "rate rule off",
            App::setup().config(|c| c.with_window(any_rate)).build(),
        ),
    ]
}

/// The store's view of the user's (only) authenticator.
async fn sync_of(app: &App, user: &UserId) -> SyncState {
    app.auth
        .engine()
        .store()
        .authenticators(user)
        .await
        .unwrap()[0]
        .sync
}

/// A user with one phone whose codes differ from each other from 20 steps
/// before to 30 steps after each of `around` (steps from now). These tests
/// assert which step a code matches, and a 6-digit collision (one pair of
/// steps in 10^6) would let another step match: about one run in a hundred
/// of the many-orders test below, with random secrets. Such a phone is set
/// aside and another user enrolled.
async fn enroll_without_collisions(app: &App, around: &[u64]) -> (UserId, Phone) {
    for n in 0.. {
        let user = app.user(&format!("ann-{n}"), UserKind::Internal, true);
        let phone = app.enroll_directly(&user).await;
        let unique = around.iter().all(|&from| {
            let centre = phone.step() + from;
            let codes: HashSet<String> = (centre - 20..=centre + 30)
                .map(|s| phone.code_for_step(s))
                .collect();
            codes.len() == 51
        });
        if unique {
            return (user, phone);
        }
    }
    unreachable!()
}

/// A user with one phone, logged in once with the code of step `S`, which
/// is now used; the clock still at `S`.
async fn after_a_login(app: &App) -> (UserId, Phone, u64) {
    after_a_login_looking_at(app, &[0]).await
}

/// [`after_a_login`], with a phone free of collisions `around` these steps
/// from now too.
async fn after_a_login_looking_at(app: &App, around: &[u64]) -> (UserId, Phone, u64) {
    let (ann, phone) = enroll_without_collisions(app, around).await;
    app.next_step();
    let mut victim = app.client();
    victim.login_verified(&ann, &phone).await;
    let s = phone.step();
    (ann, phone, s)
}

fn steps(app: &App, n: u64) {
    for _ in 0..n {
        app.next_step();
    }
}

/// The scene of the issue: the code the user typed a minute ago, then one
/// step later its successor (seen on the phone). Through the engine.
#[tokio::test]
async fn the_used_code_then_its_successor_does_not_resynchronise() {
    for (what, app) in apps() {
        let (ann, phone, s) = after_a_login(&app).await;
        let engine = app.auth.engine();
        steps(&app, 2);
        assert_eq!(
            engine.verify(&ann, &phone.code_for_step(s)).await.unwrap(),
            Verdict::Rejected(RejectReason::Invalid),
            "{what}"
        );
        steps(&app, 1);
        assert_eq!(
            engine
                .verify(&ann, &phone.code_for_step(s + 1))
                .await
                .unwrap(),
            Verdict::Rejected(RejectReason::Invalid),
            "{what}"
        );
        // No candidate was kept for the used step, so none follows it.
        let sync = sync_of(&app, &ann).await;
        assert_eq!(sync.last_step, Some(s), "{what}");
        assert_ne!(sync.resync.map(|c| c.step), Some(s), "{what}");
    }
}

/// The same through HTTP, from the surfer's own session (the password is
/// known): refused, and the surfer's session stays at the second step.
#[tokio::test]
async fn the_surfer_gets_no_session_through_http() {
    for (what, app) in apps() {
        let (ann, phone, s) = after_a_login(&app).await;
        let mut surfer = app.client();
        assert_eq!(surfer.login(&ann).await, "totp");
        steps(&app, 2);
        let r = surfer.submit(&phone.code_for_step(s)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
        assert_eq!(r.problem_reason(), "invalid", "{what}");
        steps(&app, 1);
        let r = surfer.submit(&phone.code_for_step(s + 1)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
        assert_eq!(r.problem_reason(), "invalid", "{what}");
        let r = surfer.get("/hello").await;
        assert_eq!(r.problem_reason(), "second_step_required", "{what}");
        // The user is not disturbed: the phone's code now logs in.
        let mut user = app.client();
        user.login_verified(&ann, &phone).await;
    }
}

/// Every order of (used code, its successor, its predecessor), started 2
/// to 8 steps after the login, one step apart or all at once, through the
/// engine and through HTTP, with and without the drift-rate rule: nothing
/// resynchronises, and a code is accepted only when it is a new step
/// inside the window at the time it is sent (the successor two steps on,
/// which a surfer who saw it could always use).
#[tokio::test]
async fn no_order_of_used_successor_and_predecessor_resynchronises() {
    let orders: [[i64; 3]; 6] = [
        [0, 1, -1],
        [0, -1, 1],
        [1, 0, -1],
        [1, -1, 0],
        [-1, 0, 1],
        [-1, 1, 0],
    ];
    let mut tried = 0;
    for delay in 2..=8u64 {
        for gap in [0u64, 1] {
            for order in orders {
                for (http, (rule, app)) in [false, true]
                    .into_iter()
                    .flat_map(|h| apps().map(|a| (h, a)))
                {
                    let (ann, phone, s) = after_a_login(&app).await;
                    steps(&app, delay);
                    let mut surfer = app.client();
                    if http {
                        assert_eq!(surfer.login(&ann).await, "totp");
                    }
                    for (i, rel) in order.into_iter().enumerate() {
                        if i > 0 {
                            steps(&app, gap);
                        }
                        let step = s.checked_add_signed(rel).unwrap();
                        let now = phone.step();
                        let in_window = step > s && now.abs_diff(step) <= 1;
                        let code = phone.code_for_step(step);
                        let case = format!(
                            "{rule}, delay {delay}, gap {gap}, order {order:?}, http {http}, code {rel}"
                        );
                        let accepted = if http {
                            accepted_over_http(&mut surfer, &code, &case).await
                        } else {
                            let verdict = app.auth.engine().verify(&ann, &code).await.unwrap();
                            if let Verdict::Accepted { resynchronised, .. } = verdict {
                                assert!(!resynchronised, "{case}: resynchronised");
                            }
                            verdict.is_accepted()
                        };
                        assert_eq!(accepted, in_window, "{case}");
                        tried += 1;
                    }
                }
            }
        }
    }
    assert_eq!(tried, 7 * 2 * 6 * 2 * 2 * 3);
}

async fn accepted_over_http(surfer: &mut Client, code: &str, case: &str) -> bool {
    let r = surfer.submit(code).await;
    match r.status() {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {
            let reason = r.problem_reason();
            assert!(
                ["invalid", "replayed", "throttled"].contains(&reason.as_str()),
                "{case}: {reason}"
            );
            false
        }
        other => panic!("{case}: {other} {}", r.text()),
    }
}

// ------------------------------------------------- codes shown after it

/// A user with one phone, logged in over HTTP with the code of step `S`;
/// the victim's verified session is kept (its own cookie jar).
async fn a_victim_logged_in(app: &App, around: &[u64]) -> (UserId, Phone, u64, Client) {
    let (ann, phone) = enroll_without_collisions(app, around).await;
    app.next_step();
    let mut victim = app.client();
    victim.login_verified(&ann, &phone).await;
    let s = phone.step();
    (ann, phone, s, victim)
}

/// The gap the drift-rate rule closes. The surfer saw the codes the phone
/// showed after the user's login (S+1 .. S+4, never typed) and replays a
/// consecutive pair of them, one step apart, `d` steps (30 s .. 5 min)
/// after they were shown: offsets of -d, which look like a slow phone.
/// Through the engine and through HTTP from the surfer's own session while
/// the victim's session exists: nothing resynchronises, no candidate is
/// kept, the learned offset stays 0; a code is accepted only at `d = 1`,
/// when it is still inside the window (any TOTP's 90 s).
#[tokio::test]
async fn codes_shown_after_the_login_never_resynchronise() {
    let mut tried = 0;
    for d in 1..=10u64 {
        for first in 1..=3u64 {
            for http in [false, true] {
                let app = App::new();
                let (ann, phone, s, mut victim) = a_victim_logged_in(&app, &[0]).await;
                // The pair's first code is shown at step S + first; the
                // surfer logs in with the password just before using it.
                steps(&app, first + d);
                let mut surfer = app.client();
                if http {
                    assert_eq!(surfer.login(&ann).await, "totp");
                }
                let mut any_accepted = false;
                for k in 0..2 {
                    if k > 0 {
                        steps(&app, 1);
                    }
                    let step = s + first + k;
                    let in_window = phone.step().abs_diff(step) <= 1;
                    let case = format!("delay {d}, pair S+{first}, http {http}, code {k}");
                    let code = phone.code_for_step(step);
                    let accepted = if http {
                        accepted_over_http(&mut surfer, &code, &case).await
                    } else {
                        let verdict = app.auth.engine().verify(&ann, &code).await.unwrap();
                        if let Verdict::Accepted { resynchronised, .. } = verdict {
                            assert!(!resynchronised, "{case}: resynchronised");
                        }
                        verdict.is_accepted()
                    };
                    assert_eq!(accepted, in_window, "{case}");
                    any_accepted |= accepted;
                    tried += 1;
                }
                // No candidate kept; the offset moves only by an accepted
                // code inside the window (one step behind, at d = 1).
                let sync = sync_of(&app, &ann).await;
                assert_eq!(sync.resync, None, "delay {d}, http {http}");
                if !any_accepted {
                    assert_eq!(sync.offset, 0, "delay {d}, http {http}");
                }
                if http && !any_accepted {
                    let r = surfer.get("/hello").await;
                    assert_eq!(r.problem_reason(), "second_step_required", "delay {d}");
                }
                // The victim's session is untouched, and the phone still logs in.
                assert_eq!(victim.get("/hello").await.hello_factor(), "verified");
                steps(&app, 1);
                app.client().login_verified(&ann, &phone).await;
            }
        }
    }
    assert_eq!(tried, 10 * 3 * 2 * 2);
}

/// A phone that really drifted resynchronises: 3 steps over a week, 10
/// over three months, slow or fast, through the engine and through HTTP.
#[tokio::test]
async fn a_phone_that_really_drifted_still_resynchronises() {
    for (days, offset) in [(7u64, -3i64), (7, 3), (90, -10), (90, 10)] {
        for http in [false, true] {
            let app = App::new();
            let (ann, phone, _, _victim) = a_victim_logged_in(&app, &[0, days * A_DAY]).await;
            steps(&app, days * A_DAY);
            let case = format!("{days} days, offset {offset}, http {http}");
            let mut client = app.client();
            if http {
                assert_eq!(client.login(&ann).await, "totp");
            }
            // The first code is a candidate, the second resynchronises.
            for (k, want) in [StatusCode::UNAUTHORIZED, StatusCode::OK]
                .into_iter()
                .enumerate()
            {
                if k > 0 {
                    steps(&app, 1);
                }
                let code = phone.code_for_step(phone.step().checked_add_signed(offset).unwrap());
                if http {
                    let r = client.submit(&code).await;
                    assert_eq!(r.status(), want, "{case}, code {k}: {}", r.text());
                } else {
                    let v = app.auth.engine().verify(&ann, &code).await.unwrap();
                    let resynchronised = matches!(
                        v,
                        Verdict::Accepted { resynchronised: true, offset: o, .. } if o == offset
                    );
                    assert_eq!(
                        resynchronised,
                        want == StatusCode::OK,
                        "{case}, code {k}: {v:?}"
                    );
                }
            }
            if http {
                assert_eq!(
                    client.get("/hello").await.hello_factor(),
                    "verified",
                    "{case}"
                );
            }
            assert_eq!(sync_of(&app, &ann).await.offset, offset, "{case}");
        }
    }
}

/// The residual, measured: a pair the phone showed an hour (120 steps)
/// after the device's last code, never typed. Replayed 2 steps after it
/// was shown (one beyond the window, plausible after 122 steps) it
/// resynchronises; 3 steps after (two beyond, which need 200) it does not.
#[tokio::test]
async fn a_pair_seen_an_hour_after_the_last_code_reaches_one_step_past_the_window() {
    for (d, resyncs) in [(2u64, true), (3, false)] {
        let app = App::new();
        let (ann, phone, s, _victim) = a_victim_logged_in(&app, &[0, 120]).await;
        let shown = s + 120;
        steps(&app, 120 + d);
        let first = app
            .auth
            .engine()
            .verify(&ann, &phone.code_for_step(shown))
            .await
            .unwrap();
        assert_eq!(first, Verdict::Rejected(RejectReason::Invalid), "d = {d}");
        steps(&app, 1);
        let second = app
            .auth
            .engine()
            .verify(&ann, &phone.code_for_step(shown + 1))
            .await
            .unwrap();
        assert_eq!(
            matches!(
                second,
                Verdict::Accepted {
                    resynchronised: true,
                    ..
                }
            ),
            resyncs,
            "d = {d}: {second:?}"
        );
    }
}

/// The legitimate case the rule refuses: a phone whose clock was set back
/// 3 minutes (6 steps) by hand 10 minutes after a login. Five steps beyond
/// the window need 500 steps (4 hours 10 minutes) since that login at the
/// default 1%: the pair is refused at first, and resynchronises hours later.
#[tokio::test]
async fn a_clock_set_back_by_hand_resynchronises_hours_later() {
    let app = App::new();
    let (ann, phone, s, _victim) = a_victim_logged_in(&app, &[0, 500]).await;
    let engine = app.auth.engine();
    let slow = || phone.code_for_step(phone.step() - 6);
    steps(&app, 20);
    for _ in 0..2 {
        let v = engine.verify(&ann, &slow()).await.unwrap();
        assert_eq!(v, Verdict::Rejected(RejectReason::Invalid));
        steps(&app, 1);
    }
    assert_eq!(sync_of(&app, &ann).await.resync, None);
    // 500 steps after the login, not one before.
    let now = phone.step();
    steps(&app, (s + 499) - now);
    assert!(!engine.verify(&ann, &slow()).await.unwrap().is_accepted());
    assert_eq!(sync_of(&app, &ann).await.resync, None, "499 steps on");
    steps(&app, 1);
    assert!(!engine.verify(&ann, &slow()).await.unwrap().is_accepted());
    steps(&app, 1);
    let v = engine.verify(&ann, &slow()).await.unwrap();
    assert!(
        matches!(
            v,
            Verdict::Accepted {
                resynchronised: true,
                offset: -6,
                ..
            }
        ),
        "{v:?}"
    );
}

// ------------------------------------------------------------ store work

/// The store calls one `verify` makes.
async fn calls_of_verify(app: &App, ann: &UserId, code: &str) -> (Vec<&'static str>, Verdict) {
    app.store.clear_call_log();
    let verdict = app.auth.engine().verify(ann, code).await.unwrap();
    (app.store.call_log(), verdict)
}

/// A plain miss, a guess matching a step outside the window too soon after
/// the login (an implausible jump), one matching a used step outside the
/// window, and, a day later, one matching a new step outside the window
/// (a resync candidate, kept): the same store calls, in the same order,
/// and the same answer.
#[tokio::test]
async fn a_miss_and_an_out_of_window_match_cost_the_same_store_calls() {
    let app = App::new();
    let (ann, phone, s) = after_a_login_looking_at(&app, &[0, A_DAY + 3]).await;
    steps(&app, 3);
    let now = phone.step();
    let miss = calls_of_verify(&app, &ann, &phone.wrong_code()).await;
    let implausible = calls_of_verify(&app, &ann, &phone.code_for_step(now + 5)).await;
    assert_eq!(
        sync_of(&app, &ann).await.resync,
        None,
        "implausible: no candidate"
    );
    let used = calls_of_verify(&app, &ann, &phone.code_for_step(s)).await;
    steps(&app, A_DAY);
    let now = phone.step();
    let ahead = calls_of_verify(&app, &ann, &phone.code_for_step(now + 5)).await;
    assert_eq!(
        sync_of(&app, &ann).await.resync,
        Some(ResyncCandidate {
            step: now + 5,
            offset: 5
        }),
        "a day later: a candidate"
    );
    let want = vec!["begin_verification", "record_miss"];
    for (what, (calls, verdict)) in [
        ("miss", &miss),
        ("implausible", &implausible),
        ("used", &used),
        ("ahead", &ahead),
    ] {
        assert_eq!(calls, &want, "{what}");
        assert_eq!(verdict, &Verdict::Rejected(RejectReason::Invalid), "{what}");
    }
    // For comparison: an accepted code and a replay make a compare-and-set
    // (once the 1 s lockout of the fourth failure is over).
    app.advance(Duration::from_secs(2));
    let accepted = calls_of_verify(&app, &ann, &phone.code_for_step(now)).await;
    assert!(accepted.1.is_accepted());
    assert_eq!(accepted.0, ["begin_verification", "consume_step"]);
    let replay = calls_of_verify(&app, &ann, &phone.code_for_step(now)).await;
    assert_eq!(replay.1, Verdict::Rejected(RejectReason::Replayed));
    assert_eq!(replay.0, accepted.0);
}

/// The same per outcome through `POST /2fa`: the store calls of the whole
/// request, and the answer, are the same for a miss and an out-of-window
/// match (implausible, used, or a day later a candidate).
#[tokio::test]
async fn over_http_a_miss_and_an_out_of_window_match_cost_the_same() {
    let app = App::new();
    let (ann, phone, s) = after_a_login_looking_at(&app, &[0, A_DAY + 3]).await;
    let mut attacker = app.client();
    assert_eq!(attacker.login(&ann).await, "totp");
    steps(&app, 3);
    let now = phone.step();
    let mut seen = Vec::new();
    let mut submit = async |what: &'static str, code: String, attacker: &mut Client| {
        app.store.clear_call_log();
        let r = attacker.submit(&code).await;
        seen.push((what, app.store.call_log(), r.status(), r.text()));
    };
    submit("miss", phone.wrong_code(), &mut attacker).await;
    submit(
        "implausible ahead",
        phone.code_for_step(now + 5),
        &mut attacker,
    )
    .await;
    submit(
        "implausible behind",
        phone.code_for_step(now - 6),
        &mut attacker,
    )
    .await;
    submit("used", phone.code_for_step(s), &mut attacker).await;
    steps(&app, A_DAY);
    let now = phone.step();
    let mut attacker = app.client();
    assert_eq!(attacker.login(&ann).await, "totp");
    submit(
        "candidate ahead",
        phone.code_for_step(now + 5),
        &mut attacker,
    )
    .await;
    // Out of the 2 s lockout of the fifth failure, in the same step.
    app.advance(Duration::from_secs(3));
    submit(
        "candidate behind",
        phone.code_for_step(now - 6),
        &mut attacker,
    )
    .await;
    let (_, calls, status, body) = &seen[0];
    assert_eq!(calls, &["begin_verification", "record_miss"]);
    for (what, c, st, b) in &seen[1..] {
        assert_eq!(c, calls, "{what}");
        assert_eq!(st, status, "{what}");
        assert_eq!(b, body, "{what}");
    }
}
