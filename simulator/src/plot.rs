//! SVG plots (plotters' SVG backend: text is written as `<text>` elements,
//! so no system font is needed) and the HTML page that shows them.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::scenario::{DAY_MS, Model};
use crate::stats::{BreachKind, OffsetRow, Stats};

/// A plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {what}")]
pub struct PlotError {
    what: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn failed<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl Fn(E) -> PlotError {
    move |e| PlotError {
        what,
        source: Box::new(e),
    }
}

const SIZE: (u32, u32) = (900, 520);
const FONT: &str = "sans-serif";

/// Split points into runs whose x values are at most `gap` apart, so that
/// a line does not bridge an empty stretch.
fn runs(points: &[(f64, f64)], gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in points {
        match out.last_mut() {
            Some(run) if run.last().is_some_and(|q| p.0 - q.0 <= gap) => run.push(*p),
            _ => out.push(vec![*p]),
        }
    }
    out
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    }
}

/// Bins with fewer logins than this are drawn hollow and grey in the
/// acceptance plot: their share can swing by a whole login's worth.
pub const MIN_BIN_LOGINS: u64 = 10;

/// `all` minus `part`, bin by bin (both from the same run, so every bin of
/// `part` is in `all`).
pub fn rows_without(all: &[OffsetRow], part: &[OffsetRow]) -> Vec<OffsetRow> {
    all.iter()
        .filter_map(|r| {
            let p = part.iter().find(|p| (p.offset_s - r.offset_s).abs() < 1e-9);
            let Some(p) = p else { return Some(*r) };
            let logins = r.logins.saturating_sub(p.logins);
            if logins == 0 {
                return None;
            }
            let count = |rate: f64, n: u64| (rate * n as f64).round();
            let first =
                count(r.first_try_accept_rate, r.logins) - count(p.first_try_accept_rate, p.logins);
            let eventual =
                count(r.eventual_accept_rate, r.logins) - count(p.eventual_accept_rate, p.logins);
            Some(OffsetRow {
                offset_s: r.offset_s,
                logins,
                first_try_accept_rate: first.max(0.0) / logins as f64,
                eventual_accept_rate: eventual.max(0.0) / logins as f64,
            })
        })
        .collect()
}

