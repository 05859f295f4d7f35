//! What `totp-sim run` writes: `report.json`, three SVG plots and
//! `index.html`, and the summary table it prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tower_totp::http::pages::escape as html_escape;

use crate::plot::{self, PlotError, format_value};
use crate::run::RunOutput;
use crate::scenario::{Model, Scenario};
use crate::stats::Report;

/// The plots of a run, by file name and title.
pub const PLOTS: [(&str, &str); 3] = [
    ("acceptance_vs_offset.svg", "Acceptance by clock offset"),
    ("drift.svg", "Learned against true offset over the days"),
    ("attacks.svg", "Attacker success over time"),
];

/// Output could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A file or folder could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// JSON could not be written.
    #[error("cannot encode JSON")]
    Json(#[from] serde_json::Error),
    /// A plot failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Write `contents` to `path`.
///
/// # Errors
///
/// [`OutputError::Io`].
pub fn write(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    std::fs::write(path, contents).map_err(|source| OutputError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Create `dir` and its parents.
///
/// # Errors
///
/// [`OutputError::Io`].
pub fn create_dir(dir: &Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Write `report.json`, the plots and `index.html` into `dir`.
///
/// # Errors
///
/// [`OutputError`] for the first file that cannot be written.
pub fn write_run(
    dir: &Path,
    scenario: &Scenario,
    model: &Model,
    out: &RunOutput,
) -> Result<(), OutputError> {
    create_dir(dir)?;
    write(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&out.report)?.as_bytes(),
    )?;
    plot::acceptance_vs_offset(
        &dir.join(PLOTS[0].0),
        &out.report.by_offset,
        &out.report.by_offset_attacked,
        model.offset_bin_s,
    )?;
    plot::drift_over_days(&dir.join(PLOTS[1].0), &out.stats, model.days)?;
    plot::attacks_over_time(&dir.join(PLOTS[2].0), &out.stats, model)?;
    write(
        &dir.join("index.html"),
        run_page(scenario, model, &out.report).as_bytes(),
    )
}

/// A count, or `n/a` where the driver could not see it.
fn count_or_na(n: Option<u64>) -> String {
    n.map_or_else(|| "n/a".to_owned(), |n| n.to_string())
}

/// The headline figures, one per row.
pub fn headline(r: &Report) -> Vec<(&'static str, String)> {
    let drift = r
        .drift_mae_s
        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
    vec![
        ("logins", r.logins.to_string()),
        (
            "first_try_accept_rate",
            format!("{:.4}", r.first_try_accept_rate),
        ),
        (
            "eventual_accept_rate",
            format!("{:.4}", r.eventual_accept_rate),
        ),
        ("false_reject_rate", format!("{:.4}", r.false_reject_rate)),
        (
            "false_reject_rate_not_hours_out",
            format!("{:.4}", r.false_reject_rate_not_hours_out),
        ),
        ("legit_lockouts", r.legit_lockouts.to_string()),
        ("lockouts_attacked", r.lockouts_attacked.to_string()),
        ("lockouts_own_typos", r.lockouts_own_typos.to_string()),
        ("lockouts_drift", r.lockouts_drift.to_string()),
        ("lockouts_hours_out", r.lockouts_hours_out.to_string()),
        (
            "clock_hours_out_logins",
            r.clock_hours_out_logins.to_string(),
        ),
        (
            "clock_hours_out_accepted",
            r.clock_hours_out_accepted.to_string(),
        ),
        ("clock_hints", count_or_na(r.clock_hints)),
        ("clock_hint_users", count_or_na(r.clock_hint_users)),
        (
            "clock_hints_on_time_phones",
            count_or_na(r.clock_hints_on_time_phones),
        ),
        ("clock_hints_missed", count_or_na(r.clock_hints_missed)),
        ("enroll_failures", r.enroll_failures.to_string()),
        ("replays_attempted", r.replays_attempted.to_string()),
        ("replays_accepted", r.replays_accepted.to_string()),
        ("guesses", r.guesses.to_string()),
        ("guesses_throttled", r.guesses_throttled.to_string()),
        ("guess_successes", r.guess_successes.to_string()),
        (
            "guess_success_bound",
            r.guess_success_bound
                .map_or_else(|| "n/a".to_owned(), format_value),
        ),
        ("surfer_attempts", r.surfer_attempts.to_string()),
        ("surfer_successes", r.surfer_successes.to_string()),
        ("co_enroll_attempts", r.co_enroll_attempts.to_string()),
        (
            "co_enroll_secrets_seen",
            r.co_enroll_secrets_seen.to_string(),
        ),
        ("co_enroll_takeovers", r.co_enroll_takeovers.to_string()),
        ("cross_origin_attempts", r.cross_origin_attempts.to_string()),
        ("cross_origin_accepted", r.cross_origin_accepted.to_string()),
        ("drift_mae_s", drift),
        ("wall_s", format!("{:.3}", r.wall_s)),
        ("logins_per_s", format!("{:.0}", r.logins_per_s)),
        (
            "peak_memory_mib",
            r.peak_memory_bytes.map_or_else(
                || "n/a".to_owned(),
                |b| format!("{:.1}", b as f64 / (1024.0 * 1024.0)),
            ),
        ),
    ]
}

/// The summary table printed after a run.
pub fn summary_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {} ({} users, {} days, seed {}, {} thread{})",
        r.scenario,
        r.users,
        r.days,
        r.seed,
        r.threads,
        if r.threads == 1 { "" } else { "s" }
    );
    let rows = headline(r);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v:>12}");
    }
    out
}

