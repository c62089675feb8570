//! A token's usage drawn (issue 21, item 2): the 30-day bar chart of a token's page and the
//! sparkline of a list row, as inline SVG rendered by askama templates (text escaped; everything
//! else a number computed here). No script, no external asset, no `style` attribute (the CSP
//! forbids them): colours come from classes in `assets/app.css`, and successes, writes and
//! refusals differ by shape too — solid, hatched, outlined — not by colour alone. The SVG scales
//! with its box (`viewBox`, width 100%), and the figure carries a text equivalent: a one-line
//! summary and a table of the days with calls.
//!
//! Reuse: `sparkline(&usage)` in any row, `{{ spark|safe }}` in the template (its output is an
//! askama template's: every text in it escaped).

use askama::Template;

use crate::domain::usage::{Usage, UsageDay};

/// A number in SVG coordinates, written with one decimal.
#[derive(Clone, Copy, Debug)]
struct N(f64);

impl std::fmt::Display for N {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

// The chart's box: the plot between the axis labels.
const WIDTH: f64 = 400.0;
const HEIGHT: f64 = 184.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 394.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 150.0;
/// The smallest height a segment that holds calls is drawn with, so one refusal beside a
/// thousand successes still shows.
const MIN_SEGMENT: f64 = 1.5;

/// One segment of a day's stacked bar.
struct Segment {
    class: &'static str,
    /// The pattern that fills it (writes), beside its class's colour.
    hatched: bool,
    y: N,
    height: N,
}

/// One day: its bar's segments (bottom up: other successes, writes, refusals), and what a
/// pointer over it shows.
struct Bar {
    x: N,
    width: N,
    label: String,
    segments: Vec<Segment>,
}

struct Label {
    x: N,
    anchor: &'static str,
    text: String,
}

/// A day of the text equivalent's table.
struct Row {
    date: String,
    successes: i64,
    writes: i64,
    refusals: i64,
}

/// The token page's figure: the chart, its legend, the summary and the table of days.
#[derive(Template)]
#[template(path = "usage_chart.html")]
pub(crate) struct UsageFigure {
    title: String,
    summary: String,
    width: N,
    height: N,
    left: N,
    right: N,
    top: N,
    bottom: N,
    max: i64,
    /// Where the axis's numbers sit: right-aligned left of the plot, at its top and bottom.
    tick_x: N,
    max_y: N,
    zero_y: N,
    plot_height: N,
    date_y: N,
    bars: Vec<Bar>,
    dates: Vec<Label>,
    rows: Vec<Row>,
}

/// A list row's sparkline: calls per day over the 30 days, labelled with its summary.
#[derive(Template)]
#[template(path = "sparkline.html")]
pub(crate) struct Sparkline {
    label: String,
    short: String,
    /// Each day with calls: x, y and height.
    bars: Vec<(N, N, N)>,
}

/// "42 calls in 30 days: 40 successes (5 writes), 2 refusals." — the text the charts are
/// labelled with.
pub(crate) fn summary(usage: &Usage) -> String {
    let calls = usage.calls();
    if calls == 0 {
        return "No calls in the last 30 days.".to_owned();
    }
    let busiest = usage
        .days
        .iter()
        .max_by_key(|d| (d.successes + d.refusals, std::cmp::Reverse(d.date.clone())))
        .map(|d| {
            format!(
                " Busiest day: {} with {}.",
                d.date,
                calls_word(d.successes + d.refusals)
            )
        })
        .unwrap_or_default();
    format!(
        "{} in the last 30 days: {} ({} {}), {}.{busiest}",
        calls_word(calls),
        plural(usage.successes, "success", "successes"),
        usage.writes,
        if usage.writes == 1 { "write" } else { "writes" },
        plural(usage.refusals, "refusal", "refusals"),
    )
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn calls_word(n: i64) -> String {
    plural(n, "call", "calls")
}

/// "Nov 14" for "2023-11-14".
fn short_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = date
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    match (month, date.get(8..10)) {
        (Some(m), Some(d)) => format!("{m} {}", d.trim_start_matches('0')),
        _ => date.to_owned(),
    }
}

fn day_label(d: &UsageDay) -> String {
    format!(
        "{}: {}, {} ({} {}), {}",
        d.date,
        calls_word(d.successes + d.refusals),
        plural(d.successes, "success", "successes"),
        d.writes,
        if d.writes == 1 { "write" } else { "writes" },
        plural(d.refusals, "refusal", "refusals"),
    )
}

/// The token page's figure for `usage`, titled for the token `name`.
pub(crate) fn figure(usage: &Usage, name: &str) -> UsageFigure {
    let max = usage
        .days
        .iter()
        .map(|d| d.successes + d.refusals)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (RIGHT - LEFT) / usage.days.len().max(1) as f64;
    let scale = (BOTTOM - TOP) / max as f64;
    let bars = usage
        .days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut parts: Vec<(f64, &'static str, bool)> = [
                (d.successes - d.writes, "u-success", false),
                (d.writes, "u-write", true),
                (d.refusals, "u-refusal", false),
            ]
            .into_iter()
            .filter(|(count, ..)| *count > 0)
            .map(|(count, class, hatched)| ((count as f64 * scale).max(MIN_SEGMENT), class, hatched))
            .collect();
            // A small segment raised to its minimum is taken from the tallest one, so the bar
            // stays inside the plot.
            let over = parts.iter().map(|p| p.0).sum::<f64>() - (BOTTOM - TOP);
            if over > 0.0
                && let Some(tallest) = parts.iter_mut().max_by(|a, b| a.0.total_cmp(&b.0))
            {
                tallest.0 -= over;
            }
            let mut y = BOTTOM;
            let segments = parts
                .into_iter()
                .map(|(h, class, hatched)| {
                    y -= h;
                    Segment {
                        class,
                        hatched,
                        y: N(y),
                        height: N(h),
                    }
                })
                .collect();
            Bar {
                x: N(LEFT + i as f64 * slot + slot * 0.15),
                width: N(slot * 0.7),
                label: day_label(d),
                segments,
            }
        })
        .collect::<Vec<_>>();
    let last = usage.days.len().saturating_sub(1);
    let dates = [(0, "start"), (last / 2, "middle"), (last, "end")]
        .into_iter()
        .filter_map(|(i, anchor)| {
            let d = usage.days.get(i)?;
            let x = match anchor {
                "start" => LEFT,
                "end" => RIGHT,
                _ => LEFT + (i as f64 + 0.5) * slot,
            };
            Some(Label {
                x: N(x),
                anchor,
                text: short_date(&d.date),
            })
        })
        .collect();
    UsageFigure {
        title: format!("Calls per day of the token “{name}”, the last 30 days (UTC)"),
        summary: summary(usage),
        width: N(WIDTH),
        height: N(HEIGHT),
        left: N(LEFT),
        right: N(RIGHT),
        top: N(TOP),
        bottom: N(BOTTOM),
        max,
        tick_x: N(LEFT - 5.0),
        max_y: N(TOP + 5.0),
        zero_y: N(BOTTOM + 4.0),
        plot_height: N(BOTTOM - TOP),
        date_y: N(BOTTOM + 22.0),
        bars,
        dates,
        rows: usage
            .days
            .iter()
            .filter(|d| d.successes + d.refusals > 0)
            .map(|d| Row {
                date: d.date.clone(),
                successes: d.successes,
                writes: d.writes,
                refusals: d.refusals,
            })
            .collect(),
    }
}

