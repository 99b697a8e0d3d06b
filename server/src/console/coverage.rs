//! Visit coverage: of the residents a visit rule of the catalogue covers,
//! those visited on time, late, missed or still pending in a period, by
//! sub-district and by grid (`Store::coverage`, what the JSON report gives).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
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
    rules: Vec<(String, String, bool)>,
    rule_name: String,
    at: String,
    period: String,
    sub_districts: Vec<Line>,
    grids: Vec<Line>,
    total: Line,
}

/// `GET /console/coverage?rule=CODE&at=YYYY-MM-DD`: the first rule and
/// today unless asked.
pub async fn page(State(state): State<Arc<AppState>>, user: User, Query(q): Query<CoverageQuery>) -> PageResult {
    user.require(&[Role::Operator])?;
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
    let at = match q.at.as_str() {
        "" => None,
        s => Some(
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::bad_request("at: expected a date as YYYY-MM-DD"))?,
        ),
    };
    let report = state.store.coverage(&rule.code, at, state.now_ms()).await?;
    let names = Names::load(&state).await?;
    let day = |ms: i64| fieldgrid_domain::visits::china_date(ms).to_string();
    render(&CoveragePage {
        chrome: user.chrome("走访覆盖", "/console/coverage"),
        rules: catalogue
            .visit_rules
            .iter()
            .filter(|r| r.applies())
            .map(|r| (r.code.clone(), r.name_zh.clone(), r.code == rule.code))
            .collect(),
        rule_name: rule.name_zh.clone(),
        at: at.map_or_else(|| day(state.now_ms()), |d| d.to_string()),
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