fn run_page(scenario: &Scenario, model: &Model, r: &Report) -> String {
    let mut body = format!("<p>{}</p>\n", html_escape(&scenario.description));
    body.push_str(&users_section(r));
    body.push_str(&attackers_section(model, r));
    for (file, title) in PLOTS {
        let _ = writeln!(
            body,
            "<figure><img src=\"{file}\" alt=\"{title}\"><figcaption><b>{title}.</b> {}</figcaption></figure>",
            html_escape(&figure_sentence(file, model, r))
        );
    }
    let mut rows = String::new();
    for (k, v) in headline(r) {
        let _ = writeln!(rows, "<tr><th>{k}</th><td>{}</td></tr>", html_escape(&v));
    }
    let settings = scenario.to_toml().unwrap_or_default();
    let _ = write!(
        body,
        "<details><summary>Every figure by its report.json name</summary><table>\n{rows}</table></details>\n<details><summary>Scenario with every default filled in</summary><pre>{}</pre></details>\n<p><a href=\"report.json\">report.json</a></p>",
        html_escape(&settings),
    );
    page(&format!("totp-sim: {}", scenario.name), &body)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// The users' figures in words: acceptance, false rejects, lockouts by
/// cause, phones hours out, and the published figure to compare with.
fn users_section(r: &Report) -> String {
    let not_in = 1.0 - r.eventual_accept_rate;
    let mut out = String::from("<h2>Users</h2>\n<table>\n");
    let rows: [(&str, String); 9] = [
        ("Logins", r.logins.to_string()),
        ("Accepted on the first try", pct(r.first_try_accept_rate)),
        ("Accepted within the retries", pct(r.eventual_accept_rate)),
        (
            "Correct codes refused (false rejects)",
            format!(
                "{} (phones under 30 min off: {})",
                pct(r.false_reject_rate),
                pct(r.false_reject_rate_not_hours_out)
            ),
        ),
        (
            "Logins that met the throttle (lockouts)",
            r.legit_lockouts.to_string(),
        ),
        (
            "&nbsp;&nbsp;an attacker on the account (shares its throttle)",
            r.lockouts_attacked.to_string(),
        ),
        ("&nbsp;&nbsp;own typos", r.lockouts_own_typos.to_string()),
        (
            "&nbsp;&nbsp;drift (correct codes refused: the clock is off)",
            r.lockouts_drift.to_string(),
        ),
        (
            "&nbsp;&nbsp;&nbsp;&nbsp;of which phones hours out",
            r.lockouts_hours_out.to_string(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{}</td></tr>", html_escape(&v));
    }
    let _ = writeln!(
        out,
        "<tr><th>Clock hours out: no window helps</th><td>{} logins, {} accepted</td></tr>\n</table>",
        r.clock_hours_out_logins, r.clock_hours_out_accepted
    );
    let _ = writeln!(
        out,
        "<p>{} of logins were not accepted within the retries. For comparison, from a different population: Reynolds et al. (USENIX Security 2020, logs of two universities' mandatory 2FA, mostly push approvals) found more than 1 in 20 second-factor ceremonies (5%) aborted or failing. The simulated users never abandon a login and their phones are modelled, so the two figures frame each other rather than measure the same thing.</p>",
        pct(not_in)
    );
    out
}

/// One row per attacker section: attempts, successes and the bound the
/// documented arithmetic gives.
pub fn attacker_rows(model: &Model, r: &Report) -> Vec<[String; 4]> {
    let width = f64::from(model.config.window().width());
    let space = 10f64.powi(i32::from(model.params().digits()));
    let collision = |n: u64| n as f64 * width / space;
    let mut rows = Vec::new();
    if model.brute_force.is_some() {
        let per = r.guess_success_bound.unwrap_or(0.0);
        rows.push([
            "brute force".into(),
            format!(
                "{} guesses checked ({} throttled) on {} accounts",
                r.guesses, r.guesses_throttled, r.attacked_accounts
            ),
            format!(
                "{} accounts guessed ({} guesses accepted)",
                r.compromised_accounts, r.guess_successes
            ),
            format!(
                "at most {} per idle account (N(T)·w/10^d), {} accounts expected at most; measured on these accounts: {} guesses × w/10^d = {}",
                format_value(per),
                format_value(per * r.attacked_accounts as f64),
                r.guesses,
                format_value(collision(r.guesses))
            ),
        ]);
    }
    if model.replay.is_some() {
        rows.push([
            "replay".into(),
            format!("{} replays", r.replays_attempted),
            format!(
                "{} accepted for the victim's step ({} collisions with another step)",
                r.replays_accepted, r.replay_collisions
            ),
            format!(
                "0: a step is accepted once per account; collisions at most replays × w/10^d = {}",
                format_value(collision(r.replays_attempted))
            ),
        ]);
    }
    if model.shoulder_surfer.is_some() {
        rows.push([
            "shoulder surfer".into(),
            format!("{} tries", r.surfer_attempts),
            format!("{} accepted", r.surfer_successes),
            format!(
                "0 for codes tried outside the window (the resynchronisation rate rule refuses seen pairs); as guesses: tries × w/10^d = {}",
                format_value(collision(r.surfer_attempts))
            ),
        ]);
    }
    if model.co_enroller.is_some() {
        rows.push([
            "co-enroller".into(),
            format!("{} raced enrollments", r.co_enroll_attempts),
            format!(
                "{} takeovers ({} secrets seen)",
                r.co_enroll_takeovers, r.co_enroll_secrets_seen
            ),
            "0: a pending enrollment belongs to the session that started it".into(),
        ]);
    }
    if model.cross_origin.is_some() {
        rows.push([
            "cross origin".into(),
            format!("{} requests", r.cross_origin_attempts),
            format!("{} not refused with 403", r.cross_origin_accepted),
            "0: every unsafe cross-site request is refused before any handler".into(),
        ]);
    }
    rows
}

fn attackers_section(model: &Model, r: &Report) -> String {
    let rows = attacker_rows(model, r);
    if rows.is_empty() {
        return "<h2>Attackers</h2>\n<p>This scenario has no attacker.</p>\n".into();
    }
    let mut out = String::from(
        "<h2>Attackers</h2>\n<table>\n<tr><th>attacker</th><th>attempts</th><th>successes</th><th>bound (docs/simulator.md)</th></tr>\n",
    );
    for [a, b, c, d] in rows {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&a),
            html_escape(&b),
            html_escape(&c),
            html_escape(&d)
        );
    }
    out.push_str("</table>\n<p>N(T): the most guesses the throttle lets through on one account in the campaign; w: the window's width in steps; d: digits. A victim who logs in clears the throttle, so an active account can take more guesses than N(T): the measured column counts the guesses that were checked.</p>\n");
    out
}

/// The plain-words sentence under each figure.
fn figure_sentence(file: &str, model: &Model, r: &Report) -> String {
    match file {
        "acceptance_vs_offset.svg" => {
            let small = r
                .by_offset
                .iter()
                .filter(|b| {
                    b.logins < plot::MIN_BIN_LOGINS
                        && b.offset_s.abs() * 1000.0 < crate::sim::HOURS_OUT_MS
                })
                .count();
            format!(
                "Each point is the share of logins accepted for phones whose clock was that many seconds off at login (blue: on the first try; red: within the {} attempts). Lines are users whose accounts nobody guesses at; triangles are the {} brute-forced accounts, apart because the guesser keeps their throttle busy and their users meet it, whatever their clock. Hollow grey points are bins with fewer than {} logins ({} such bins): one login moves them by a tenth or more, so a dip there is noise, not a clock the window misses. Phones 30 minutes or more off ({} logins) are left out of the plot and counted apart above.",
                model.fleet.max_attempts,
                r.attacked_accounts,
                plot::MIN_BIN_LOGINS,
                small,
                r.clock_hours_out_logins
            )
        }
        "drift.svg" => format!(
            "For {} users spread over the fleet: each line is the phone's true clock offset over the days, each cross what the server had learned at an accepted login. Crosses on their line mean the server follows the phone; crosses stuck at 0 while the line moves away mean it does not (drift tracking {}).",
            model.sample_users,
            if model.drift_tracking { "on" } else { "off" }
        ),
        _ => format!(
            "Over the days, the share of brute-forced accounts guessed so far against the bound the throttle and window allow ({} per account over the campaign), and replayed or shoulder-surfed codes accepted per victim: lines at 0 mean no attacker got in.",
            r.guess_success_bound
                .map_or_else(|| "no guesser".to_owned(), format_value)
        ),
    }
}

/// A small HTML page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\nbody {{ font-family: sans-serif; max-width: 960px; margin: 2em auto; }}\ntable {{ border-collapse: collapse; }}\nth, td {{ padding: 2px 12px; border-bottom: 1px solid #ddd; text-align: left; }}\ntd {{ text-align: right; font-variant-numeric: tabular-nums; }}\nimg {{ max-width: 100%; }}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}\n</body>\n</html>\n",
        t = html_escape(title)
    )
}
