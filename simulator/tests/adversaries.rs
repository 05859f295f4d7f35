//! The attackers of issue 11: `[shoulder_surfer]`, `[co_enroller]` and
//! `[cross_origin]`. Each section parses (bad values refused, naming the
//! key), runs the same from a seed, and is counted in `report.json` and the
//! page; against the stack (in process, and the demo over real HTTP) every
//! success counter is 0; against a deliberately gullible server the same
//! attackers do count successes, so a 0 means the server refused them.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, missing_docs)]

mod demo_target;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use totp_sim::dist::Dist;
use totp_sim::driver::{Account, Driver, DriverError, Enrolled, Outcome, WebAnswer, WebRequest};
use totp_sim::output::write_run;
use totp_sim::run::{DriverKind, RunOptions, RunOutput, SimError, run, run_with};
use totp_sim::scenario::{CoEnroller, CrossOrigin, Scenario, ShoulderSurfer};
use totp_sim::stats::Report;
use totp_sim::target::{TargetOptions, run_target};
use totp_sim::wire::Jar;
use tower_totp::code::{CodeParams, Secret};

fn adversaries() -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/adversaries.toml");
    Scenario::load(&file).unwrap()
}

fn run_scenario(s: &Scenario, threads: usize) -> RunOutput {
    let options = RunOptions {
        threads,
        ..RunOptions::default()
    };
    run(&s.model().unwrap(), &options).unwrap()
}

