//! The axum extractors: `TotpVerified` refuses the way the layer does
//! (login first, the second screen, enrol), `Option<TotpVerified>` says
//! `None` behind the layer, and both name a missing layer as what it is.
//! Through HTTP with several cookie jars, as JSON clients and browsers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::http::{
    Refusal, RefusalReason, SecondFactor, StaticDirectory, TotpAuth, TotpVerified,
};
use tower_totp::policy::PolicySettings;
use tower_totp::{ConfirmAs, TotpConfig, TwoFactor, UserId, UserInfo, UserKind};
use tower_totp_testkit::phone::Phone;

/// Inside a 30 s step, never at its edge.
const START: u64 = 1_700_000_010;

struct App {
    router: Router,
    auth: TotpAuth,
    users: StaticDirectory,
    clock: ManualClock,
}

async fn needs(v: TotpVerified) -> String {
    format!("verified {}", v.user.as_str())
}

async fn maybe(v: Option<TotpVerified>) -> String {
    match v {
        Some(v) => format!("verified {}", v.user.as_str()),
        None => "not verified".into(),
    }
}

async fn factor(f: Option<SecondFactor>) -> String {
    match f {
        None => "no login".into(),
        Some(SecondFactor::Verified(v)) => format!("verified {}", v.user.as_str()),
        Some(SecondFactor::Grace { user, .. }) => format!("grace {}", user.as_str()),
        Some(other) => format!("not required {}", other.user().as_str()),
    }
}

async fn login(
    axum::extract::State(auth): axum::extract::State<TotpAuth>,
    axum::Extension(session): axum::Extension<Session>,
    body: String,
) -> StatusCode {
    match auth.password_verified(&session, &UserId::new(body)).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn app() -> App {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let engine = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let users = StaticDirectory::default();
    let auth = TotpAuth::builder(engine, users.clone())
        .login_path("/sign-in")
        .build();
    let guarded = Router::new()
        .route("/needs", get(needs))
        .route("/maybe", get(maybe))
        .route("/factor", get(factor))
        .layer(auth.layer());
    // A setup mistake: the same handlers without the layer.
    let bare = Router::new()
        .route("/bare/needs", get(needs))
        .route("/bare/maybe", get(maybe))
        .route("/bare/factor", get(factor));
    let router = Router::new()
        .route("/login", post(login))
        .with_state(auth.clone())
        .nest_service("/2fa", auth.endpoints())
        .merge(guarded)
        .merge(bare)
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false));
    App {
        router,
        auth,
        users,
        clock,
    }
}

impl App {
    fn user(&self, name: &str, require_2fa: bool) -> UserId {
        self.users.insert(
            name,
            UserInfo {
                kind: UserKind::Internal,
                require_2fa,
                display_name: name.into(),
            },
        );
        UserId::new(name)
    }

    /// An authenticator for `user`, activated through the engine: the
    /// phone. The enrollment's code is used, so the clock moves on a step.
    async fn enroll(&self, user: &UserId) -> Phone {
        let phone = Phone::enroll(
            self.auth.engine(),
            &self.clock,
            user,
            ConfirmAs::AnotherAuthenticator,
        )
        .await;
        self.clock.advance(Duration::from_secs(30));
        phone
    }

    async fn send(&self, jar: &mut Jar, req: Request<Body>) -> Answer {
        let mut req = req;
        if let Some(cookie) = &jar.cookie {
            req.headers_mut()
                .insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        let res = self.router.clone().oneshot(req).await.unwrap();
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            jar.cookie = Some(pair.to_owned());
        }
        Answer::read(res).await
    }

    async fn get(&self, jar: &mut Jar, path: &str, accept: &str) -> Answer {
        let req = Request::get(path)
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap();
        self.send(jar, req).await
    }

    async fn login(&self, jar: &mut Jar, user: &UserId) {
        let req = Request::post("/login")
            .body(Body::from(user.as_str().to_owned()))
            .unwrap();
        assert_eq!(self.send(jar, req).await.status, StatusCode::OK);
    }

