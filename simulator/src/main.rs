//! `totp-sim`: run a scenario, or sweep it over a grid of settings.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use totp_sim::bench::LoginBench;
use totp_sim::output::{summary_table, write_run};
use totp_sim::overrides::parse_assignment;
use totp_sim::plot::format_value;
use totp_sim::recommend::{RecommendSpec, recommend, summary};
use totp_sim::run::{DriverKind, RunOptions, run};
use totp_sim::scenario::Scenario;
use totp_sim::sweep::{SweepSpec, sweep};
use totp_sim::target::{TargetOptions, check_target, demo_accounts, parse_accounts, run_target};

/// Simulate a TOTP fleet against tower-totp: in process, or over HTTP against a running server.
#[derive(Debug, Parser)]
#[command(name = "totp-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: print a summary and write report.json, plots and index.html.
    Run(RunArgs),
    /// Run a scenario over a grid of one or two parameters and draw a heat map.
    Sweep(SweepArgs),
    /// Sweep the window, drift tracking and the throttle over a scenario's
    /// fleet and print the settings that meet both bounds, best first.
    Recommend(RecommendArgs),
    /// Check a scenario file and print it with every default filled in.
    Check {
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Print the default scenario: every key with its default value.
    Defaults,
    /// Time full logins (password request and code request) through the
    /// in-process HTTP stack, without the simulator around them.
    Bench {
        /// Logins to time.
        #[arg(long, default_value_t = 200_000)]
        logins: u64,
        /// Users enrolled beforehand (each logs in once per 30 s step).
        #[arg(long, default_value_t = 1000)]
        users: u32,
        /// Also GET a protected route after each login (a third request).
        #[arg(long)]
        confirm_access: bool,
        /// OS threads logging in at once, each with its own share of the
        /// users, all through the one shared stack.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Number of users (overrides `users`).
    #[arg(long)]
    users: Option<u32>,
    /// Simulated days (overrides `days`).
    #[arg(long)]
    days: Option<u32>,
    /// Seed (overrides `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder.
    #[arg(long, default_value = "totp-sim-out")]
    out: PathBuf,
    /// Shards run in parallel; results do not depend on it.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Set a scenario key: `--set server.behind=2`, `--set spread=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// In process: `http` (the whole stack: sessions, layer, endpoints) or
    /// `engine` (the TwoFactor engine called directly; same figures, faster).
    #[arg(long, default_value = "http")]
    driver: DriverKind,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    target: TargetArgs,
}

/// Load a running server over real HTTP instead, on real time.
#[derive(Debug, Args)]
struct TargetArgs {
    /// The server, e.g. http://127.0.0.1:3000 (a loopback address unless --allow-remote).
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// The server's accounts, one per user, comma-separated (default: the
    /// demo's admin,jsmith). They must have no authenticator yet.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "target",
        conflicts_with = "accounts_from"
    )]
    accounts: Vec<String>,
    /// A file of accounts: one `name` or `name:password` a line.
    #[arg(long, value_name = "FILE", requires = "target")]
    accounts_from: Option<PathBuf>,
    /// The password of accounts given without one.
    #[arg(long, default_value = "demo", requires = "target")]
    password: String,
    /// Stop after this many seconds of wall-clock time.
    #[arg(long, default_value_t = 60.0, requires = "target")]
    max_seconds: f64,
    /// Stop after this many HTTP requests.
    #[arg(long, requires = "target")]
    max_requests: Option<u64>,
    /// Accept a target that is not a loopback address.
    #[arg(long, requires = "target")]
    allow_remote: bool,
}

#[derive(Debug, Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// The first parameter (a key or an alias: window, tracking, offset, spread, drift, delay, typo).
    #[arg(long)]
    param: String,
    /// Its values, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    values: Vec<String>,
    /// An optional second parameter.
    #[arg(long, requires = "values2")]
    param2: Option<String>,
    /// Its values, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "param2")]
    values2: Vec<String>,
    /// The report field shown in the heat map.
    #[arg(long, default_value = "eventual_accept_rate")]
    metric: String,
}