/// The attackers' counters, by their `report.json` names.
fn counters(r: &Report) -> [(&'static str, u64); 7] {
    [
        ("surfer_attempts", r.surfer_attempts),
        ("surfer_successes", r.surfer_successes),
        ("co_enroll_attempts", r.co_enroll_attempts),
        ("co_enroll_secrets_seen", r.co_enroll_secrets_seen),
        ("co_enroll_takeovers", r.co_enroll_takeovers),
        ("cross_origin_attempts", r.cross_origin_attempts),
        ("cross_origin_accepted", r.cross_origin_accepted),
    ]
}

fn model_error(toml: &str) -> String {
    match Scenario::from_toml_str(toml) {
        Err(e) => e.to_string(),
        Ok(s) => s.model().unwrap_err().to_string(),
    }
}

#[test]
fn each_attacker_section_parses_and_bad_values_are_refused() {
    let s = adversaries();
    assert_eq!(s.shoulder_surfer.as_ref().unwrap().observe_codes, 2);
    assert_eq!(s.co_enroller.as_ref().unwrap().sessions_before, 1);
    assert_eq!(
        s.cross_origin.as_ref().unwrap().origin,
        "http://evil.example"
    );
    assert!(s.brute_force.is_some() && s.replay.is_some());
    s.model().unwrap();
    // Sections left out are no attacker; written empty, their defaults.
    let empty =
        Scenario::from_toml_str("[shoulder_surfer]\n[co_enroller]\n[cross_origin]\n").unwrap();
    assert_eq!(empty.shoulder_surfer, Some(ShoulderSurfer::default()));
    assert_eq!(empty.co_enroller, Some(CoEnroller::default()));
    assert_eq!(empty.cross_origin, Some(CrossOrigin::default()));
    assert!(Scenario::default().shoulder_surfer.is_none());

    for (toml, names) in [
        (
            "[shoulder_surfer]\nobserve_codes = 0\n",
            "shoulder_surfer.observe_codes",
        ),
        (
            "[shoulder_surfer]\nobserve_codes = 11\n",
            "shoulder_surfer.observe_codes",
        ),
        (
            "[shoulder_surfer]\nobserve_after = 11\n",
            "shoulder_surfer.observe_after",
        ),
        (
            "[shoulder_surfer]\nobserve_rate = 1.5\n",
            "shoulder_surfer.observe_rate",
        ),
        (
            "[shoulder_surfer]\ndelay_s = { kind = \"uniform\", min = 5.0, max = 1.0 }\n",
            "shoulder_surfer.delay_s",
        ),
        ("[shoulder_surfer]\ncodes = 2\n", "unknown field `codes`"),
        (
            "[co_enroller]\nsessions_before = 0\nsessions_after = 0\n",
            "co_enroller.sessions_before/sessions_after",
        ),
        (
            "[co_enroller]\nsessions_after = 9\n",
            "co_enroller.sessions_after",
        ),
        ("[co_enroller]\nsessions_before = -1\n", "sessions_before"),
        (
            "[cross_origin]\norigin = \"evil.example\"\n",
            "cross_origin.origin",
        ),
        (
            "[cross_origin]\norigin = \"http://evil.example/page\"\n",
            "cross_origin.origin",
        ),
        (
            "[cross_origin]\norigin = \"ftp://evil.example\"\n",
            "cross_origin.origin",
        ),
        (
            "days = 2\n[cross_origin]\nat_day = 2.0\n",
            "cross_origin.at_day",
        ),
        ("[cross_origin]\nat_day = -1.0\n", "cross_origin.at_day"),
        ("[cross_origin]\nvictim = 3\n", "unknown field `victim`"),
    ] {
        let err = model_error(toml);
        assert!(err.contains(names), "{toml}: {err}");
    }

    // The attackers with sessions of their own need HTTP.
    let options = RunOptions {
        driver: DriverKind::Engine,
        ..RunOptions::default()
    };
    for section in ["co_enroller", "cross_origin"] {
        let mut s = Scenario::default();
        s.users = 5;
        s.days = 1;
        if section == "co_enroller" {
            s.co_enroller = Some(CoEnroller::default());
        } else {
            s.cross_origin = Some(CrossOrigin::default());
        }
        let err = run(&s.model().unwrap(), &options).unwrap_err();
        assert!(matches!(err, SimError::NeedsHttp { .. }), "{err}");
        assert!(err.to_string().contains(section), "{err}");
    }
    // The shoulder surfer needs nothing but logins: the engine runs it.
    let mut s = Scenario::default();
    s.users = 4;
    s.days = 1;
    s.shoulder_surfer = Some(ShoulderSurfer::default());
    assert!(
        run(&s.model().unwrap(), &options)
            .unwrap()
            .report
            .surfer_attempts
            > 0
    );
}

#[test]
fn the_attackers_run_the_same_from_a_seed_and_are_reported() {
    let s = adversaries();
    let one = run_scenario(&s, 1);
    let again = run_scenario(&s, 3);
    assert_eq!(one.stats, again.stats);
    for (name, n) in counters(&one.report) {
        if name.ends_with("attempts") {
            assert!(n > 0, "{name} = 0: the attacker did not run");
        }
    }
    // Every watched login is tried: its codes alone, then in pairs.
    let surfer = s.shoulder_surfer.as_ref().unwrap();
    assert!(one.report.surfer_attempts >= u64::from(surfer.observe_codes) * 10);
    assert_eq!(one.report.co_enroll_attempts, 5);

    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &s, &s.model().unwrap(), &one).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let page = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for (name, n) in counters(&one.report) {
        assert_eq!(json[name], n, "{name} in report.json");
        assert!(
            page.contains(&format!("<tr><th>{name}</th><td>{n}</td></tr>")),
            "{name} on the page"
        );
    }
    // One row per attacker section: attempts, successes and the bound.
    for attacker in [
        "brute force",
        "replay",
        "shoulder surfer",
        "co-enroller",
        "cross origin",
    ] {
        assert!(
            page.contains(&format!("<tr><th>{attacker}</th><td>")),
            "no row for {attacker}"
        );
    }
    assert!(page.contains("bound (docs/simulator.md)"));
    assert_eq!(
        totp_sim::output::attacker_rows(&s.model().unwrap(), &one.report).len(),
        5
    );
}

fn assert_no_successes(r: &Report) {
    assert_eq!(r.surfer_successes, 0, "{r:?}");
    assert_eq!(r.co_enroll_secrets_seen, 0, "{r:?}");
    assert_eq!(r.co_enroll_takeovers, 0, "{r:?}");
    assert_eq!(r.cross_origin_accepted, 0, "{r:?}");
}

/// Codes the phone showed after the victim's login, never typed, tried in
/// pairs one step apart once they are outside the window: they look like a
/// phone running slow. The drift-rate rule refuses them (no clock drifts
/// minutes in minutes); with the rule off (`max_drift_rate` 1,000,000,
/// the rule before the attacker review) the same surfer gets in. The
/// delay starts at 200 s: at 120 s the second code after the login is
/// still inside the window for a phone almost a step fast, and any TOTP
/// verifier accepts it (measured: the same 2 successes with
/// resynchronisation off altogether).
#[test]
fn codes_shown_after_the_login_get_in_only_without_the_drift_rate_rule() {
    let mut s = adversaries();
    s.shoulder_surfer = Some(ShoulderSurfer {
        observe_after: 2,
        delay_s: Dist::uniform(200.0, 300.0),
        ..s.shoulder_surfer.clone().unwrap()
    });
    let fixed = run_scenario(&s, 1).report;
    assert!(fixed.surfer_attempts > 0);
    assert_eq!(fixed.surfer_successes, 0, "{fixed:?}");
    s.server.max_drift_rate = 1_000_000;
    let old_rule = run_scenario(&s, 1).report;
    assert!(old_rule.surfer_successes > 0, "{old_rule:?}");
}

