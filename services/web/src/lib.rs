//! The web service (axum). For now: `/healthz` for load balancers and systemd, and
//! `/metrics` for Prometheus, with every request counted by route and status.

use std::{net::SocketAddr, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use quorum_storage::Database;
use tokio::{net::TcpListener, sync::watch};

/// Shared state of every handler (atuin's `AppState<DB>`).
#[derive(Clone)]
pub struct AppState<DB: Database> {
    pub db: DB,
    pub metrics: PrometheusHandle,
}

/// Installs the process-wide Prometheus recorder; call once per process.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new().install_recorder().map_err(|e| e.to_string())
}

pub fn router<DB: Database>(state: AppState<DB>) -> Router {
    Router::new()
        .route("/healthz", get(healthz::<DB>))
        .route("/metrics", get(metrics_page::<DB>))
        .layer(middleware::from_fn(track_requests))
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
    axum::serve(listener, router(state))
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_and_metrics_by_route() {
        let dir = tempfile::tempdir().unwrap();
        let db = quorum_storage::Sqlite::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let app = router(AppState { db, metrics });
        let _guard = metrics::set_default_local_recorder(&recorder);
        let res = app.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.clone().oneshot(Request::get("/nope").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains(r#"quorum_http_requests_total{route="/healthz",method="GET",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"route="unmatched",method="GET",status="404""#), "{text}");
    }
}
