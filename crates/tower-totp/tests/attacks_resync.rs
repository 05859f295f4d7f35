//! Resynchronisation attacked: a shoulder surfer who saw the code the user
//! typed (and the codes around it on the phone) tries them after a delay,
//! hoping the used code starts a resynchronisation and its successor
//! finishes it. Steps at or before the last used one count for nothing
//! outside the window; inside it the store's compare-and-set refuses them.
//!
//! And the oracle: a wrong guess that matches a step outside the window
//! must cost the store exactly what a plain miss costs. Counted by store
//! calls per outcome (the test store logs each call by name), not by
//! timing.

#![allow(clippy::unwrap_used)]

mod http_support;

use http::StatusCode;
use http_support::{App, Client, Phone};
use tower_totp::{RejectReason, UserId, UserKind, Verdict};

/// A user with one phone, logged in once with the code of step `S`, which
/// is now used; the clock still at `S`.
async fn after_a_login(app: &App) -> (UserId, Phone, u64) {
    let ann = app.user("ann", UserKind::Internal, true);
    let phone = app.enroll_directly(&ann).await;
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
    let app = App::new();
    let (ann, phone, s) = after_a_login(&app).await;
    let engine = app.auth.engine();
    steps(&app, 2);
    assert_eq!(
        engine.verify(&ann, &phone.code_for_step(s)).await.unwrap(),
        Verdict::Rejected(RejectReason::Invalid)
    );
    steps(&app, 1);
    assert_eq!(
        engine
            .verify(&ann, &phone.code_for_step(s + 1))
            .await
            .unwrap(),
        Verdict::Rejected(RejectReason::Invalid)
    );
    // No candidate was kept for the used step, so none follows it.
    let sync = engine.store().authenticators(&ann).await.unwrap()[0].sync;
    assert_eq!(sync.last_step, Some(s));
    assert_ne!(sync.resync.map(|c| c.step), Some(s));
}

/// The same through HTTP, from the surfer's own session (the password is
/// known): refused, and the surfer's session stays at the second step.
#[tokio::test]
async fn the_surfer_gets_no_session_through_http() {
    let app = App::new();
    let (ann, phone, s) = after_a_login(&app).await;
    let mut surfer = app.client();
    assert_eq!(surfer.login(&ann).await, "totp");
    steps(&app, 2);
    let r = surfer.submit(&phone.code_for_step(s)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.problem_reason(), "invalid");
    steps(&app, 1);
    let r = surfer.submit(&phone.code_for_step(s + 1)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.problem_reason(), "invalid");
    let r = surfer.get("/hello").await;
    assert_eq!(r.problem_reason(), "second_step_required");
    // The user is not disturbed: the phone's code now logs in.
    let mut user = app.client();
    user.login_verified(&ann, &phone).await;
}

/// Every order of (used code, its successor, its predecessor), started 2
/// to 8 steps after the login, one step apart or all at once, through the
/// engine and through HTTP: nothing resynchronises, and a code is accepted
/// only when it is a new step inside the window at the time it is sent
/// (the successor two steps on, which a surfer who saw it could always use).
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
                for http in [false, true] {
                    let app = App::new();
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
                            "delay {delay}, gap {gap}, order {order:?}, http {http}, code {rel}"
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
    assert_eq!(tried, 7 * 2 * 6 * 2 * 3);
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

/// A drifted phone still resynchronises: two consecutive new codes
/// outside the window, one step apart.
#[tokio::test]
async fn a_drifted_phone_still_resynchronises() {
    let app = App::new();
    let (ann, phone, s) = after_a_login(&app).await;
    let engine = app.auth.engine();
    steps(&app, 20);
    // The phone runs 5 steps slow: it shows s + 15, then s + 16.
    assert!(
        !engine
            .verify(&ann, &phone.code_for_step(s + 15))
            .await
            .unwrap()
            .is_accepted()
    );
    steps(&app, 1);
    let verdict = engine
        .verify(&ann, &phone.code_for_step(s + 16))
        .await
        .unwrap();
    assert!(
        matches!(
            verdict,
            Verdict::Accepted {
                resynchronised: true,
                offset: -5,
                ..
            }
        ),
        "{verdict:?}"
    );
}

// ------------------------------------------------------------ store work

/// The store calls one `verify` makes.
async fn calls_of_verify(app: &App, ann: &UserId, code: &str) -> (Vec<&'static str>, Verdict) {
    app.store.clear_call_log();
    let verdict = app.auth.engine().verify(ann, code).await.unwrap();
    (app.store.call_log(), verdict)
}

/// A plain miss, a guess matching a new step outside the window (a resync
/// candidate), and one matching a used step outside the window: the same
/// store calls, in the same order, and the same answer.
#[tokio::test]
async fn a_miss_and_an_out_of_window_match_cost_the_same_store_calls() {
    let app = App::new();
    let (ann, phone, s) = after_a_login(&app).await;
    steps(&app, 3);
    let now = phone.step();
    let miss = calls_of_verify(&app, &ann, &phone.wrong_code()).await;
    let ahead = calls_of_verify(&app, &ann, &phone.code_for_step(now + 5)).await;
    let used = calls_of_verify(&app, &ann, &phone.code_for_step(s)).await;
    let want = vec!["authenticators", "begin_attempt", "record_miss"];
    for (what, (calls, verdict)) in [("miss", &miss), ("ahead", &ahead), ("used", &used)] {
        assert_eq!(calls, &want, "{what}");
        assert_eq!(verdict, &Verdict::Rejected(RejectReason::Invalid), "{what}");
    }
    // For comparison: an accepted code and a replay make a compare-and-set.
    let accepted = calls_of_verify(&app, &ann, &phone.code_for_step(now)).await;
    assert!(accepted.1.is_accepted());
    assert_eq!(
        accepted.0,
        ["authenticators", "begin_attempt", "consume_step"]
    );
    let replay = calls_of_verify(&app, &ann, &phone.code_for_step(now)).await;
    assert_eq!(replay.1, Verdict::Rejected(RejectReason::Replayed));
    assert_eq!(replay.0, accepted.0);
}

/// The same per outcome through `POST /2fa`: the store calls of the whole
/// request, and the answer, are the same for a miss and an out-of-window
/// match.
#[tokio::test]
async fn over_http_a_miss_and_an_out_of_window_match_cost_the_same() {
    let app = App::new();
    let (ann, phone, s) = after_a_login(&app).await;
    let mut attacker = app.client();
    assert_eq!(attacker.login(&ann).await, "totp");
    steps(&app, 3);
    let now = phone.step();
    let mut seen = Vec::new();
    for (what, code) in [
        ("miss", phone.wrong_code()),
        ("ahead", phone.code_for_step(now + 5)),
        ("behind", phone.code_for_step(now - 6)),
        ("used", phone.code_for_step(s)),
    ] {
        app.store.clear_call_log();
        let r = attacker.submit(&code).await;
        seen.push((what, app.store.call_log(), r.status(), r.text()));
    }
    let (_, calls, status, body) = &seen[0];
    assert_eq!(
        calls,
        &["status", "authenticators", "begin_attempt", "record_miss"]
    );
    for (what, c, st, b) in &seen[1..] {
        assert_eq!(c, calls, "{what}");
        assert_eq!(st, status, "{what}");
        assert_eq!(b, body, "{what}");
    }
}
