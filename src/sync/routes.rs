//! Thin handlers of delta sync.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::pull::{self, DEFAULT_LIMIT, PullRequest};
use super::push::{self, PushRequest};
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::get("/api/v1/sync/pull", || web::get().to(pull_handler)),
        RouteDef::post("/api/v1/sync/push", || web::post().to(push_handler)),
        RouteDef::get("/api/v1/sync/checksum", || web::get().to(checksum_handler)),
        RouteDef::get("/api/v1/sync/conflicts", || {
            web::get().to(conflicts_handler)
        }),
    ]
}

/// `X-Sync-Protocol`: missing means 1; anything else this server does not speak is 426.
fn protocol(req: &HttpRequest) -> ApiResult<()> {
    match req.headers().get("x-sync-protocol").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(v)) if v.trim() == "1" => Ok(()),
        Some(_) => Err(ApiError::ProtocolTooOld {
            message: "this server speaks sync protocol 1 (X-Sync-Protocol: 1)".into(),
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn pull_handler(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    q: web::Query<PullQuery>,
) -> ApiResult<HttpResponse> {
    protocol(&req)?;
    let q = q.into_inner();
    let out = pull::pull(
        &state,
        me,
        PullRequest {
            cursor: q.cursor,
            limit: q.limit.unwrap_or(DEFAULT_LIMIT),
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .content_type("application/json")
        .body(pull::page_body(&out)))
}

async fn push_handler(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    body: ApiJson<PushRequest>,
) -> ApiResult<HttpResponse> {
    protocol(&req)?;
    Ok(HttpResponse::Ok().json(push::push(&state, me, body.0).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksumQuery {
    cursor: Option<String>,
}

async fn checksum_handler(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    q: web::Query<ChecksumQuery>,
) -> ApiResult<HttpResponse> {
    protocol(&req)?;
    let cursor = q.into_inner().cursor.unwrap_or_default();
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(super::checksum::checksum(&state, me, cursor).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConflictQuery {
    limit: Option<i64>,
    after: Option<String>,
}

async fn conflicts_handler(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ConflictQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = crate::http::pagination::Page::new(q.limit, q.after.as_deref())?;
    Ok(HttpResponse::Ok().json(super::conflicts::list(&state, me, page).await?))
}
