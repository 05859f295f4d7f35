//! Whole HTTP requests into the test kit's reference app
//! (`tower_totp_testkit::app`): tower-sessions' `SessionManagerLayer`
//! (memory store), a `/login` and `/logout` of the application, the `/2fa`
//! endpoints, and `TotpLayer` (with a step-up on `/sensitive`) around a
//! hello handler. The memory stores never fail, so no
//! answer may be a 5xx; nothing may panic; a problem+json answer is valid
//! JSON with its own status; and the application never sees a user the
//! policy requires a second factor of as "not required".
//!
//! Input: a script of up to 16 requests, separated by a line `%%`:
//!
//! ```text
//! POST /2fa
//! content-type: application/json
//! x-fuzz-wait: 30
//!
//! {"code":"{code}"}
//! ```
//!
//! The first line is the method and the request target; header lines
//! follow up to an empty line, then the body (any bytes). The client keeps
//! the cookies it is sent, like a browser, and sends them unless the
//! request has its own `cookie` header or `x-fuzz-jar: off`.
//! `x-fuzz-wait: N` moves the clock N seconds before the request. In the
//! whole request, `{code}` becomes the current code of the newest phone the
//! client enrolled (else Ann's), `{code0}` Ann's code, `{rc}` a recovery code
//! the client was shown, `{id}` an authenticator id it was shown.
//!
//! Users: `ann` (2FA required, enrolled), `bob` (required, not enrolled),
//! `cid` (not required, not enrolled); any other name is unknown.
//!
//! With `FUZZ_TRACE` set, each request and its answer is printed: run the
//! target on one file to see what it does.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokio::runtime::Runtime;
use tower::ServiceExt;
use tower_totp::code::{CodeParams, Secret};
use tower_totp::http::RememberDevice;
use tower_totp::{ConfirmAs, Confirmation, UserId, UserInfo, UserKind};
use tower_totp_testkit::app::{App, AppService};
use tower_totp_testkit::phone::Phone;

const MAX_REQUESTS: usize = 16;
/// The users the policy requires a second factor of.
const REQUIRED: [&str; 2] = ["ann", "bob"];

/// Whether `FUZZ_TRACE` is set (read once).
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// One current-thread runtime for the whole process.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(data));
});

/// The client's side: what it was shown, and its cookies.
struct World {
    app: AppService,
    clock: tower_totp::clock::ManualClock,
    ann: Phone,
    phones: Vec<Phone>,
    recovery: Vec<String>,
    ids: Vec<String>,
    jar: BTreeMap<String, String>,
}

async fn run(data: &[u8]) {
    let mut world = world().await;
    for block in split(data, b"\n%%\n").take(MAX_REQUESTS) {
        let block = world.substitute(block);
        if let Some((req, wait, jar)) = parse_request(&block) {
            world.clock.advance(Duration::from_secs(wait));
            world.send(req, jar).await;
        }
    }
}

// ------------------------------------------------------------ the stack

/// A fresh reference app (the test kit's) per input, so that a crash
/// replays alone: memory stores that never fail, remember-device on, and a
/// login that refuses names the directory does not know.
async fn world() -> World {
    let app = App::setup()
        .auth(|b| {
            b.remember_device(
                RememberDevice::new([7; 32], Duration::from_secs(86_400)).insecure_cookie(),
            )
        })
        .refuse_unknown_users()
        .build();
    for (name, kind, require_2fa) in [
        ("ann", UserKind::Internal, true),
        ("bob", UserKind::Internal, true),
        ("cid", UserKind::External, false),
    ] {
        let display_name = name.to_uppercase();
        let info = UserInfo {
            kind,
            require_2fa,
            display_name,
        };
        app.users.insert(name, info);
    }

    // Ann is enrolled; her confirming step is used.
    let ann = UserId::new("ann");
    let engine = app.auth.engine();
    let e = engine
        .start_enrollment(&ann, "ann", "Phone", None)
        .await
        .expect("enrollment")
        .expect("under the caps");
    let phone = Phone::new(e.secret(), e.params(), app.clock.clone());
    let confirmed = engine
        .confirm_enrollment(&ann, e.id(), &phone.code(), ConfirmAs::FirstAuthenticator)
        .await
        .expect("confirmation");
    let recovery = match confirmed {
        Confirmation::Confirmed {
            recovery_codes: Some(codes),
            ..
        } => codes.as_strings().map(str::to_owned).collect(),
        other => panic!("setup: {other:?}"),
    };
    app.next_step();

    World {
        app: app.service.clone(),
        clock: app.clock.clone(),
        ann: phone,
        phones: Vec::new(),
        recovery,
        ids: Vec::new(),
        jar: BTreeMap::new(),
    }
}

// ------------------------------------------------------------ the client

impl World {