#[test]
fn against_the_stack_every_success_counter_is_0() {
    let s = adversaries();
    let out = run_scenario(&s, 1);
    let r = &out.report;
    assert!(r.surfer_attempts > 0 && r.co_enroll_attempts > 0 && r.cross_origin_attempts > 0);
    assert_no_successes(r);
    assert_eq!(r.replays_accepted, 0);
    assert_eq!(r.guess_successes, 0);
    // The victims of the co-enroller enrolled and log in with what they
    // confirmed; the lured victims' logins go on too.
    assert_eq!(r.enrolled, u64::from(s.users));
    assert_eq!(r.eventual_accept_rate, 1.0, "{r:?}");

    // More codes seen, and shorter delays down to two periods (every seen
    // code outside the window ±1 by then): still nothing.
    let mut wide = s.clone();
    wide.seed = 7;
    wide.shoulder_surfer = Some(ShoulderSurfer {
        observe_codes: 4,
        delay_s: Dist::uniform(90.0, 600.0),
        ..ShoulderSurfer::default()
    });
    wide.co_enroller = Some(CoEnroller {
        sessions_before: 3,
        sessions_after: 2,
        ..CoEnroller::default()
    });
    assert_no_successes(&run_scenario(&wide, 2).report);

    // Attacker sessions up to the pending-enrollment cap (5) before the
    // victim: the victim cannot enrol (a denial of service, no worse than
    // the attacker enrolling first with the password), and nothing the
    // attacker knows is activated.
    let mut full = s.clone();
    full.co_enroller = Some(CoEnroller {
        victims: 5,
        first_victim: 10,
        sessions_before: 5,
        sessions_after: 1,
    });
    let r = run_scenario(&full, 1).report;
    assert_eq!(r.enroll_failures, 5, "{r:?}");
    assert_no_successes(&r);
}

/// A server that trusts everybody, the way the stack did before issue 11
/// and worse: every code is accepted, one pending enrollment per user is
/// shown to every session that asks, and the origin is never looked at.
#[derive(Debug, Clone, Default)]
struct Gullible {
    state: Arc<Mutex<GullibleState>>,
}

#[derive(Debug, Default)]
struct GullibleState {
    pending: HashMap<String, Secret>,
    enrolled: HashSet<String>,
    secrets_made: u8,
}

const GULLIBLE_COOKIE: &str = "who";

impl Gullible {
    fn secret(&self, user: &str) -> Secret {
        let mut st = self.state.lock().unwrap();
        if let Some(s) = st.pending.get(user) {
            return s.clone();
        }
        st.secrets_made += 1;
        let s = Secret::from_bytes(&[st.secrets_made; 20]).unwrap();
        st.pending.insert(user.to_owned(), s.clone());
        s
    }

    fn enrol(&self, user: &str) {
        let mut st = self.state.lock().unwrap();
        st.pending.remove(user);
        st.enrolled.insert(user.to_owned());
    }
}

fn answer(status: StatusCode, body: String, cookie: Option<&str>) -> WebAnswer {
    let mut headers = HeaderMap::new();
    if let Some(c) = cookie {
        headers.insert(header::SET_COOKIE, HeaderValue::from_str(c).unwrap());
    }
    WebAnswer {
        status,
        headers,
        body: Bytes::from(body),
    }
}

impl Driver for Gullible {
    async fn enroll(&self, account: &Account) -> Result<Enrolled, DriverError> {
        Ok(Enrolled {
            secret: self.secret(account.id.as_str()),
            params: CodeParams::default(),
        })
    }

    async fn confirm(&self, account: &Account, _code: &str) -> Result<Outcome, DriverError> {
        self.enrol(account.id.as_str());
        Ok(Outcome::Accepted {
            learned_offset: None,
            step: None,
        })
    }

