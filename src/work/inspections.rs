//! Inspection records (现场检查记录): started on site by a team member (check-in time and
//! place), checklist results per item (and per piece of equipment where the item is
//! per-equipment), submitted once with the unit's signatory or a recorded refusal, then
//! read-only; a correction is a new record naming the one it corrects. The same functions
//! serve the push mutations `inspection.*` and the REST endpoints.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::queries::{self, InspectionFilter, InspectionRow};
use super::types::{Inspection, ItemResult, RecordItem, StartInspection, SubmitInspection};
use crate::app::AppState;
use crate::audit;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::db::{DbConn, SyncTx};
use crate::error::{ApiError, ApiResult};
use crate::http::json::not_an_object;
use crate::http::pagination::{Page, Paged};
use crate::registry::queries as registry;
use crate::registry::types::TemplateItem;
use crate::validate;

/// Results one record may hold (items × equipment).
const MAX_RESULTS: usize = 5000;

/// The checklist item `code` of an active template, if there is one.
pub fn find_item(conn: &mut DbConn, code: &str) -> QueryResult<Option<TemplateItem>> {
    use crate::db::schema::checklist_templates as t;
    let all: Vec<String> = t::table
        .filter(t::active.eq(true))
        .select(t::items)
        .load(conn)?;
    Ok(all.iter().find_map(|items| {
        serde_json::from_str::<Vec<TemplateItem>>(items)
            .ok()?
            .into_iter()
            .find(|i| i.code == code)
    }))
}

/// The record `id` as `me` may see it (404 otherwise: same answer as for no record).
pub fn load(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<InspectionRow> {
    let nf = || ApiError::not_found("inspection");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let who = crate::sync::scope::Who::of(me);
    let found: Option<InspectionRow> = crate::db::schema::inspections::table
        .filter(crate::sync::scope::filters::inspections(&who))
        .filter(crate::db::schema::inspections::id.eq(&id))
        .select(InspectionRow::as_select())
        .first(conn)
        .optional()?;
    found.ok_or_else(nf)
}

/// Members of the assignment's team as it is now (not as it was at check-in: someone taken
/// off the team stops writing) write a record, and only while it is under way.
fn writable(conn: &mut DbConn, me: &AuthUser, r: &InspectionRow) -> ApiResult<()> {
    let team = queries::find_assignment(conn, &r.assignment_id)?
        .map(|a| super::assignments::team_of(&a))
        .unwrap_or_default();
    if me.role != Role::Inspector || !team.contains(&me.id) {
        return Err(ApiError::forbidden(
            "only the assignment's team records this inspection",
        ));
    }
    if r.status == "submitted" {
        return Err(ApiError::conflict(
            "inspection_submitted",
            "the record is submitted and read-only; start a correction that names it",
        ));
    }
    Ok(())
}

fn coord(field: &str, v: Option<f64>, max: f64) -> ApiResult<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() || x.abs() > max => Err(ApiError::invalid(
            field,
            format!("must be between -{max} and {max}"),
        )),
        other => Ok(other),
    }
}

fn audit_json(r: &InspectionRow) -> Value {
    serde_json::to_value(Inspection::from(r.clone())).unwrap_or(Value::Null)
}

fn record_audit(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    action: &str,
    before: Option<&InspectionRow>,
    after: &InspectionRow,
    now: NaiveDateTime,
) -> QueryResult<()> {
    audit::record(
        tx,
        me,
        audit::service::Change {
            action,
            table: "inspections",
            id: &after.id,
            region: Some(&after.region_code),
            before: before.map(audit_json),
            after: Some(audit_json(after)),
        },
        now,
    )
}

