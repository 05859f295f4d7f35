//! Faults across a real network: Redis in one network namespace, two demo
//! processes (the `totp-demo` binary, same `--db`, `--key-file` and Redis)
//! in two others, each joined to Redis's namespace by a veth pair of its
//! own:
//!
//! ```text
//!   [A] to-redis 10.X.Y.2/30 -- to-a 10.X.Y.1/30 [R: redis-server] to-b 10.X.Y.5/30 -- to-redis 10.X.Y.6/30 [B]
//! ```
//!
//! Loopback never loses or delays a packet, and a killed server refuses
//! connections at once; a cut network does neither: packets vanish, and a
//! client waits unless something bounds the wait. Here instance A is cut
//! off (its link down at Redis's end), then its link comes back slow and
//! lossy, then normal. Throughout, A answers every guarded request within
//! its store timeout (plus a margin), never lets one through, and B keeps
//! serving; no code is accepted twice across A and B; once the link is
//! normal, A serves again without a restart.
//!
//! `tc netem` (delay, loss) is used when the kernel has it. Where it does
//! not (the `sch_netem` module is missing on some CI kernels), the slow
//! link is `tbf`, a token bucket filling at 400 bit/s with a 300-byte
//! bucket and a five-second queue: a 100-byte packet waits about two
//! seconds for its tokens, packets that find the queue full or are larger
//! than the bucket are dropped. The test prints which one it used.
//!
//! It needs root (network namespaces) and `ip`/`tc` (iproute2, which
//! `scripts/test` installs). Without them it prints `skipped: ...` to
//! stderr and returns. The requests reach the demos from a thread moved
//! into the demo's namespace (`setns`), so the test adds no address to the
//! host's network: every address is inside the namespaces it makes, and
//! they are deleted when the test ends, however it ends.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use serde_json::{Value, json};
use totp_demo::SESSION_COOKIE;
use tower_totp::clock::{Clock as _, ManualClock, SystemClock};
use tower_totp_testkit::phone::Phone;
use tower_totp_testkit::server::process;

/// The store timeout the instances run with (`--store-timeout-ms`). Below
/// the Redis store's own one-second response timeout, so that an answer in
/// time shows the demo's bound at work, not the connection's.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);

/// What an answer may take beyond the store timeout: the handler, the
/// HTTP exchange and a busy two-core machine running debug builds. With
/// the timeout, still below the Redis store's own bound.
const MARGIN: Duration = Duration::from_millis(450);

/// The longest answer of the cut-off instance so far, in microseconds.
static SLOWEST: AtomicU64 = AtomicU64::new(0);

/// The port each demo listens on, on the loopback of its own namespace,
/// and Redis's port in its namespace: nothing else runs in a namespace the
/// test has just made, so no port can be taken.
const DEMO_PORT: u16 = 3000;
const REDIS_PORT: u16 = 6379;

/// The interface of A and of B towards Redis (each in its namespace).
const TO_REDIS: &str = "to-redis";

/// What `redis-server` and `totp-demo` print once they accept connections.
const REDIS_READY: &str = "Ready to accept connections";
const DEMO_READY: &str = "open http://";

// ---------------------------------------------------------------------
// The network.

/// `ip args...`; its error output if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` ({e}); install iproute2"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Redis's namespace R and the instances' A and B, deleted when dropped
/// (after the processes in them, which [`Processes`] stops first).
struct Net {
    r: String,
    a: String,
    b: String,
    /// The first three octets of the four /30 addresses.
    prefix: String,
}