    async fn login(&self, _account: &Account, _code: &str) -> Result<Outcome, DriverError> {
        Ok(Outcome::Accepted {
            learned_offset: None,
            step: None,
        })
    }

    async fn password_step(
        &self,
        account: &Account,
        jar: &mut Jar,
    ) -> Result<Option<String>, DriverError> {
        let user = account.id.as_str();
        let mut headers = HeaderMap::new();
        let cookie = format!("{GULLIBLE_COOKIE}={user}");
        headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).unwrap());
        jar.update(&headers);
        let enrolled = self.state.lock().unwrap().enrolled.contains(user);
        Ok(Some(if enrolled { "totp" } else { "enroll" }.to_owned()))
    }

    async fn exchange(
        &self,
        jar: &mut Jar,
        request: &WebRequest,
    ) -> Result<Option<WebAnswer>, DriverError> {
        let user = jar.get(GULLIBLE_COOKIE).unwrap_or_default().to_owned();
        let done = || answer(StatusCode::OK, r#"{"next":"done"}"#.into(), None);
        Ok(Some(match (&request.method, request.path.as_str()) {
            (&Method::GET, "/2fa/enroll") => {
                let secret = self.secret(&user).to_base32();
                let body = serde_json::json!({
                    "secret": &*secret,
                    "otpauth_uri": format!("otpauth://totp/g:{user}?secret={}", &*secret),
                });
                answer(StatusCode::OK, body.to_string(), None)
            }
            (&Method::POST, "/2fa/enroll") => {
                self.enrol(&user);
                done()
            }
            (&Method::POST, "/2fa") => done(),
            _ => answer(StatusCode::OK, "{}".into(), None),
        }))
    }
}

#[test]
fn the_attackers_count_successes_when_the_server_accepts() {
    let s = adversaries();
    let model = s.model().unwrap();
    let out = run_with(&model, &RunOptions::default(), |_clock| {
        Ok(Gullible::default())
    })
    .unwrap();
    let r = &out.report;
    // The first try of every watched login gets in.
    assert!(r.surfer_successes > 0, "{r:?}");
    assert_eq!(r.surfer_successes, r.surfer_attempts, "{r:?}");
    // One slot per user: every attacked enrollment is seen and taken over.
    assert_eq!(r.co_enroll_attempts, 5);
    assert_eq!(r.co_enroll_secrets_seen, 5, "{r:?}");
    assert_eq!(r.co_enroll_takeovers, 5, "{r:?}");
    // No origin check: every request goes through.
    assert!(r.cross_origin_attempts >= 3 * 6, "{r:?}");
    assert_eq!(r.cross_origin_accepted, r.cross_origin_attempts, "{r:?}");
}

/// `--target` against the demo started in process on a loopback port: the
/// co-enroller races `portal`'s enrollment, and a foreign page submits the
/// demo's forms (the admin switches included) through the sessions of
/// `admin` and `jsmith`.
#[test]
fn target_mode_measures_the_demo() {
    let (_rt, addr) = demo_target::start();

    let mut s = Scenario::default();
    s.users = 3;
    s.days = 1;
    // Phones one step ahead of the server's code at enrollment: each
    // victim's login for the page uses a step nobody used yet.
    s.fleet.clock_offset_s = Dist::fixed(30.0);
    s.fleet.typo_rate = 0.0;
    s.fleet.logins_per_day = 0.0;
    s.co_enroller = Some(CoEnroller {
        victims: 1,
        first_victim: 2,
        ..CoEnroller::default()
    });
    s.cross_origin = Some(CrossOrigin {
        victims: 2,
        first_victim: 0,
        // A second after the start.
        at_day: 1.5 / 86_400.0,
        ..CrossOrigin::default()
    });
    let accounts = demo_target::accounts();
    let target = TargetOptions {
        url: format!("http://{addr}"),
        accounts,
        max_duration: Duration::from_secs(4),
        max_requests: Some(500),
        allow_remote: false,
    };
    let out = run_target(&s.model().unwrap(), &RunOptions::default(), &target).unwrap();
    let r = &out.report;
    assert_eq!(r.enrolled, 3, "{r:?}");
    assert_eq!(r.co_enroll_attempts, 1, "{r:?}");
    // The admin's session reaches the switches and its flag; jsmith's
    // the /2fa routes, the logout and the login.
    assert!(r.cross_origin_attempts >= 7 + 11, "{r:?}");
    assert_no_successes(r);
}
