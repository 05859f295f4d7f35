//! Other shapes of the stack: `TotpLayer` right inside
//! `SessionManagerLayer` with no body boxing, and the layer around the
//! endpoints too.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use tower_totp::UserKind;
use tower_totp_testkit::app::App;
use tower_totp_testkit::phone::Phone;

/// `TotpLayer` right inside `SessionManagerLayer`, with no body boxing in
/// between: the stack a plain tower user writes first.
#[tokio::test]
async fn the_layer_sits_directly_inside_the_session_layer() {
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    let app = App::new();
    let service = ServiceBuilder::new()
        .layer(SessionManagerLayer::new(MemoryStore::default()))
        .layer(app.auth.layer())
        .service(service_fn(|_req: http::Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
        }));
    let res = service
        .oneshot(http::Request::new(Full::default()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// `TotpLayer` around the whole router, endpoints included (one service in
/// plain hyper): requests under the prefix reach the endpoints, a forced
/// enrollment completes in a browser, and the rest stays guarded.
#[tokio::test]
async fn the_layer_may_wrap_the_endpoints_too() {
    use http_body_util::BodyExt;
    use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    let app = App::new();
    let zoe = app.user("zoe", UserKind::Internal, true);
    let endpoints = app.auth.endpoints();
    let auth = app.auth.clone();
    let router = service_fn(move |req: http::Request<Full<Bytes>>| {
        let (auth, endpoints) = (auth.clone(), endpoints.clone());
        async move {
            let path = req.uri().path().to_owned();
            if path == "/login" {
                let session = req
                    .extensions()
                    .get::<tower_sessions::Session>()
                    .unwrap()
                    .clone();
                let next = auth
                    .password_verified(&session, &"zoe".into())
                    .await
                    .unwrap();
                return Ok(Response::new(Full::new(Bytes::from(next.as_str()))));
            }
            if path.starts_with("/2fa") {
                return endpoints.oneshot(req).await;
            }
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
        }
    });
    let mut service = ServiceBuilder::new()
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
        .layer(app.auth.layer())
        .service(router);
    let mut cookie = String::new();
    let mut send = async |method: &str, path: &str, form: Option<String>| {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, cookie.clone());
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .unwrap();
        let res = service.ready().await.unwrap().call(req).await.unwrap();
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            cookie = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        }
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    let (_, _, next) = send("POST", "/login", None).await;
    assert_eq!(next, "enroll");
    let (status, location, _) = send("GET", "/hello", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/2fa/enroll"));
    let (status, _, page) = send("GET", "/2fa/enroll", None).await;
    assert_eq!(status, StatusCode::OK);
    // The manual key from the page, as a person would type it.
    let key = page
        .split("id=\"manual-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .replace(' ', "");
    // The same key as one string, to copy whole: in a read-only field.
    let copy = page
        .split("id=\"key-copy\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(copy, key);
    assert!(
        page.contains(&format!("value=\"{copy}\" readonly")),
        "{page}"
    );
    let phone = Phone::from_base32(copy, &app.clock);
    let (status, _, page) = send(
        "POST",
        "/2fa/enroll",
        Some(format!("code={}", phone.code())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page.matches("<li>").count(), 10, "{page}");
    let (status, _, body) = send("GET", "/hello", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
    let _ = zoe;
}
