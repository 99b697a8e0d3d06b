//! Statistics over a period: on-time rate, open and overdue by
//! sub-district, community, category or grid, as a chart and a table, and
//! as CSV for the district's own reports.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use fieldgrid_protocol::{Role, Stats, StatsResponse};
use serde::Deserialize;

use super::incidents::Names;
use super::{Chrome, PageResult, User, render};
use crate::AppState;
use crate::service::Period;

/// The form: period and what to group by.
#[derive(Debug, Default, Deserialize)]
pub struct StatsQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    by: String,
}

/// What the figures are grouped by.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    SubDistrict,
    Community,
    Category,
    Grid,
}

impl By {
    const ALL: [By; 4] = [By::SubDistrict, By::Community, By::Category, By::Grid];

    fn parse(s: &str) -> By {
        By::ALL.into_iter().find(|b| b.code() == s).unwrap_or(By::SubDistrict)
    }

    fn code(self) -> &'static str {
        match self {
            By::SubDistrict => "sub_district",
            By::Community => "community",
            By::Category => "category",
            By::Grid => "grid",
        }
    }

    fn label(self) -> &'static str {
        match self {
            By::SubDistrict => "街道",
            By::Community => "社区",
            By::Category => "事件类别",
            By::Grid => "网格",
        }
    }

    fn rows(self, s: StatsResponse) -> Vec<Stats> {
        match self {
            By::SubDistrict => s.sub_districts,
            By::Community => s.communities,
            By::Category => s.categories,
            By::Grid => s.grids,
        }
    }
}

/// A row as shown and exported.
pub struct Line {
    name: String,
    within: String,
    reported: u64,
    open: u64,
    overdue: u64,
    finished_with_deadline: u64,
    finished_on_time: u64,
    /// `98.5%`.
    rate: String,
}

/// A bar of the chart (SVG coordinates computed here).
pub struct Bar {
    name: String,
    rate: String,
    y: usize,
    width: usize,
    text_y: usize,
    low: bool,
}

#[derive(Template)]
#[template(path = "console/stats.html")]
struct StatsPage {
    chrome: Chrome,
    from: String,
    to: String,
    by_label: &'static str,
    groupings: Vec<(&'static str, &'static str, bool)>,
    lines: Vec<Line>,
    total: Line,
    bars: Vec<Bar>,
    chart_height: usize,
    chart_note: String,
    csv: String,
}

/// The period asked for, or the last twelve months to this one.
fn period_of(q: &StatsQuery, now: i64) -> Result<Period, crate::error::ApiError> {
    let this_month = crate::records::month_of(now);
    let from = if q.from.is_empty() {
        chrono::NaiveDate::parse_from_str(&format!("{this_month}-01"), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.checked_sub_months(chrono::Months::new(11)))
            .map_or_else(|| this_month.clone(), |d| d.format("%Y-%m").to_string())
    } else {
        q.from.clone()
    };
    let to = if q.to.is_empty() { this_month } else { q.to.clone() };
    Period::parse(Some(&from), Some(&to))
}

async fn lines_of(state: &AppState, q: &StatsQuery) -> Result<(Period, By, Vec<Line>, Line), crate::error::ApiError> {
    let period = period_of(q, state.now_ms())?;
    let by = By::parse(&q.by);
    let stats = state.store.stats(&period, state.now_ms()).await?;
    let names = Names::load(state).await?;
    let rate = |fwd: u64, fot: u64| {
        if fwd == 0 {
            "—".to_owned()
        } else {
            format!("{:.1}%", fot as f64 * 100.0 / fwd as f64)
        }
    };
    let mut total = Line {
        name: "合计".to_owned(),
        within: String::new(),
        reported: 0,
        open: 0,
        overdue: 0,
        finished_with_deadline: 0,
        finished_on_time: 0,
        rate: String::new(),
    };
    let lines: Vec<Line> = by
        .rows(stats)
        .into_iter()
        .map(|s| {
            total.reported += s.reported;
            total.open += s.open;
            total.overdue += s.overdue;
            total.finished_with_deadline += s.finished_with_deadline;
            total.finished_on_time += s.finished_on_time;
            Line {
                name: match by {
                    By::Category => names.category(&s.key),
                    By::Grid => names.grid(&s.key),
                    _ => s.key.clone(),
                },
                within: s.within.clone().unwrap_or_default(),
                reported: s.reported,
                open: s.open,
                overdue: s.overdue,
                finished_with_deadline: s.finished_with_deadline,
                finished_on_time: s.finished_on_time,
                rate: rate(s.finished_with_deadline, s.finished_on_time),
            }
        })
        .collect();
    total.rate = rate(total.finished_with_deadline, total.finished_on_time);
    Ok((period, by, lines, total))
}

