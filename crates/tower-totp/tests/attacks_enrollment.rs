//! Enrollment attacked through HTTP with several sessions (cookie jars) of
//! one user, as someone who knows the password of a user who has not synced
//! an app yet would: read the secret another session is enrolling, plant
//! one's own for the victim to scan, confirm or replace the victim's. Each
//! pending enrollment belongs to the session that started it; the first
//! confirmation wins, and from then on adding one needs a second step.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tower_totp::{UserId, UserKind};
use tower_totp_testkit::app::{App, Client};
use tower_totp_testkit::phone::Phone;

/// A user who must sync an app at first login, logged in in `n` sessions.
async fn sessions(app: &App, n: usize) -> (UserId, Vec<Client>) {
    let ann = app.user("ann", UserKind::Internal, true);
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut c = app.client();
        assert_eq!(c.login(&ann).await, "enroll");
        clients.push(c);
    }
    (ann, clients)
}

/// The secret a `GET /2fa/enroll` answer shows.
fn secret_of(r: &tower_totp_testkit::app::Reply) -> String {
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    r.json()["secret"].as_str().unwrap().to_owned()
}

fn phone(app: &App, secret: &str) -> Phone {
    Phone::from_base32(secret, &app.clock)
}

// ------------------------------------------------------------ every order

/// What one session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// `GET /2fa/enroll` (the first time: starts one).
    Start(usize),
    /// `GET /2fa/enroll` again.
    Look(usize),
    /// `POST /2fa/enroll` with a `name`: a new pending enrollment of its own.
    Replace(usize),
    /// `POST /2fa/enroll` with the code of the secret it was shown.
    Confirm(usize),
}

/// What the test expects, and what every session was shown.
struct Model {
    /// Secrets activated, each with the session that confirmed it.
    enrolled: Vec<(String, usize)>,
    /// Sessions with a recent second step (their own confirmation).
    verified: Vec<bool>,
    /// The pending enrollment each session was shown last.
    shown: Vec<Option<String>>,
    /// Every secret shown, and to which session.
    seen: HashMap<String, usize>,
}

impl Model {
    fn needs_step_up(&self, x: usize) -> bool {
        !self.enrolled.is_empty() && !self.verified[x]
    }

    fn saw(&mut self, x: usize, secret: &str, order: &[Act]) {
        let owner = *self.seen.entry(secret.to_owned()).or_insert(x);
        assert_eq!(
            owner, x,
            "{order:?}: session {x} was shown session {owner}'s secret"
        );
    }
}