/// `inspection.start`: a team member checks in at the unit of an unsealed assignment.
pub fn start_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: StartInspection,
    now: NaiveDateTime,
) -> ApiResult<InspectionRow> {
    let id = validate::uuid("id", &args.id)?;
    let aid = validate::uuid("assignment_id", &args.assignment_id)?;
    if let Some(existing) = queries::find_inspection(tx.conn(), &id)? {
        // The same start again (a retry outside the push log): no-op.
        if existing.started_by == me.id && existing.assignment_id == aid {
            return Ok(existing);
        }
        return Err(ApiError::conflict(
            "already_exists",
            "an inspection with this id exists",
        ));
    }
    let bad_assignment = || ApiError::invalid("assignment_id", "no such assignment of yours");
    let a = queries::find_assignment(tx.conn(), &aid)?.ok_or_else(bad_assignment)?;
    let team = super::assignments::team_of(&a);
    if me.role != Role::Inspector || !team.contains(&me.id) {
        return Err(bad_assignment());
    }
    if a.sealed {
        return Err(ApiError::conflict(
            "sealed",
            "the assignment is sealed until it is dispatched",
        ));
    }
    let corrects_id = match args.corrects_id.as_deref() {
        None => {
            if !matches!(
                a.status.as_str(),
                "scheduled" | "dispatched" | "in_progress"
            ) {
                return Err(ApiError::conflict(
                    "assignment_finished",
                    format!("the assignment is {}", a.status),
                ));
            }
            None
        }
        Some(c) => {
            let c = validate::uuid("corrects_id", c)?;
            let old = queries::find_inspection(tx.conn(), &c)?;
            if old
                .as_ref()
                .is_none_or(|o| o.assignment_id != a.id || o.status != "submitted")
            {
                return Err(ApiError::invalid(
                    "corrects_id",
                    "is not a submitted record of this assignment",
                ));
            }
            if a.status == "cancelled" {
                return Err(ApiError::conflict(
                    "assignment_finished",
                    "the assignment is cancelled",
                ));
            }
            Some(c)
        }
    };
    let row = InspectionRow {
        id,
        assignment_id: a.id.clone(),
        unit_id: a.unit_id.clone(),
        region_code: a.region_code.clone(),
        team: a.team.clone(),
        status: "in_progress".into(),
        started_by: me.id.clone(),
        started_at: args.started_at.naive_utc(),
        lat: coord("lat", args.lat, 90.0)?,
        lng: coord("lng", args.lng, 180.0)?,
        results: "[]".into(),
        finished_at: None,
        signatory_name: None,
        refused_to_sign: false,
        submitted_by: None,
        submitted_at: None,
        corrects_id,
        created_at: now,
        updated_at: now,
        version: tx.version(),
    };
    queries::insert_inspection(tx, &row)?;
    if matches!(a.status.as_str(), "scheduled" | "dispatched") {
        let mut next = a.clone();
        next.status = "in_progress".into();
        next.updated_at = now;
        next.version = tx.version();
        queries::update_assignment(tx, &next)?;
    }
    record_audit(tx, me, "inspection.start", None, &row, now)?;
    Ok(row)
}

/// `inspection.record_item`: one result, replacing an earlier one for the same item (and
/// equipment). Team-mates recording different items offline both keep theirs.
pub fn record_item_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: RecordItem,
    now: NaiveDateTime,
) -> ApiResult<InspectionRow> {
    let current = load(tx.conn(), me, &args.inspection_id).map_err(|e| match e {
        ApiError::NotFound { .. } => {
            ApiError::invalid("inspection_id", "no such inspection of yours")
        }
        other => other,
    })?;
    writable(tx.conn(), me, &current)?;
    let code = validate::text("item_code", &args.item_code, 32)?;
    let Some(item) = find_item(tx.conn(), &code)? else {
        return Err(ApiError::invalid("item_code", "no such checklist item"));
    };
    let equipment_id = match (item.per_equipment, args.equipment_id.as_deref()) {
        (true, None) => {
            return Err(ApiError::invalid(
                "equipment_id",
                "this item is checked per piece of equipment: name it",
            ));
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "equipment_id",
                "this item is checked once for the unit",
            ));
        }
        (_, None) => None,
        (_, Some(e)) => {
            let e = validate::uuid("equipment_id", e)?;
            match registry::find_equipment(tx.conn(), &e)? {
                Some(row) if row.unit_id == current.unit_id => Some(e),
                _ => {
                    return Err(ApiError::invalid(
                        "equipment_id",
                        "is not equipment of this unit",
                    ));
                }
            }
        }
    };
    if !matches!(args.outcome.as_str(), "pass" | "fail" | "na") {
        return Err(ApiError::invalid("outcome", "must be pass, fail or na"));
    }
    let note = args
        .note
        .as_deref()
        .map(|n| validate::multiline("note", n, 2000, false))
        .transpose()?
        .filter(|n| !n.is_empty());
    let mut results: Vec<ItemResult> = serde_json::from_str(&current.results).unwrap_or_default();
    let entry = ItemResult {
        item_code: code,
        equipment_id,
        outcome: args.outcome,
        note,
        major_clause: item.major_clause,
        recorded_by: me.id.clone(),
        recorded_at: crate::time::utc(now),
    };
    let audit_after = serde_json::to_value(&entry).ok();
    let mut audit_before = None;
    match results
        .iter_mut()
        .find(|r| r.item_code == entry.item_code && r.equipment_id == entry.equipment_id)
    {
        Some(r) => {
            // A result replaced (a team-mate's, too) leaves its trace in the audit log.
            audit_before = serde_json::to_value(&*r).ok();
            *r = entry;
        }
        None => {
            if results.len() >= MAX_RESULTS {
                return Err(ApiError::invalid(
                    "item_code",
                    format!("a record holds at most {MAX_RESULTS} results"),
                ));
            }
            results.push(entry);
        }
    }
    let mut next = current;
    next.results = serde_json::to_string(&results).map_err(ApiError::internal_from)?;
    next.updated_at = now;
    next.version = tx.version();
    queries::update_inspection(tx, &next)?;
    audit::record(
        tx,
        me,
        audit::service::Change {
            action: "inspection.record_item",
            table: "inspections",
            id: &next.id,
            region: Some(&next.region_code),
            before: audit_before,
            after: audit_after,
        },
        now,
    )?;
    Ok(next)
}

