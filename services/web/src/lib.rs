//! The web service (axum, SPEC 5): the public landing page and live statistics, mailbox
//! signup, the subscriber's own pages, the operator's dashboard under `/admin` with its JSON
//! API under `/api`, and `/healthz` and `/metrics`. One handler per page; templates in the
//! repository's `web/templates`, checked at compile time (askama).

mod account;
mod admin;
pub mod auth;
mod error;
mod history;
pub mod limit;
mod public;
pub mod reports;
mod reset;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use quorum_config::Settings;
use quorum_domain::{Keys, Timestamp};
use quorum_mailer::Mailer;
use quorum_storage::{Database, Principal, SubscriberStatus};
use tokio::{net::TcpListener, sync::watch};

pub use error::WebError;

/// Shared state of every handler (atuin's `AppState<DB>`).
#[derive(Clone)]
pub struct AppState<DB: Database> {
    pub db: DB,
    pub metrics: PrometheusHandle,
    pub keys: Keys,
    pub settings: Arc<Settings>,
    /// Sends the welcome email; `None`: no SMTP (tests of pages alone).
    pub mailer: Option<Arc<Mailer>>,
    pub limiter: Arc<limit::Limiter>,
    stats: Arc<Cached<public::GlobalStats>>,
    history: Arc<Cached<Vec<history::Day>>>,
    /// The TLS roots for mailbox checks, loaded at the first check (`None`: they could not be).
    tls: Arc<std::sync::OnceLock<Option<Arc<quorum_pop3::TlsConfig>>>>,
}

/// A value computed at most once per time-to-live (pages whose queries read every message).
/// When it is stale, one request recomputes it while the others wait for that result
/// instead of all running the same heavy query at once.
struct Cached<T>(tokio::sync::RwLock<Option<(Instant, T)>>);

impl<T: Clone> Default for Cached<T> {
    fn default() -> Self {
        Cached(tokio::sync::RwLock::new(None))
    }
}

impl<T: Clone> Cached<T> {
    async fn get<F, Fut>(&self, ttl: Duration, compute: F) -> Result<T, WebError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, WebError>>,
    {
        let fresh =
            |slot: &Option<(Instant, T)>| slot.as_ref().filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| v.clone());
        if let Some(v) = fresh(&*self.0.read().await) {
            return Ok(v);
        }
        let mut slot = self.0.write().await;
        if let Some(v) = fresh(&slot) {
            return Ok(v); // another request refreshed it while this one waited
        }
        let v = compute().await?;
        *slot = Some((Instant::now(), v.clone()));
        Ok(v)
    }
}

impl<DB: Database> AppState<DB> {
    pub fn new(
        db: DB,
        metrics: PrometheusHandle,
        keys: Keys,
        settings: Arc<Settings>,
        mailer: Option<Arc<Mailer>>,
    ) -> Self {
        let limiter = limit::Limiter::new(settings.web.attempts_per_15_minutes, Duration::from_secs(15 * 60));
        AppState {
            db,
            metrics,
            keys,
            settings,
            mailer,
            limiter: Arc::new(limiter),
            stats: Arc::default(),
            history: Arc::default(),
            tls: Arc::default(),
        }
    }

    /// Whose session the request carries, if any.
    async fn principal(&self, headers: &HeaderMap) -> Result<Option<Principal>, WebError> {
        let Some(token) = auth::cookie(headers, auth::SESSION_COOKIE) else { return Ok(None) };
        Ok(self.db.session(&auth::token_hash(token), Timestamp::now()).await?)
    }

    /// The logged-in subscriber, or a redirect to the login page.
    async fn subscriber(&self, headers: &HeaderMap) -> Result<Me, WebError> {
        match self.principal(headers).await? {
            Some(Principal::Subscriber(id)) => {
                let subscriber = self.db.subscriber(id).await?.ok_or(WebError::Login)?;
                Ok(Me { csrf: self.csrf(headers), subscriber })
            }
            Some(Principal::Operator(_)) => Err(WebError::Forbidden),
            None => Err(WebError::Login),
        }
    }

    /// The logged-in operator's address; subscribers get 403.
    async fn operator(&self, headers: &HeaderMap) -> Result<Operator, WebError> {
        match self.principal(headers).await? {
            Some(Principal::Operator(id)) => {
                let email = self.db.operator_email(id).await?.ok_or(WebError::Login)?;
                Ok(Operator { email, csrf: self.csrf(headers) })
            }
            Some(Principal::Subscriber(_)) => Err(WebError::Forbidden),
            None => Err(WebError::Login),
        }
    }

    /// The CSRF token for this request's forms (empty when it carries no seed cookie yet:
    /// see [`with_form_cookie`]).
    fn csrf(&self, headers: &HeaderMap) -> String {
        [auth::SESSION_COOKIE, auth::FORM_COOKIE]
            .iter()
            .find_map(|name| auth::cookie(headers, name))
            .map(|seed| auth::csrf_token(&self.keys, seed))
            .unwrap_or_default()
    }

    /// Refuses a posted form whose CSRF token does not match the request's cookies.
    fn check_csrf(&self, headers: &HeaderMap, posted: &str) -> Result<(), WebError> {
        if auth::csrf_ok(&self.keys, headers, posted) { Ok(()) } else { Err(WebError::Csrf) }
    }