impl Net {
    /// Make the namespaces and links, or say why they cannot be made.
    fn build() -> Result<Self, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not root (network namespaces need CAP_SYS_ADMIN)".into());
        }
        let pid = std::process::id();
        let net = Self {
            r: format!("tt-faults-{pid}-r"),
            a: format!("tt-faults-{pid}-a"),
            b: format!("tt-faults-{pid}-b"),
            // A private range that depends on the pid, so two runs at once
            // never share addresses (they could not meet anyway: each run
            // has namespaces of its own).
            prefix: format!("10.{}.{}", 100 + (pid >> 8) % 100, pid & 0xff),
        };
        // The first namespace tells whether namespaces can be made here;
        // once one could, any later failure is the test's own.
        ip(&["netns", "add", &net.r])?;
        let made = |r: Result<(), String>| r.unwrap_or_else(|e| panic!("{e}"));
        for ns in [&net.a, &net.b] {
            made(ip(&["netns", "add", ns]));
        }
        for ns in [&net.r, &net.a, &net.b] {
            made(ip(&["-n", ns, "link", "set", "lo", "up"]));
        }
        let p = &net.prefix;
        made(net.link(&net.a, &format!("{p}.2/30"), "to-a", &format!("{p}.1/30")));
        made(net.link(&net.b, &format!("{p}.6/30"), "to-b", &format!("{p}.5/30")));
        Ok(net)
    }

    /// A veth pair from `ns` (interface [`TO_REDIS`], `addr`) to R
    /// (`peer`, `peer_addr`), both ends up.
    fn link(&self, ns: &str, addr: &str, peer: &str, peer_addr: &str) -> Result<(), String> {
        let name = TO_REDIS;
        ip(&[
            "link", "add", "name", name, "netns", ns, "type", "veth", "peer", "name", peer,
            "netns", &self.r,
        ])?;
        ip(&["-n", ns, "addr", "add", addr, "dev", name])?;
        ip(&["-n", &self.r, "addr", "add", peer_addr, "dev", peer])?;
        ip(&["-n", ns, "link", "set", name, "up"])?;
        ip(&["-n", &self.r, "link", "set", peer, "up"])
    }

    /// Redis's address as A sees it, and as B does.
    fn redis_for_a(&self) -> String {
        format!("{}.1", self.prefix)
    }

    fn redis_for_b(&self) -> String {
        format!("{}.5", self.prefix)
    }

    /// A's link down at Redis's end: A's packets to Redis vanish (no
    /// refusal, no reset), as behind a failed switch.
    fn cut_a(&self) {
        ip(&["-n", &self.r, "link", "set", "to-a", "down"]).unwrap();
    }

    /// A's link up again.
    fn reconnect_a(&self) {
        ip(&["-n", &self.r, "link", "set", "to-a", "up"]).unwrap();
    }

    /// A's link slow and lossy (A's outgoing packets): netem if the kernel
    /// has it, else tbf. What was emulated.
    fn degrade_a(&self) -> Result<&'static str, String> {
        let tc = |args: &[&str]| {
            let mut all = vec![
                "netns", "exec", &self.a, "tc", "qdisc", "add", "dev", TO_REDIS, "root",
            ];
            all.extend_from_slice(args);
            ip(&all)
        };
        match tc(&["netem", "delay", "2000ms", "loss", "20%"]) {
            Ok(()) => Ok("netem: 2 s delay, 20% loss"),
            Err(netem) => {
                eprintln!("network_faults: netem unavailable ({netem}); emulating with tbf");
                tc(&["tbf", "rate", "400bit", "burst", "300", "latency", "5s"])?;
                Ok(
                    "tbf 400 bit/s, 300-byte bucket, 5 s queue: about 2 s per 100-byte packet, \
                     drops when the queue is full or a packet exceeds the bucket",
                )
            }
        }
    }

    /// A's link normal again.
    fn restore_a(&self) {
        ip(&[
            "netns", "exec", &self.a, "tc", "qdisc", "del", "dev", TO_REDIS, "root",
        ])
        .unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends too.
        let made = [&self.r, &self.a, &self.b]
            .into_iter()
            .filter(|ns| Path::new("/run/netns").join(ns).exists());
        for ns in made {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("network_faults: {e}");
            }
        }
    }
}

/// A TCP connection to `addr` in namespace `ns`: made by a thread that
/// moves into the namespace first (a socket belongs to the namespace it
/// was made in, whichever thread uses it afterwards).
fn connect_in(ns: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let path = Path::new("/run/netns").join(ns);
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(&path)?;
            move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network))?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .join()
        .expect("the connecting thread")
    })
}

// ---------------------------------------------------------------------
// The processes.

/// Redis and the demos, killed (by pid) when dropped: before the
/// namespaces are deleted, since this is declared after [`Net`].
#[derive(Default)]
struct Processes(Vec<Child>);

impl Processes {
    /// `program args...` run in namespace `ns`, once its log shows `ready`.
    fn start_in(&mut self, ns: &str, program: &str, args: &[&str], ready: &str) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args);
        // `ip netns exec` execs the program itself: the child's pid is the
        // server's.
        let child = process::start(&mut cmd, ready)
            .unwrap_or_else(|e| panic!("{program} in {ns} did not start: {e}"));
        self.0.push(child);
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            process::stop(child);
        }
    }
}

// ---------------------------------------------------------------------
// HTTP, one request per connection.