/// A list row's sparkline for `usage`.
pub(crate) fn sparkline(usage: &Usage) -> Sparkline {
    let max = usage
        .days
        .iter()
        .map(|d| d.successes + d.refusals)
        .max()
        .unwrap_or(0)
        .max(1);
    let bars = usage
        .days
        .iter()
        .enumerate()
        .filter(|(_, d)| d.successes + d.refusals > 0)
        .map(|(i, d)| {
            let h = ((d.successes + d.refusals) as f64 * 20.0 / max as f64).max(1.5);
            (N(i as f64 * 4.0 + 0.5), N(22.0 - h), N(h))
        })
        .collect();
    let calls = usage.calls();
    Sparkline {
        label: format!(
            "{} in 30 days ({} refused, {} {})",
            calls_word(calls),
            usage.refusals,
            usage.writes,
            if usage.writes == 1 { "write" } else { "writes" }
        ),
        short: calls_word(calls),
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::usage::{Tally, day_of};

    fn usage() -> Usage {
        let today = day_of(1_700_000_000_000);
        let t = |s, r, w| Tally {
            successes: s,
            refusals: r,
            writes: w,
        };
        Usage::window(today, [(today, t(4, 2, 1)), (today - 3, t(1000, 1, 0))])
    }

    #[test]
    fn the_summary_counts_every_call_and_names_the_busiest_day() {
        assert_eq!(
            summary(&usage()),
            "1007 calls in the last 30 days: 1004 successes (1 write), 3 refusals. Busiest day: 2023-11-11 with 1001 calls."
        );
        assert_eq!(summary(&Usage::window(0, [])), "No calls in the last 30 days.");
    }

    #[test]
    fn a_small_segment_still_shows_and_no_bar_leaves_the_plot() {
        let f = figure(&usage(), "a <b> name");
        let busy = &f.bars[26];
        assert_eq!(busy.segments.len(), 2);
        assert!(
            busy.segments
                .iter()
                .all(|s| s.height.0 >= MIN_SEGMENT && s.y.0 >= TOP - 1e-9)
        );
        let html = f.render().unwrap();
        assert!(html.contains("a &#60;b&#62; name"), "the name is escaped");
        assert!(!html.contains("style="), "no inline style (the CSP forbids it)");
        assert_eq!(f.rows.len(), 2, "the table lists the days with calls");
        assert_eq!(short_date("2023-11-04"), "Nov 4");
    }

    #[test]
    fn a_sparkline_is_labelled_with_its_total() {
        let s = sparkline(&usage());
        assert_eq!(s.label, "1007 calls in 30 days (3 refused, 1 write)");
        assert_eq!(s.bars.len(), 2);
        assert!(s.render().unwrap().contains("role=\"img\""));
    }
}
