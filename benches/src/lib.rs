//! Benchmarks live in `benches/`; the small binaries the load run and
//! `docs/performance.md` use live in `src/bin/`. This library holds what
//! they share.

use std::path::PathBuf;
use std::time::SystemTime;

/// Where criterion writes its results, found the way criterion finds it:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `criterion/` in the target directory that holds the running bench
/// executable (`<target>/release/deps/<bench>`).
pub fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The mean, in nanoseconds, that criterion measured for `group/bench`,
/// read from `<criterion home>/<group>/<bench>/new/estimates.json`; `None`
/// if there is no such file or it was written before `since` (the bench
/// did not run in this run: a figure from an older run must not be mixed
/// with this run's).
pub fn criterion_mean_ns(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()?
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

/// The resident set size of this process, in KiB (`VmRSS` in
/// `/proc/self/status`); `None` where there is no such file.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// The median of `values` (the mean of the middle two for an even count);
/// NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Whether this bench binary was started to measure (`cargo bench`), not
/// to list or test its benches (`--list`, `--test`, `--profile-time`): the
/// reports a bench prints after criterion's only make sense then.
pub fn criterion_is_measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--list" || a == "--profile-time" || a == "--test")
}
