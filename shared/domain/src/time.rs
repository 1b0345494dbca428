//! Time as Quorum stores it: whole seconds since the Unix epoch, in UTC.
//!
//! Both databases store an `i64`; that keeps the SQLite and PostgreSQL schemas identical in
//! meaning and every comparison an integer comparison.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Timestamp(pub i64);

/// RFC 3339 in UTC (`2026-12-07T12:34:56Z`).
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match jiff::Timestamp::from_second(self.0) {
            Ok(t) => write!(f, "{t}"),
            Err(_) => write!(f, "@{}", self.0),
        }
    }
}

impl Timestamp {
    pub fn now() -> Self {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Self(secs)
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_secs() as i64))
    }

    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.as_secs() as i64))
    }
}

/// `30m`, `12h`, `7d`, `2w` (or seconds: `90s`).
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}`: expected a number and a unit, like 12h or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h, d or w")),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(|| format!("`{s}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_a_number_and_a_unit() {
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "12", "h", "12 h", "-1d", "1y", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp(i64::MAX).plus(Duration::from_secs(10)), Timestamp(i64::MAX));
        assert_eq!(Timestamp(100).minus(Duration::from_secs(40)), Timestamp(60));
    }
}