    async fn second_step(&self, jar: &mut Jar, code: &str) {
        let req = Request::post("/2fa")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"code":"{code}"}}"#)))
            .unwrap();
        let answer = self.send(jar, req).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
}

/// A cookie jar: one browser, or one script.
#[derive(Default)]
struct Jar {
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    refusal: Option<Refusal>,
    body: String,
}

impl Answer {
    async fn read(res: Response<Body>) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let refusal = res.extensions().get::<Refusal>().copied();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            headers,
            refusal,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    fn problem(&self) -> Value {
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            self.body
        );
        serde_json::from_str(&self.body).unwrap()
    }

    fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }

    fn reason(&self) -> Option<RefusalReason> {
        self.refusal.map(|r| r.reason)
    }
}

const JSON: &str = "application/json";
const HTML: &str = "text/html,application/xhtml+xml";

#[tokio::test]
async fn no_login_is_refused_as_the_layer_refuses() {
    let app = app();
    let mut script = Jar::default();
    let r = app.get(&mut script, "/needs", JSON).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let problem = r.problem();
    assert_eq!(problem["reason"], "login_required");
    assert_eq!(problem["next"], "login");
    assert_eq!(r.reason(), Some(RefusalReason::LoginRequired));

    let mut browser = Jar::default();
    let r = app.get(&mut browser, "/needs", HTML).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/sign-in");

    // The optional extractor says "not verified" instead.
    let r = app.get(&mut script, "/maybe", JSON).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "not verified")
    );
}

/// In the enrollment grace period the layer lets the password login in,
/// without a second factor: `TotpVerified` refuses it as it refuses a user
/// who must enrol, the optional one says "not verified", and the second
/// factor says `Grace`.
#[tokio::test]
async fn a_grace_login_is_not_verified() {
    let app = app();
    app.auth.policy().set(PolicySettings {
        grace_days: 2,
        ..app.auth.policy().get()
    });
    let gus = app.user("gus", true);
    let mut jar = Jar::default();
    app.login(&mut jar, &gus).await;
    let r = app.get(&mut jar, "/needs", JSON).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.problem()["reason"], "enrollment_required");
    assert_eq!(r.problem()["next"], "enroll");
    assert_eq!(r.reason(), Some(RefusalReason::EnrollmentRequired));
    let r = app.get(&mut jar, "/needs", HTML).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/2fa/enroll");
    let r = app.get(&mut jar, "/maybe", JSON).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "not verified")
    );
    let r = app.get(&mut jar, "/factor", JSON).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "grace gus"));
}

#[tokio::test]
async fn only_the_session_that_did_the_second_step_is_verified() {
    let app = app();
    let ann = app.user("ann", true);
    let phone = app.enroll(&ann).await;
    let (mut phone_owner, mut other, mut stranger) =
        (Jar::default(), Jar::default(), Jar::default());
    app.login(&mut phone_owner, &ann).await;
    app.login(&mut other, &ann).await;
    // Password only: the layer itself asks for the code.
    let r = app.get(&mut other, "/needs", JSON).await;
    assert_eq!(r.reason(), Some(RefusalReason::SecondStepRequired));

    app.second_step(&mut phone_owner, &phone.code()).await;
    for path in ["/needs", "/maybe"] {
        let r = app.get(&mut phone_owner, path, JSON).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, "verified ann")
        );
    }
    // The other session of the same user, and a session without a login,
    // in either order, are not verified by it.
    for jar in [&mut other, &mut stranger] {
        let r = app.get(jar, "/needs", JSON).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.get(&mut stranger, "/maybe", JSON).await;
    assert_eq!(r.body, "not verified");
}