/// First-try and eventual acceptance against the phone's clock offset:
/// the users whose accounts are not brute-forced (`rows` minus
/// `attacked`) as lines, the brute-forced accounts apart as triangles,
/// and bins of fewer than [`MIN_BIN_LOGINS`] logins hollow and grey.
/// Phones hours out ([`HOURS_OUT_MS`](crate::sim::HOURS_OUT_MS)) are left
/// out: the report counts them apart.
///
/// # Errors
///
/// [`PlotError`] if the file cannot be written.
pub fn acceptance_vs_offset(
    path: &Path,
    rows: &[OffsetRow],
    attacked: &[OffsetRow],
    bin_s: f64,
) -> Result<(), PlotError> {
    const WHAT: &str = "the acceptance plot";
    // Phones hours out are counted apart (no window reaches them); drawn
    // here they would squeeze every other bin into one column.
    let near = |r: &&OffsetRow| r.offset_s.abs() * 1000.0 < crate::sim::HOURS_OUT_MS;
    let rows: Vec<OffsetRow> = rows.iter().filter(near).copied().collect();
    let attacked: Vec<OffsetRow> = attacked.iter().filter(near).copied().collect();
    let (rows, attacked) = (&rows[..], &attacked[..]);
    let rest = rows_without(rows, attacked);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(failed(WHAT))?;
    let xs = rest.iter().chain(attacked).map(|r| r.offset_s);
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() {
        padded(lo, hi)
    } else {
        (-1.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption("Logins accepted by phone clock offset", (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0f64..1.05f64)
        .map_err(failed(WHAT))?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "phone clock offset at login (s, + = ahead; {bin_s} s bins; hollow grey: fewer than {MIN_BIN_LOGINS} logins)"
        ))
        .y_desc("share of logins accepted")
        .draw()
        .map_err(failed(WHAT))?;
    type Rate = fn(&OffsetRow) -> f64;
    let series: [(&str, RGBColor, Rate); 2] = [
        ("first try", BLUE, |r| r.first_try_accept_rate),
        ("within the retries", RED, |r| r.eventual_accept_rate),
    ];
    let grey = RGBColor(150, 150, 150);
    for (label, color, value) in series {
        let (big, small): (Vec<&OffsetRow>, Vec<&OffsetRow>) =
            rest.iter().partition(|r| r.logins >= MIN_BIN_LOGINS);
        let points: Vec<(f64, f64)> = big.iter().map(|r| (r.offset_s, value(r))).collect();
        for run in runs(&points, bin_s * 1.5) {
            chart
                .draw_series(LineSeries::new(run, color))
                .map_err(failed(WHAT))?;
        }
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(failed(WHAT))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        chart
            .draw_series(
                small
                    .iter()
                    .map(|r| Circle::new((r.offset_s, value(r)), 3, grey.stroke_width(1))),
            )
            .map_err(failed(WHAT))?;
        let mark = if color == BLUE {
            RGBColor(0, 160, 160)
        } else {
            RGBColor(200, 120, 0)
        };
        let mine: Vec<(f64, f64)> = attacked
            .iter()
            .filter(|r| r.logins >= MIN_BIN_LOGINS)
            .map(|r| (r.offset_s, value(r)))
            .collect();
        if !attacked.is_empty() {
            chart
                .draw_series(
                    mine.iter()
                        .map(|p| TriangleMarker::new(*p, 5, mark.filled())),
                )
                .map_err(failed(WHAT))?
                .label(format!("{label}, brute-forced accounts"))
                .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 5, mark.filled()));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(failed(WHAT))?;
    root.present().map_err(failed(WHAT))
}

/// Learned against true offset of the sampled users over the days.
///
/// # Errors
///
/// [`PlotError`] if the file cannot be written.
pub fn drift_over_days(path: &Path, stats: &Stats, days: u32) -> Result<(), PlotError> {
    const WHAT: &str = "the drift plot";
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(failed(WHAT))?;
    let samples = &stats.drift_samples;
    let values = samples
        .iter()
        .flat_map(|s| [s.true_offset_s, s.learned_offset_s]);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if samples.is_empty() {
        (-1.0, 1.0)
    } else {
        padded(lo, hi)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Learned offset (points) against true offset (lines), sampled users",
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..f64::from(days.max(1)), lo..hi)
        .map_err(failed(WHAT))?;
    chart
        .configure_mesh()
        .x_desc("day")
        .y_desc("offset (s, + = phone ahead)")
        .draw()
        .map_err(failed(WHAT))?;
    let mut users: Vec<u32> = samples.iter().map(|s| s.user).collect();
    users.dedup();
    for (i, user) in users.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mine: Vec<_> = samples.iter().filter(|s| s.user == *user).collect();
        chart
            .draw_series(LineSeries::new(
                mine.iter().map(|s| (s.day, s.true_offset_s)),
                color,
            ))
            .map_err(failed(WHAT))?
            .label(format!("user {user}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                mine.iter()
                    .map(|s| Cross::new((s.day, s.learned_offset_s), 3, color)),
            )
            .map_err(failed(WHAT))?;
    }
    if !users.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(failed(WHAT))?;
    }
    root.present().map_err(failed(WHAT))
}

