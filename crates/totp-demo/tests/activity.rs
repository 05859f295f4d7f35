//! Security activity through HTTP: the events of the library's sink kept
//! per user, shown on the home page ("Security activity", the last 20,
//! newest first) and in `GET /api/me/activity`; one user's events never
//! show for another; a user with 3 or fewer recovery codes left is warned,
//! with a link to the page that makes new ones.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, TestDemo, app_code};
use http::StatusCode;
use serde_json::{Value, json};

/// `START` of the tests' clock, in RFC 3339.
const START_RFC3339: &str = "2023-11-14T22:13:30Z";

/// Log `user` in as a script and sync an app: the secret and the recovery
/// codes shown.
async fn enroll(demo: &TestDemo, client: &mut Client, user: &str) -> (String, Vec<String>) {
    assert_eq!(client.login(user, "demo").await, "enroll");
    let page = client.get("/2fa/enroll").await;
    let secret = page.json()["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{user}: {}", page.text()))
        .to_owned();
    let done = client
        .post_json(
            "/2fa/enroll",
            json!({ "code": app_code(&secret, &demo.clock) }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let codes = done.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// `GET /api/me/activity`: the kinds, newest first (and every entry has
/// exactly `at`, `kind` and `detail`).
async fn kinds(client: &mut Client) -> Vec<String> {
    let a = client.get("/api/me/activity").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let list = a.json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let fields: Vec<&String> = e.as_object().unwrap().keys().collect();
            assert_eq!(fields, ["at", "detail", "kind"], "{e}");
            e["kind"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The admin with an app synced in this session (a fresh second step).
async fn admin(demo: &TestDemo) -> Client {
    let mut c = demo.client();
    enroll(demo, &mut c, "admin").await;
    c
}

#[tokio::test]
async fn each_user_sees_their_own_events_newest_first() {
    let demo = TestDemo::start();
    let mut jsmith = demo.client();
    let (secret, codes) = enroll(&demo, &mut jsmith, "jsmith").await;
    let mut admin = admin(&demo).await;

    let entries = jsmith.get("/api/me/activity").await.json();
    assert_eq!(
        entries,
        json!([{
            "at": START_RFC3339,
            "kind": "enrollment_completed",
            "detail": "Authenticator app synced: \"Authenticator app\"",
        }]),
        "{entries}"
    );
    assert_eq!(kinds(&mut admin).await, ["enrollment_completed"]);

    // jsmith: a recovery code in another session, new codes.
    demo.clock.advance(Duration::from_secs(30));
    let mut other = demo.client();
    assert_eq!(other.login("jsmith", "demo").await, "totp");
    let used = other
        .post_json("/2fa", json!({ "recovery_code": codes[0] }))
        .await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.text());
    let new = other.post_json("/2fa/recovery-codes", json!({})).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text());
    let expected = [
        "recovery_codes_regenerated",
        "recovery_code_used",
        "enrollment_completed",
    ];
    assert_eq!(kinds(&mut jsmith).await, expected);
    assert_eq!(kinds(&mut other).await, expected);
    assert_eq!(kinds(&mut admin).await, ["enrollment_completed"]);

    // The admin resets jsmith: jsmith's event, not the admin's.
    let reset = admin
        .put_json("/admin/users/jsmith", json!({ "reset_2fa": true }))
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    assert_eq!(kinds(&mut admin).await, ["enrollment_completed"]);
    // A reset ends the logins made up to its moment.
    demo.clock.advance(Duration::from_secs(1));
    let mut again = demo.client();
    enroll(&demo, &mut again, "jsmith").await;
    let list = again.get("/api/me/activity").await.json();
    assert_eq!(list[1]["kind"], "second_factor_reset", "{list}");
    assert!(
        list[1]["detail"]
            .as_str()
            .unwrap()
            .contains("administrator"),
        "{list}"
    );
    assert_eq!(list[0]["kind"], "enrollment_completed");

    // Nothing secret in anyone's list.
    let text = list.to_string();
    for c in &codes {
        assert!(!text.contains(c.as_str()), "{text}");
    }
    assert!(!text.contains(&secret));
}

#[tokio::test]
async fn the_home_page_shows_the_last_twenty_newest_first() {
    let demo = TestDemo::start();
    let mut b = demo.client();
    enroll(&demo, &mut b, "jsmith").await;
    // 24 sets of recovery codes, a second apart: 25 events.
    for _ in 0..24 {
        demo.clock.advance(Duration::from_secs(1));
        let a = b.post_json("/2fa/recovery-codes", json!({})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    }
    let list = b.get("/api/me/activity").await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(list[0]["at"], "2023-11-14T22:13:54Z");
    assert_eq!(list[19]["at"], "2023-11-14T22:13:35Z");
    assert!(
        list.iter()
            .all(|e| e["kind"] == "recovery_codes_regenerated")
    );

    let home = b.browse("/").await;
    assert_eq!(home.status, StatusCode::OK);
    let html = home.text();
    assert!(
        html.contains("<h2 id=\"activity-title\">Security activity</h2>"),
        "{html}"
    );
    assert_eq!(html.matches("<li data-kind=").count(), 20, "{html}");
    let newest = html.find("datetime=\"2023-11-14T22:13:54Z\"").unwrap();
    let oldest = html.find("datetime=\"2023-11-14T22:13:35Z\"").unwrap();
    assert!(newest < oldest, "newest first");
    assert!(
        !html.contains("enrollment_completed"),
        "the 25th is not shown"
    );
    // Ten fresh codes: no warning.
    assert!(!html.contains("few-recovery-codes"), "{html}");
}

#[tokio::test]
async fn few_recovery_codes_left_are_warned_of_with_a_link() {
    let demo = TestDemo::start();
    let mut b = demo.client();
    let (_, codes) = enroll(&demo, &mut b, "jsmith").await;
    assert!(!b.browse("/").await.text().contains("few-recovery-codes"));
    // Use codes in other sessions until 4 are left: still no warning;
    // at 3, the warning.
    for (i, code) in codes.iter().take(7).enumerate() {
        let mut s = demo.client();
        assert_eq!(s.login("jsmith", "demo").await, "totp");
        let a = s.post_json("/2fa", json!({ "recovery_code": code })).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let left = 10 - i - 1;
        let html = b.browse("/").await.text();
        assert_eq!(
            html.contains("id=\"few-recovery-codes\""),
            left <= 3,
            "{left}: {html}"
        );
        if left <= 3 {
            assert!(html.contains(&format!("You have {left} unused recovery codes left.")));
        }
    }
    let html = b.browse("/").await.text();
    let link =
        "<a href=\"/2fa/authenticators\" id=\"new-recovery-codes\">Make new recovery codes</a>";
    assert!(html.contains(link), "{html}");
    // The link's page makes new ones, and then the warning is gone.
    let page = b.browse("/2fa/authenticators").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(
        page.text().contains("action=\"/2fa/recovery-codes\""),
        "{}",
        page.text()
    );
    let made = b.submit("/2fa/recovery-codes", &[]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text());
    assert!(!b.browse("/").await.text().contains("few-recovery-codes"));
    let list = b.get("/api/me/activity").await.json();
    assert_eq!(list[0]["kind"], "recovery_codes_regenerated");
    assert_eq!(
        list[1]["detail"],
        Value::from("Recovery code used to log in; 3 left")
    );
}

#[tokio::test]
async fn a_lockout_is_kept_once_and_the_activity_needs_a_login() {
    let demo = TestDemo::start();
    let mut b = demo.client();
    let (secret, _) = enroll(&demo, &mut b, "jsmith").await;
    demo.clock.advance(Duration::from_secs(30));
    let mut guesser = demo.client();
    assert_eq!(guesser.login("jsmith", "demo").await, "totp");
    let code = app_code(&secret, &demo.clock);
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 7) % 1_000_000);
    let mut throttled = 0;
    for _ in 0..20 {
        let a = guesser.post_json("/2fa", json!({ "code": wrong })).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
        }
    }
    assert!(throttled >= 2, "locked out and refused again");
    assert_eq!(
        kinds(&mut b).await,
        ["account_locked", "enrollment_completed"]
    );
    // Not logged in (or only the password): no activity to read.
    let mut nobody = demo.client();
    let a = nobody.get("/api/me/activity").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    let a = guesser.get("/api/me/activity").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
}