#[tokio::test]
async fn without_the_policy_asking_the_extractor_still_demands_a_second_step() {
    let app = app();
    let bob = app.user("bob", true);
    let cat = app.user("cat", true);
    app.enroll(&cat).await;
    // An administrator switches 2FA off: the layer lets both through.
    app.auth.policy().set(PolicySettings {
        enabled: false,
        ..app.auth.policy().get()
    });
    let (mut bob_jar, mut cat_jar) = (Jar::default(), Jar::default());
    app.login(&mut bob_jar, &bob).await;
    app.login(&mut cat_jar, &cat).await;

    // No authenticator: enrol first.
    let r = app.get(&mut bob_jar, "/needs", JSON).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.problem()["reason"], "enrollment_required");
    assert_eq!(r.problem()["next"], "enroll");
    let r = app.get(&mut bob_jar, "/needs", HTML).await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/2fa/enroll")
    );

    // An authenticator: the second screen takes a code.
    let r = app.get(&mut cat_jar, "/needs", JSON).await;
    assert_eq!(r.problem()["reason"], "step_up_required");
    assert_eq!(r.problem()["next"], "totp");
    let r = app.get(&mut cat_jar, "/needs", HTML).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/2fa"));

    for jar in [&mut bob_jar, &mut cat_jar] {
        assert_eq!(app.get(jar, "/maybe", JSON).await.body, "not verified");
    }
}

#[tokio::test]
async fn the_code_the_refusal_asks_for_is_enough_without_the_policy() {
    let app = app();
    let cat = app.user("cat", true);
    let phone = app.enroll(&cat).await;
    app.auth.policy().set(PolicySettings {
        enabled: false,
        ..app.auth.policy().get()
    });
    let (mut asked, mut other) = (Jar::default(), Jar::default());
    app.login(&mut asked, &cat).await;
    app.login(&mut other, &cat).await;
    let r = app.get(&mut asked, "/needs", JSON).await;
    assert_eq!(r.reason(), Some(RefusalReason::StepUpRequired));
    // The second screen takes the code the refusal sent the user to give:
    // then the handler answers, in that session only.
    app.second_step(&mut asked, &phone.code()).await;
    for path in ["/needs", "/maybe"] {
        let r = app.get(&mut asked, path, JSON).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, "verified cat")
        );
    }
    let r = app.get(&mut other, "/needs", JSON).await;
    assert_eq!(r.reason(), Some(RefusalReason::StepUpRequired));
    assert_eq!(
        app.get(&mut other, "/maybe", JSON).await.body,
        "not verified"
    );
}

#[tokio::test]
async fn a_missing_layer_is_named_and_never_passes() {
    let app = app();
    let ann = app.user("ann", true);
    let phone = app.enroll(&ann).await;
    let mut jar = Jar::default();
    app.login(&mut jar, &ann).await;
    app.second_step(&mut jar, &phone.code()).await;
    // Verified, yet the handlers outside the layer refuse: they cannot
    // know it, and say why.
    for path in ["/bare/needs", "/bare/maybe", "/bare/factor"] {
        let r = app.get(&mut jar, path, JSON).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(r.problem()["reason"], "missing_totp_layer");
        assert!(
            r.problem()["detail"]
                .as_str()
                .unwrap()
                .contains("TotpLayer")
        );
        let r = app.get(&mut jar, path, HTML).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

/// `Option<SecondFactor>` reads what the layer found on each path: no
/// login, 2FA not applying, a verified session.
#[tokio::test]
async fn the_second_factor_extractor_reads_every_path() {
    let app = app();
    let ann = app.user("ann", true);
    let phone = app.enroll(&ann).await;
    let (mut nobody, mut verified) = (Jar::default(), Jar::default());
    let r = app.get(&mut nobody, "/factor", JSON).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "no login"));
    app.login(&mut verified, &ann).await;
    app.second_step(&mut verified, &phone.code()).await;
    let r = app.get(&mut verified, "/factor", JSON).await;
    assert_eq!(r.body, "verified ann");
    app.auth.policy().set(PolicySettings {
        enabled: false,
        ..app.auth.policy().get()
    });
    let bob = app.user("bob", false);
    let mut not_required = Jar::default();
    app.login(&mut not_required, &bob).await;
    let r = app.get(&mut not_required, "/factor", JSON).await;
    assert_eq!(r.body, "not required bob");
}