/// One answer.
struct Reply {
    status: u16,
    /// The session cookie it sets (`Some("")` when it removes it).
    cookie: Option<String>,
    body: String,
    took: Duration,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A problem's `reason`.
    fn reason(&self) -> String {
        self.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A demo instance: its name in messages and its namespace.
struct Instance {
    name: &'static str,
    ns: String,
}

impl Instance {
    /// `method path` with `cookie` and a JSON `body`.
    fn send(&self, method: &str, path: &str, cookie: Option<&str>, body: Option<&Value>) -> Reply {
        let started = Instant::now();
        let mut stream = connect_in(&self.ns, SocketAddr::from((Ipv4Addr::LOCALHOST, DEMO_PORT)))
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name));
        // Far above any bound the test asserts: a hang fails the test.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: {SESSION_COOKIE}={c}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{method} {path} on {}: no answer ({e})", self.name));
        let took = started.elapsed();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head}"));
        let prefix = format!("set-cookie: {SESSION_COOKIE}=");
        let cookie = lines
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| {
                let value = l[prefix.len()..].split(';').next().unwrap_or_default();
                if l.to_ascii_lowercase().contains("max-age=0") {
                    String::new()
                } else {
                    value.to_owned()
                }
            })
            .next_back();
        Reply {
            status,
            cookie,
            body: body.to_owned(),
            took,
        }
    }
}

/// A client keeping its session cookie, whichever instance it talks to.
#[derive(Default)]
struct Client {
    cookie: Option<String>,
}

impl Client {
    fn send(&mut self, on: &Instance, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let reply = on.send(method, path, self.cookie.as_deref(), body);
        if let Some(c) = &reply.cookie {
            self.cookie = (!c.is_empty()).then(|| c.clone());
        }
        reply
    }

    fn get(&mut self, on: &Instance, path: &str) -> Reply {
        self.send(on, "GET", path, None)
    }

    fn post(&mut self, on: &Instance, path: &str, body: &Value) -> Reply {
        self.send(on, "POST", path, Some(body))
    }

    /// The password step; what comes next (`enroll`, `totp`, `done`).
    fn login(&mut self, on: &Instance, user: &str) -> String {
        let r = self.post(
            on,
            "/login",
            &json!({ "username": user, "password": "demo" }),
        );
        assert_eq!(r.status, 200, "login {user} on {}: {}", on.name, r.body);
        r.json()["next"].as_str().unwrap().to_owned()
    }
}

// ---------------------------------------------------------------------
// Codes, by the wall clock (the demos run on the system clock).

/// An app with `secret` as it is now.
fn phone(secret: &str) -> Phone {
    Phone::from_base32(secret, &ManualClock::new(SystemClock.now()))
}

/// The code of the first step after `used` that the server still takes:
/// the current step if it is newer, else the next one (one step ahead is
/// inside the default window). With the step.
fn fresh_code(secret: &str, used: u64) -> (u64, String) {
    let phone = phone(secret);
    let step = phone.step().max(used + 1);
    (step, phone.code_for_step(step))
}

/// Every code an instance accepted: (user, step, instance).
#[derive(Default)]
struct Accepted(Vec<(&'static str, u64, &'static str)>);

impl Accepted {
    fn note(&mut self, user: &'static str, step: u64, on: &Instance) {
        assert!(
            !self.0.iter().any(|(u, s, _)| *u == user && *s == step),
            "{user}'s code of step {step} accepted twice (again on {}): {:?}",
            on.name,
            self.0
        );
        self.0.push((user, step, on.name));
    }
}

// ---------------------------------------------------------------------
// Assertions.

/// A guarded request on the cut-off instance: 503 `store_unavailable`
/// within the bound.
fn assert_fails_closed(r: &Reply, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.body);
    assert_eq!(r.reason(), "store_unavailable", "{what}");
    assert_within_bound(r, what);
}

fn assert_within_bound(r: &Reply, what: &str) {
    let micros = u64::try_from(r.took.as_micros()).unwrap_or(u64::MAX);
    SLOWEST.fetch_max(micros, Ordering::Relaxed);
    assert!(
        r.took <= STORE_TIMEOUT + MARGIN,
        "{what} took {:?}; store timeout {STORE_TIMEOUT:?} + margin {MARGIN:?}",
        r.took
    );
}

