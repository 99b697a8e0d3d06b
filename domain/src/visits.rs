//! Visit plans: which period a visit rule is in, and where a resident stands
//! in it. The phone's due list and the server's coverage both use these.
//!
//! Periods are calendar weeks (Monday to Sunday), months and quarters in
//! China time (UTC+8, no daylight saving), as the district counts them.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Every, VisitRule};

const DAY_MS: i64 = 86_400_000;

/// A period of a rule, `[start_ms, end_ms)`, server time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First instant (ms since the epoch).
    pub start_ms: i64,
    /// First instant after it.
    pub end_ms: i64,
}

impl Period {
    /// Whether `t_ms` falls in the period.
    pub fn contains(&self, t_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&t_ms)
    }

    /// The period before this one.
    pub fn previous(&self, every: Every) -> Option<Period> {
        every.period_at(self.start_ms - 1)
    }

    /// The period after this one.
    pub fn next(&self, every: Every) -> Option<Period> {
        every.period_at(self.end_ms)
    }
}

/// The China-time date of an instant.
pub fn china_date(t_ms: i64) -> NaiveDate {
    crate::china_time::date(t_ms)
}

/// Midnight China time at the start of `date`, in ms since the epoch.
fn china_midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map(crate::china_time::instant)
        .unwrap_or_default()
}

fn first_of_month(year: i32, month0: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year + (month0 / 12) as i32, month0 % 12 + 1, 1)
}

impl Every {
    /// The period containing `t_ms`; `None` for a period this build does
    /// not know.
    pub fn period_at(self, t_ms: i64) -> Option<Period> {
        let day = china_date(t_ms);
        let (start, end) = match self {
            Every::Week => {
                let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Every::Month => {
                let m0 = day.month0();
                (first_of_month(day.year(), m0)?, first_of_month(day.year(), m0 + 1)?)
            }
            Every::Quarter => {
                let q0 = day.month0() / 3 * 3;
                (first_of_month(day.year(), q0)?, first_of_month(day.year(), q0 + 3)?)
            }
            Every::Unknown => return None,
        };
        Some(Period {
            start_ms: china_midnight(start),
            end_ms: china_midnight(end),
        })
    }

    /// Days before a period ends from which an outstanding visit is due soon.
    pub fn default_soon_days(self) -> u32 {
        match self {
            Every::Week => 2,
            Every::Month => 7,
            Every::Quarter | Every::Unknown => 14,
        }
    }
}

/// Where one resident stands under one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitState {
    /// Not seen in this period nor the one before (or never): late.
    Overdue,
    /// Not yet seen in this period, which ends within the rule's soon days.
    DueSoon,
    /// Not yet seen in this period; there is time.
    Due,
    /// Seen in this period.
    Done,
}

impl VisitState {
    /// The stable code.
    pub fn as_str(&self) -> &'static str {
        match self {
            VisitState::Overdue => "overdue",
            VisitState::DueSoon => "due_soon",
            VisitState::Due => "due",
            VisitState::Done => "done",
        }
    }
}

/// A resident's standing under a rule at `now_ms` (server time), given the
/// resident's latest visit that the rule counts: the state and the date the
/// visit is due by (the end of the period it belongs to: the last one for an
/// overdue visit). `None` for a rule this build cannot apply.
pub fn standing(rule: &VisitRule, now_ms: i64, last_visit_ms: Option<i64>) -> Option<(VisitState, i64)> {
    if !rule.applies() {
        return None;
    }
    let current = rule.every.period_at(now_ms)?;
    let previous = current.previous(rule.every)?;
    let soon_days = match rule.soon_days {
        0 => rule.every.default_soon_days(),
        n => n,
    };
    let last = last_visit_ms.unwrap_or(i64::MIN);
    Some(if last >= current.start_ms {
        (VisitState::Done, current.end_ms)
    } else if last < previous.start_ms {
        (VisitState::Overdue, previous.end_ms)
    } else if current.end_ms - now_ms <= i64::from(soon_days) * DAY_MS {
        (VisitState::DueSoon, current.end_ms)
    } else {
        (VisitState::Due, current.end_ms)
    })
}

/// How far before the server first received a service log its visit may be
/// dated and still count at that time: phones are offline for a weekend, not
/// a month. A log backdated further counts from this long before it arrived,
/// so a visit cannot be moved into a period that closed days ago.
pub const BACKDATE_ALLOWANCE_MS: i64 = 3 * DAY_MS;

