//! `POST /_gantry/registry/gc`: one pass now, answered with what it removed. Off unless the server's admin
//! endpoints are enabled.

use super::GcOptions;
use crate::Registry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use gantry_store::Store;
use std::sync::Arc;

struct Admin<S: Store> {
    registry: Arc<Registry<S>>,
    enabled: bool,
    options: GcOptions,
}

pub fn admin_router<S: Store>(
    registry: Arc<Registry<S>>,
    enabled: bool,
    options: GcOptions,
) -> Router {
    let state = Arc::new(Admin {
        registry,
        enabled,
        options,
    });
    Router::new()
        .route("/_gantry/registry/gc", post(collect::<S>))
        .with_state(state)
}

async fn collect<S: Store>(State(admin): State<Arc<Admin<S>>>) -> Response {
    if !admin.enabled {
        return (
            StatusCode::NOT_FOUND,
            "the admin endpoints are off; start the server with --enable-admin\n",
        )
            .into_response();
    }
    match admin.registry.collect_garbage(admin.options).await {
        Ok(report) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            serde_json::to_string(&report).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("garbage collection failed: {e}\n"),
        )
            .into_response(),
    }
}
