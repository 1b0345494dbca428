//! When a subscriber's summaries are due: at fixed local times (default 07:00 and 19:00) in
//! the subscriber's time zone, daylight saving included. The time zone database is built
//! into the binary, so a machine without tzdata computes the same times.

use std::fmt;

use jiff::{civil::Time, tz::TimeZone};

use crate::Timestamp;

#[derive(Clone)]
pub struct SummarySchedule {
    times: Vec<Time>,
    zone: TimeZone,
    zone_name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("`{0}` is not a time of day; write HH:MM, e.g. 07:00")]
    Time(String),
    #[error("give between one and 24 summary times")]
    Count,
    #[error("`{0}` is not a time zone; use a name such as Europe/Berlin or UTC")]
    Zone(String),
}

impl SummarySchedule {
    pub const DEFAULT_TIMES: &'static str = "07:00,19:00";

    /// Parses `HH:MM[,HH:MM...]` and an IANA time zone name.
    pub fn parse(times: &str, zone: &str) -> Result<Self, ScheduleError> {
        let mut parsed = times
            .split(',')
            .map(|t| {
                let t = t.trim();
                let (h, m) = t.split_once(':').ok_or_else(|| ScheduleError::Time(t.into()))?;
                let (h, m): (i8, i8) = (
                    h.parse().map_err(|_| ScheduleError::Time(t.into()))?,
                    m.parse().map_err(|_| ScheduleError::Time(t.into()))?,
                );
                Time::new(h, m, 0, 0).map_err(|_| ScheduleError::Time(t.into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        if parsed.is_empty() || parsed.len() > 24 {
            return Err(ScheduleError::Count);
        }
        let zone_name = zone.trim().to_string();
        let tz = TimeZone::get(&zone_name).map_err(|_| ScheduleError::Zone(zone_name.clone()))?;
        Ok(Self { times: parsed, zone: tz, zone_name })
    }

    /// The times as stored: `07:00,19:00`.
    pub fn times(&self) -> String {
        self.times.iter().map(|t| format!("{:02}:{:02}", t.hour(), t.minute())).collect::<Vec<_>>().join(",")
    }

    pub fn zone(&self) -> &str {
        &self.zone_name
    }

    /// `at` as the subscriber reads it: `Tuesday 24 November 2026, 08:00 (Europe/Berlin)`.
    pub fn local_label(&self, at: Timestamp) -> String {
        let when = jiff::Timestamp::from_second(at.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        format!("{} ({})", when.to_zoned_datetime(self.zone.clone()).strftime("%A %-d %B %Y, %H:%M"), self.zone_name)
    }

    /// The first summary time strictly after `after`. A local time that does not exist
    /// that day (skipped by a daylight-saving change) moves forward past the gap; one that
    /// exists twice is taken the first time.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        let now = jiff::Timestamp::from_second(after.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let today = now.to_zoned_datetime(self.zone.clone()).date();
        let mut day = today;
        // Two days always contain the next occurrence; three guard against zone oddities.
        for _ in 0..3 {
            for time in &self.times {
                if let Ok(at) = day.to_datetime(*time).to_zoned_datetime(self.zone.clone())
                    && at.timestamp() > now
                {
                    return Timestamp(at.timestamp().as_second());
                }
            }
            day = day.tomorrow().unwrap_or(day);
        }
        Timestamp(after.0 + 86_400)
    }
}

impl fmt::Debug for SummarySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SummarySchedule({} {})", self.times(), self.zone_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp(s.parse::<jiff::Timestamp>().unwrap().as_second())
    }

    #[test]
    fn next_time_today_then_tomorrow() {
        let s = SummarySchedule::parse("19:00, 07:00", "UTC").unwrap();
        assert_eq!(s.times(), "07:00,19:00");
        assert_eq!(s.next_after(at("2026-11-24T06:59:00Z")), at("2026-11-24T07:00:00Z"));
        assert_eq!(s.next_after(at("2026-11-24T07:00:00Z")), at("2026-11-24T19:00:00Z"));
        assert_eq!(s.next_after(at("2026-11-24T23:30:00Z")), at("2026-11-25T07:00:00Z"));
    }

    #[test]
    fn local_time_in_the_subscribers_zone_across_daylight_saving() {
        let s = SummarySchedule::parse("07:00,19:00", "Europe/Berlin").unwrap();
        // Winter: UTC+1.
        assert_eq!(s.next_after(at("2026-11-24T05:00:00Z")), at("2026-11-24T06:00:00Z"));
        // Summer: UTC+2.
        assert_eq!(s.next_after(at("2026-07-01T04:00:00Z")), at("2026-07-01T05:00:00Z"));
        // The night clocks go forward (29 March 2026): 07:00 local is 05:00 UTC.
        assert_eq!(s.next_after(at("2026-03-28T20:00:00Z")), at("2026-03-29T05:00:00Z"));
        // 02:30 does not exist that night in Berlin: it moves past the gap, still that day.
        let gap = SummarySchedule::parse("02:30", "Europe/Berlin").unwrap();
        let next = gap.next_after(at("2026-03-28T23:00:00Z"));
        assert!(next > at("2026-03-29T00:59:59Z") && next < at("2026-03-29T02:00:00Z"), "{next:?}");
    }

    #[test]
    fn labels_in_local_time() {
        let s = SummarySchedule::parse("07:00", "Europe/Berlin").unwrap();
        assert_eq!(s.local_label(at("2026-11-24T06:00:00Z")), "Tuesday 24 November 2026, 07:00 (Europe/Berlin)");
    }

    #[test]
    fn bad_input_is_explained() {
        assert_eq!(SummarySchedule::parse("7h", "UTC").unwrap_err(), ScheduleError::Time("7h".into()));
        assert_eq!(SummarySchedule::parse("25:00", "UTC").unwrap_err(), ScheduleError::Time("25:00".into()));
        assert_eq!(
            SummarySchedule::parse("07:00", "Mars/Olympus").unwrap_err(),
            ScheduleError::Zone("Mars/Olympus".into())
        );
        assert!(SummarySchedule::parse(SummarySchedule::DEFAULT_TIMES, "America/New_York").is_ok());
    }
}
