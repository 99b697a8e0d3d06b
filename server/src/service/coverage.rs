//! Visit coverage under a visit rule of the catalogue: of the residents the
//! rule covers, who was visited on time, late, or not yet, per grid,
//! sub-district and district.

use std::collections::HashMap;

use fieldgrid_protocol::GridInfo;

use crate::error::{ApiError, ApiResult};
use crate::store::{CoverageQuery, CoverageRow, Store};

impl CoverageRow {
    fn add(&mut self, r: &CoverageRow) {
        self.residents += r.residents;
        self.on_time += r.on_time;
        self.late += r.late;
    }
}

impl Store {
    /// Visit coverage under the catalogue's visit rule `rule`, in the period
    /// containing the China date `at` (today when `None`), per grid,
    /// sub-district and district. Computed in the database from the rows
    /// kept on write (`care_residents`, `visits`).
    pub async fn coverage(
        &self,
        rule: &str,
        at: Option<chrono::NaiveDate>,
        now: i64,
    ) -> ApiResult<fieldgrid_protocol::CoverageResponse> {
        use fieldgrid_protocol::{Coverage, CoverageResponse};
        let catalogue = self.catalogue().await?;
        let rule = catalogue
            .visit_rule(rule)
            .ok_or_else(|| ApiError::not_found("no visit rule of the catalogue in force has this code"))?;
        let at_ms = match at {
            Some(day) => {
                let noon = day.and_hms_opt(12, 0, 0).map(fieldgrid_domain::china_time::instant);
                noon.ok_or_else(|| ApiError::bad_request("at: not a date"))?
            }
            None => now,
        };
        let (Some(period), true) = (rule.every.period_at(at_ms), rule.applies()) else {
            return Err(ApiError::bad_request("rule: this server cannot apply this visit rule"));
        };
        let next_end = period.next(rule.every).map_or(period.end_ms, |p| p.end_ms);
        let query = CoverageQuery {
            tags: rule.care_tags.clone(),
            resident_ids: rule.resident_ids.clone(),
            kinds: rule.kinds.clone(),
            start_ms: period.start_ms,
            end_ms: period.end_ms,
            late_until_ms: next_end.min(now),
        };
        let rows = self.coverage_rows(query).await?;
        let grids: HashMap<String, GridInfo> = self.grids().await?.into_iter().map(|g| (g.id.clone(), g)).collect();
        let closed = now >= period.end_ms;
        let of = |key: String, within: Option<String>, r: &CoverageRow| {
            let unseen = r.residents - r.on_time - r.late;
            Coverage {
                key,
                within,
                residents: r.residents,
                on_time: r.on_time,
                late: r.late,
                missed: if closed { unseen } else { 0 },
                pending: if closed { 0 } else { unseen },
                on_time_rate: if r.residents == 0 {
                    1.0
                } else {
                    r.on_time as f64 / r.residents as f64
                },
            }
        };
        let mut by_sub_district: std::collections::BTreeMap<String, CoverageRow> = Default::default();
        let mut district = CoverageRow::default();
        let mut out_grids = Vec::with_capacity(rows.len());
        for r in &rows {
            let sub_district = grids
                .get(&r.grid_id)
                .map(|g| g.sub_district.clone())
                .unwrap_or_default();
            by_sub_district.entry(sub_district.clone()).or_default().add(r);
            district.add(r);
            out_grids.push(of(r.grid_id.clone(), Some(sub_district), r));
        }
        out_grids.sort_by(|a, b| (&a.within, &a.key).cmp(&(&b.within, &b.key)));
        Ok(CoverageResponse {
            rule: rule.code.clone(),
            every: serde_json::to_value(rule.every)?
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            period_start_ms: period.start_ms,
            period_end_ms: period.end_ms,
            grids: out_grids,
            sub_districts: by_sub_district.iter().map(|(k, r)| of(k.clone(), None, r)).collect(),
            district: of("district".into(), None, &district),
            server_time_ms: now,
        })
    }
}
