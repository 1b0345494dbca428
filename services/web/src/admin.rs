//! The operator's pages under `/admin` (SPEC 5) and the same data as JSON under
//! `/api/admin`: global statistics, worker health, the correlation table, trust statuses
//! and every evidence key's standing (domains, URL domains, networks, ...). Only operator
//! sessions get in; subscribers get 403.

use askama::Template;
use axum::{
    Form, Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use quorum_domain::{EmailAddress, Timestamp};
use quorum_stats::KeyKind;
use quorum_storage::{CorrelationLine, Database, KeyRow, TrustRow, WorkerTotals};
use serde::{Deserialize, Serialize};

use crate::{
    AppState, WebError,
    history::{Chart, Day, charts},
    public::GlobalStats,
    wants_json,
};

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

impl MailboxHealth {
    /// The last poll's time for the page.
    pub fn last_poll(&self) -> String {
        self.last_poll_at.map_or("never".into(), |at| quorum_domain::release::rfc5322_date(Timestamp(at)))
    }
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
    charts: Vec<Chart>,
}

#[derive(Serialize)]
struct Dashboard {
    stats: GlobalStats,
    workers: WorkerHealth,
    /// The last 30 days, oldest first.
    history: Vec<Day>,
}

pub async fn dashboard<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let (stats, health, history) = (state.global_stats().await?, state.worker_health().await?, state.history().await?);
    if wants_json(&headers) {
        return Ok(Json(Dashboard { stats, workers: health, history }).into_response());
    }
    let page = DashboardPage { operator: operator.email, csrf: operator.csrf, stats, health, charts: charts(&history) };
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
    status: String,
    rows: Vec<TrustRow>,
}

/// The trust table's filter: one status (`trusted`, `probe`, ...), or all.
#[derive(Debug, Default, Deserialize)]
pub struct TrustQuery {
    #[serde(default)]
    status: String,
}

pub async fn trust<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(query): Query<TrustQuery>,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let mut rows = state.db.trust_rows().await?;
    if !query.status.is_empty() {
        rows.retain(|r| r.status == query.status);
    }
    if wants_json(&headers) {
        return Ok(Json(rows).into_response());
    }
    let page = TrustPage { operator: operator.email, csrf: operator.csrf, status: query.status, rows };
    Ok(Html(page.render()?).into_response())
}

pub async fn trust_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    Ok(Json(state.db.trust_rows().await?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct KeysQuery {
    /// A [`KeyKind`] name; the domains when absent or unknown.
    #[serde(default)]
    pub kind: String,
}

impl KeysQuery {
    fn kind(&self) -> KeyKind {
        self.kind.parse().unwrap_or(KeyKind::Domain)
    }
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    operator: String,
    csrf: String,
    kind: &'static str,
    kinds: Vec<&'static str>,
    rows: Vec<KeyRow>,
}

/// The evidence table of one kind of key (the domain table by default).
pub async fn keys<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(q): Query<KeysQuery>,
) -> Result<Response, WebError> {
    let operator = state.operator(&headers).await?;
    let kind = q.kind();
    let rows = state.db.key_rows(kind.as_str(), ROWS).await?;
    if wants_json(&headers) {
        return Ok(Json(rows).into_response());
    }
    let kinds = KeyKind::ALL.iter().map(|k| k.as_str()).collect();
    let page = KeysPage { operator: operator.email, csrf: operator.csrf, kind: kind.as_str(), kinds, rows };
    Ok(Html(page.render()?).into_response())
}

pub async fn keys_json<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Query(q): Query<KeysQuery>,
) -> Result<Response, WebError> {
    state.operator(&headers).await?;
    Ok(Json(state.db.key_rows(q.kind().as_str(), ROWS).await?).into_response())
}

#[derive(Template)]
#[template(path = "providers.html")]
struct ProvidersPage {
    operator: String,
    csrf: String,
    providers: Vec<quorum_domain::Provider>,
    form: ProviderForm,
    error: Option<String>,
}

