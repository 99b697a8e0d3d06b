//! The district's clock: China time, UTC+8 all year (no daylight saving
//! since 1991). Dates of birth, statistics months, visit periods and what the
//! console shows are all read on it; the one offset lives here.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// China time's offset from UTC, in ms.
pub const OFFSET_MS: i64 = 8 * 3_600_000;

/// The China-time wall clock of an instant (ms since the epoch), if the
/// instant is one chrono can hold.
pub fn local(t_ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(t_ms.checked_add(OFFSET_MS)?).map(|t| t.naive_utc())
}

/// The China-time date of an instant (1970-01-01 for one out of range).
pub fn date(t_ms: i64) -> NaiveDate {
    local(t_ms).map(|t| t.date()).unwrap_or_default()
}

/// The instant (ms since the epoch) of a China-time wall clock.
pub fn instant(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_millis() - OFFSET_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_time_is_eight_hours_ahead_both_ways() {
        // 2026-11-26 12:00 in China is 04:00 UTC.
        let t_ms = 1_795_665_600_000;
        let wall = local(t_ms).unwrap();
        assert_eq!(wall.to_string(), "2026-11-26 12:00:00");
        assert_eq!(instant(wall), t_ms);
        // 23:00 UTC is already the next day in China.
        assert_eq!(date(t_ms + 19 * 3_600_000).to_string(), "2026-11-27");
        assert_eq!(local(i64::MAX), None);
        assert_eq!(date(i64::MAX), NaiveDate::default());
    }
}
