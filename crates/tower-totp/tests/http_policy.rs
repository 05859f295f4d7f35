//! The policy in the HTTP layer, changed live: every combination of the
//! settings, directory changes, and a step-up once 2FA is switched off.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::StatusCode;
use tower_totp::UserKind;
use tower_totp::policy::{PolicySettings, Requirement};
use tower_totp_testkit::app::assert_problem;
use tower_totp_testkit::app::{App, Client};

const KINDS: [UserKind; 2] = [UserKind::Internal, UserKind::External];

fn settings(bits: u8) -> PolicySettings {
    PolicySettings {
        enabled: bits & 1 != 0,
        internal_users: bits & 2 != 0,
        external_users: bits & 4 != 0,
        grace_days: 0,
    }
}

/// The precedence table of `src/policy.rs`, written out again.
fn expected(s: PolicySettings, kind: UserKind, require: bool, enrolled: bool) -> Requirement {
    let kind_on = match kind {
        UserKind::Internal => s.internal_users,
        UserKind::External => s.external_users,
        other => panic!("a kind the table does not know: {other:?}"),
    };
    match (s.enabled && kind_on, enrolled, require) {
        (false, _, _) => Requirement::NotRequired,
        (true, true, _) => Requirement::Challenge,
        (true, false, true) => Requirement::Enroll,
        (true, false, false) => Requirement::NotRequired,
    }
}

/// Every combination of the 8 switch settings, the user's kind, the require
/// flag and enrollment, with the policy changed between requests on
/// sessions that are already logged in: pending ones, and verified ones for
/// enrolled users.
#[tokio::test]
async fn every_policy_combination_changed_live() {
    let app = App::new();
    let policy = app.auth.policy();
    policy.set(settings(0b111));
    struct Case {
        kind: UserKind,
        require: bool,
        enrolled: bool,
        pending: Client,
        verified: Option<Client>,
    }
    let mut cases = Vec::new();
    for kind in KINDS {
        for require in [false, true] {
            for enrolled in [false, true] {
                let user = app.user(&format!("{kind:?}-{require}-{enrolled}"), kind, require);
                let mut pending = app.client();
                let mut verified = None;
                if enrolled {
                    let phone = app.enroll_directly(&user).await;
                    app.next_step();
                    let mut c = app.client();
                    c.login_verified(&user, &phone).await;
                    verified = Some(c);
                }
                pending.login(&user).await;
                cases.push(Case {
                    kind,
                    require,
                    enrolled,
                    pending,
                    verified,
                });
            }
        }
    }
    let mut checked = 0;
    // Twice round, so that every setting follows a different one.
    for bits in (0u8..8).chain((0u8..8).rev()) {
        let s = settings(bits);
        policy.set(s);
        for case in &mut cases {
            let want = expected(s, case.kind, case.require, case.enrolled);
            let what = format!(
                "{s:?} {:?} require={} enrolled={}",
                case.kind, case.require, case.enrolled
            );
            let before = app.hits();
            let r = case.pending.get("/hello").await;
            match want {
                Requirement::NotRequired => {
                    assert_eq!(r.hello_factor(), "not_required", "{what}");
                    assert_eq!(app.hits(), before + 1);
                }
                Requirement::Challenge => {
                    assert_problem(
                        &r,
                        StatusCode::UNAUTHORIZED,
                        "second_step_required",
                        Some("totp"),
                    );
                    assert_eq!(app.hits(), before, "{what}");
                }
                Requirement::Enroll => {
                    assert_problem(
                        &r,
                        StatusCode::UNAUTHORIZED,
                        "enrollment_required",
                        Some("enroll"),
                    );
                    assert_eq!(app.hits(), before, "{what}");
                }
            }
            if let Some(c) = &mut case.verified {
                let r = c.get("/hello").await;
                let factor = match want {
                    Requirement::Challenge => "verified",
                    _ => "not_required",
                };
                assert_eq!(r.hello_factor(), factor, "verified session, {what}");
            }
            // A new login under this setting answers the same `next`.
            let user = format!("{:?}-{}-{}", case.kind, case.require, case.enrolled);
            let next = app.client().login(&user.as_str().into()).await;
            let want_next = match want {
                Requirement::NotRequired => "done",
                Requirement::Challenge => "totp",
                Requirement::Enroll => "enroll",
            };
            assert_eq!(next, want_next, "login, {what}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 64);
}

/// The require flag and the user's existence are read on every request.
#[tokio::test]
async fn directory_changes_are_live() {
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, false);
    let mut c = app.client();
    assert_eq!(c.login(&ann).await, "done");
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.users.set_require_2fa(&ann, true).unwrap();
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    app.users.remove(&ann);
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    // The login is forgotten: the application's own auth decides again.
    assert_eq!(c.get("/hello").await.hello_factor(), "none");

    // Forced enrollment needs a password from the last 15 minutes: an
    // older session logs in again first.
    let ben = app.user("ben", UserKind::Internal, false);
    let mut c = app.client();
    assert_eq!(c.login(&ben).await, "done");
    app.advance(Duration::from_secs(15 * 60));
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.users.set_require_2fa(&ben, true).unwrap();
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    assert_eq!(c.login(&ben).await, "enroll");
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
}

/// An administrator who switches 2FA off (for everyone, or for their own
/// kind of user) still has a phone: the step-up keeps asking it for a code,
/// so that a stolen or left-open session cannot first switch 2FA off and
/// then change the rest without one. Logged in before and after the switch.
#[tokio::test]
async fn step_up_still_asks_an_enrolled_user_after_2fa_is_switched_off() {
    let app = App::new();
    let policy = app.auth.policy();
    let ada = app.user("ada", UserKind::Internal, true);
    let phone = app.enroll_directly(&ada).await;
    app.next_step();
    let mut before = app.client();
    before.login_verified(&ada, &phone).await;
    for off in [settings(0b000), settings(0b101)] {
        policy.set(off);
        // A fresh code still counts.
        assert_eq!(
            before.get("/sensitive").await.hello_factor(),
            "not_required"
        );
        app.advance(Duration::from_secs(121));
        let hits = app.hits();
        let r = before.get("/sensitive").await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "step_up_required",
            Some("totp"),
        );
        // A password-only login made while 2FA is off is asked too.
        let mut after = app.client();
        assert_eq!(after.login(&ada).await, "done");
        assert_eq!(after.get("/hello").await.hello_factor(), "not_required");
        let r = after.get("/sensitive").await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "step_up_required",
            Some("totp"),
        );
        assert_eq!(app.hits(), hits + 1, "only /hello got through");
        // The second screen takes the code, and the step-up lets it pass.
        app.next_step();
        for c in [&mut before, &mut after] {
            let r = c.submit(&phone.code()).await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
            assert_eq!(c.get("/sensitive").await.hello_factor(), "not_required");
            app.next_step();
        }
        policy.set(settings(0b111));
    }
}