/// Play `order` with as many sessions as it names.
async fn play(order: &[Act]) {
    let n = order
        .iter()
        .map(|a| match a {
            Act::Start(x) | Act::Look(x) | Act::Replace(x) | Act::Confirm(x) => x + 1,
        })
        .max()
        .unwrap_or(0);
    let app = App::new();
    let (ann, mut c) = sessions(&app, n).await;
    let mut m = Model {
        enrolled: Vec::new(),
        verified: vec![false; n],
        shown: vec![None; n],
        seen: HashMap::new(),
    };
    for &act in order {
        match act {
            Act::Start(x) | Act::Look(x) | Act::Replace(x) => {
                let r = if matches!(act, Act::Replace(_)) {
                    let start_over = json!({ "name": "Second phone" });
                    c[x].post_json("/2fa/enroll", start_over).await
                } else {
                    c[x].get("/2fa/enroll").await
                };
                if m.needs_step_up(x) {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{order:?} {act:?}");
                    assert_eq!(r.problem_reason(), "step_up_required", "{order:?} {act:?}");
                    continue;
                }
                let secret = secret_of(&r);
                m.saw(x, &secret, order);
                match (&m.shown[x], act) {
                    (Some(before), Act::Start(_) | Act::Look(_)) => {
                        assert_eq!(&secret, before, "{order:?} {act:?}: the same one again");
                    }
                    (Some(before), _) => {
                        assert_ne!(&secret, before, "{order:?} {act:?}: a new one");
                    }
                    (None, _) => {}
                }
                m.shown[x] = Some(secret);
            }
            Act::Confirm(x) => {
                let code = m.shown[x]
                    .as_deref()
                    .map_or_else(|| "000000".to_owned(), |s| phone(&app, s).code());
                let r = c[x].post_json("/2fa/enroll", json!({ "code": code })).await;
                if m.needs_step_up(x) {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{order:?} {act:?}");
                    assert_eq!(r.problem_reason(), "step_up_required", "{order:?} {act:?}");
                } else if let Some(secret) = m.shown[x].take() {
                    assert_eq!(
                        r.status(),
                        StatusCode::OK,
                        "{order:?} {act:?}: {}",
                        r.text()
                    );
                    m.enrolled.push((secret, x));
                    m.verified[x] = true;
                } else {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{order:?} {act:?}");
                    assert_eq!(
                        r.problem_reason(),
                        "no_pending_enrollment",
                        "{order:?} {act:?}"
                    );
                }
            }
        }
    }
    // The authenticators active are exactly those confirmed, each by the
    // session it was shown to; no other secret shown opens anything.
    let engine = app.auth.engine();
    assert_eq!(
        engine.authenticators(&ann).await.unwrap().len(),
        m.enrolled.len(),
        "{order:?}"
    );
    app.next_step();
    for (secret, x) in &m.enrolled {
        assert_eq!(m.seen[secret], *x, "{order:?}");
        let verdict = engine.verify(&ann, &phone(&app, secret).code()).await;
        assert!(verdict.unwrap().is_accepted(), "{order:?}: {x}'s secret");
    }
    for secret in m.seen.keys() {
        if m.enrolled.iter().all(|(s, _)| s != secret) {
            let verdict = engine.verify(&ann, &phone(&app, secret).code()).await;
            assert!(!verdict.unwrap().is_accepted(), "{order:?}: unconfirmed");
        }
    }
}

/// Every permutation of `acts`.
fn permutations(acts: &[Act]) -> Vec<Vec<Act>> {
    if acts.len() <= 1 {
        return vec![acts.to_vec()];
    }
    let mut all = Vec::new();
    for i in 0..acts.len() {
        let mut rest = acts.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            all.push(tail);
        }
    }
    all
}

/// A starts, B starts, A confirms, B confirms, A looks again, B replaces
/// its own (and the mirror), in every order: no secret is ever shown to
/// both sessions, a confirmation activates what its own session was shown,
/// and once one is active the other session is asked for a second step.
#[tokio::test]
async fn two_sessions_in_every_order_never_share_a_secret() {
    use Act::{Confirm, Look, Replace, Start};
    let mut played = 0;
    for acts in [
        [
            Start(0),
            Start(1),
            Confirm(0),
            Confirm(1),
            Look(0),
            Replace(1),
        ],
        [
            Start(0),
            Start(1),
            Confirm(0),
            Confirm(1),
            Look(1),
            Replace(0),
        ],
    ] {
        for order in permutations(&acts) {
            play(&order).await;
            played += 1;
        }
    }
    assert_eq!(played, 2 * 720);
}

/// Three sessions start and confirm, in every order (720): at most one
/// authenticator, the first confirmer's own; a confirmation after it is
/// asked for a second step, one before its own start finds nothing.
#[tokio::test]
async fn three_sessions_in_every_order_have_one_winner() {
    use Act::{Confirm, Start};
    let acts = [
        Start(0),
        Start(1),
        Start(2),
        Confirm(0),
        Confirm(1),
        Confirm(2),
    ];
    for order in permutations(&acts) {
        play(&order).await;
    }
}