    /// Opens a session and returns its cookie.
    async fn login(&self, principal: Principal) -> Result<String, WebError> {
        let token = auth::new_token();
        let now = Timestamp::now();
        let days = self.settings.web.session_days;
        let expires = Timestamp(now.0 + days * 86_400);
        self.db.create_session(&auth::token_hash(&token), principal, now, expires).await?;
        Ok(auth::set_cookie(auth::SESSION_COOKIE, &token, days * 86_400, self.settings.web.secure_cookies))
    }
}

/// A logged-in subscriber.
struct Me {
    subscriber: SubscriberStatus,
    csrf: String,
}

/// A logged-in operator.
struct Operator {
    email: String,
    csrf: String,
}

/// A page with forms for someone without a session: makes sure the browser has a
/// `quorum_form` cookie and returns the CSRF token for it, with the cookie to set if new.
fn form_seed<DB: Database>(state: &AppState<DB>, headers: &HeaderMap) -> (String, Option<String>) {
    if auth::cookie(headers, auth::SESSION_COOKIE).is_some() || auth::cookie(headers, auth::FORM_COOKIE).is_some() {
        return (state.csrf(headers), None);
    }
    let seed = auth::new_token();
    let cookie = auth::set_cookie(auth::FORM_COOKIE, &seed, 86_400, state.settings.web.secure_cookies);
    (auth::csrf_token(&state.keys, &seed), Some(cookie))
}

/// Adds a `Set-Cookie` header when there is one.
fn with_cookie(response: impl IntoResponse, cookie: Option<String>) -> Response {
    let mut response = response.into_response();
    if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// Whether the client asked for JSON (`Accept: application/json`).
fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"))
}

/// The client's address, for rate limits.
fn client(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}

/// Installs the process-wide Prometheus recorder; call once per process.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new().install_recorder().map_err(|e| e.to_string())
}

pub fn router<DB: Database>(state: AppState<DB>) -> Router {
    Router::new()
        .route("/", get(public::index::<DB>))
        .route("/stats", get(public::stats::<DB>))
        .route("/api/stats", get(public::stats_json::<DB>))
        .route("/signup", get(public::signup_page::<DB>).post(public::signup::<DB>))
        .route("/login", get(public::login_page::<DB>).post(public::login::<DB>))
        .route("/logout", post(public::logout::<DB>))
        .route("/reset", get(reset::request_page::<DB>).post(reset::request::<DB>))
        .route("/reset/{token}", get(reset::choose_page::<DB>).post(reset::choose::<DB>))
        .route("/static/quorum.css", get(public::stylesheet))
        .route("/account", get(account::held::<DB>))
        .route("/account/messages/{id}/{action}", post(account::decide::<DB>))
        .route("/account/senders", get(account::senders::<DB>).post(account::add_senders::<DB>))
        .route("/account/senders/remove", post(account::remove_sender::<DB>))
        .route("/account/disable", post(account::disable::<DB>))
        .route("/account/settings", get(account::settings_page::<DB>).post(account::settings::<DB>))
        .route("/admin", get(admin::dashboard::<DB>))
        .route("/admin/correlation", get(admin::correlation::<DB>))
        .route("/admin/trust", get(admin::trust::<DB>))
        .route("/admin/keys", get(admin::keys::<DB>))
        .route("/admin/domains", get(|| async { Redirect::permanent("/admin/keys?kind=domain") }))
        .route("/admin/providers", get(admin::providers::<DB>).post(admin::save_provider::<DB>))
        .route("/admin/providers/remove", post(admin::remove_provider::<DB>))
        .route("/admin/probes", get(admin::probes::<DB>).post(admin::set_probe::<DB>))
        .route("/admin/campaigns", get(reports::campaigns_page::<DB>))
        .route("/admin/blocklist/{format}", get(reports::blocklist_export::<DB>))
        .route("/api/admin/campaigns", get(reports::campaigns_json::<DB>))
        .route("/api/admin/correlation", get(admin::correlation_json::<DB>))
        .route("/api/admin/trust", get(admin::trust_json::<DB>))
        .route("/api/admin/keys", get(admin::keys_json::<DB>))
        .route("/api/admin/workers", get(admin::workers_json::<DB>))
        .route("/healthz", get(healthz::<DB>))
        .route("/metrics", get(metrics_page::<DB>))
        .layer(middleware::from_fn(track_requests))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves until `shutdown` turns true.
pub async fn serve<DB: Database>(
    state: AppState<DB>,
    listen: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "web service listening");
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

async fn healthz<DB: Database>(State(state): State<AppState<DB>>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

async fn metrics_page<DB: Database>(State(state): State<AppState<DB>>) -> String {
    state.metrics.render()
}

/// Counts requests and their latency, labelled by the route pattern (not the raw path, so
/// ids in URLs cannot explode the number of series).
/// What every response tells the browser (the hardening issue): load nothing but this
/// site's own files, run no inline script, never be framed (the approve and delete buttons
/// cannot be overlaid by another site: clickjacking), post forms only here, never guess a
/// content type, and send no Referer (a password-reset link must not leak to the next site).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("quorum_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("quorum_http_request_seconds", "route" => route).record(start.elapsed().as_secs_f64());
    response
}
