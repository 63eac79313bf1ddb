//! Thin handlers of the registry: extract, call the service, shape the response.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::import::{self, Kind};
use super::service::{self, EquipmentQuery, UnitQuery};
use super::types::{EquipmentPatch, NewEquipment, NewUnit, TemplatePatch, UnitPatch};
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::ApiResult;
use crate::http::json::ApiJson;
use crate::http::pagination::Page;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::get("/api/v1/codes", || web::get().to(codes)),
        RouteDef::get("/api/v1/units", || web::get().to(list_units)),
        RouteDef::post("/api/v1/units", || web::post().to(create_unit)),
        RouteDef::get("/api/v1/units/{id}", || web::get().to(get_unit)),
        RouteDef::patch("/api/v1/units/{id}", || web::patch().to(update_unit)),
        RouteDef::get("/api/v1/equipment", || web::get().to(list_equipment)),
        RouteDef::post("/api/v1/equipment", || web::post().to(create_equipment)),
        RouteDef::get("/api/v1/equipment/{id}", || web::get().to(get_equipment)),
        RouteDef::patch("/api/v1/equipment/{id}", || {
            web::patch().to(update_equipment)
        }),
        RouteDef::get("/api/v1/checklist-templates", || {
            web::get().to(list_templates)
        }),
        RouteDef::get("/api/v1/checklist-templates/{id}", || {
            web::get().to(get_template)
        }),
        RouteDef::patch("/api/v1/checklist-templates/{id}", || {
            web::patch().to(update_template)
        }),
        RouteDef::post("/api/v1/imports/units", || web::post().to(import_units)),
        RouteDef::post("/api/v1/imports/equipment", || {
            web::post().to(import_equipment)
        }),
    ]
}

/// Code tables change rarely: served with an ETag so that apps revalidate cheaply.
async fn codes(
    state: web::Data<AppState>,
    _me: AuthUser,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let version = service::codes_version(&state).await?;
    let etag = format!("\"codes-{version}\"");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // Weak comparison (RFC 9110 13.1.2): a proxy may have weakened the tag.
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
        });
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "private, no-cache"))
            .finish());
    }
    let tables = service::code_tables(&state).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"codes-{}\"", tables.version)))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .json(tables))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitListQuery {
    region: Option<String>,
    place_type: Option<String>,
    risk_min: Option<i32>,
    flag: Option<String>,
    overdue: Option<bool>,
    q: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_units(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<UnitListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let query = UnitQuery {
        region: q.region,
        place_type: q.place_type,
        risk_min: q.risk_min,
        flag: q.flag,
        overdue: q.overdue,
        q: q.q,
    };
    Ok(HttpResponse::Ok().json(service::list_units(&state, me, query, page).await?))
}

async fn create_unit(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<NewUnit>,
) -> ApiResult<HttpResponse> {
    let unit = service::create_unit(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/units/{}", unit.id)))
        .json(unit))
}

async fn get_unit(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::get_unit(&state, me, id.into_inner()).await?))
}

async fn update_unit(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<UnitPatch>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::update_unit(&state, me, id.into_inner(), body.0).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EquipmentListQuery {
    region: Option<String>,
    unit_id: Option<String>,
    category: Option<String>,
    reg_status: Option<String>,
    overdue: Option<bool>,
    risk_min: Option<i32>,
    flag: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_equipment(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<EquipmentListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let query = EquipmentQuery {
        region: q.region,
        unit_id: q.unit_id,
        category: q.category,
        reg_status: q.reg_status,
        overdue: q.overdue,
        risk_min: q.risk_min,
        flag: q.flag,
        q: q.q,
    };
    Ok(HttpResponse::Ok().json(service::list_equipment(&state, me, query, page).await?))
}

async fn create_equipment(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<NewEquipment>,
) -> ApiResult<HttpResponse> {
    let e = service::create_equipment(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/equipment/{}", e.id)))
        .json(e))
}

async fn get_equipment(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::get_equipment(&state, me, id.into_inner()).await?))
}

async fn update_equipment(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<EquipmentPatch>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .json(service::update_equipment(&state, me, id.into_inner(), body.0).await?))
}

async fn list_templates(state: web::Data<AppState>, me: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::list_templates(&state, me).await?))
}

async fn get_template(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::get_template(&state, me, id.into_inner()).await?))
}

async fn update_template(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<TemplatePatch>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .json(service::update_template(&state, me, id.into_inner(), body.0).await?))
}

async fn import_units(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(import::handle(&state, me, Kind::Units, &req, payload).await?))
}

async fn import_equipment(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(import::handle(&state, me, Kind::Equipment, &req, payload).await?))
}