/// Bars of the chart: every row, or the 30 lowest on-time rates when there
/// are more (973 grids do not fit a chart; the table has them all).
fn bars_of(lines: &[Line]) -> (Vec<Bar>, String) {
    const MAX: usize = 30;
    let mut ranked: Vec<(&Line, f64)> = lines
        .iter()
        .filter(|l| l.finished_with_deadline > 0)
        .map(|l| (l, l.finished_on_time as f64 / l.finished_with_deadline as f64))
        .collect();
    let note = if ranked.len() > MAX {
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        ranked.truncate(MAX);
        format!("按期办结率最低的 {MAX} 个（共 {} 个，全部见下表）", lines.len())
    } else {
        "按期办结率".to_owned()
    };
    let bars = ranked
        .into_iter()
        .enumerate()
        .map(|(i, (l, r))| Bar {
            name: l.name.clone(),
            rate: l.rate.clone(),
            y: i * 26,
            text_y: i * 26 + 15,
            width: (r * 500.0).round() as usize,
            low: r < 0.9,
        })
        .collect();
    (bars, note)
}

/// `GET /console/stats?from=YYYY-MM&to=YYYY-MM&by=`.
pub async fn page(State(state): State<Arc<AppState>>, user: User, Query(q): Query<StatsQuery>) -> PageResult {
    user.require(&[Role::Operator])?;
    let (period, by, lines, total) = lines_of(&state, &q).await?;
    let (bars, chart_note) = bars_of(&lines);
    let from = period.from.clone().unwrap_or_default();
    let to = period.to.clone().unwrap_or_default();
    let csv = format!(
        "/console/stats.csv?{}",
        super::query_string([("from", from.as_str()), ("to", to.as_str()), ("by", by.code())])
    );
    render(&StatsPage {
        chrome: user.chrome("统计", "/console/stats"),
        by_label: by.label(),
        groupings: By::ALL.iter().map(|b| (b.code(), b.label(), *b == by)).collect(),
        chart_height: bars.len() * 26 + 4,
        lines,
        total,
        bars,
        chart_note,
        csv,
        from,
        to,
    })
}

/// One CSV field: quoted when it needs to be, and never read as a formula
/// by a spreadsheet (a leading `=`, `+`, `-`, `@` gets a `'`).
pub(super) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /console/stats.csv`: the same table, UTF-8 with a byte-order mark
/// (so that Excel reads the Chinese).
pub async fn csv(State(state): State<Arc<AppState>>, user: User, Query(q): Query<StatsQuery>) -> PageResult {
    user.require(&[Role::Operator])?;
    let (period, by, lines, total) = lines_of(&state, &q).await?;
    let mut out = String::from("\u{feff}");
    out.push_str(&format!(
        "{},所属,上报,在办,超期,有期限办结,按期办结,按期办结率\r\n",
        by.label()
    ));
    for l in lines.iter().chain(std::iter::once(&total)) {
        let row = [
            csv_field(&l.name),
            csv_field(&l.within),
            l.reported.to_string(),
            l.open.to_string(),
            l.overdue.to_string(),
            l.finished_with_deadline.to_string(),
            l.finished_on_time.to_string(),
            l.rate.clone(),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    let name = format!(
        "fieldgrid-stats-{}-{}-{}.csv",
        by.code(),
        period.from.unwrap_or_default(),
        period.to.unwrap_or_default()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("黄河路街道"), "黄河路街道");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
