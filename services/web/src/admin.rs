//! The operator's pages under `/admin` (SPEC 5) and the same data as JSON under
//! `/api/admin`: global statistics, worker health, the correlation table, trust statuses
//! and domain probabilities. Only operator sessions get in; subscribers get 403.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};
use quorum_domain::{EmailAddress, Timestamp};
use quorum_storage::{CorrelationRow, Database, DomainRow, TrustRow};
use serde::{Deserialize, Serialize};

use crate::{AppState, WebError, public::GlobalStats, wants_json};

/// Rows shown per table at most.
const ROWS: i64 = 500;

/// A mailbox's polling health.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxHealth {
    pub email: String,
    pub enabled: bool,
    pub last_poll_at: Option<i64>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
}

/// How the workers are doing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerHealth {
    pub mailboxes: usize,
    pub enabled: usize,
    /// Enabled mailboxes whose last poll failed, with the error (at most [`ROWS`]).
    pub failing: Vec<MailboxHealth>,
    pub failing_total: usize,
    /// Seconds since the least recently polled enabled mailbox was polled: the lag.
    pub lag_secs: Option<i64>,
    /// Releases waiting to be delivered.
    pub outbox_backlog: usize,
}

impl<DB: Database> AppState<DB> {
    async fn worker_health(&self) -> Result<WorkerHealth, WebError> {
        let now = Timestamp::now();
        let all = self.db.list_subscribers().await?;
        let enabled: Vec<_> = all.iter().filter(|s| s.enabled).collect();
        let failing: Vec<MailboxHealth> = enabled
            .iter()
            .filter(|s| s.last_status.as_deref().is_some_and(|st| st != "ok"))
            .map(|s| MailboxHealth {
                email: s.email.clone(),
                enabled: s.enabled,
                last_poll_at: s.last_poll_at,
                last_status: s.last_status.clone(),
                last_error: s.last_error.clone(),
            })
            .collect();
        Ok(WorkerHealth {
            mailboxes: all.len(),
            enabled: enabled.len(),
            failing_total: failing.len(),
            failing: failing.into_iter().take(ROWS as usize).collect(),
            lag_secs: enabled
                .iter()
                .map(|s| s.last_poll_at.map_or(i64::MAX, |at| now.0 - at))
                .max()
                .map(|l| if l == i64::MAX { -1 } else { l }),
            outbox_backlog: self.db.outbox_pending().await?.len(),
        })
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
struct DashboardPage {
    operator: String,
    csrf: String,
    stats: GlobalStats,
    health: WorkerHealth,
}

#[derive(Serialize)]
struct Dashboard {
    stats: GlobalStats,
    workers: WorkerHealth,
}

pub async fn dashboard<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let (stats, health) = (state.global_stats().await?, state.worker_health().await?);
    if wants_json(&headers) {
        return Ok(Json(Dashboard { stats, workers: health }).into_response());
    }
    let page = DashboardPage { operator: operator.email, csrf: operator.csrf, stats, health };
    Ok(Html(page.render()?).into_response())
}

pub async fn workers_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    Ok(Json(state.worker_health().await?).into_response())
}

/// The correlation table's filters: one target user (email), rows up to a threshold on
/// `max_rms_error`, and the column to sort by.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CorrelationQuery {
    #[serde(default)]
    pub user: String,
    pub threshold: Option<f64>,
    #[serde(default)]
    pub sort: String,
}

/// One row of the correlation table with both users' addresses.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationLine {
    pub user: String,
    pub cuser: String,
    #[serde(flatten)]
    pub row: CorrelationRow,
}

async fn correlation_lines<DB: Database>(
    state: &AppState<DB>,
    q: &CorrelationQuery,
) -> Result<(Vec<CorrelationLine>, Option<String>), WebError> {
    let threshold = q.threshold.filter(|t| t.is_finite()).unwrap_or(1.0);
    let (user, problem) = match q.user.trim() {
        "" => (None, None),
        email => match EmailAddress::parse(email) {
            Ok(e) => match state.db.subscriber_by_email(&e).await? {
                Some(s) => (Some(s.subscriber_id), None),
                None => return Ok((Vec::new(), Some(format!("no subscriber {email}")))),
            },
            Err(e) => return Ok((Vec::new(), Some(format!("{email}: {e}")))),
        },
    };
    let mut rows = state.db.correlation_rows(threshold, user, ROWS).await?;
    match q.sort.as_str() {
        "rms_error" => rows.sort_by(|a, b| a.rms_error.total_cmp(&b.rms_error)),
        "confidence" => rows.sort_by(|a, b| a.confidence.total_cmp(&b.confidence)),
        "domains" => rows.sort_by_key(|r| std::cmp::Reverse(r.domains)),
        "user" => rows.sort_by_key(|r| (r.user_id, r.cuser_id)),
        _ => {} // max_rms_error, as stored
    }
    let mut ids: Vec<i64> = rows.iter().flat_map(|r| [r.user_id, r.cuser_id]).collect();
    ids.sort_unstable();
    ids.dedup();
    let emails: HashMap<i64, String> = state.db.subscriber_emails(&ids).await?.into_iter().collect();
    let email = |id: i64| emails.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let lines = rows
        .into_iter()
        .map(|row| CorrelationLine { user: email(row.user_id), cuser: email(row.cuser_id), row })
        .collect();
    Ok((lines, problem))
}

#[derive(Template)]
#[template(path = "correlation.html")]
struct CorrelationPage {
    operator: String,
    csrf: String,
    query: CorrelationQuery,
    threshold: f64,
    lines: Vec<CorrelationLine>,
    problem: Option<String>,
}

pub async fn correlation<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(query): Query<CorrelationQuery>,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let (lines, problem) = correlation_lines(&state, &query).await?;
    if wants_json(&headers) {
        return Ok(Json(lines).into_response());
    }
    let threshold = query.threshold.unwrap_or(1.0);
    let page = CorrelationPage { operator: operator.email, csrf: operator.csrf, query, threshold, lines, problem };
    Ok(Html(page.render()?).into_response())
}

pub async fn correlation_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(query): Query<CorrelationQuery>,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    Ok(Json(correlation_lines(&state, &query).await?.0).into_response())
}

#[derive(Template)]
#[template(path = "trust.html")]
struct TrustPage {
    operator: String,
    csrf: String,
    rows: Vec<TrustRow>,
}

pub async fn trust<DB: Database>(State(state): State<AppState<DB>>, headers: HeaderMap) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let rows = state.db.trust_rows().await?;
    if wants_json(&headers) {
        return Ok(Json(rows).into_response());
    }
    Ok(Html(TrustPage { operator: operator.email, csrf: operator.csrf, rows }.render()?).into_response())
}

pub async fn trust_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    Ok(Json(state.db.trust_rows().await?).into_response())
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    operator: String,
    csrf: String,
    rows: Vec<DomainRow>,
}

pub async fn domains<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let rows = state.db.domain_rows(ROWS).await?;
    if wants_json(&headers) {
        return Ok(Json(rows).into_response());
    }
    Ok(Html(DomainsPage { operator: operator.email, csrf: operator.csrf, rows }.render()?).into_response())
}

pub async fn domains_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    Ok(Json(state.db.domain_rows(ROWS).await?).into_response())
}