/// The time a visit counts at: the time the worker gave, but no later than
/// the server received it and no earlier than [`BACKDATE_ALLOWANCE_MS`]
/// before.
pub fn counted_visit_time(occurred_at_ms: i64, received_at_ms: i64) -> i64 {
    occurred_at_ms.clamp(received_at_ms - BACKDATE_ALLOWANCE_MS, received_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        // China time, as a worker reads a clock.
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_millis()
            - crate::china_time::OFFSET_MS
    }

    fn rule(every: Every) -> VisitRule {
        VisitRule {
            code: "r".into(),
            name_zh: "走访".into(),
            name_en: String::new(),
            care_tags: vec!["elderly_living_alone".into()],
            resident_ids: vec![],
            every,
            kinds: vec!["visit".into()],
            soon_days: 0,
        }
    }

    #[test]
    fn periods_are_china_calendar_weeks_months_and_quarters() {
        // 2026-12-01 01:30 China time is still 30 November in UTC.
        let t = at("2026-12-01 01:30");
        let m = Every::Month.period_at(t).unwrap();
        assert_eq!((m.start_ms, m.end_ms), (at("2026-12-01 00:00"), at("2027-01-01 00:00")));
        let w = Every::Week.period_at(t).unwrap();
        assert_eq!((w.start_ms, w.end_ms), (at("2026-11-30 00:00"), at("2026-12-07 00:00")));
        let q = Every::Quarter.period_at(t).unwrap();
        assert_eq!((q.start_ms, q.end_ms), (at("2026-10-01 00:00"), at("2027-01-01 00:00")));
        let q1 = Every::Quarter.period_at(at("2027-03-31 23:59")).unwrap();
        assert_eq!(q1.start_ms, at("2027-01-01 00:00"));
        assert_eq!(q.next(Every::Quarter).unwrap(), q1);
        assert_eq!(m.previous(Every::Month).unwrap().start_ms, at("2026-11-01 00:00"));
        assert!(m.contains(at("2026-12-31 23:59")) && !m.contains(at("2027-01-01 00:00")));
        assert_eq!(Every::Unknown.period_at(t), None);
        // Sunday night belongs to the week that began on Monday.
        assert_eq!(Every::Week.period_at(at("2026-12-06 23:59")).unwrap(), w);
    }

    #[test]
    fn standing_follows_the_last_visit() {
        let r = rule(Every::Month);
        let now = at("2026-12-10 09:00");
        let end = at("2027-01-01 00:00");
        assert_eq!(
            standing(&r, now, Some(at("2026-12-01 00:00"))),
            Some((VisitState::Done, end))
        );
        assert_eq!(
            standing(&r, now, Some(at("2026-11-30 23:59"))),
            Some((VisitState::Due, end))
        );
        assert_eq!(
            standing(&r, now, Some(at("2026-10-31 23:59"))),
            Some((VisitState::Overdue, at("2026-12-01 00:00")))
        );
        assert_eq!(standing(&r, now, None).map(|s| s.0), Some(VisitState::Overdue));
        // Seven days before the month ends, by default.
        let late_month = at("2026-12-25 00:00");
        assert_eq!(
            standing(&r, late_month, Some(at("2026-11-15 12:00"))).map(|s| s.0),
            Some(VisitState::DueSoon)
        );
        assert_eq!(
            standing(&r, late_month - 1, Some(at("2026-11-15 12:00"))).map(|s| s.0),
            Some(VisitState::Due)
        );
        let mut soon = r.clone();
        soon.soon_days = 30;
        assert_eq!(
            standing(&soon, now, Some(at("2026-11-15 12:00"))).map(|s| s.0),
            Some(VisitState::DueSoon)
        );
        let mut unknown = r;
        unknown.every = Every::Unknown;
        assert_eq!(standing(&unknown, now, None), None);
    }

    #[test]
    fn a_backdated_visit_counts_from_at_most_three_days_before_it_arrived() {
        let received = at("2026-12-03 10:00");
        assert_eq!(
            counted_visit_time(at("2026-12-01 18:00"), received),
            at("2026-12-01 18:00")
        );
        assert_eq!(
            counted_visit_time(at("2026-11-20 18:00"), received),
            at("2026-11-30 10:00")
        );
        assert_eq!(
            counted_visit_time(received + 5_000, received),
            received,
            "never after it arrived"
        );
    }

    #[test]
    fn rules_with_unknown_codes_are_refused_at_publishing_but_read() {
        let mut r = rule(Every::Month);
        let builtin = crate::Catalogue::builtin();
        assert_eq!(r.problem(&builtin), None);
        r.care_tags.push("vip".into());
        assert!(r.problem(&builtin).unwrap().contains("vip"));
        // A care tag the district added is one a rule may name.
        let mut with_vip = builtin.clone();
        with_vip.care_tags.push(crate::catalogue::Term {
            code: "vip".into(),
            name_zh: "重点人员".into(),
            retired: false,
        });
        assert_eq!(r.problem(&with_vip), None);
        // Counting only retired kinds, nothing a form offers completes it.
        let mut retired_visit = with_vip.clone();
        retired_visit.service_kinds.push(crate::catalogue::Term {
            code: "home_haircut".into(),
            name_zh: "上门理发".into(),
            retired: true,
        });
        r.kinds = vec!["home_haircut".into()];
        assert!(r.problem(&retired_visit).unwrap().contains("retired"));
        let newer: crate::Catalogue = serde_json::from_value(serde_json::json!({
            "version": 9, "categories": [],
            "visit_rules": [{"code": "x", "name_zh": "x", "every": "fortnight", "care_tags": ["vip"], "kinds": ["visit"],
                             "future_field": 1}]
        }))
        .unwrap();
        assert_eq!(
            newer.visit_rules[0].every,
            Every::Unknown,
            "a newer period is read, and skipped"
        );
        assert!(!newer.visit_rules[0].applies());
        assert_eq!(builtin.problem(), None);
        let mut twice = builtin.clone();
        twice.visit_rules.push(twice.visit_rules[0].clone());
        assert!(twice.problem().unwrap().contains("twice"));
    }
}
