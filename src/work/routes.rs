//! Thin handlers of assignments, inspection records and hazards.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use serde_json::Value;

use super::queries::{DirectiveFilter, InspectionFilter};
use super::types::{AssignmentPatch, CloseDirective, NewAssignment};
use super::{assignments, campaigns, enforcement, hazards, inspections, reports};
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::ApiResult;
use crate::http::json::ApiJson;
use crate::http::pagination::{Page, PageQuery};

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
        RouteDef::post("/api/v1/hazards", || web::post().to(report_hazard)),
        RouteDef::get("/api/v1/hazards/{id}", || web::get().to(get_hazard)),
        RouteDef::post("/api/v1/hazards/{id}/classify", || web::post().to(classify)),
        RouteDef::post("/api/v1/hazards/{id}/plan", || web::post().to(plan)),
        RouteDef::post("/api/v1/hazards/{id}/submit_rectification", || {
            web::post().to(submit_rectification)
        }),
        RouteDef::post("/api/v1/hazards/{id}/verify", || web::post().to(verify)),
        RouteDef::post("/api/v1/hazards/{id}/close", || web::post().to(close)),
        RouteDef::post("/api/v1/hazards/{id}/reopen", || web::post().to(reopen)),
        RouteDef::post("/api/v1/inspections", || web::post().to(start_inspection)),
        RouteDef::get("/api/v1/inspections", || web::get().to(list_inspections)),
        RouteDef::get("/api/v1/inspections/{id}", || web::get().to(get_inspection)),
        RouteDef::post("/api/v1/inspections/{id}/items", || {
            web::post().to(record_item)
        }),
        RouteDef::post("/api/v1/inspections/{id}/submit", || {
            web::post().to(submit_inspection)
        }),
        RouteDef::post("/api/v1/directives", || web::post().to(issue_directive)),
        RouteDef::get("/api/v1/directives", || web::get().to(list_directives)),
        RouteDef::get("/api/v1/directives/{id}", || web::get().to(get_directive)),
        RouteDef::post("/api/v1/directives/{id}/comply", || {
            web::post().to(comply_directive)
        }),
        RouteDef::post("/api/v1/directives/{id}/revoke", || {
            web::post().to(revoke_directive)
        }),
        RouteDef::post("/api/v1/campaigns", || web::post().to(create_campaign)),
        RouteDef::get("/api/v1/campaigns", || web::get().to(list_campaigns)),
        RouteDef::get("/api/v1/campaigns/{id}", || web::get().to(get_campaign)),
        RouteDef::patch("/api/v1/campaigns/{id}", || {
            web::patch().to(update_campaign)
        }),
        RouteDef::post("/api/v1/campaigns/{id}/tasks", || web::post().to(add_task)),
        RouteDef::get("/api/v1/campaigns/{id}/tasks", || web::get().to(list_tasks)),
        RouteDef::patch("/api/v1/campaigns/{id}/tasks/{task_id}", || {
            web::patch().to(update_task)
        }),
        RouteDef::get("/api/v1/reports/hazards", || web::get().to(hazard_report)),
        RouteDef::get("/api/v1/reports/lists/hazards.csv", || {
            web::get().to(hazard_list)
        }),
        RouteDef::get("/api/v1/reports/lists/measures.csv", || {
            web::get().to(measures_list)
        }),
    ]
}

async fn issue_directive(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let d = enforcement::issue(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/directives/{}", d.id)))
        .json(d))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectiveListQuery {
    unit_id: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_directives(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<DirectiveListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let f = DirectiveFilter {
        unit_id: q.unit_id,
        kind: q.kind,
        state: q.state,
    };
    Ok(HttpResponse::Ok().json(enforcement::list(&state, me, f, page).await?))
}

async fn get_directive(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(enforcement::get(&state, me, id.into_inner()).await?))
}

async fn comply_directive(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<CloseDirective>,
) -> ApiResult<HttpResponse> {
    let d = enforcement::close(&state, me, id.into_inner(), "complied", body.0).await?;
    Ok(HttpResponse::Ok().json(d))
}

async fn revoke_directive(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<CloseDirective>,
) -> ApiResult<HttpResponse> {
    let d = enforcement::close(&state, me, id.into_inner(), "revoked", body.0).await?;
    Ok(HttpResponse::Ok().json(d))
}

async fn create_campaign(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<campaigns::NewCampaign>,
) -> ApiResult<HttpResponse> {
    let c = campaigns::create(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/campaigns/{}", c.id)))
        .json(c))
}

async fn list_campaigns(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(campaigns::list(&state, me, q.page()?).await?))
}

async fn get_campaign(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(campaigns::get(&state, me, id.into_inner()).await?))
}

async fn update_campaign(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<campaigns::CampaignPatch>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(campaigns::update(&state, me, id.into_inner(), body.0).await?))
}

async fn add_task(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<campaigns::NewTask>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let t = campaigns::add_task(&state, me, id.clone(), body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/campaigns/{id}/tasks/{}", t.id),
        ))
        .json(t))
}

async fn list_tasks(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(campaigns::tasks(&state, me, id.into_inner()).await?))
}

async fn update_task(
    state: web::Data<AppState>,
    me: AuthUser,
    path: web::Path<(String, String)>,
    body: ApiJson<campaigns::TaskPatch>,
) -> ApiResult<HttpResponse> {
    let (id, task) = path.into_inner();
    Ok(HttpResponse::Ok().json(campaigns::update_task(&state, me, id, task, body.0).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    region: Option<String>,
}

async fn hazard_report(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(reports::hazards(&state, me, q.into_inner().region).await?))
}

async fn csv_list(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ReportQuery>,
    which: reports::List,
    name: &str,
) -> ApiResult<HttpResponse> {
    let body = reports::list_csv(&state, me, which, q.into_inner().region).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}

async fn hazard_list(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    csv_list(state, me, q, reports::List::Hazards, "hazard-list.csv").await
}

async fn measures_list(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    csv_list(state, me, q, reports::List::Measures, "measures-list.csv").await
}

async fn report_hazard(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let h = hazards::report(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/hazards/{}", h.id)))
        .json(h))
}

/// One handler per lifecycle action: `POST /api/v1/hazards/{id}/<action>`.
macro_rules! hazard_actions {
    ($($name:ident),*) => {$(
        async fn $name(
            state: web::Data<AppState>,
            me: AuthUser,
            id: web::Path<String>,
            body: ApiJson<Value>,
        ) -> ApiResult<HttpResponse> {
            let h = hazards::act(&state, me, id.into_inner(), stringify!($name), body.0).await?;
            Ok(HttpResponse::Ok().json(h))
        }
    )*};
}

hazard_actions!(classify, plan, submit_rectification, verify, close, reopen);

async fn start_inspection(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let i = inspections::start(&state, me, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/inspections/{}", i.id)))
        .json(i))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectionListQuery {
    assignment_id: Option<String>,
    unit_id: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_inspections(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<InspectionListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = Page::new(q.limit, q.after.as_deref())?;
    let f = InspectionFilter {
        assignment_id: q.assignment_id,
        unit_id: q.unit_id,
        status: q.status,
    };
    Ok(HttpResponse::Ok().json(inspections::list(&state, me, f, page).await?))
}

async fn get_inspection(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(inspections::get(&state, me, id.into_inner()).await?))
}

async fn record_item(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .json(inspections::record_item(&state, me, id.into_inner(), body.0).await?))
}

async fn submit_inspection(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(inspections::submit(&state, me, id.into_inner(), body.0).await?))
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
    overdue: Option<bool>,
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
        overdue: q.overdue,
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
