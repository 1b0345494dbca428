//! The operators' spam reports (the reputation issue): the campaign report (seed 000) and
//! the blocklist export, one implementation for the pages under `/admin`, their JSON under
//! `/api/admin` and the CLI (`quorum report campaigns`, `quorum blocklist export`).

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Response},
};
use quorum_domain::Timestamp;
use quorum_reputation::{
    Key, Kind,
    blocklist::{self, Format},
    campaigns::{Group, Options, Spam},
};
use quorum_storage::{Database, StorageError};
use serde::Deserialize;

use crate::{AppState, WebError, wants_json};

/// A window's spam and its groups ([`quorum_reputation::campaigns`]).
pub struct CampaignReport {
    pub since: Timestamp,
    pub until: Timestamp,
    pub spam: Vec<Spam>,
    pub groups: Vec<Group>,
}

impl CampaignReport {
    /// What `/api/admin/campaigns` and `quorum report campaigns --json` print.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "since": self.since.0,
            "until": self.until.0,
            "messages": self.spam.len(),
            "groups": self.groups,
        })
    }
}

/// The report of the spam since `since`.
pub async fn campaigns<DB: Database>(
    db: &DB,
    since: Timestamp,
    min_messages: usize,
) -> Result<CampaignReport, StorageError> {
    let until = Timestamp::now();
    let spam = db.spam_since(since).await?;
    let groups = quorum_reputation::campaigns::report(&spam, &Options { min_messages });
    Ok(CampaignReport { since, until, spam, groups })
}

/// What the database says of blocklist candidates.
struct Standing {
    ham: HashSet<Key>,
    providers: Vec<String>,
}

impl blocklist::Standing for Standing {
    fn has_ham(&self, key: &Key) -> bool {
        self.ham.contains(key)
    }

    fn provider(&self, domain: &str) -> bool {
        self.providers.iter().any(|p| quorum_domain::received::within(domain, p))
    }
}

/// The blocklist of the spam since `since`, as text in `format`
/// ([`quorum_reputation::blocklist`]).
pub async fn blocklist<DB: Database>(
    db: &DB,
    format: Format,
    since: Timestamp,
    min_reports: usize,
) -> Result<String, StorageError> {
    let now = Timestamp::now();
    let spam = db.spam_since(since).await?;
    // The rows of the keys with enough reports (no other can be listed, nor make a network
    // with three listed hosts); a domain under both kinds, for ham under either keeps it off.
    let mut reports: std::collections::HashMap<&Key, usize> = std::collections::HashMap::new();
    for k in spam.iter().flat_map(|m| &m.keys) {
        *reports.entry(k).or_default() += 1;
    }
    let mut candidates: Vec<Key> = Vec::new();
    for k in reports.into_iter().filter(|(_, n)| *n >= min_reports).map(|(k, _)| k) {
        match k.kind {
            Kind::Ip | Kind::Network => candidates.push(k.clone()),
            Kind::SenderDomain | Kind::UrlDomain => {
                for kind in [Kind::SenderDomain, Kind::UrlDomain] {
                    candidates.push(Key { kind, name: k.name.clone() });
                }
            }
            Kind::Subnet | Kind::ReplyTo => {}
        }
    }
    candidates.sort();
    candidates.dedup();
    let ham = db
        .reputation_of(&candidates)
        .await?
        .into_iter()
        .filter(|(_, row)| row.counts.approvals > 0.0 || row.counts.inbox > 0.0)
        .map(|(key, _)| key)
        .collect();
    let standing = Standing { ham, providers: db.providers().await?.into_iter().map(|p| p.domain).collect() };
    let entries = match format {
        Format::Domains => blocklist::domains(&spam, min_reports, &standing),
        Format::Cidr | Format::Postfix | Format::Rspamd => blocklist::networks(&spam, min_reports, &standing),
    };
    Ok(blocklist::render(format, &entries, &format!("{since} to {now}")))
}

/// `?since=12h&group=network:1.2.3.0/24&min=2`.
#[derive(Debug, Default, Deserialize)]
pub struct WindowQuery {
    since: Option<String>,
    /// `by:key` of the group whose messages to list.
    group: Option<String>,
    min: Option<usize>,
}

