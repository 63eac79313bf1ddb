//! Thin handlers of assignments and hazards.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::types::{AssignmentPatch, NewAssignment};
use super::{assignments, hazards};
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::ApiResult;
use crate::http::json::ApiJson;
use crate::http::pagination::Page;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::post("/api/v1/assignments", || web::post().to(create_assignment)),
        RouteDef::get("/api/v1/assignments", || web::get().to(list_assignments)),
        RouteDef::get("/api/v1/assignments/{id}", || web::get().to(get_assignment)),
        RouteDef::patch("/api/v1/assignments/{id}", || {
            web::patch().to(update_assignment)
        }),
        RouteDef::delete("/api/v1/assignments/{id}", || {
            web::delete().to(delete_assignment)
        }),
        RouteDef::get("/api/v1/hazards", || web::get().to(list_hazards)),
        RouteDef::get("/api/v1/hazards/{id}", || web::get().to(get_hazard)),
    ]
}

async fn create_assignment(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<NewAssignment>,
) -> ApiResult<HttpResponse> {
    let a = assignments::create(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/assignments/{}", a.id)))
        .json(a))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentListQuery {
    unit_id: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_assignments(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<AssignmentListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let query = assignments::ListQuery {
        unit_id: q.unit_id,
        status: q.status,
        kind: q.kind,
    };
    Ok(HttpResponse::Ok().json(assignments::list(&state, me, query, page).await?))
}

async fn get_assignment(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(assignments::get(&state, me, id.into_inner()).await?))
}

async fn update_assignment(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<AssignmentPatch>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(assignments::update(&state, me, id.into_inner(), body.0).await?))
}

async fn delete_assignment(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    assignments::delete(&state, me, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HazardListQuery {
    unit_id: Option<String>,
    level: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_hazards(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<HazardListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let query = hazards::ListQuery {
        unit_id: q.unit_id,
        level: q.level,
        state: q.state,
    };
    Ok(HttpResponse::Ok().json(hazards::list(&state, me, query, page).await?))
}

async fn get_hazard(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(hazards::get(&state, me, id.into_inner()).await?))
}
