//! Hazards (隐患): reported by inspectors, managers and unit users, through sync push
//! (`hazard.report`) and read over REST. The lifecycle beyond reporting is built on this.

use chrono::NaiveDateTime;

use super::queries::{self, HazardFilter, HazardRow};
use super::types::{Hazard, ReportHazard};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::db::{DbConn, SyncTx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::registry::facts;
use crate::registry::queries as registry;
use crate::registry::risk::RiskRules;
use crate::validate;

/// Units an inspector works on outside their region: those of their unsealed assignments
/// (the same set the sync scope uses).
fn assignment_units(conn: &mut DbConn, me: &AuthUser) -> diesel::QueryResult<Vec<String>> {
    use diesel::prelude::*;
    crate::sync::scope::filters::my_units(&me.id).load(conn)
}

/// May `me` see (and report on) this unit's hazards?
pub(crate) fn unit_in_reach(
    conn: &mut DbConn,
    me: &AuthUser,
    unit_id: &str,
    region: &str,
) -> diesel::QueryResult<bool> {
    Ok(match me.role {
        Role::Admin => true,
        Role::Manager => me.region.covers_code(region),
        Role::Inspector => {
            me.region.covers_code(region)
                || assignment_units(conn, me)?.iter().any(|u| u == unit_id)
        }
        Role::Unit => me.unit_id.as_deref() == Some(unit_id),
    })
}

/// `hazard.report`, inside the caller's sync transaction.
pub fn report_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: ReportHazard,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<HazardRow> {
    let id = validate::uuid("id", &args.id)?;
    let unit_id = validate::uuid("unit_id", &args.unit_id)?;
    let unit = registry::find_unit(tx.conn(), &unit_id)?;
    let Some(unit) = unit else {
        return Err(ApiError::invalid("unit_id", "no such unit"));
    };
    if !unit_in_reach(tx.conn(), me, &unit.id, &unit.region_code)? {
        return Err(ApiError::invalid("unit_id", "no such unit"));
    }
    let equipment_id = match args.equipment_id.as_deref() {
        None => None,
        Some(e) => {
            let e = validate::uuid("equipment_id", e)?;
            match registry::find_equipment(tx.conn(), &e)? {
                Some(row) if row.unit_id == unit.id => Some(e),
                _ => {
                    return Err(ApiError::invalid(
                        "equipment_id",
                        "is not equipment of this unit",
                    ));
                }
            }
        }
    };
    let (inspection_id, item_code) =
        validate::inspection_item(args.inspection_id.as_deref(), args.item_code.as_deref())?;
    let description = validate::multiline("description", &args.description, 4000, true)?;
    if !matches!(args.level.as_str(), "minor" | "general" | "major") {
        return Err(ApiError::invalid(
            "level",
            "must be minor, general or major",
        ));
    }
    if args.fixed_on_site && args.level != "minor" {
        return Err(ApiError::invalid(
            "fixed_on_site",
            "only a minor hazard is fixed on the spot; general and major ones are rectified",
        ));
    }
    if let Some(insp) = &inspection_id {
        let found = super::queries::find_inspection(tx.conn(), insp)?;
        if found.is_none_or(|i| i.unit_id != unit.id) {
            return Err(ApiError::invalid(
                "inspection_id",
                "is not an inspection of this unit",
            ));
        }
    }
    // A failed item mapped to a GB 45067 major-hazard clause proposes the level major.
    let mut level = args.level.clone();
    if let Some(code) = &item_code {
        let Some(item) = super::inspections::find_item(tx.conn(), code)? else {
            return Err(ApiError::invalid("item_code", "no such checklist item"));
        };
        if item.major_clause.is_some() {
            if args.fixed_on_site {
                return Err(ApiError::invalid(
                    "fixed_on_site",
                    "this item maps to a GB 45067 major-hazard clause: not a minor hazard",
                ));
            }
            level = "major".into();
        }
    }
    let proposed = level.clone();
    let campaign_id = args
        .campaign_id
        .as_deref()
        .map(|c| super::campaigns::check_campaign(tx.conn(), c, &unit.region_code))
        .transpose()?;
    if let Some(existing) = queries::find_hazard(tx.conn(), &id)? {
        // The same id again (a device retrying outside the push log): same report, no-op.
        if existing.reported_by == me.id && existing.unit_id == unit.id {
            return Ok(existing);
        }
        return Err(ApiError::conflict(
            "already_exists",
            "a hazard with this id exists",
        ));
    }
    let row = HazardRow {
        id,
        unit_id: unit.id.clone(),
        equipment_id,
        region_code: unit.region_code.clone(),
        inspection_id,
        item_code,
        description,
        state: if args.fixed_on_site {
            "fixed_on_site"
        } else {
            "reported"
        }
        .into(),
        level,
        fixed_on_site: args.fixed_on_site,
        deadline: args.deadline.map(|d| d.naive_utc()),
        notice_no: None,
        reported_by: me.id.clone(),
        reported_at: now,
        closed_at: None,
        created_at: now,
        updated_at: now,
        version: tx.version(),
        field_versions: "{}".into(),
        proposed_level: Some(proposed.clone()),
        commitments: None,
        rectification_note: None,
        equipment_stopped: false,
        classified_by: None,
        classified_at: None,
        verified_by: None,
        verified_at: None,
        closed_by: None,
        reopen_count: 0,
        campaign_id,
        escalated_at: None,
        rectification_submitted_by: None,
    };
    queries::insert_hazard(tx, &row)?;
    // The unit's risk facts count its open hazards.
    facts::refresh_units(tx, std::slice::from_ref(&unit.id), now, rules)?;
    crate::audit::record(
        tx,
        me,
        crate::audit::service::Change {
            action: "hazard.report",
            table: "hazards",
            id: &row.id,
            region: Some(&row.region_code),
            before: None,
            after: serde_json::to_value(Hazard::from(row.clone())).ok(),
        },
        now,
    )?;
    Ok(row)
}

pub(crate) fn load(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<HazardRow> {
    let nf = || ApiError::not_found("hazard");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let h = queries::find_hazard(conn, &id)?.ok_or_else(nf)?;
    if unit_in_reach(conn, me, &h.unit_id, &h.region_code)? {
        Ok(h)
    } else {
        Err(nf())
    }
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Hazard> {
    state
        .db
        .run(move |conn| load(conn, &me, &id).map(Hazard::from))
        .await
}

#[derive(Debug, Default)]
pub struct ListQuery {
    pub unit_id: Option<String>,
    pub level: Option<String>,
    pub state: Option<String>,
    pub overdue: Option<bool>,
}

pub async fn list(
    state: &AppState,
    me: AuthUser,
    q: ListQuery,
    page: Page,
) -> ApiResult<Paged<Hazard>> {
    let f = HazardFilter {
        level: q.level.filter(|s| !s.is_empty()),
        state: q.state.filter(|s| !s.is_empty()),
        overdue: q.overdue.map(|o| (o, state.clock.now())),
        unit_id: q
            .unit_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| validate::uuid("unit_id", u))
            .transpose()?,
    };
    // Who sees which hazards is the sync scope: the same filter serves REST and pull.
    let who = crate::sync::scope::Who::of(&me);
    state
        .db
        .run(move |conn| {
            let scope = crate::sync::scope::filters::hazards(&who);
            let rows = queries::list_hazards(conn, scope, &f, page.after(), page.fetch())?;
            Ok(
                page.finish(rows.into_iter().map(Hazard::from).collect(), |h| {
                    h.id.clone()
                }),
            )
        })
        .await
}

/// Where a push mutation came from (for the conflict log).
pub struct Origin<'a> {
    pub device_pk: &'a str,
    pub seq: i64,
}

/// `hazard.update`, inside the caller's sync transaction: field-by-field merge against the
/// version the device saw. Answers `applied`, `merged` (the server had changed other fields)
/// or `conflict` (a field changed on both sides; the losing value is kept in
/// `sync_conflicts`).
pub fn update_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    origin: &Origin<'_>,
    args: super::types::UpdateHazard,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<&'static str> {
    use serde_json::{Value, json};
    let id = validate::uuid("id", &args.id)?;
    // A row the caller cannot see, or one deleted meanwhile: never brought back.
    let current = load(tx.conn(), me, &id)?;
    let manager = matches!(me.role, Role::Admin | Role::Manager);
    if !manager && current.reported_by != me.id {
        return Err(ApiError::forbidden(
            "only its reporter and managers edit a hazard",
        ));
    }
    let f = args.fields;
    if !manager && (f.level.is_some() || f.deadline.is_some() || f.notice_no.is_some()) {
        return Err(ApiError::forbidden(
            "level, deadline and notice number are set by managers",
        ));
    }
    if !manager && !matches!(current.state.as_str(), "reported" | "fixed_on_site") {
        // After classification the record is the bureau's: the reporter (a unit user, too)
        // no longer rewrites what the manager classified and the equipment order names.
        return Err(ApiError::conflict(
            "hazard_classified",
            "a classified hazard is edited by managers only",
        ));
    }
    if args.base_version < 1 || args.base_version > current.version {
        return Err(ApiError::invalid(
            "base_version",
            "is not a version of this hazard",
        ));
    }
    // Proposed values, validated, as JSON for comparison and the conflict log.
    let mut proposed: Vec<(&'static str, Value, bool)> = Vec::new(); // (field, value, content?)
    if let Some(d) = &f.description {
        proposed.push((
            "description",
            json!(validate::multiline("description", d, 4000, true)?),
            true,
        ));
    }
    if let Some(c) = &f.item_code {
        let v = c
            .as_deref()
            .map(|c| validate::text("item_code", c, 32))
            .transpose()?;
        proposed.push(("item_code", json!(v), true));
    }
    if let Some(e) = &f.equipment_id {
        let v = match e.as_deref() {
            None => None,
            Some(e) => {
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
        proposed.push(("equipment_id", json!(v), true));
    }
    if let Some(l) = &f.level {
        if !matches!(l.as_str(), "minor" | "general" | "major") {
            return Err(ApiError::invalid(
                "level",
                "must be minor, general or major",
            ));
        }
        if current.fixed_on_site && l != "minor" {
            return Err(ApiError::invalid(
                "level",
                "a hazard fixed on the spot is minor; report a new hazard if it is not",
            ));
        }
        proposed.push(("level", json!(l), false));
    }
    if let Some(n) = &f.notice_no {
        let v = n
            .as_deref()
            .map(|n| validate::text("notice_no", n, 64))
            .transpose()?;
        proposed.push(("notice_no", json!(v), false));
    }
    if let Some(d) = &f.deadline {
        proposed.push((
            "deadline",
            json!(d.map(|d| crate::time::utc(d.naive_utc()))),
            false,
        ));
    }
    if proposed.is_empty() {
        return Err(ApiError::invalid(
            "fields",
            "name at least one field to change",
        ));
    }
    let current_value = |h: &HazardRow, field: &str| -> Value {
        match field {
            "description" => json!(h.description),
            "item_code" => json!(h.item_code),
            "equipment_id" => json!(h.equipment_id),
            "level" => json!(h.level),
            "deadline" => json!(h.deadline.map(crate::time::utc)),
            "notice_no" => json!(h.notice_no),
            _ => Value::Null,
        }
    };
    let mut versions: serde_json::Map<String, Value> =
        serde_json::from_str(&current.field_versions).unwrap_or_default();
    let mut next = current.clone();
    let mut conflicts = Vec::new();
    for (field, value, content) in proposed {
        let server_changed = versions
            .get(field)
            .and_then(Value::as_i64)
            .is_some_and(|v| v > args.base_version);
        let now_value = current_value(&current, field);
        if now_value == value {
            continue;
        }
        let apply = if server_changed {
            // Both sides changed it: content goes to the last edit received; managers'
            // fields stay as the server has them.
            let (kept, lost, winner) = if content {
                (value.clone(), now_value.clone(), "device")
            } else {
                (now_value.clone(), value.clone(), "server")
            };
            conflicts.push((field, kept, lost, winner));
            content
        } else {
            true
        };
        if !apply {
            continue;
        }
        match field {
            "description" => next.description = value.as_str().unwrap_or_default().to_string(),
            "item_code" => next.item_code = value.as_str().map(String::from),
            "equipment_id" => next.equipment_id = value.as_str().map(String::from),
            "level" => next.level = value.as_str().unwrap_or("general").to_string(),
            "notice_no" => next.notice_no = value.as_str().map(String::from),
            "deadline" => {
                next.deadline = match &f.deadline {
                    Some(Some(d)) => Some(d.naive_utc()),
                    _ => None,
                };
                // A new deadline: overdue (and escalated) afresh only once it passes.
                next.escalated_at = None;
            }
            _ => {}
        }
        versions.insert(field.to_string(), json!(tx.version()));
    }
    if current.level == "major" && next.level != "major" && f.notice_no.is_none() {
        // No longer major: off the listed supervision (摘牌).
        next.notice_no = None;
    }
    let classified = next.classified_at.is_some() && next.state != "closed";
    if classified && next.level == "major" && next.notice_no.is_none() {
        return Err(ApiError::invalid(
            "notice_no",
            "a major hazard is listed for supervision (挂牌督办) with a notice number",
        ));
    }
    if next != current {
        if classified {
            // The equipment order follows the level and the equipment named.
            next.equipment_stopped = next.level == "major" && next.equipment_id.is_some();
        }
        next.field_versions = Value::Object(versions).to_string();
        next.updated_at = now;
        next.version = tx.version();
        queries::update_hazard(tx, &next)?;
        facts::refresh_units(tx, std::slice::from_ref(&next.unit_id), now, rules)?;
        crate::audit::record(
            tx,
            me,
            crate::audit::service::Change {
                action: "hazard.update",
                table: "hazards",
                id: &next.id,
                region: Some(&next.region_code),
                before: serde_json::to_value(Hazard::from(current.clone())).ok(),
                after: serde_json::to_value(Hazard::from(next.clone())).ok(),
            },
            now,
        )?;
    }
    for (field, kept, lost, winner) in &conflicts {
        queries::insert_conflict(
            tx,
            &queries::ConflictRow {
                id: validate::new_id(),
                table_name: "hazards".into(),
                row_id: current.id.clone(),
                field: (*field).into(),
                kept_value: kept.to_string(),
                lost_value: lost.to_string(),
                winner: (*winner).into(),
                user_id: me.id.clone(),
                device_pk: origin.device_pk.into(),
                mutation_seq: origin.seq,
                base_version: args.base_version,
                version: tx.version(),
                region_code: current.region_code.clone(),
                created_at: now,
            },
        )?;
    }
    Ok(if !conflicts.is_empty() {
        "conflict"
    } else if current.version > args.base_version {
        "merged"
    } else {
        "applied"
    })
}

/// `POST /api/v1/hazards`: the same report as the push mutation; `id` may be left to the
/// server.
pub async fn report(state: &AppState, me: AuthUser, body: serde_json::Value) -> ApiResult<Hazard> {
    let args: ReportHazard = crate::http::json::parse_with_id(body)?;
    let rules = crate::registry::service::rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::sync_tx(conn, |tx| report_tx(tx, &me, args, now, &rules)).map(Hazard::from)
        })
        .await
}

/// `POST /api/v1/hazards/{id}/<action>`: the lifecycle action with the body as arguments.
pub async fn act(
    state: &AppState,
    me: AuthUser,
    id: String,
    action: &'static str,
    body: serde_json::Value,
) -> ApiResult<Hazard> {
    if !body.is_object() {
        return Err(crate::http::json::not_an_object());
    }
    let rules = crate::registry::service::rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::sync_tx(conn, |tx| {
                super::lifecycle::act(tx, &me, &id, action, &body, now, &rules)
            })
            .map(Hazard::from)
        })
        .await
}