/// A row of the provider table as the form sends it (checkboxes are present when ticked).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
    major_isp: Option<String>,
    ptr_supported: Option<String>,
    ptr_required: Option<String>,
    #[serde(default)]
    ptr_domains: String,
    #[serde(default)]
    ns_matches: String,
}

async fn providers_page<DB: Database>(
    state: &AppState<DB>,
    headers: &HeaderMap,
    form: ProviderForm,
    error: Option<String>,
) -> Result<Response, WebError> {
    let operator = state.operator(headers).await?;
    let providers = state.db.providers().await?;
    if wants_json(headers) {
        return Ok(Json(providers).into_response());
    }
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = ProvidersPage { operator: operator.email, csrf: operator.csrf, providers, form, error };
    Ok((status, Html(page.render()?)).into_response())
}

/// The provider table (SPEC 3) and a form to add or replace a row.
pub async fn providers<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    providers_page(&state, &headers, ProviderForm::default(), None).await
}

pub async fn save_provider<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<ProviderForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    state.operator(&headers).await?;
    let required = form.ptr_required.is_some();
    let provider = quorum_domain::Provider::new(
        form.domain.trim(),
        form.major_isp.is_some(),
        form.ptr_supported.is_some() || required,
        required,
        &form.ptr_domains,
        &form.ns_matches,
    );
    match provider {
        Ok(p) => {
            state.db.upsert_provider(&p).await?;
            tracing::info!(domain = %p.domain, "provider row saved on the web");
            Ok(Redirect::to("/admin/providers").into_response())
        }
        Err(e) => providers_page(&state, &headers, form, Some(e.to_string())).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct DomainForm {
    #[serde(default)]
    csrf: String,
    domain: String,
}

pub async fn remove_provider<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<DomainForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    state.operator(&headers).await?;
    state.db.remove_provider(&form.domain).await?;
    Ok(Redirect::to("/admin/providers").into_response())
}

#[derive(Template)]
#[template(path = "probes.html")]
struct ProbesPage {
    operator: String,
    csrf: String,
    probes: Vec<String>,
    error: Option<String>,
}

async fn probes_page<DB: Database>(
    state: &AppState<DB>,
    headers: &HeaderMap,
    error: Option<String>,
) -> Result<Response, WebError> {
    let operator = state.operator(headers).await?;
    let probes = state.db.spam_probe_emails().await?;
    if wants_json(headers) {
        return Ok(Json(probes).into_response());
    }
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = ProbesPage { operator: operator.email, csrf: operator.csrf, probes, error };
    Ok((status, Html(page.render()?)).into_response())
}

/// Spam probes: honeypot subscribers whose every message is a spam vote on arrival.
pub async fn probes<DB: Database>(State(state): State<AppState<DB>>, headers: HeaderMap) -> Result<Response, WebError> {
    probes_page(&state, &headers, None).await
}

#[derive(Debug, Deserialize)]
pub struct ProbeForm {
    #[serde(default)]
    csrf: String,
    email: String,
    /// `on` or `off`.
    probe: String,
}

pub async fn set_probe<DB: Database>(
    State(state): State<AppState<DB>>,
    headers: HeaderMap,
    Form(form): Form<ProbeForm>,
) -> Result<Response, WebError> {
    state.check_csrf(&headers, &form.csrf)?;
    state.operator(&headers).await?;
    let subscriber = match EmailAddress::parse(form.email.trim()) {
        Ok(email) => state.db.subscriber_by_email(&email).await?,
        Err(_) => None,
    };
    let Some(subscriber) = subscriber else {
        return probes_page(&state, &headers, Some(format!("no subscriber {}", form.email.trim()))).await;
    };
    state.db.set_spam_probe(subscriber.subscriber_id, form.probe == "on").await?;
    tracing::info!(subscriber = subscriber.subscriber_id, probe = form.probe, "spam-probe flag set on the web");
    Ok(Redirect::to("/admin/probes").into_response())
}
