//! The operator's charts over time: per day, messages delivered, deleted (any reason),
//! deleted as forged, and the share of spam among decided messages. Drawn as inline SVG bars
//! (no scripts), computed from one grouped query and kept for a minute.

use std::time::Duration;

use quorum_domain::Timestamp;
use quorum_storage::Database;
use serde::Serialize;

use crate::{AppState, WebError};

/// Days shown.
pub const DAYS: i64 = 30;
/// How long the charts are served from memory (the query reads every recent message).
const TTL: Duration = Duration::from_secs(60);
/// Width of one day's bar in the SVG, and the chart's height, in SVG units.
const BAR: usize = 12;
const HEIGHT: f64 = 100.0;

/// One day's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Day {
    pub date: String,
    pub delivered: i64,
    pub deleted: i64,
    pub forged: i64,
    /// Deleted / (deleted + delivered); 0 on a day with neither.
    pub share_spam: f64,
}

/// One bar of a chart, in SVG units.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: usize,
    pub y: f64,
    pub height: f64,
    /// What a screen reader (and a hover) says: the date and the value.
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub title: &'static str,
    pub width: usize,
    pub bars: Vec<Bar>,
}

/// The last [`DAYS`] days, oldest first, from `(day, status, count)` rows.
pub fn days(rows: &[(i64, String, i64)], today: i64) -> Vec<Day> {
    (today - DAYS + 1..=today)
        .map(|day| {
            let of = |pred: &dyn Fn(&str) -> bool| -> i64 {
                rows.iter().filter(|(d, s, _)| *d == day && pred(s)).map(|(_, _, n)| n).sum()
            };
            let delivered = of(&|s| s == "released" || s == "releasing");
            let deleted = of(&|s| s.starts_with("deleted_") || s == "purged");
            let decided = delivered + deleted;
            Day {
                date: date(day),
                delivered,
                deleted,
                forged: of(&|s| s == "deleted_forged"),
                share_spam: if decided > 0 { deleted as f64 / decided as f64 } else { 0.0 },
            }
        })
        .collect()
}

/// The four charts of the dashboard.
pub fn charts(days: &[Day]) -> Vec<Chart> {
    let chart = |title, value: &dyn Fn(&Day) -> f64, label: &dyn Fn(&Day) -> String| {
        let max = days.iter().map(value).fold(0.0f64, f64::max);
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let height = if max > 0.0 { value(d) / max * HEIGHT } else { 0.0 };
                Bar { x: i * BAR, y: HEIGHT - height, height, label: format!("{}: {}", d.date, label(d)) }
            })
            .collect();
        Chart { title, width: days.len() * BAR, bars }
    };
    vec![
        chart("Delivered", &|d| d.delivered as f64, &|d| d.delivered.to_string()),
        chart("Deleted", &|d| d.deleted as f64, &|d| d.deleted.to_string()),
        chart("Forged", &|d| d.forged as f64, &|d| d.forged.to_string()),
        chart("Share of spam", &|d| d.share_spam, &|d| format!("{:.1}%", d.share_spam * 100.0)),
    ]
}

/// `YYYY-MM-DD` of a Unix day.
fn date(day: i64) -> String {
    jiff::Timestamp::from_second(day * 86_400)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| format!("day {day}"))
}

impl<DB: Database> AppState<DB> {
    pub(crate) async fn history(&self) -> Result<Vec<Day>, WebError> {
        self.history
            .get(TTL, || async {
                let today = Timestamp::now().0.div_euclid(86_400);
                let rows = self.db.daily_counts(Timestamp((today - DAYS + 1) * 86_400)).await?;
                Ok(days(&rows, today))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_bars() {
        let today = 20_000;
        let rows: Vec<(i64, String, i64)> = [
            (today, "released", 3),
            (today, "deleted_spam", 5),
            (today, "deleted_forged", 2),
            (today, "held", 7),
            (today - 1, "purged", 1),
            (today - 40, "released", 9),
        ]
        .iter()
        .map(|(d, s, n)| (*d, s.to_string(), *n))
        .collect();
        let d = days(&rows, today);
        assert_eq!(d.len(), DAYS as usize);
        let last = d.last().unwrap();
        assert_eq!((last.delivered, last.deleted, last.forged), (3, 7, 2));
        assert!((last.share_spam - 0.7).abs() < 1e-12);
        assert_eq!(last.date, "2024-10-04");
        assert_eq!((d[DAYS as usize - 2].deleted, d[DAYS as usize - 2].share_spam), (1, 1.0));
        let c = charts(&d);
        assert_eq!(c.len(), 4);
        let deleted = &c[1];
        assert_eq!(deleted.width, DAYS as usize * BAR);
        assert_eq!(deleted.bars.last().unwrap().height, HEIGHT, "the biggest day fills the chart");
        assert!((deleted.bars[DAYS as usize - 2].height - HEIGHT / 7.0).abs() < 1e-9);
        assert_eq!(deleted.bars[0].height, 0.0);
        assert_eq!(deleted.bars.last().unwrap().label, "2024-10-04: 7");
    }
}
