//! The operator's pages under `/admin` (SPEC 5) and the same data as JSON under
//! `/api/admin`: global statistics, worker health, the correlation table, trust statuses
//! and domain probabilities. Only operator sessions get in; subscribers get 403.

use askama::Template;
use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};
use quorum_domain::{EmailAddress, Timestamp};
use quorum_storage::{CorrelationLine, Database, DomainRow, TrustRow, WorkerTotals};
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
    #[serde(flatten)]
    pub totals: WorkerTotals,
    /// Seconds since the least recently polled enabled mailbox was polled: the lag
    /// (`None`: no enabled mailbox; `Some(-1)`: one was never polled).
    pub lag_secs: Option<i64>,
    /// Enabled mailboxes whose last poll failed, with the error (at most [`ROWS`]).
    pub failing: Vec<MailboxHealth>,
}

impl<DB: Database> AppState<DB> {
    async fn worker_health(&self) -> Result<WorkerHealth, WebError> {
        let now = Timestamp::now();
        let totals = self.db.worker_totals().await?;
        let failing = self
            .db
            .failing_mailboxes(ROWS)
            .await?
            .into_iter()
            .map(|s| MailboxHealth {
                email: s.email,
                enabled: s.enabled,
                last_poll_at: s.last_poll_at,
                last_status: s.last_status,
                last_error: s.last_error,
            })
            .collect();
        let lag_secs = totals.oldest_poll_at.map(|at| if at < 0 { -1 } else { now.0 - at });
        Ok(WorkerHealth { totals, lag_secs, failing })
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
    let mut lines = state.db.correlation_rows(threshold, user, ROWS).await?;
    match q.sort.as_str() {
        "rms_error" => lines.sort_by(|a, b| a.row.rms_error.total_cmp(&b.row.rms_error)),
        "confidence" => lines.sort_by(|a, b| a.row.confidence.total_cmp(&b.row.confidence)),
        "domains" => lines.sort_by_key(|l| std::cmp::Reverse(l.row.domains)),
        "user" => lines.sort_by(|a, b| (&a.user_email, &a.cuser_email).cmp(&(&b.user_email, &b.cuser_email))),
        _ => {} // max_rms_error, as stored
    }
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