#[derive(Debug, Args)]
struct RecommendArgs {
    /// The scenario file (TOML): its fleet, days and brute-force campaign.
    scenario: PathBuf,
    /// The largest share of correct codes refused (phones under 30 min off).
    #[arg(long, default_value_t = 0.005)]
    max_false_reject: f64,
    /// The largest chance a guesser gets into one account over the campaign.
    #[arg(long, default_value_t = 0.01)]
    max_attacker_odds: f64,
    /// Output folder.
    #[arg(long, default_value = "totp-sim-recommend")]
    out: PathBuf,
    /// Wall-clock budget in seconds: the sweep stops when it is spent.
    #[arg(long, default_value_t = 120.0)]
    budget_s: f64,
    /// Shards per run.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Number of users (overrides `users`; the budget may scale it down).
    #[arg(long)]
    users: Option<u32>,
    /// Simulated days (overrides `days`).
    #[arg(long)]
    days: Option<u32>,
    /// Set a scenario key: `--set fleet.typo_rate=0.01` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Rows of the printed table.
    #[arg(long, default_value_t = 10)]
    rows: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    match main_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut shown = e.to_string();
            eprintln!("totp-sim: {shown}");
            let mut source = e.source();
            while let Some(s) = source {
                // Some messages already include their cause's text.
                let text = s.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                shown = text;
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn main_inner() -> Result<(), BoxError> {
    match Cli::parse().command {
        Command::Run(args) => run_command(&args),
        Command::Sweep(args) => sweep_command(&args),
        Command::Recommend(args) => recommend_command(&args),
        Command::Check { scenario } => {
            let s = Scenario::load(&scenario)?;
            s.model()?;
            print!("{}", s.to_toml()?);
            Ok(())
        }
        Command::Defaults => {
            print!("{}", Scenario::default().to_toml()?);
            Ok(())
        }
        Command::Bench {
            logins,
            users,
            confirm_access,
            threads,
        } => {
            let mut bench = LoginBench::new(users)?
                .confirm_access(confirm_access)
                .threads(threads)?;
            let took = bench.logins(logins)?;
            let rate = logins as f64 / took.as_secs_f64().max(1e-9);
            let threads = bench.logins_by_thread().len();
            println!(
                "{logins} full logins on {threads} thread{} in {:.3} s: {rate:.0} logins/s ({:.2} µs of wall-clock time each)",
                if threads == 1 { "" } else { "s" },
                took.as_secs_f64(),
                1e6 / rate
            );
            Ok(())
        }
    }
}

impl Common {
    fn overrides(&self) -> Result<Vec<(String, toml::Value)>, BoxError> {
        Ok(self
            .set
            .iter()
            .map(|s| parse_assignment(s))
            .collect::<Result<_, _>>()?)
    }

    fn prepare(&self, s: &mut Scenario) {
        if let Some(u) = self.users {
            s.users = u;
        }
        if let Some(d) = self.days {
            s.days = d;
        }
        if let Some(seed) = self.seed {
            s.seed = seed;
        }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            threads: self.threads,
            trace: false,
            progress: !self.quiet,
            driver: self.driver,
        }
    }
}

fn run_command(run_args: &RunArgs) -> Result<(), BoxError> {
    let args = &run_args.common;
    let mut scenario = Scenario::load_with(&args.scenario, &args.overrides()?)?;
    args.prepare(&mut scenario);
    let out = match &run_args.target.target {
        None => {
            let model = scenario.model()?;
            let out = run(&model, &args.options())?;
            (model, out)
        }
        Some(url) => {
            let target = run_args.target.options(url)?;
            if scenario.users as usize > target.accounts.len() {
                eprintln!(
                    "totp-sim: {} users, but {} accounts on the target: running {} users",
                    scenario.users,
                    target.accounts.len(),
                    target.accounts.len()
                );
                scenario.users = u32::try_from(target.accounts.len()).unwrap_or(u32::MAX);
            }
            let model = scenario.model()?;
            let out = run_target(&model, &args.options(), &target)?;
            (model, out)
        }
    };
    let (model, out) = out;
    write_run(&args.out, &scenario, &model, &out)?;
    print!("{}", summary_table(&out.report));
    println!("wrote {}", args.out.join("index.html").display());
    Ok(())
}

impl TargetArgs {
    fn options(&self, url: &str) -> Result<TargetOptions, BoxError> {
        check_target(url, self.allow_remote)?;
        let accounts = if let Some(path) = &self.accounts_from {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse_accounts(&text, &self.password)?
        } else if self.accounts.is_empty() {
            demo_accounts(&self.password)
        } else {
            parse_accounts(&self.accounts.join("\n"), &self.password)?
        };
        if !(self.max_seconds.is_finite() && self.max_seconds > 0.0) {
            return Err("--max-seconds must be a positive number".into());
        }
        Ok(TargetOptions {
            url: url.to_owned(),
            accounts,
            max_duration: Duration::from_secs_f64(self.max_seconds.min(1e9)),
            max_requests: self.max_requests,
            allow_remote: self.allow_remote,
        })
    }
}

fn sweep_command(args: &SweepArgs) -> Result<(), BoxError> {
    let common = &args.common;
    let spec = SweepSpec {
        param: args.param.clone(),
        values: args.values.clone(),
        param2: args.param2.clone(),
        values2: args.values2.clone(),
        metric: args.metric.clone(),
    };
    let base = common.overrides()?;
    let name = Scenario::load_with(&common.scenario, &base)?.name;
    let prepare = |s: &mut Scenario| common.prepare(s);
    let result = sweep(
        &common.scenario,
        &base,
        &spec,
        &common.options(),
        &prepare,
        |p| {
            let at = match (&spec.param2, &p.value2) {
                (Some(p2), Some(v2)) => format!("{}={} {p2}={v2}", spec.param, p.value),
                _ => format!("{}={}", spec.param, p.value),
            };
            println!("  {at:<32} {} = {}", spec.metric, format_value(p.metric));
        },
    )?;
    result.write(&common.out, &spec, &name)?;
    println!("wrote {}", common.out.join("index.html").display());
    Ok(())
}

fn recommend_command(args: &RecommendArgs) -> Result<(), BoxError> {
    let overrides = args
        .set
        .iter()
        .map(|s| parse_assignment(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut scenario = Scenario::load_with(&args.scenario, &overrides)?;
    if let Some(u) = args.users {
        scenario.users = u;
    }
    if let Some(d) = args.days {
        scenario.days = d;
    }
    if !(args.budget_s.is_finite() && args.budget_s > 0.0) {
        return Err("--budget-s must be a positive number".into());
    }
    let spec = RecommendSpec {
        max_false_reject: args.max_false_reject,
        max_attacker_odds: args.max_attacker_odds,
        budget: Duration::from_secs_f64(args.budget_s.min(1e7)),
        threads: args.threads,
    };
    let rec = recommend(&scenario, &spec, |t| {
        eprintln!(
            "  {:<40} false rejects {:>8}  odds {:>8}",
            t.setting.label(),
            format_value(t.false_reject_rate),
            format_value(t.attacker_odds)
        );
    })?;
    totp_sim::recommend::write(&args.out, &rec, &scenario)?;
    print!("{}", summary(&rec, args.rows));
    println!(
        "wrote {} (recommend.json, pareto.svg, recommended.rs)",
        args.out.join("index.html").display()
    );
    Ok(())
}
