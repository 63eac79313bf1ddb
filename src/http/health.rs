//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::{AppState, RouteDef};
use crate::error::ApiResult;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::get("/healthz", || web::get().to(healthz)),
        RouteDef::get("/readyz", || web::get().to(readyz)),
    ]
}

/// The process is up and serving. Touches nothing else.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers (503 otherwise).
async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state.db.run(crate::db::ping).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": state.db.engine()})))
}