/// Requests to A while its link is slow and lossy (and to B, which must
/// not notice): every answer of A within the bound, a guarded page only for
/// the verified session, a used code never accepted.
fn on_a_slow_link(
    a: &Instance,
    b: &Instance,
    jsmith: &mut Client,
    waiting: &mut Client,
    secret: &str,
    replayed: u64,
) {
    let (mut served, mut refused) = (0, 0);
    for round in 0..4 {
        let what = |s: &str| format!("slow link, round {round}: {s} on A");
        let me = jsmith.get(a, "/api/me");
        assert_within_bound(&me, &what("GET /api/me (verified)"));
        match me.status {
            200 => served += 1,
            503 => refused += 1,
            s => panic!("{}: {s} {}", what("GET /api/me"), me.body),
        }
        let r = waiting.get(a, "/api/me");
        assert_within_bound(&r, &what("GET /api/me (unverified)"));
        assert!(
            matches!(r.status, 401 | 429 | 503),
            "{}: {} {}",
            what("GET /api/me (unverified)"),
            r.status,
            r.body
        );
        // A replay: refused, or 503 if the store cannot be asked.
        let code = phone(secret).code_for_step(replayed);
        let r = waiting.post(a, "/2fa", &json!({ "code": code }));
        assert_within_bound(&r, &what("POST /2fa (a used code)"));
        assert!(
            matches!(r.status, 401 | 429 | 503),
            "{}: {} {}",
            what("POST /2fa"),
            r.status,
            r.body
        );
        let health = a.send("GET", "/health", None, None);
        assert_within_bound(&health, &what("GET /health"));
        assert_eq!(
            jsmith.get(b, "/api/me").status,
            200,
            "B during A's slow link"
        );
    }
    eprintln!(
        "network_faults: slow link: verified GET /api/me on A {served} served, {refused} refused (503)"
    );
}