/// Cumulative share of attacked accounts breached, against the analytic
/// bound, over the campaign.
///
/// # Errors
///
/// [`PlotError`] if the file cannot be written.
pub fn attacks_over_time(path: &Path, stats: &Stats, model: &Model) -> Result<(), PlotError> {
    const WHAT: &str = "the attack plot";
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(failed(WHAT))?;
    let days = f64::from(model.days.max(1));
    let steps = 200;
    type Line = (String, RGBColor, Vec<(f64, f64)>);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(b) = &model.brute_force {
        let accounts = stats.attacked.len().max(1) as f64;
        let start_day = b.start_ms as f64 / DAY_MS as f64;
        let end_day = b.end_ms as f64 / DAY_MS as f64;
        let mut wins: Vec<f64> = stats
            .attacked
            .iter()
            .filter_map(|a| a.success_day)
            .map(|d| d + start_day)
            .collect();
        wins.sort_by(f64::total_cmp);
        let observed = (0..=steps)
            .map(|i| {
                let day = days * f64::from(i) / f64::from(steps);
                let n = wins.iter().filter(|w| **w <= day).count();
                (day, n as f64 / accounts)
            })
            .collect();
        lines.push(("accounts guessed (share)".into(), RED, observed));
        let window = model.config.window();
        let bound = (0..=steps)
            .map(|i| {
                let day = days * f64::from(i) / f64::from(steps);
                let span = (day.min(end_day) - start_day).max(0.0);
                let b = crate::analytic::guess_success_bound(
                    &model.config.throttle(),
                    Duration::from_secs_f64(span * 86_400.0),
                    window.width(),
                    model.params().digits(),
                );
                (day, if span > 0.0 { b } else { 0.0 })
            })
            .collect();
        lines.push(("analytic bound per account".into(), BLACK, bound));
    }
    // Accepted attacks of one kind per victim, cumulated over the days.
    let per_victim = |kind: BreachKind, victims: usize| -> Vec<(f64, f64)> {
        let victims = victims.max(1) as f64;
        let days_in: Vec<f64> = stats
            .breaches
            .iter()
            .filter(|b| b.kind == kind)
            .map(|b| b.day)
            .collect();
        (0..=steps)
            .map(|i| {
                let day = days * f64::from(i) / f64::from(steps);
                let n = days_in.iter().filter(|d| **d <= day).count();
                (day, n as f64 / victims)
            })
            .collect()
    };
    if let Some(r) = &model.replay {
        let observed = per_victim(BreachKind::Replay, r.victims.len());
        lines.push(("replays accepted (per victim)".into(), BLUE, observed));
    }
    if let Some(r) = &model.shoulder_surfer {
        let observed = per_victim(BreachKind::ShoulderSurf, r.victims.len());
        let label = "shoulder-surfed codes accepted (per victim)";
        lines.push((label.into(), MAGENTA, observed));
    }
    if let Some(c) = &model.co_enroller {
        let observed = per_victim(BreachKind::CoEnroll, c.victims.len());
        let label = "enrollments taken over (per victim)";
        lines.push((label.into(), GREEN, observed));
    }
    let top = lines
        .iter()
        .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1e-3 };
    let caption = if lines.is_empty() {
        "Attacks over time (no attacker in this scenario)"
    } else {
        "Attacks over time"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..days, 0f64..top)
        .map_err(failed(WHAT))?;
    chart
        .configure_mesh()
        .x_desc("day")
        .y_desc("share")
        .draw()
        .map_err(failed(WHAT))?;
    for (label, color, points) in &lines {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(failed(WHAT))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    if !lines.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(failed(WHAT))?;
    }
    root.present().map_err(failed(WHAT))
}

/// One setting of `totp-sim recommend` in the Pareto plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoPoint {
    /// Correct codes refused.
    pub false_reject_rate: f64,
    /// The brute-force bound.
    pub attacker_odds: f64,
    /// Whether it meets both bounds.
    pub meets: bool,
}

