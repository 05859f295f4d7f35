//! `totp-sim sweep`: run a scenario over a grid of one or two parameters
//! and draw a heat map of one metric.
//!
//! Parameters are the keys of [`crate::overrides`] (dotted paths or
//! aliases such as `window` and `spread`); the metric is any number in
//! `report.json` (default `eventual_accept_rate`).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::output::{self, OutputError};
use crate::overrides::parse_value;
use tower_totp::http::pages::escape as html_escape;

use crate::plot::{self, format_value};
use crate::run::{RunOptions, SimError, run};
use crate::scenario::{Scenario, ScenarioError};
use crate::stats::Report;

/// The grid.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// The first parameter (x axis).
    pub param: String,
    /// Its values, as typed.
    pub values: Vec<String>,
    /// The second parameter (y axis), if any.
    pub param2: Option<String>,
    /// Its values.
    pub values2: Vec<String>,
    /// The metric of the heat map.
    pub metric: String,
}

/// One point of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// The first parameter's value.
    pub value: String,
    /// The second parameter's value, if any.
    pub value2: Option<String>,
    /// The metric.
    pub metric: f64,
    /// The full report.
    pub report: Report,
}

/// The grid's results.
#[derive(Debug, Clone, Serialize)]
pub struct SweepResult {
    /// The first parameter.
    pub param: String,
    /// The second parameter, if any.
    pub param2: Option<String>,
    /// The metric.
    pub metric: String,
    /// Every point, the first parameter varying fastest.
    pub points: Vec<SweepPoint>,
}

/// A sweep could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// A scenario of the grid is invalid.
    #[error("at {at}")]
    Scenario {
        /// The grid point.
        at: String,
        /// Why.
        #[source]
        source: Box<ScenarioError>,
    },
    /// A run failed.
    #[error("run failed at {at}")]
    Run {
        /// The grid point.
        at: String,
        /// Why.
        #[source]
        source: SimError,
    },
    /// The metric is not a number in the report.
    #[error("unknown metric `{0}`: use a numeric field of report.json")]
    Metric(String),
    /// No values to sweep.
    #[error("no values for `{0}`")]
    NoValues(String),
}

/// The value of numeric field `metric` of `report`.
pub fn metric_of(report: &Report, metric: &str) -> Option<f64> {
    serde_json::to_value(report).ok()?.get(metric)?.as_f64()
}

/// Run the grid. `prepare` adjusts each scenario after the overrides
/// (users, days and seed from the command line).
///
/// # Errors
///
/// [`SweepError`] for the first grid point that cannot run.
pub fn sweep(
    path: &Path,
    base: &[(String, toml::Value)],
    spec: &SweepSpec,
    options: &RunOptions,
    prepare: &dyn Fn(&mut Scenario),
    mut on_point: impl FnMut(&SweepPoint),
) -> Result<SweepResult, SweepError> {
    if spec.values.is_empty() {
        return Err(SweepError::NoValues(spec.param.clone()));
    }
    let ys: Vec<Option<&String>> = match &spec.param2 {
        Some(p) if spec.values2.is_empty() => return Err(SweepError::NoValues(p.clone())),
        Some(_) => spec.values2.iter().map(Some).collect(),
        None => vec![None],
    };
    let mut points = Vec::new();
    for y in &ys {
        for x in &spec.values {
            let at = match (y, &spec.param2) {
                (Some(y), Some(p2)) => format!("{}={x}, {p2}={y}", spec.param),
                _ => format!("{}={x}", spec.param),
            };
            let mut overrides = base.to_vec();
            overrides.push((spec.param.clone(), parse_value(x)));
            if let (Some(y), Some(p2)) = (y, &spec.param2) {
                overrides.push((p2.clone(), parse_value(y)));
            }
            let scenario_err = |source| SweepError::Scenario {
                at: at.clone(),
                source: Box::new(source),
            };
            let mut scenario = Scenario::load_with(path, &overrides).map_err(scenario_err)?;
            prepare(&mut scenario);
            let model = scenario.model().map_err(scenario_err)?;
            let out = run(&model, options).map_err(|source| SweepError::Run {
                at: at.clone(),
                source,
            })?;
            let metric = metric_of(&out.report, &spec.metric)
                .ok_or_else(|| SweepError::Metric(spec.metric.clone()))?;
            let point = SweepPoint {
                value: x.clone(),
                value2: y.cloned(),
                metric,
                report: out.report,
            };
            on_point(&point);
            points.push(point);
        }
    }
    Ok(SweepResult {
        param: spec.param.clone(),
        param2: spec.param2.clone(),
        metric: spec.metric.clone(),
        points,
    })
}

impl SweepResult {
    /// The metric as rows (second parameter) of columns (first parameter).
    pub fn grid(&self, columns: usize) -> Vec<Vec<f64>> {
        self.points
            .chunks(columns.max(1))
            .map(|row| row.iter().map(|p| p.metric).collect())
            .collect()
    }

    /// Write `sweep.json`, `heatmap.svg` and `index.html` into `dir`.
    ///
    /// # Errors
    ///
    /// [`OutputError`] for the first file that cannot be written.
    pub fn write(&self, dir: &Path, spec: &SweepSpec, scenario: &str) -> Result<(), OutputError> {
        output::create_dir(dir)?;
        output::write(
            &dir.join("sweep.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        let grid = self.grid(spec.values.len());
        let y_values = if spec.param2.is_some() {
            spec.values2.clone()
        } else {
            vec![String::new()]
        };
        let title = format!("{}: {}", scenario, self.metric);
        plot::heatmap(
            &dir.join("heatmap.svg"),
            &title,
            (&self.param, &spec.values),
            (self.param2.as_deref().unwrap_or(""), &y_values),
            &grid,
        )?;
        output::write(
            &dir.join("index.html"),
            self.page(spec, scenario).as_bytes(),
        )
    }

    fn page(&self, spec: &SweepSpec, scenario: &str) -> String {
        let mut table = String::from("<table>\n<tr><th></th>");
        for x in &spec.values {
            let _ = write!(
                table,
                "<th>{}={}</th>",
                html_escape(&self.param),
                html_escape(x)
            );
        }
        table.push_str("</tr>\n");
        let labels: Vec<String> = match &self.param2 {
            Some(p2) => spec
                .values2
                .iter()
                .map(|y| format!("{}={}", html_escape(p2), html_escape(y)))
                .collect(),
            None => vec![String::new()],
        };
        for (label, row) in labels.iter().zip(self.grid(spec.values.len())) {
            let _ = write!(table, "<tr><th>{label}</th>");
            for v in row {
                let _ = write!(table, "<td>{}</td>", format_value(v));
            }
            table.push_str("</tr>\n");
        }
        table.push_str("</table>\n");
        output::page(
            &format!("totp-sim sweep: {scenario}"),
            &format!(
                "<p>Metric: <code>{}</code></p>\n{table}<figure><img src=\"heatmap.svg\" alt=\"heat map\"></figure>\n<p><a href=\"sweep.json\">sweep.json</a></p>",
                html_escape(&self.metric)
            ),
        )
    }
}
