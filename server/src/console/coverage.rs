//! Visit coverage: of the residents a visit rule of the catalogue covers,
//! those visited on time, late, missed or still pending in a period, by
//! sub-district and by grid (`Store::coverage`, what the JSON report gives).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use fieldgrid_protocol::{Coverage, Role};
use serde::Deserialize;

use super::incidents::Names;
use super::{Chrome, PageResult, User, render};
use crate::AppState;
use crate::error::ApiError;

/// The form: which rule, which period (a day in it).
#[derive(Debug, Default, Deserialize)]
pub struct CoverageQuery {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    at: String,
}

/// A row as shown.
pub struct Line {
    name: String,
    within: String,
    residents: u64,
    on_time: u64,
    late: u64,
    missed: u64,
    pending: u64,
    /// `98.5%`.
    rate: String,
}

impl Line {
    fn of(name: String, c: &Coverage) -> Line {
        Line {
            name,
            within: c.within.clone().unwrap_or_default(),
            residents: c.residents,
            on_time: c.on_time,
            late: c.late,
            missed: c.missed,
            pending: c.pending,
            rate: if c.residents == 0 {
                "—".to_owned()
            } else {
                format!("{:.1}%", c.on_time_rate * 100.0)
            },
        }
    }
}

#[derive(Template)]
#[template(path = "console/coverage.html")]
struct CoveragePage {
    chrome: Chrome,
    csv: String,
    rules: Vec<(String, String, bool)>,
    rule_name: String,
    at: String,
    period: String,
    sub_districts: Vec<Line>,
    grids: Vec<Line>,
    total: Line,
}

/// The report asked for, read for the page and the CSV.
struct Report {
    catalogue: fieldgrid_domain::Catalogue,
    rule: String,
    at: Option<chrono::NaiveDate>,
    coverage: fieldgrid_protocol::CoverageResponse,
}

async fn report_of(state: &AppState, q: &CoverageQuery) -> Result<Report, ApiError> {
    let catalogue = state.store.catalogue().await?;
    let rule = match q.rule.as_str() {
        "" => catalogue
            .visit_rules
            .iter()
            .find(|r| r.applies())
            .ok_or_else(|| ApiError::not_found("the catalogue has no visit rules"))?,
        code => catalogue
            .visit_rule(code)
            .ok_or_else(|| ApiError::not_found("no visit rule of the catalogue in force has this code"))?,
    };
    let at = crate::centre::day_of(Some(&q.at))?;
    let coverage = state.store.coverage(&rule.code, at, state.now_ms()).await?;
    let rule = rule.code.clone();
    Ok(Report {
        catalogue,
        rule,
        at,
        coverage,
    })
}

/// `GET /console/coverage?rule=CODE&at=YYYY-MM-DD`: the first rule and
/// today unless asked.
pub async fn page(State(state): State<Arc<AppState>>, user: User, Query(q): Query<CoverageQuery>) -> PageResult {
    user.require(&[Role::Operator])?;
    let Report {
        catalogue,
        rule,
        at,
        coverage: report,
    } = report_of(&state, &q).await?;
    let rule = catalogue
        .visit_rule(&rule)
        .ok_or_else(|| ApiError::internal("the rule left the catalogue"))?;
    let names = Names::load(&state).await?;
    let day = |ms: i64| fieldgrid_domain::visits::china_date(ms).to_string();
    let at_text = at.map_or_else(|| day(state.now_ms()), |d| d.to_string());
    render(&CoveragePage {
        chrome: user.chrome("走访覆盖", "/console/coverage"),
        csv: format!(
            "/console/coverage.csv?{}",
            super::query_string([("rule", rule.code.as_str()), ("at", at_text.as_str())])
        ),
        rules: catalogue
            .visit_rules
            .iter()
            .filter(|r| r.applies())
            .map(|r| (r.code.clone(), r.name_zh.clone(), r.code == rule.code))
            .collect(),
        rule_name: rule.name_zh.clone(),
        at: at_text,
        period: format!("{} 至 {}", day(report.period_start_ms), day(report.period_end_ms - 1)),
        sub_districts: report
            .sub_districts
            .iter()
            .map(|c| Line::of(c.key.clone(), c))
            .collect(),
        grids: report.grids.iter().map(|c| Line::of(names.grid(&c.key), c)).collect(),
        total: Line::of("全区".to_owned(), &report.district),
    })
}

/// `GET /console/coverage.csv?rule=&at=`: the grids' rows and the district's
/// total, UTF-8 with a byte-order mark (Excel reads the Chinese).
pub async fn csv(State(state): State<Arc<AppState>>, user: User, Query(q): Query<CoverageQuery>) -> PageResult {
    user.require(&[Role::Operator])?;
    let report = report_of(&state, &q).await?;
    let names = Names::load(&state).await?;
    let c = &report.coverage;
    let mut out = String::from("\u{feff}网格,所属街道,应走访,按期,逾期补访,未走访,待走访,按期走访率\r\n");
    let lines = c
        .grids
        .iter()
        .map(|g| Line::of(names.grid(&g.key), g))
        .chain(std::iter::once(Line::of("全区".to_owned(), &c.district)));
    for l in lines {
        let row = [
            super::stats::csv_field(&l.name),
            super::stats::csv_field(&l.within),
            l.residents.to_string(),
            l.on_time.to_string(),
            l.late.to_string(),
            l.missed.to_string(),
            l.pending.to_string(),
            l.rate,
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    let day = fieldgrid_domain::visits::china_date(c.period_start_ms);
    let name = format!("fieldgrid-coverage-{}-{day}.csv", report.rule);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        out,
    )
        .into_response())
}
