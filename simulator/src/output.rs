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
        model.offset_bin_s,
    )?;
    plot::drift_over_days(&dir.join(PLOTS[1].0), &out.stats, model.days)?;
    plot::attacks_over_time(&dir.join(PLOTS[2].0), &out.stats, model)?;
    write(
        &dir.join("index.html"),
        run_page(scenario, &out.report).as_bytes(),
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
        ("legit_lockouts", r.legit_lockouts.to_string()),
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

fn run_page(scenario: &Scenario, r: &Report) -> String {
    let mut rows = String::new();
    for (k, v) in headline(r) {
        let _ = writeln!(rows, "<tr><th>{k}</th><td>{}</td></tr>", html_escape(&v));
    }
    let mut figures = String::new();
    for (file, title) in PLOTS {
        let _ = writeln!(
            figures,
            "<figure><img src=\"{file}\" alt=\"{title}\"><figcaption>{title}</figcaption></figure>"
        );
    }
    let settings = scenario.to_toml().unwrap_or_default();
    page(
        &format!("totp-sim: {}", scenario.name),
        &format!(
            "<p>{}</p>\n<table>\n{rows}</table>\n{figures}<details><summary>Scenario with every default filled in</summary><pre>{}</pre></details>\n<p><a href=\"report.json\">report.json</a></p>",
            html_escape(&scenario.description),
            html_escape(&settings),
        ),
    )
}

/// A small HTML page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\nbody {{ font-family: sans-serif; max-width: 960px; margin: 2em auto; }}\ntable {{ border-collapse: collapse; }}\nth, td {{ padding: 2px 12px; border-bottom: 1px solid #ddd; text-align: left; }}\ntd {{ text-align: right; font-variant-numeric: tabular-nums; }}\nimg {{ max-width: 100%; }}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}\n</body>\n</html>\n",
        t = html_escape(title)
    )
}