/// `inspection.submit`: signed by the unit's representative, or the refusal recorded; then
/// read-only. The assignment is submitted when none of its records is still under way.
pub fn submit_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: SubmitInspection,
    now: NaiveDateTime,
) -> ApiResult<InspectionRow> {
    let current = load(tx.conn(), me, &args.id)?;
    writable(tx.conn(), me, &current)?;
    let signatory = args
        .signatory_name
        .as_deref()
        .map(|s| validate::optional_text("signatory_name", s, 100))
        .transpose()?
        .filter(|s| !s.is_empty());
    if signatory.is_none() && !args.refused_to_sign {
        return Err(ApiError::invalid(
            "signatory_name",
            "name the unit's signatory, or record that they refused to sign",
        ));
    }
    if signatory.is_some() && args.refused_to_sign {
        return Err(ApiError::invalid(
            "refused_to_sign",
            "a record is either signed or refused, not both",
        ));
    }
    let finished = args.finished_at.naive_utc();
    if finished < current.started_at {
        return Err(ApiError::invalid(
            "finished_at",
            "is before the check-in time",
        ));
    }
    let mut next = current.clone();
    next.status = "submitted".into();
    next.finished_at = Some(finished);
    next.signatory_name = signatory;
    next.refused_to_sign = args.refused_to_sign;
    next.submitted_by = Some(me.id.clone());
    next.submitted_at = Some(now);
    next.updated_at = now;
    next.version = tx.version();
    queries::update_inspection(tx, &next)?;
    if queries::open_inspections_of(tx.conn(), &next.assignment_id)? == 0
        && let Some(a) = queries::find_assignment(tx.conn(), &next.assignment_id)?
        && a.status == "in_progress"
    {
        let mut a2 = a;
        a2.status = "submitted".into();
        a2.updated_at = now;
        a2.version = tx.version();
        queries::update_assignment(tx, &a2)?;
    }
    record_audit(tx, me, "inspection.submit", Some(&current), &next, now)?;
    Ok(next)
}

// ---- REST ----

/// Puts the id from the path into the body under `field`; the body may not name it itself.
fn path_field(body: &mut Value, field: &str, id: &str) -> ApiResult<()> {
    let Some(o) = body.as_object_mut() else {
        return Err(not_an_object());
    };
    if o.contains_key(field) {
        return Err(ApiError::invalid(field, "is taken from the path"));
    }
    o.insert(field.into(), Value::String(id.to_string()));
    Ok(())
}

pub async fn start(state: &AppState, me: AuthUser, body: Value) -> ApiResult<Inspection> {
    let args: StartInspection = crate::http::json::parse_with_id(body)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::sync_tx(conn, |tx| start_tx(tx, &me, args, now)).map(Inspection::from)
        })
        .await
}

pub async fn record_item(
    state: &AppState,
    me: AuthUser,
    id: String,
    mut body: Value,
) -> ApiResult<Inspection> {
    path_field(&mut body, "inspection_id", &id)?;
    let args: RecordItem = crate::http::json::parse(body.to_string().as_bytes())?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            // A record the caller cannot see answers 404 here (the path names it).
            load(conn, &me, &id)?;
            crate::db::sync_tx(conn, |tx| record_item_tx(tx, &me, args, now)).map(Inspection::from)
        })
        .await
}

pub async fn submit(
    state: &AppState,
    me: AuthUser,
    id: String,
    mut body: Value,
) -> ApiResult<Inspection> {
    path_field(&mut body, "id", &id)?;
    let args: SubmitInspection = crate::http::json::parse(body.to_string().as_bytes())?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::sync_tx(conn, |tx| submit_tx(tx, &me, args, now)).map(Inspection::from)
        })
        .await
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Inspection> {
    state
        .db
        .run(move |conn| load(conn, &me, &id).map(Inspection::from))
        .await
}

pub async fn list(
    state: &AppState,
    me: AuthUser,
    f: InspectionFilter,
    page: Page,
) -> ApiResult<Paged<Inspection>> {
    let mut f = f;
    for (name, v) in [
        ("assignment_id", &mut f.assignment_id),
        ("unit_id", &mut f.unit_id),
    ] {
        *v = v
            .as_deref()
            .filter(|x| !x.is_empty())
            .map(|x| validate::uuid(name, x))
            .transpose()?;
    }
    f.status = f.status.filter(|s| !s.is_empty());
    let who = crate::sync::scope::Who::of(&me);
    state
        .db
        .run(move |conn| {
            let scope = crate::sync::scope::filters::inspections(&who);
            let rows = queries::list_inspections(conn, scope, &f, page.after(), page.fetch())?;
            Ok(
                page.finish(rows.into_iter().map(Inspection::from).collect(), |i| {
                    i.id.clone()
                }),
            )
        })
        .await
}