/// The first confirmation activates the confirming session's own
/// authenticator, with its recovery codes; the other session's secret
/// stays unusable, and its confirmation is refused without a second step.
#[tokio::test]
async fn the_first_confirmation_wins_and_the_other_needs_a_second_step() {
    let app = App::new();
    let (ann, mut c) = sessions(&app, 2).await;
    let a = phone(&app, &secret_of(&c[0].get("/2fa/enroll").await));
    let b = phone(&app, &secret_of(&c[1].get("/2fa/enroll").await));
    // B tries A's code: B's pending enrollment is not A's.
    let r = c[1]
        .post_json("/2fa/enroll", json!({ "code": a.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.problem_reason(), "invalid");
    let r = c[0]
        .post_json("/2fa/enroll", json!({ "code": a.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["recovery_codes"].as_array().unwrap().len(), 10);
    let r = c[1]
        .post_json("/2fa/enroll", json!({ "code": b.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.problem_reason(), "step_up_required");
    assert_eq!(r.next(), "totp");
    // B cannot look at anything either, nor start over.
    for path in ["/2fa/enroll", "/2fa/enroll/qr.png", "/2fa/enroll?name=x"] {
        let r = c[1].get(path).await;
        assert_eq!(r.problem_reason(), "step_up_required", "{path}");
    }
    let list = app.auth.engine().authenticators(&ann).await.unwrap();
    assert_eq!(list.len(), 1);
    app.next_step();
    assert!(
        !app.auth
            .engine()
            .verify(&ann, &b.code())
            .await
            .unwrap()
            .is_accepted()
    );
}

/// The QR code images are the session's own too.
#[tokio::test]
async fn the_qr_codes_are_the_sessions_own() {
    let app = App::new();
    let (_, mut c) = sessions(&app, 2).await;
    let a = secret_of(&c[0].get("/2fa/enroll").await);
    let a_svg = c[0].get("/2fa/enroll/qr.svg").await.text();
    let b_svg = c[1].get("/2fa/enroll/qr.svg").await.text();
    let b_png = c[1].get("/2fa/enroll/qr.png").await.body;
    assert_ne!(a_svg, b_svg);
    assert_eq!(c[0].get("/2fa/enroll/qr.svg").await.text(), a_svg);
    assert_ne!(c[0].get("/2fa/enroll/qr.png").await.body, b_png);
    let b = secret_of(&c[1].get("/2fa/enroll").await);
    assert_ne!(a, b);
    assert_eq!(secret_of(&c[0].get("/2fa/enroll").await), a);
}

/// A link on another site that opens `/2fa/enroll` in the victim's browser
/// (a top-level navigation, as a browser sends it) makes the victim a
/// pending enrollment of the victim's own: the attacker's session, with
/// the same password, sees another secret and cannot confirm the victim's.
#[tokio::test]
async fn a_link_opened_by_the_victim_creates_nothing_the_attacker_sees() {
    let app = App::new();
    let (ann, mut c) = sessions(&app, 2).await;
    let (attacker, victim) = (0, 1);
    // The attacker starts first, hoping the victim is shown the same secret.
    let planted = secret_of(&c[attacker].get("/2fa/enroll").await);
    let req = Request::builder()
        .method(Method::GET)
        .uri("/2fa/enroll")
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("referer", "https://evil.example/")
        .body(Full::default())
        .unwrap();
    let mut browser = c[victim].clone();
    let shown = secret_of(&browser.send(req).await);
    assert_ne!(
        shown, planted,
        "the victim must not be shown the planted secret"
    );
    assert_eq!(secret_of(&c[attacker].get("/2fa/enroll").await), planted);
    // The victim's code, sent from the attacker's session: refused.
    let victims = phone(&app, &shown);
    let r = c[attacker]
        .post_json("/2fa/enroll", json!({ "code": victims.code() }))
        .await;
    assert_eq!(r.problem_reason(), "invalid");
    let r = browser
        .post_json("/2fa/enroll", json!({ "code": victims.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    // The planted secret is no good now.
    let r = c[attacker]
        .post_json(
            "/2fa/enroll",
            json!({ "code": phone(&app, &planted).code() }),
        )
        .await;
    assert_eq!(r.problem_reason(), "step_up_required");
    assert_eq!(
        app.auth.engine().authenticators(&ann).await.unwrap().len(),
        1
    );
}

/// Two sessions confirm at the same moment, interleaved at every store
/// call (both pass the "not enrolled yet" check): exactly one wins, and
/// the winner's secret is the one active.
#[tokio::test]
async fn concurrent_confirmations_have_one_winner() {
    for round in 0..16 {
        let app = App::new();
        app.store.set_yielding(true);
        let (ann, mut c) = sessions(&app, 2).await;
        let a = phone(&app, &secret_of(&c[0].get("/2fa/enroll").await));
        let b = phone(&app, &secret_of(&c[1].get("/2fa/enroll").await));
        let (mut c0, mut c1) = (c.remove(0), c.remove(0));
        // Alternate who is polled first.
        let (ra, rb) = if round % 2 == 0 {
            tokio::join!(
                c0.post_json("/2fa/enroll", json!({ "code": a.code() })),
                c1.post_json("/2fa/enroll", json!({ "code": b.code() })),
            )
        } else {
            let (rb, ra) = tokio::join!(
                c1.post_json("/2fa/enroll", json!({ "code": b.code() })),
                c0.post_json("/2fa/enroll", json!({ "code": a.code() })),
            );
            (ra, rb)
        };
        let wins: Vec<_> = [(&ra, &a), (&rb, &b)]
            .into_iter()
            .filter(|(r, _)| r.status() == StatusCode::OK)
            .collect();
        assert_eq!(
            wins.len(),
            1,
            "round {round}: {} / {}",
            ra.text(),
            rb.text()
        );
        let loser = if ra.status() == StatusCode::OK {
            &rb
        } else {
            &ra
        };
        assert_eq!(loser.problem_reason(), "step_up_required", "round {round}");
        assert_eq!(
            app.auth.engine().authenticators(&ann).await.unwrap().len(),
            1
        );
        app.next_step();
        let winner = wins[0].1;
        let engine = app.auth.engine();
        assert!(
            engine
                .verify(&ann, &winner.code())
                .await
                .unwrap()
                .is_accepted()
        );
    }
}

// ------------------------------------------------------------ caps

/// Each session may start one; the sixth session is refused with 429 and a
/// clear reason, and the sessions' own stay usable. Expired ones make room.
#[tokio::test]
async fn pending_enrollments_are_capped_per_user() {
    let app = App::new();
    let (_, mut c) = sessions(&app, 6).await;
    let mut shown = Vec::new();
    for client in c.iter_mut().take(5) {
        shown.push(secret_of(&client.get("/2fa/enroll").await));
    }
    let r = c[5].get("/2fa/enroll").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.problem_reason(), "too_many_pending_enrollments");
    // A browser gets a page that says so.
    let mut page = app.browser();
    page.session = c[5].session.clone();
    let r = page.get("/2fa/enroll").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().contains("Too many app setups"), "{}", r.text());
    // The others are untouched: each sees its own still.
    for (client, secret) in c.iter_mut().zip(&shown) {
        assert_eq!(&secret_of(&client.get("/2fa/enroll").await), secret);
    }
    // Replacing one's own does not count twice.
    let start_over = json!({ "name": "Other" });
    assert_ne!(
        &secret_of(&c[0].post_json("/2fa/enroll", start_over).await),
        &shown[0]
    );
    // Fifteen minutes on, the old ones have expired (and so has the login).
    app.advance(std::time::Duration::from_secs(15 * 60));
    let mut late = app.client();
    assert_eq!(late.login(&UserId::new("ann")).await, "enroll");
    secret_of(&late.get("/2fa/enroll").await);
}

/// One browser that logs in (and out) again and again, opening the
/// enrollment page each time, never runs into the cap: a new login, and a
/// logout, drop the session's old pending enrollment from the store.
#[tokio::test]
async fn logging_in_again_drops_the_old_pending_enrollment() {
    let app = App::new();
    let (ann, mut c) = sessions(&app, 1).await;
    let mut last = String::new();
    for round in 0..8 {
        let secret = secret_of(&c[0].get("/2fa/enroll").await);
        assert_ne!(secret, last, "round {round}: a new login, a new secret");
        last = secret;
        if round % 2 == 0 {
            c[0].logout().await;
        }
        assert_eq!(c[0].login(&ann).await, "enroll");
    }
    // Four other sessions and this one: all fit under the cap of five.
    let mut others = Vec::new();
    for _ in 0..4 {
        let mut o = app.client();
        o.login(&ann).await;
        secret_of(&o.get("/2fa/enroll").await);
        others.push(o);
    }
    secret_of(&c[0].get("/2fa/enroll").await);
}

/// At most five authenticators: a verified session that tries a sixth is
/// refused with 409, at the start and, for two started at four and
/// confirmed at once, at the second activation.
#[tokio::test]
async fn authenticators_are_capped_per_user() {
    let app = App::new();
    let (ann, mut c) = sessions(&app, 1).await;
    let (first, _) = c[0].enroll(&app.clock).await;
    for n in 2..=4 {
        let p = phone(
            &app,
            &secret_of(&c[0].get(&format!("/2fa/enroll?name=App{n}")).await),
        );
        let r = c[0]
            .post_json("/2fa/enroll", json!({ "code": p.code() }))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{n}: {}", r.text());
    }
    // Four active; two sessions with a recent second step each start one.
    // (A login after the last change: each change of authenticators sends
    // other sessions back to the second step.)
    app.next_step();
    let mut second = app.client();
    second.login_verified(&ann, &first).await;
    let p5 = phone(&app, &secret_of(&c[0].get("/2fa/enroll?name=Five").await));
    let p6 = phone(&app, &secret_of(&second.get("/2fa/enroll?name=Six").await));
    // Both confirm at once, interleaved at every store call: both pass the
    // check at the start, and the store's activation keeps the cap.
    app.store.set_yielding(true);
    let (r5, r6) = tokio::join!(
        c[0].post_json("/2fa/enroll", json!({ "code": p5.code() })),
        second.post_json("/2fa/enroll", json!({ "code": p6.code() })),
    );
    app.store.set_yielding(false);
    // Which one wins is the interleaving's choice; one of them loses.
    // (`tokio::join!` starts each poll at the other branch.) The winner's
    // session goes on; the loser's went back to the second step.
    let (won, lost, winner) = if r5.status() == StatusCode::OK {
        (r5, r6, &mut c[0])
    } else {
        (r6, r5, &mut second)
    };
    assert_eq!(won.status(), StatusCode::OK, "{}", won.text());
    assert_eq!(lost.status(), StatusCode::CONFLICT, "{}", lost.text());
    assert_eq!(lost.problem_reason(), "too_many_authenticators");
    assert_eq!(
        app.auth.engine().authenticators(&ann).await.unwrap().len(),
        5
    );
    // At five, starting a sixth is refused; replacing one is not.
    let r = winner.get("/2fa/enroll?name=Seven").await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.problem_reason(), "too_many_authenticators");
    let id = app.auth.engine().authenticators(&ann).await.unwrap()[0]
        .id
        .clone();
    let p = phone(
        &app,
        &secret_of(&winner.get(&format!("/2fa/enroll?replace={id}")).await),
    );
    let r = winner
        .post_json("/2fa/enroll", json!({ "code": p.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.auth.engine().authenticators(&ann).await.unwrap().len(),
        5
    );
}

/// The cap is the configuration's.
#[tokio::test]
async fn the_authenticator_cap_is_configurable() {
    let app = App::setup()
        .config(|c| c.with_max_authenticators(1).unwrap())
        .build();
    let (_, mut c) = sessions(&app, 1).await;
    c[0].enroll(&app.clock).await;
    let r = c[0].get("/2fa/enroll?name=Second").await;
    assert_eq!(r.problem_reason(), "too_many_authenticators");
}

// ------------------------------------------------------------ names

/// Bidi overrides, zero-width and other control or format characters never
/// reach an authenticator's name, however the name comes in.
#[tokio::test]
async fn names_lose_control_and_format_characters() {
    let app = App::new();
    let (ann, mut c) = sessions(&app, 1).await;
    c[0].enroll(&app.clock).await;
    // "Evil" U+202E "gnp.exe" U+200B U+0007, percent-encoded in the query.
    let p = phone(
        &app,
        &secret_of(
            &c[0]
                .get("/2fa/enroll?name=Evil%E2%80%AEgnp.exe%E2%80%8B%07")
                .await,
        ),
    );
    let r = c[0]
        .post_json("/2fa/enroll", json!({ "code": p.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let list = c[0].get("/2fa/authenticators").await.json();
    let names: Vec<&str> = list["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Evilgnp.exe"), "{names:?}");
    // Through the engine as well.
    let e = app
        .auth
        .engine()
        .start_enrollment(&ann, "ann", "\u{2066}Tab\u{feff}let\u{2069}", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.name(), "Tablet");
    // A name of nothing but such characters falls back to the default.
    let r = c[0].get("/2fa/enroll?name=%E2%80%AE%E2%80%8B").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}
