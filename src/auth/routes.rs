//! Thin handlers: extract, call the service, shape the response.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::extractor::AuthUser;
use super::types::{LoginRequest, NewUser, RefreshRequest, UserPatch};
use super::{service, users};
use crate::app::{AppState, RouteDef};
use crate::error::ApiResult;
use crate::http::client::client_ip;
use crate::http::json::ApiJson;
use crate::http::pagination::Page;

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::post("/api/v1/auth/login", || web::post().to(login)),
        RouteDef::post("/api/v1/auth/refresh", || web::post().to(refresh)),
        RouteDef::post("/api/v1/auth/logout", || web::post().to(logout)),
        RouteDef::get("/api/v1/me", || web::get().to(me)),
        RouteDef::post("/api/v1/users", || web::post().to(create_user)),
        RouteDef::get("/api/v1/users", || web::get().to(list_users)),
        RouteDef::get("/api/v1/users/{id}", || web::get().to(get_user)),
        RouteDef::patch("/api/v1/users/{id}", || web::patch().to(update_user)),
        RouteDef::get("/api/v1/devices", || web::get().to(list_devices)),
        RouteDef::post("/api/v1/devices/{id}/revoke", || {
            web::post().to(revoke_device)
        }),
    ]
}

/// Token responses must never be cached by anything in between.
fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let addr = client_ip(&req, &state.proxies);
    let pair = service::login(&state, body.0, addr).await?;
    Ok(no_store(HttpResponse::Ok()).json(pair))
}

async fn refresh(
    state: web::Data<AppState>,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let pair = service::refresh(&state, body.0).await?;
    Ok(no_store(HttpResponse::Ok()).json(pair))
}

async fn logout(state: web::Data<AppState>, me: AuthUser) -> ApiResult<HttpResponse> {
    service::logout(&state, me).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(me: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(users::me(me))
}

async fn create_user(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<NewUser>,
) -> ApiResult<HttpResponse> {
    let user = users::create(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserListQuery {
    role: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_users(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<UserListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    Ok(HttpResponse::Ok().json(users::list(&state, me, q.role, page).await?))
}

async fn get_user(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(users::get(&state, me, id.into_inner()).await?))
}

async fn update_user(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<UserPatch>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(users::update(&state, me, id.into_inner(), body.0).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceListQuery {
    user_id: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_devices(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<DeviceListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    Ok(HttpResponse::Ok().json(service::list_devices(&state, me, q.user_id, page).await?))
}

async fn revoke_device(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::revoke_device(&state, me, id.into_inner()).await?))
}