    /// Fill in the placeholders.
    fn substitute(&self, block: &[u8]) -> Vec<u8> {
        let newest = self.phones.last().unwrap_or(&self.ann);
        let mut out = block.to_vec();
        for (from, to) in [
            (&b"{code}"[..], newest.code()),
            (b"{code0}", self.ann.code()),
            (b"{rc}", self.recovery.first().cloned().unwrap_or_default()),
            (b"{id}", self.ids.first().cloned().unwrap_or_default()),
        ] {
            out = replace(&out, from, to.as_bytes());
        }
        out
    }

    async fn send(&mut self, mut req: Request<Full<Bytes>>, use_jar: bool) {
        if use_jar && !self.jar.is_empty() && !req.headers().contains_key(header::COOKIE) {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if let Ok(v) = HeaderValue::from_str(&cookies.join("; ")) {
                req.headers_mut().insert(header::COOKIE, v);
            }
        }
        let described = format!("{} {}", req.method(), req.uri());
        let res = self
            .app
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .expect("our bodies never fail")
            .to_bytes();
        assert!(
            !parts.status.is_server_error(),
            "{described}: {} {}",
            parts.status,
            String::from_utf8_lossy(&body)
        );

        for value in parts.headers.get_all(header::SET_COOKIE) {
            let Some((name, value)) = value
                .to_str()
                .ok()
                .and_then(|t| t.split(';').next())
                .and_then(|t| t.split_once('='))
            else {
                continue;
            };
            if value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }

        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // A new secret shown (JSON or page): the client's newest phone.
        if let Some(secret) = shown_secret(&body) {
            let phone = Phone::new(&secret, CodeParams::default(), self.clock.clone());
            self.phones.push(phone);
        }
        let json = serde_json::from_slice::<Value>(&body).ok();
        if tracing() {
            let text = String::from_utf8_lossy(&body);
            let shown: String = text.chars().take(160).collect();
            eprintln!("{described} -> {} {content_type} {shown}", parts.status);
        }
        if content_type == "application/problem+json" {
            let problem = json.as_ref().expect("a problem+json body is JSON");
            assert_eq!(problem["status"], parts.status.as_u16(), "{described}");
        }
        let Some(v) = json else { return };
        if v["hello"] == true {
            let factor = &v["second_factor"];
            if factor["factor"] == "not_required" {
                let user = factor["user"].as_str().unwrap_or("");
                assert!(
                    !REQUIRED.contains(&user),
                    "{described}: the application saw {user} without a second factor"
                );
            }
        }
        if let Some(codes) = v["recovery_codes"].as_array() {
            self.recovery = codes
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
        }
        if let Some(list) = v["authenticators"].as_array() {
            self.ids = list
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_owned))
                .collect();
        }
    }
}

/// One request of the script: the request, seconds to wait before it, and
/// whether to send the cookie jar. `None` when it is not a request `http`
/// can represent (no server would pass it on either).
fn parse_request(block: &[u8]) -> Option<(Request<Full<Bytes>>, u64, bool)> {
    let (head, body) = match find(block, b"\n\n") {
        Some(i) => (&block[..i], &block[i + 2..]),
        None => (block, &b""[..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let first = lines.next()?;
    let (method, target) = match find(first, b" ") {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => (&b"GET"[..], first),
    };
    let mut req = Request::builder()
        .method(Method::from_bytes(method).ok()?)
        .uri(target)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .ok()?;
    let (mut wait, mut jar) = (0, true);
    for line in lines {
        let Some(i) = find(line, b":") else { continue };
        let (name, value) = (&line[..i], trim(&line[i + 1..]));
        match name {
            b"x-fuzz-wait" => {
                wait = std::str::from_utf8(value).ok()?.parse::<u32>().ok()?.into();
            }
            b"x-fuzz-jar" => jar = value != b"off",
            _ => {
                let name = HeaderName::from_bytes(name).ok()?;
                let value = HeaderValue::from_bytes(value).ok()?;
                req.headers_mut().append(name, value);
            }
        }
    }
    Some((req, wait, jar))
}

/// A secret shown in `body`: an otpauth URI (JSON) or the manual key
/// (the enrollment page).
fn shown_secret(body: &[u8]) -> Option<Secret> {
    let text = if let Some(at) = find(body, b"secret=") {
        let rest = &body[at + b"secret=".len()..];
        let end = rest.iter().position(|b| !b.is_ascii_alphanumeric());
        &rest[..end.unwrap_or(rest.len())]
    } else {
        let marker = b"id=\"manual-key\">";
        let rest = &body[find(body, marker)? + marker.len()..];
        &rest[..find(rest, b"<")?]
    };
    Secret::from_base32(std::str::from_utf8(text).ok()?).ok()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(r, sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(i) = find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