/// False rejects against attacker odds, one point per setting tried, the
/// two bounds as grey lines and the recommended setting ringed.
///
/// # Errors
///
/// [`PlotError`] if the file cannot be written.
pub fn pareto(
    path: &Path,
    points: &[ParetoPoint],
    bounds: (f64, f64),
    chosen: Option<(f64, f64)>,
) -> Result<(), PlotError> {
    const WHAT: &str = "the Pareto plot";
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(failed(WHAT))?;
    // Both axes are logarithmic: the settings span orders of magnitude. A
    // rate of 0 (no false reject seen) sits on the floor, a tenth of the
    // smallest value seen or of the bound.
    let floor = |vals: &mut dyn Iterator<Item = f64>, bound: f64| {
        vals.filter(|v| *v > 0.0).fold(bound, f64::min).max(1e-12) / 10.0
    };
    let x_lo = floor(&mut points.iter().map(|p| p.false_reject_rate), bounds.0);
    let y_lo = floor(&mut points.iter().map(|p| p.attacker_odds), bounds.1);
    let x_hi = points
        .iter()
        .map(|p| p.false_reject_rate)
        .fold(bounds.0 * 2.0, f64::max)
        * 1.5;
    let y_hi = points
        .iter()
        .map(|p| p.attacker_odds)
        .fold(bounds.1 * 2.0, f64::max)
        * 1.5;
    let at = |x: f64, y: f64| (x.max(x_lo), y.max(y_lo));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Every setting tried: false rejects against attacker odds",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
        .map_err(failed(WHAT))?;
    chart
        .configure_mesh()
        .x_desc(
            "share of correct codes refused, phones not hours out (log; 0 drawn at the left edge)",
        )
        .y_desc("chance a guesser gets into one account (log)")
        .x_label_formatter(&|v| format_value(*v))
        .y_label_formatter(&|v| format_value(*v))
        .draw()
        .map_err(failed(WHAT))?;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(LineSeries::new(
            [(bounds.0, y_lo), (bounds.0, y_hi)],
            grey.stroke_width(1),
        ))
        .map_err(failed(WHAT))?
        .label("bounds")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    chart
        .draw_series(LineSeries::new(
            [(x_lo, bounds.1), (x_hi, bounds.1)],
            grey.stroke_width(1),
        ))
        .map_err(failed(WHAT))?;
    let green = RGBColor(0, 150, 0);
    for (meets, color, label) in [(true, green, "meets both"), (false, RED, "breaks a bound")] {
        let mine: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.meets == meets)
            .map(|p| at(p.false_reject_rate, p.attacker_odds))
            .collect();
        chart
            .draw_series(mine.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(failed(WHAT))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    if let Some(p) = chosen {
        chart
            .draw_series(std::iter::once(Circle::new(
                at(p.0, p.1),
                9,
                BLACK.stroke_width(2),
            )))
            .map_err(failed(WHAT))?
            .label("recommended")
            .legend(|(x, y)| Circle::new((x + 10, y), 6, BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(failed(WHAT))?;
    root.present().map_err(failed(WHAT))
}

/// A colour from dark blue (0) through green to yellow (1).
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, (f64, f64, f64)); 4] = [
        (0.0, (68.0, 1.0, 84.0)),
        (0.35, (49.0, 104.0, 142.0)),
        (0.7, (53.0, 183.0, 121.0)),
        (1.0, (253.0, 231.0, 37.0)),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut prev = STOPS[0];
    for stop in STOPS {
        if t <= stop.0 {
            let span = (stop.0 - prev.0).max(1e-9);
            let w = (t - prev.0) / span;
            let mix = |a: f64, b: f64| (a + (b - a) * w).round().clamp(0.0, 255.0) as u8;
            return RGBColor(
                mix(prev.1.0, stop.1.0),
                mix(prev.1.1, stop.1.1),
                mix(prev.1.2, stop.1.2),
            );
        }
        prev = stop;
    }
    RGBColor(253, 231, 37)
}

/// A heat map of `values[y][x]`, labelled with the values.
///
/// # Errors
///
/// [`PlotError`] if the file cannot be written.
pub fn heatmap(
    path: &Path,
    title: &str,
    x: (&str, &[String]),
    y: (&str, &[String]),
    values: &[Vec<f64>],
) -> Result<(), PlotError> {
    const WHAT: &str = "the heat map";
    let (nx, ny) = (x.1.len().max(1), y.1.len().max(1));
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(failed(WHAT))?;
    let flat = values.iter().flatten().copied().filter(|v| v.is_finite());
    let lo = flat.clone().fold(f64::INFINITY, f64::min);
    let hi = flat.fold(f64::NEG_INFINITY, f64::max);
    let (lo, span) = if lo.is_finite() && hi > lo {
        (lo, hi - lo)
    } else {
        // One value everywhere: the middle of the ramp.
        (if lo.is_finite() { lo - 0.5 } else { 0.0 }, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5..nx as f64 - 0.5, -0.5..ny as f64 - 0.5)
        .map_err(failed(WHAT))?;
    // Cells are centred on whole numbers; only those get a label.
    let label = |labels: &[String], v: &f64| {
        let i = v.round();
        if (v - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        labels.get(i as usize).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(nx)
        .y_labels(ny)
        .x_desc(x.0)
        .y_desc(y.0)
        .x_label_formatter(&|v| label(x.1, v))
        .y_label_formatter(&|v| label(y.1, v))
        .draw()
        .map_err(failed(WHAT))?;
    let centred = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    for (j, row) in values.iter().enumerate() {
        for (i, v) in row.iter().enumerate() {
            let (i, j) = (i as f64, j as f64);
            let t = (v - lo) / span;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(i - 0.5, j - 0.5), (i + 0.5, j + 0.5)],
                    ramp(t).filled(),
                )))
                .map_err(failed(WHAT))?;
            let ink = if t > 0.6 { BLACK } else { WHITE };
            chart
                .draw_series(std::iter::once(Text::new(
                    format_value(*v),
                    (i, j),
                    centred.color(&ink),
                )))
                .map_err(failed(WHAT))?;
        }
    }
    root.present().map_err(failed(WHAT))
}

/// A value with about four significant digits.
pub fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else if v.abs() >= 1e-3 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}
