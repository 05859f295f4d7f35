//! `totp-sim`: run a scenario, or sweep it over a grid of settings.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use totp_sim::output::{summary_table, write_run};
use totp_sim::overrides::parse_assignment;
use totp_sim::plot::format_value;
use totp_sim::run::{RunOptions, run};
use totp_sim::scenario::Scenario;
use totp_sim::sweep::{SweepSpec, sweep};

/// Simulate a TOTP fleet against the tower-totp engine.
#[derive(Debug, Parser)]
#[command(name = "totp-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: print a summary and write report.json, plots and index.html.
    Run(Common),
    /// Run a scenario over a grid of one or two parameters and draw a heat map.
    Sweep(SweepArgs),
    /// Check a scenario file and print it with every default filled in.
    Check {
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Print the default scenario: every key with its default value.
    Defaults,
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
        }
    }
}

fn run_command(args: &Common) -> Result<(), BoxError> {
    let mut scenario = Scenario::load_with(&args.scenario, &args.overrides()?)?;
    args.prepare(&mut scenario);
    let model = scenario.model()?;
    let out = run(&model, &args.options())?;
    write_run(&args.out, &scenario, &model, &out)?;
    print!("{}", summary_table(&out.report));
    println!("wrote {}", args.out.join("index.html").display());
    Ok(())
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
