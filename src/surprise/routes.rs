//! Thin handlers of unannounced-check plans, dispatch and recusals.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::service::{self, NewPlan, NewRecusal};
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::ApiResult;
use crate::http::json::ApiJson;
use crate::http::pagination::PageQuery;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::post("/api/v1/surprise-plans", || web::post().to(create)),
        RouteDef::get("/api/v1/surprise-plans", || web::get().to(list)),
        RouteDef::get("/api/v1/surprise-plans/{id}", || web::get().to(get)),
        RouteDef::post("/api/v1/surprise-plans/{id}/draw", || web::post().to(draw)),
        RouteDef::get("/api/v1/surprise-plans/{id}/verification", || {
            web::get().to(verification)
        }),
        RouteDef::get("/api/v1/surprise-plans/{id}/reads", || web::get().to(reads)),
        RouteDef::post("/api/v1/assignments/{id}/dispatch", || {
            web::post().to(dispatch)
        }),
        RouteDef::post("/api/v1/recusals", || web::post().to(add_recusal)),
        RouteDef::get("/api/v1/recusals", || web::get().to(list_recusals)),
    ]
}

async fn create(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<NewPlan>,
) -> ApiResult<HttpResponse> {
    let p = service::create(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/surprise-plans/{}", p.id)))
        .json(p))
}

async fn list(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::list(&state, me, q.page()?).await?))
}

async fn get(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::get(&state, me, id.into_inner()).await?))
}

async fn draw(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::draw_plan(&state, me, id.into_inner()).await?))
}

async fn verification(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::verification(&state, me, id.into_inner()).await?))
}

async fn reads(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let items = service::reads(&state, me, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn dispatch(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::dispatch(&state, me, id.into_inner()).await?))
}

async fn add_recusal(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<NewRecusal>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(service::add_recusal(&state, me, body.0).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecusalQuery {
    user_id: Option<String>,
}

async fn list_recusals(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<RecusalQuery>,
) -> ApiResult<HttpResponse> {
    let items = service::list_recusals(&state, me, q.into_inner().user_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
