//! TOTP second factor in a plain hyper 1 service.
//!
//! ```text
//! cargo run -p tower-totp --example hyper -- --listen 127.0.0.1:3000
//! ```
//!
//! The stack, outside in: tower-sessions' `SessionManagerLayer`, a small
//! router (`/login` and `/logout` are public, `/2fa...` goes to the ready
//! endpoints), and `TotpLayer` around the application's own pages. Two
//! users, any password: `alice` must use 2FA (she enrolls on first login),
//! `bob` is an external user to whom 2FA does not apply by default.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};
use tower_totp::http::{Next, RememberDevice, SecondFactor, StaticDirectory, TotpAuth};
use tower_totp::{TotpConfig, TwoFactor, UserId, UserInfo, UserKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let listen: SocketAddr = listen_address()?.parse()?;

    // 1. The engine (memory store, system clock) and the users.
    let engine = TwoFactor::builder(TotpConfig::new("Hyper example")?).build()?;
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

    // 2. The HTTP side: layer, endpoints, login hook. Remember-device is on;
    //    the cookie goes over plain HTTP here, for local testing only.
    let remember = RememberDevice::with_random_key(Duration::from_secs(30 * 86400))?;
    let auth = TotpAuth::builder(engine, users)
        .remember_device(remember.insecure_cookie())
        .build();

    // 3. The application's pages, guarded; `/account` also needs a second
    //    step done within the last 2 minutes.
    let pages =
        service_fn(
            |req: Request<Incoming>| async move { Ok::<_, Infallible>(application_page(&req)) },
        );
    let account = ServiceBuilder::new()
        .layer(auth.step_up(Duration::from_secs(120)))
        .service(pages);
    let guarded = ServiceBuilder::new()
        .layer(auth.layer())
        .service(service_fn(move |req: Request<Incoming>| {
            let (pages, account) = (pages, account.clone());
            async move {
                let res = if req.uri().path() == "/account" {
                    account.oneshot(req).await?.map(BodyExt::boxed)
                } else {
                    pages.oneshot(req).await?.map(full_to_box)
                };
                Ok::<_, Infallible>(res)
            }
        }));

    // 4. The router, with sessions outside everything.
    let endpoints = auth.endpoints();
    let router = service_fn(move |req: Request<Incoming>| {
        let (auth, endpoints, guarded) = (auth.clone(), endpoints.clone(), guarded.clone());
        async move {
            let path = req.uri().path();
            let res = if path == "/login" {
                login(&auth, req).await
            } else if path == "/logout" {
                logout(&auth, req).await
            } else if path == "/2fa" || path.starts_with("/2fa/") {
                endpoints.oneshot(req).await?.map(full_to_box)
            } else {
                guarded.oneshot(req).await?.map(BodyExt::boxed)
            };
            Ok::<_, Infallible>(res)
        }
    });
    let app = ServiceBuilder::new()
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
        .service(router);

    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("tower-totp hyper example listening on http://{addr}");
    println!("  1. open http://{addr}/login and log in as alice (any password)");
    println!(
        "  2. scan the QR code with an authenticator app, type its code, keep the recovery codes"
    );
    println!("  3. log out and in again: the second screen asks for a code");
    println!("  4. http://{addr}/account needs a code from the last 2 minutes");
    println!("  bob logs in without a code (2FA is off for external users by default)");
    println!(
        "  JSON: curl -c jar -b jar -H 'content-type: application/json' -d '{{\"username\":\"alice\"}}' http://{addr}/login"
    );

    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
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

fn full_to_box(body: Full<Bytes>) -> Body {
    body.map_err(|never| match never {}).boxed()
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(full_to_box(Full::new(Bytes::from(body))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

fn see_other(to: &'static str) -> Response<Body> {
    let mut res = html(StatusCode::SEE_OTHER, String::new());
    res.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    res
}

/// The application's own pages: they read what the layer found.
fn application_page(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let who = match SecondFactor::of(req.extensions()) {
        // No password login: the application's own auth decides.
        None => {
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/login"));
            return res;
        }
        Some(SecondFactor::Verified(v)) => format!(
            "{} (second step by {:?} at {} s)",
            v.user,
            v.method,
            v.verified_at.as_secs()
        ),
        Some(other) => format!("{} (no second factor required)", other.user()),
    };
    let body = format!(
        "<!doctype html><title>Example</title><h1>{path}</h1><p>Hello, {who}.</p>\
<p><a href=\"/\">Home</a> · <a href=\"/account\">Account (step-up)</a> · \
<a href=\"/2fa/authenticators\">Authenticators</a></p>\
<form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
        path = req.uri().path(),
    );
    let mut res = Response::new(Full::new(Bytes::from(body)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// `GET /login`: the form. `POST /login`: the application checks the
/// password (here: any), then hands over to tower-totp.
async fn login(auth: &TotpAuth, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        return html(
            StatusCode::OK,
            "<!doctype html><title>Log in</title><h1>Log in</h1>\
<form method=\"post\"><label>User name <input name=\"username\" autofocus></label> \
<label>Password <input name=\"password\" type=\"password\"></label> <button>Log in</button></form>\
<p>Try alice or bob, any password.</p>"
                .into(),
        );
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return html(StatusCode::INTERNAL_SERVER_ERROR, "no session layer".into());
    };
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let Ok(body) = req.into_body().collect().await else {
        return html(StatusCode::BAD_REQUEST, "unreadable body".into());
    };
    let body = body.to_bytes();
    let username = if json {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["username"].as_str().map(str::to_owned))
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|f| f.into_iter().find(|(k, _)| k == "username").map(|(_, v)| v))
    };
    let Some(username) = username else {
        return html(StatusCode::BAD_REQUEST, "send a username".into());
    };
    let user = UserId::new(username);
    // A real application checks the password here, and answers the same
    // way for unknown users and wrong passwords.
    let next = match auth.password_verified(&session, &user).await {
        Ok(next) => next,
        Err(_) => return html(StatusCode::UNAUTHORIZED, "login failed".into()),
    };
    if json {
        let body = serde_json::json!({ "next": next.as_str() }).to_string();
        let mut res = Response::new(full_to_box(Full::new(Bytes::from(body))));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return res;
    }
    match next {
        Next::Done => see_other("/"),
        Next::Enroll => see_other("/2fa/enroll"),
        // `Next::Totp`, and any step added later: `GET /2fa` answers every state.
        _ => see_other("/2fa"),
    }
}

/// `POST /logout`: forget the whole session.
async fn logout(auth: &TotpAuth, req: Request<Incoming>) -> Response<Body> {
    if let Some(session) = req.extensions().get::<Session>()
        && (auth.logout(session).await.is_err() || session.flush().await.is_err())
    {
        return html(StatusCode::SERVICE_UNAVAILABLE, "try again".into());
    }
    see_other("/login")
}
