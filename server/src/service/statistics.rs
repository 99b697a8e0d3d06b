//! The centre's statistics over a period: the sums storage keeps by month,
//! grid and category, added up per grid, community, sub-district and
//! category, with their on-time rates.

use std::collections::HashMap;

use fieldgrid_protocol::{GridInfo, StatsResponse};

use crate::error::{ApiError, ApiResult};
use crate::store::{StatsRow, Store};

/// The months statistics cover (`YYYY-MM`, China time, both included;
/// open-ended where absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Period {
    /// First month.
    pub from: Option<String>,
    /// Last month.
    pub to: Option<String>,
}

impl Period {
    /// A period from query values, each `YYYY-MM`.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> ApiResult<Period> {
        let month = |field: &str, v: Option<&str>| -> ApiResult<Option<String>> {
            let Some(v) = v else { return Ok(None) };
            if v.len() == 7 && month_start_ms(v).is_some() {
                Ok(Some(v.to_owned()))
            } else {
                Err(ApiError::bad_request(format!("{field}: expected a month as YYYY-MM")))
            }
        };
        let period = Period {
            from: month("from", from)?,
            to: month("to", to)?,
        };
        if let (Some(f), Some(t)) = (&period.from, &period.to)
            && f > t
        {
            return Err(ApiError::bad_request("to: the period ends before it starts"));
        }
        Ok(period)
    }

    /// First and last month as stored in `incident_months` (strings that
    /// bound every month where open).
    pub fn months(&self) -> (String, String) {
        (
            self.from.clone().unwrap_or_else(|| "0000-00".to_owned()),
            self.to.clone().unwrap_or_else(|| "9999-99".to_owned()),
        )
    }

    /// The same period as report times in ms: `[start, end)`.
    pub fn reported_ms(&self) -> (i64, i64) {
        let start = self.from.as_deref().and_then(month_start_ms).unwrap_or(i64::MIN);
        let end = self
            .to
            .as_deref()
            .and_then(|m| {
                let d = chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok()?;
                let next = d.checked_add_months(chrono::Months::new(1))?;
                month_start_ms(&next.format("%Y-%m").to_string())
            })
            .unwrap_or(i64::MAX);
        (start, end)
    }
}

/// The first ms of a month (`YYYY-MM`) in China time (UTC+8, no DST).
fn month_start_ms(month: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    Some(fieldgrid_domain::china_time::instant(d.and_hms_opt(0, 0, 0)?))
}

/// Sums grid-and-category rows up per grid, community, sub-district and
/// category.
fn stats_of(rows: Vec<StatsRow>, period: &Period, now: i64) -> StatsResponse {
    use std::collections::BTreeMap;

    use fieldgrid_protocol::Stats;
    type Sums = BTreeMap<(String, Option<String>), Stats>;
    fn add(map: &mut Sums, key: &str, within: Option<&str>, r: &StatsRow) {
        let s = map
            .entry((key.to_owned(), within.map(str::to_owned)))
            .or_insert_with(|| Stats {
                key: key.to_owned(),
                within: within.map(str::to_owned),
                ..Default::default()
            });
        s.reported += r.reported;
        s.open += r.open;
        s.overdue += r.overdue;
        s.finished_with_deadline += r.finished_with_deadline;
        s.finished_on_time += r.finished_on_time;
    }
    fn done(map: Sums) -> Vec<Stats> {
        map.into_values()
            .filter(|s| s.reported > 0 || s.open > 0)
            .map(|mut s| {
                s.on_time_rate = if s.finished_with_deadline == 0 {
                    1.0
                } else {
                    s.finished_on_time as f64 / s.finished_with_deadline as f64
                };
                s
            })
            .collect()
    }
    let (mut grids, mut communities, mut subs, mut categories) = (Sums::new(), Sums::new(), Sums::new(), Sums::new());
    // A row counts where it has a key: sums per grid have no category,
    // sums per category no grid; open incidents have both.
    for r in &rows {
        if !r.grid_id.is_empty() {
            add(&mut grids, &r.grid_id, Some(&r.community), r);
            add(&mut communities, &r.community, Some(&r.sub_district), r);
            add(&mut subs, &r.sub_district, None, r);
        }
        if !r.category.is_empty() {
            add(&mut categories, &r.category, None, r);
        }
    }
    StatsResponse {
        from: period.from.clone(),
        to: period.to.clone(),
        grids: done(grids),
        communities: done(communities),
        sub_districts: done(subs),
        categories: done(categories),
        server_time_ms: now,
    }
}

impl Store {
    /// Reported, open, overdue and on time per grid, community,
    /// sub-district and category, for the incidents reported in `period`.
    pub async fn stats(&self, period: &Period, now: i64) -> ApiResult<StatsResponse> {
        let mut rows = self.stats_rows(period.months(), period.reported_ms(), now).await?;
        let grids: HashMap<String, GridInfo> = self.grids().await?.into_iter().map(|g| (g.id.clone(), g)).collect();
        for r in &mut rows {
            if let Some(g) = grids.get(&r.grid_id) {
                r.sub_district.clone_from(&g.sub_district);
                r.community.clone_from(&g.community);
            }
        }
        Ok(stats_of(rows, period, now))
    }
}
