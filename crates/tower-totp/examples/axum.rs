//! TOTP second factor in an axum 0.8 application.
//!
//! ```text
//! cargo run -p tower-totp --features axum --example axum -- --listen 127.0.0.1:3000
//! ```
//!
//! Public routes (`/login`, `/logout`, the `/2fa` endpoints) and protected
//! routes (`route_layer(auth.layer())`), with tower-sessions'
//! `SessionManagerLayer` around the whole router. Two users, any password:
//! `alice` must use 2FA (she enrolls on first login), `bob` is an external
//! user to whom 2FA does not apply by default.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};
use tower_totp::http::{
    Next, RememberDevice, SecondFactor, StaticDirectory, TotpAuth, TotpVerified,
};
use tower_totp::{TotpConfig, TwoFactor, UserId, UserInfo, UserKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let listen: SocketAddr = listen_address()?.parse()?;

    // 1. The engine (memory store, system clock) and the users.
    let engine = TwoFactor::builder(TotpConfig::new("Axum example")?).build()?;
    let users = StaticDirectory::default();
    users.insert(
        "alice",
        UserInfo {
            kind: UserKind::Internal,
            require_2fa: true,
            display_name: "Alice".into(),
        },
    );
    users.insert(
        "bob",
        UserInfo {
            kind: UserKind::External,
            require_2fa: false,
            display_name: "Bob".into(),
        },
    );

    // 2. The HTTP side. Remember-device is on; the cookie goes over plain
    //    HTTP here, for local testing only.
    let remember = RememberDevice::with_random_key(Duration::from_secs(30 * 86400))?;
    let auth = TotpAuth::builder(engine, users)
        .remember_device(remember.insecure_cookie())
        .build();

    // 3. Protected routes first, then the layer over them; public routes
    //    after it; sessions around everything.
    let app = Router::new()
        .route("/", get(home))
        .route(
            "/account",
            // Inside TotpLayer: a second step within the last 2 minutes.
            get(account).route_layer(auth.step_up(Duration::from_secs(120))),
        )
        .route_layer(auth.layer())
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .nest_service("/2fa", auth.endpoints())
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
        .with_state(auth);

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("tower-totp axum example listening on http://{addr}");
    println!("  1. open http://{addr}/login and log in as alice (any password)");
    println!(
        "  2. scan the QR code with an authenticator app, type its code, keep the recovery codes"
    );
    println!("  3. log out and in again: the second screen asks for a code");
    println!("  4. http://{addr}/account needs a code from the last 2 minutes");
    println!("  bob logs in without a code (2FA is off for external users by default)");
    println!(
        "  JSON: curl -c jar -b jar -H 'accept: application/json' -d username=alice http://{addr}/login"
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// `--listen ADDR`, default `127.0.0.1:0` (any free port).
fn listen_address() -> Result<String, BoxError> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            other => return Err(format!("unknown argument {other}; use --listen ADDR").into()),
        }
    }
    Ok(listen)
}

/// Behind `TotpLayer`: the layer says who got through, and how.
async fn home(factor: Option<SecondFactor>) -> Response {
    let who = match factor {
        // No password login: the application's own auth decides.
        None => return Redirect::to("/login").into_response(),
        Some(SecondFactor::Verified(v)) => {
            format!("{} (second step by {:?})", v.user, v.method)
        }
        Some(other) => format!("{} (no second factor required)", other.user()),
    };
    Html(format!(
        "<!doctype html><title>Example</title><h1>Home</h1><p>Hello, {who}.</p>\
<p><a href=\"/account\">Account (step-up)</a> · <a href=\"/2fa/authenticators\">Authenticators</a></p>\
<form method=\"post\" action=\"/logout\"><button>Log out</button></form>"
    ))
    .into_response()
}

/// The extractor: only users who did the second step get here.
async fn account(verified: TotpVerified) -> Html<String> {
    Html(format!(
        "<!doctype html><title>Account</title><h1>Account of {}</h1>\
<p>Second step at {} s (Unix time), by {:?}.</p><p><a href=\"/\">Home</a></p>",
        verified.user,
        verified.verified_at.as_secs(),
        verified.method
    ))
}

async fn login_page() -> Html<&'static str> {
    Html(
        "<!doctype html><title>Log in</title><h1>Log in</h1>\
<form method=\"post\"><label>User name <input name=\"username\" autofocus></label> \
<label>Password <input name=\"password\" type=\"password\"></label> <button>Log in</button></form>\
<p>Try alice or bob, any password.</p>",
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
}

/// The application checks the password (here: any), then hands over.
async fn login(
    State(auth): State<TotpAuth>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let user = UserId::new(form.username);
    // A real application checks the password here, and answers the same
    // way for unknown users and wrong passwords.
    let Ok(next) = auth.password_verified(&session, &user).await else {
        return (StatusCode::UNAUTHORIZED, "login failed").into_response();
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if wants_json {
        return Json(serde_json::json!({ "next": next.as_str() })).into_response();
    }
    let to = match next {
        Next::Done => "/",
        Next::Enroll => "/2fa/enroll",
        // `Next::Totp`, and any step added later: `GET /2fa` answers every state.
        _ => "/2fa",
    };
    Redirect::to(to).into_response()
}

async fn logout(State(auth): State<TotpAuth>, Extension(session): Extension<Session>) -> Response {
    if auth.logout(&session).await.is_err() || session.flush().await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    Redirect::to("/login").into_response()
}
