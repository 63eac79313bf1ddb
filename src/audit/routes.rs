//! Thin handlers of the audit log.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::service;
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::ApiResult;
use crate::http::pagination::Page;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::get("/api/v1/audit", || web::get().to(list)),
        RouteDef::get("/api/v1/audit/verify", || web::get().to(verify)),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    entity_table: Option<String>,
    entity_id: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let query = service::ListQuery {
        entity_table: q.entity_table,
        entity_id: q.entity_id,
    };
    Ok(HttpResponse::Ok().json(service::list(&state, me, query, page).await?))
}

async fn verify(state: web::Data<AppState>, me: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::verify_api(&state, me).await?))
}
