//! The daemon's HTTP endpoints: `/metrics` (Prometheus text), `/healthz` and `/readyz`, served
//! with axum on the tokio runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::{Metrics, EXPOSITION_CONTENT_TYPE};

/// Binds `listen` and spawns (with `tokio::spawn`) an HTTP/1.1 server for `GET /metrics`,
/// `/healthz` and `/readyz` (see the module doc). Returns the bound address once listening, so
/// port 0 picks a free port. The server stops accepting when `shutdown` completes and ends once
/// open requests are answered.
///
/// # Errors
///
/// The address cannot be bound (in use, not local, no permission).
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%bound, %err, "metrics server stopped with an error");
        }
    });
    Ok(bound)
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)],
        metrics.render(),
    )
}

/// 200 `ok` while the process works; 503 with the reason once a fatal error or a dead worker
/// has been recorded (the process is then stopping).
async fn healthz(State(metrics): State<Arc<Metrics>>) -> (StatusCode, String) {
    match metrics.health() {
        None => (StatusCode::OK, "ok".into()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failing: {reason}"),
        ),
    }
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if metrics.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