impl WindowQuery {
    fn since(&self, default: &str) -> Result<(String, Timestamp), WebError> {
        let text = self.since.clone().unwrap_or_else(|| default.to_string());
        let age = quorum_domain::parse_age(&text).map_err(WebError::BadRequest)?;
        Ok((text, Timestamp::now().minus(age)))
    }
}

/// Bars of a group's timeline.
const BARS: usize = 24;
const BAR_HEIGHT: u32 = 20;

/// A group as the page shows it: its timeline as bar heights over the window.
struct GroupView {
    group: Group,
    /// `(x, y, height)` of each bar of the SVG (none where nothing arrived).
    bars: Vec<(usize, u32, u32)>,
    verdicts: String,
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    operator: String,
    csrf: String,
    since: String,
    spam: usize,
    groups: Vec<GroupView>,
    /// The drill-down: the chosen group's name and its messages.
    chosen: Option<(String, Vec<Spam>)>,
}

/// A group's bars over the window, from its messages' arrival times (`arrival` by id).
fn timeline(g: &Group, arrival: &HashMap<i64, i64>, from: i64, to: i64) -> Vec<(usize, u32, u32)> {
    let span = (to - from).max(1) as f64;
    let mut counts = [0u32; BARS];
    for at in g.message_ids.iter().filter_map(|id| arrival.get(id)) {
        let i = (((at - from) as f64 / span) * BARS as f64).floor().clamp(0.0, (BARS - 1) as f64) as usize;
        counts[i] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, &n)| {
            let h = (n * BAR_HEIGHT).div_ceil(max);
            (i * 4, BAR_HEIGHT - h, h)
        })
        .collect()
}

/// `/admin/campaigns`: the report, with a timeline per group and, for `group`, its
/// messages. JSON with `Accept: application/json`.
pub async fn campaigns_page<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(q): Query<WindowQuery>,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let (since_text, since) = q.since("12h")?;
    let report = campaigns(&state.db, since, q.min.unwrap_or(2)).await?;
    if wants_json(&headers) {
        return Ok(Json(report.json()).into_response());
    }
    let CampaignReport { since, until, spam, groups } = report;
    let by_id: HashMap<i64, &Spam> = spam.iter().map(|m| (m.id, m)).collect();
    let chosen = q.group.as_deref().and_then(|name| {
        let g = groups.iter().find(|g| format!("{}:{}", g.by.as_str(), g.key) == name)?;
        Some((name.to_string(), g.message_ids.iter().filter_map(|id| by_id.get(id).map(|m| (*m).clone())).collect()))
    });
    let arrival: HashMap<i64, i64> = spam.iter().map(|m| (m.id, m.at)).collect();
    let views = groups
        .into_iter()
        .map(|g| GroupView {
            bars: timeline(&g, &arrival, since.0, until.0),
            verdicts: g.verdicts.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", "),
            group: g,
        })
        .collect();
    let page = CampaignsPage {
        operator: operator.email,
        csrf: operator.csrf,
        since: since_text,
        spam: spam.len(),
        groups: views,
        chosen,
    };
    Ok(Html(page.render()?).into_response())
}

/// `/api/admin/campaigns`: the report as JSON.
pub async fn campaigns_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(q): Query<WindowQuery>,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    let (_, since) = q.since("12h")?;
    Ok(Json(campaigns(&state.db, since, q.min.unwrap_or(2)).await?.json()).into_response())
}

/// `/admin/blocklist/{format}?since=7d&min=3`: the export as plain text.
pub async fn blocklist_export<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Path(format): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    let format: Format = format.parse().map_err(|_| WebError::NotFound)?;
    let (_, since) = q.since("7d")?;
    let text = blocklist(&state.db, format, since, q.min.unwrap_or(3)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// A time as the pages show it (UTC, to the minute).
pub fn time(at: &i64) -> String {
    let t = Timestamp(*at).to_string();
    t.get(..16).map(|s| s.replace('T', " ")).unwrap_or(t)
}