#[test]
fn cut_off_instance_fails_closed_and_recovers() {
    let net = match Net::build() {
        Ok(net) => net,
        Err(reason) => {
            eprintln!("skipped: cut_off_instance_fails_closed_and_recovers: {reason}");
            return;
        }
    };
    // Declared after `net`: dropped (killed) before the namespaces go.
    let mut procs = Processes::default();
    let bind = format!("{} {}", net.redis_for_a(), net.redis_for_b());
    let port = REDIS_PORT.to_string();
    procs.start_in(
        &net.r,
        "redis-server",
        &[
            "--port",
            &port,
            "--bind",
            &bind,
            "--save",
            "",
            "--appendonly",
            "no",
            // Protected mode refuses clients from other hosts while the
            // default user has no password; only A and B can reach this
            // server, from namespaces of this test.
            "--protected-mode",
            "no",
        ],
        REDIS_READY,
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite3");
    let key = dir.path().join("demo.key");
    let timeout_ms = STORE_TIMEOUT.as_millis().to_string();
    let listen = format!("127.0.0.1:{DEMO_PORT}");
    let demo_bin = env!("CARGO_BIN_EXE_totp-demo");
    for (ns, redis) in [(&net.a, net.redis_for_a()), (&net.b, net.redis_for_b())] {
        // One after the other: the first creates the database and the key.
        let url = format!("redis://{redis}:{REDIS_PORT}/");
        let args = [
            "--listen",
            &listen,
            "--db",
            db.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--redis",
            &url,
            "--store-timeout-ms",
            &timeout_ms,
        ];
        procs.start_in(ns, demo_bin, &args, DEMO_READY);
    }
    let a = Instance {
        name: "A",
        ns: net.a.clone(),
    };
    let b = Instance {
        name: "B",
        ns: net.b.clone(),
    };
    let mut accepted = Accepted::default();

    // jsmith syncs an app on A; the session is verified on both.
    let mut jsmith = Client::default();
    assert_eq!(jsmith.login(&a, "jsmith"), "enroll");
    let secret = jsmith.get(&a, "/2fa/enroll").json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let enrolled = phone(&secret).step();
    let done = jsmith.post(
        &a,
        "/2fa/enroll",
        &json!({ "code": phone(&secret).code_for_step(enrolled) }),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    accepted.note("jsmith", enrolled, &a);
    for on in [&a, &b] {
        let me = jsmith.get(on, "/api/me");
        assert_eq!(me.status, 200, "jsmith on {}: {}", on.name, me.body);
    }

    // One code, two sessions at the second step, one on each instance, at
    // once: accepted once.
    let (mut on_a, mut on_b) = (Client::default(), Client::default());
    assert_eq!(on_a.login(&a, "jsmith"), "totp");
    assert_eq!(on_b.login(&b, "jsmith"), "totp");
    let (step, code) = fresh_code(&secret, enrolled);
    let body = json!({ "code": code });
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| on_a.post(&a, "/2fa", &body));
        let tb = s.spawn(|| on_b.post(&b, "/2fa", &body));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    // The other: a replay (401), or throttled (429) when it came while
    // the first was being checked.
    let (won, lost) = if ra.status == 200 {
        (&ra, &rb)
    } else {
        (&rb, &ra)
    };
    assert_eq!(won.status, 200, "A: {} B: {}", ra.body, rb.body);
    assert!(
        matches!(lost.status, 401 | 429),
        "A: {} B: {}",
        ra.body,
        rb.body
    );
    accepted.note("jsmith", step, if ra.status == 200 { &a } else { &b });
    let replayed = step;

    // Sessions that never pass the second step: whatever happens to the
    // network, A must never answer them with a guarded page.
    let mut waiting = Client::default();
    assert_eq!(waiting.login(&b, "jsmith"), "totp");

    // --- A cut off.
    net.cut_a();
    eprintln!("network_faults: A cut off");
    for round in 0..3 {
        let what = |s: &str| format!("cut off, round {round}: {s} on A");
        assert_fails_closed(&jsmith.get(&a, "/api/me"), &what("GET /api/me (verified)"));
        assert_fails_closed(&a.send("GET", "/health", None, None), &what("GET /health"));
        let code = phone(&secret).code_for_step(replayed);
        let r = waiting.post(&a, "/2fa", &json!({ "code": code }));
        assert_fails_closed(&r, &what("POST /2fa"));
        assert_fails_closed(
            &waiting.get(&a, "/api/me"),
            &what("GET /api/me (unverified)"),
        );
        let r = Client::default().post(
            &a,
            "/login",
            &json!({ "username": "jsmith", "password": "demo" }),
        );
        // The demo's own route (not the layer's): its own reason,
        // `unavailable`, but the same 503 within the same bound.
        assert_eq!(r.status, 503, "{}: {}", what("POST /login"), r.body);
        assert_within_bound(&r, &what("POST /login"));
        // B, on its own link, serves as before.
        let me = jsmith.get(&b, "/api/me");
        assert_eq!(me.status, 200, "B during the cut: {}", me.body);
        assert_eq!(b.send("GET", "/health", None, None).status, 200);
    }
    // B takes a new user's enrollment (a code accepted) while A is cut off.
    let mut admin = Client::default();
    assert_eq!(admin.login(&b, "admin"), "enroll");
    let admin_secret = admin.get(&b, "/2fa/enroll").json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_enrolled = phone(&admin_secret).step();
    let code = phone(&admin_secret).code_for_step(admin_enrolled);
    let done = admin.post(&b, "/2fa/enroll", &json!({ "code": code }));
    assert_eq!(done.status, 200, "{}", done.body);
    accepted.note("admin", admin_enrolled, &b);

    // --- A's link back, slow and lossy (where tc can make it so).
    net.reconnect_a();
    match net.degrade_a() {
        Ok(emulated) => {
            eprintln!("network_faults: A's link slow and lossy ({emulated})");
            on_a_slow_link(&a, &b, &mut jsmith, &mut waiting, &secret, replayed);
            net.restore_a();
        }
        Err(why) => eprintln!("network_faults: slow-link phase skipped: {why}"),
    }

    // --- A's link normal: A serves again, without a restart.
    let started = Instant::now();
    let mut health = a.send("GET", "/health", None, None);
    while health.status != 200 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        health = a.send("GET", "/health", None, None);
    }
    assert_eq!(
        health.status, 200,
        "A still unhealthy a minute after its link is normal"
    );
    eprintln!(
        "network_faults: A healthy {:?} after its link is normal",
        started.elapsed()
    );
    let me = jsmith.get(&a, "/api/me");
    assert_eq!(me.status, 200, "{}", me.body);
    let me = waiting.get(&a, "/api/me");
    assert_eq!(me.status, 401, "the unverified session: {}", me.body);

    // A accepts a code again; the same code on B is a replay.
    let (mut admin_a, mut admin_b) = (Client::default(), Client::default());
    assert_eq!(admin_a.login(&a, "admin"), "totp");
    assert_eq!(admin_b.login(&b, "admin"), "totp");
    let (step, code) = fresh_code(&admin_secret, admin_enrolled);
    let ok = admin_a.post(&a, "/2fa", &json!({ "code": code }));
    assert_eq!(ok.status, 200, "{}", ok.body);
    accepted.note("admin", step, &a);
    let replay = admin_b.post(&b, "/2fa", &json!({ "code": code }));
    assert_eq!(replay.status, 401, "the same code on B: {}", replay.body);
    assert_eq!(admin_b.get(&b, "/api/me").status, 401);

    assert!(accepted.0.iter().any(|(_, _, on)| *on == "A"));
    assert!(accepted.0.iter().any(|(_, _, on)| *on == "B"));
    eprintln!(
        "network_faults: accepted (user, step, instance): {:?}; slowest answer of A while \
         cut off or slow: {} ms (store timeout {} ms)",
        accepted.0,
        SLOWEST.load(Ordering::Relaxed) / 1000,
        STORE_TIMEOUT.as_millis()
    );
}
