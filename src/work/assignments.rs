//! Assignments: who inspects which unit when. Managers create and change them within their
//! region; team members see them (sealed ones as shells); unit users never see them before
//! the visit. Team changes are scope changes for devices: added members get the assignment
//! and what hangs off it in full, removed ones get evicts.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;

use super::queries::{self, AssignmentFilter, AssignmentRow};
use super::types::{Assignment, AssignmentPatch, NewAssignment};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::queries as users;
use crate::auth::region::Role;
use crate::db::{DbConn, ScopeKey, SyncTx, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::registry::codes::CodeBook;
use crate::registry::queries as registry;
use crate::surprise::service::audit_target_reads;
use crate::validate;

const MAX_TEAM: usize = 20;
const MAX_EQUIPMENT: usize = 500;

/// May `me` read this assignment (as a shell when sealed)?
pub fn visible(me: &AuthUser, a: &AssignmentRow) -> bool {
    match me.role {
        Role::Admin => true,
        Role::Manager => me.region.covers_code(&a.region_code),
        Role::Inspector => team_of(a).contains(&me.id),
        Role::Unit => false,
    }
}

pub fn team_of(a: &AssignmentRow) -> Vec<String> {
    serde_json::from_str(&a.team).unwrap_or_default()
}

fn load(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<AssignmentRow> {
    let nf = || ApiError::not_found("assignment");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let a = queries::find_assignment(conn, &id)?.ok_or_else(nf)?;
    if visible(me, &a) { Ok(a) } else { Err(nf()) }
}

/// Checks a team: distinct active inspectors of the manager's region; enforcement kinds need
/// two at least, each with a credential number. Returns the ids sorted.
fn check_team(
    conn: &mut DbConn,
    me: &AuthUser,
    kind: &str,
    team: &[String],
    book: &CodeBook,
) -> ApiResult<Vec<String>> {
    if team.is_empty() || team.len() > MAX_TEAM {
        return Err(ApiError::invalid(
            "team",
            format!("must name 1 to {MAX_TEAM} inspectors"),
        ));
    }
    let mut ids = BTreeSet::new();
    for t in team {
        let id = validate::uuid("team", t)?;
        if !ids.insert(id) {
            return Err(ApiError::invalid("team", "names an inspector twice"));
        }
    }
    let enforcement = book
        .get("assignment_kind", kind)
        .and_then(|c| c.attrs.get("enforcement"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if enforcement && ids.len() < 2 {
        return Err(ApiError::invalid(
            "team",
            "an enforcement inspection needs at least two inspectors",
        ));
    }
    for id in &ids {
        let u = users::find_user(conn, id)?;
        let ok = u.as_ref().is_some_and(|u| {
            u.role == "inspector" && u.active && me.region.covers_code(&u.region_code)
        });
        if !ok {
            return Err(ApiError::invalid(
                "team",
                format!("{id} is not an active inspector of your region"),
            ));
        }
        if enforcement && u.is_some_and(|u| u.credential_no.is_none()) {
            return Err(ApiError::invalid(
                "team",
                format!("{id} holds no enforcement credential number"),
            ));
        }
    }
    Ok(ids.into_iter().collect())
}

fn window(start: NaiveDateTime, end: NaiveDateTime) -> ApiResult<()> {
    if end <= start {
        return Err(ApiError::invalid(
            "window_end",
            "must be after window_start",
        ));
    }
    if end - start > chrono::Duration::days(366) {
        return Err(ApiError::invalid(
            "window_end",
            "the window may span a year at most",
        ));
    }
    Ok(())
}

/// Writes the scope events of a team change: entries for added members, exits for removed.
pub fn record_team_change(
    tx: &mut SyncTx<'_>,
    assignment_id: &str,
    before: &[String],
    after: &[String],
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    for u in after.iter().filter(|u| !before.contains(u)) {
        tx.scope_event(true, "assignments", assignment_id, ScopeKey::User(u), now)?;
    }
    for u in before.iter().filter(|u| !after.contains(u)) {
        tx.scope_event(false, "assignments", assignment_id, ScopeKey::User(u), now)?;
    }
    // Members who stay gain or lose team-mates (their user rows are in each other's scope).
    for stay in after.iter().filter(|u| before.contains(u)) {
        for added in after.iter().filter(|u| !before.contains(u)) {
            tx.scope_event(true, "users", added, ScopeKey::User(stay), now)?;
        }
        for gone in before.iter().filter(|u| !after.contains(u)) {
            tx.scope_event(false, "users", gone, ScopeKey::User(stay), now)?;
        }
    }
    Ok(())
}

/// Exit events, for each member, naming every row the assignment brought them (its unit,
/// the unit's equipment and hazards, the team-mates): for a deleted assignment, which a pull
/// can no longer look up. Pulls evict only what is not in the member's scope otherwise.
fn record_family_exit(
    tx: &mut SyncTx<'_>,
    a: &AssignmentRow,
    team: &[String],
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    let mut family: Vec<(&str, String)> = Vec::new();
    if !a.sealed {
        for (table, ids) in crate::sync::scope::unit_family(tx.conn(), &a.unit_id)? {
            family.extend(ids.into_iter().map(|id| (table, id)));
        }
    }
    family.extend(team.iter().map(|u| ("users", u.clone())));
    for member in team {
        for (table, id) in &family {
            tx.scope_event(false, table, id, ScopeKey::User(member), now)?;
        }
    }
    Ok(())
}

/// The audit entry of an assignment change (the whole row: the log is for managers).
fn audit(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    action: &str,
    before: Option<&AssignmentRow>,
    after: Option<&AssignmentRow>,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    let json = |a: &AssignmentRow| {
        let mut a = a.clone();
        a.sealed = false;
        serde_json::to_value(Assignment::from(a)).ok()
    };
    let Some(row) = after.or(before) else {
        return Ok(());
    };
    crate::audit::record(
        tx,
        me,
        crate::audit::service::Change {
            action,
            table: "assignments",
            id: &row.id,
            region: Some(&row.region_code),
            before: before.and_then(json),
            after: after.and_then(json),
        },
        now,
    )
}

pub async fn create(state: &AppState, me: AuthUser, req: NewAssignment) -> ApiResult<Assignment> {
    if !matches!(me.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden("only managers create assignments"));
    }
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let book = CodeBook::load(conn)?;
            if !book.has("assignment_kind", &req.kind) {
                return Err(ApiError::invalid(
                    "kind",
                    format!("must be one of {}", book.list("assignment_kind")),
                ));
            }
            if req.kind == "surprise" {
                return Err(ApiError::invalid(
                    "kind",
                    "unannounced checks are drawn by surprise plans, not created by hand",
                ));
            }
            let unit_id = validate::uuid("unit_id", &req.unit_id)?;
            let unit = registry::find_unit(conn, &unit_id)?
                .filter(|u| me.region.covers_code(&u.region_code))
                .ok_or_else(|| ApiError::invalid("unit_id", "no such unit in your region"))?;
            let mut equipment = BTreeSet::new();
            if req.equipment_ids.len() > MAX_EQUIPMENT {
                return Err(ApiError::invalid(
                    "equipment_ids",
                    format!("at most {MAX_EQUIPMENT}"),
                ));
            }
            for e in &req.equipment_ids {
                let id = validate::uuid("equipment_ids", e)?;
                let row = registry::find_equipment(conn, &id)?;
                if row.is_none_or(|r| r.unit_id != unit.id) {
                    return Err(ApiError::invalid(
                        "equipment_ids",
                        format!("{id} is not equipment of this unit"),
                    ));
                }
                equipment.insert(id);
            }
            let team = check_team(conn, &me, &req.kind, &req.team, &book)?;
            let (ws, we) = (req.window_start.naive_utc(), req.window_end.naive_utc());
            window(ws, we)?;
            let notes =
                validate::multiline("notes", req.notes.as_deref().unwrap_or(""), 2000, false)?;
            let campaign_id = req
                .campaign_id
                .as_deref()
                .map(|c| super::campaigns::check_campaign(conn, c, &unit.region_code))
                .transpose()?;
            let id = validate::new_id();
            let row = sync_tx(conn, |tx| -> ApiResult<AssignmentRow> {
                let row = AssignmentRow {
                    id: id.clone(),
                    kind: req.kind.clone(),
                    unit_id: unit.id.clone(),
                    equipment_ids: serde_json::to_string(&equipment)
                        .map_err(ApiError::internal_from)?,
                    region_code: unit.region_code.clone(),
                    team: serde_json::to_string(&team).map_err(ApiError::internal_from)?,
                    window_start: ws,
                    window_end: we,
                    campaign_id,
                    notes,
                    status: "scheduled".into(),
                    sealed: false,
                    reveal_at: None,
                    created_by: me.id.clone(),
                    created_at: now,
                    updated_at: now,
                    version: tx.version(),
                };
                queries::insert_assignment(tx, &row, &team)?;
                record_team_change(tx, &id, &[], &team, now)?;
                audit(tx, &me, "assignment.create", None, Some(&row), now)?;
                Ok(row)
            })?;
            Ok(Assignment::from(row))
        })
        .await
}

pub async fn update(
    state: &AppState,
    me: AuthUser,
    id: String,
    p: AssignmentPatch,
) -> ApiResult<Assignment> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            // Read, checked and written in one write transaction: a status change made
            // meanwhile (a team starting or submitting a record) is not overwritten.
            sync_tx(conn, |tx| -> ApiResult<Assignment> {
                let current = load(tx.conn(), &me, &id)?;
                if !matches!(me.role, Role::Admin | Role::Manager) {
                    return Err(ApiError::forbidden("only managers change assignments"));
                }
                if current.sealed {
                    return Err(ApiError::conflict(
                        "sealed",
                        "a sealed unannounced check is changed through its plan",
                    ));
                }
                if matches!(
                    current.status.as_str(),
                    "submitted" | "closed" | "cancelled"
                ) {
                    return Err(ApiError::conflict(
                        "assignment_finished",
                        format!("the assignment is {}", current.status),
                    ));
                }
                if current.kind == "surprise"
                    && (p.team.is_some() || p.window_start.is_some() || p.window_end.is_some())
                {
                    return Err(ApiError::conflict(
                        "drawn",
                        "an unannounced check keeps the team and window its plan drew \
                         (the draw is verified against them)",
                    ));
                }
                let book = CodeBook::load(tx.conn())?;
                let before = team_of(&current);
                let team = match &p.team {
                    Some(t) => check_team(tx.conn(), &me, &current.kind, t, &book)?,
                    None => before.clone(),
                };
                let ws = p
                    .window_start
                    .map_or(current.window_start, |t| t.naive_utc());
                let we = p.window_end.map_or(current.window_end, |t| t.naive_utc());
                window(ws, we)?;
                let mut next = current.clone();
                next.team = serde_json::to_string(&team).map_err(ApiError::internal_from)?;
                next.window_start = ws;
                next.window_end = we;
                if let Some(n) = &p.notes {
                    next.notes = validate::multiline("notes", n, 2000, false)?;
                }
                if next == current {
                    // Nothing changes (the transaction's version goes unused).
                    return Ok(Assignment::from(current));
                }
                next.updated_at = now;
                next.version = tx.version();
                queries::update_assignment(tx, &next)?;
                if team != before {
                    queries::set_members(tx, &next.id, &team)?;
                    record_team_change(tx, &next.id, &before, &team, now)?;
                }
                audit(
                    tx,
                    &me,
                    "assignment.update",
                    Some(&current),
                    Some(&next),
                    now,
                )?;
                Ok(Assignment::from(next))
            })
        })
        .await
}

/// Deletes an assignment made in error (only while `scheduled`); devices get `delete`.
pub async fn delete(state: &AppState, me: AuthUser, id: String) -> ApiResult<()> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let current = load(conn, &me, &id)?;
            if !matches!(me.role, Role::Admin | Role::Manager) {
                return Err(ApiError::forbidden("only managers delete assignments"));
            }
            if current.kind == "surprise" {
                return Err(ApiError::conflict(
                    "drawn",
                    "an unannounced check belongs to its plan's verified draw and is not deleted",
                ));
            }
            if current.status != "scheduled" || current.sealed {
                return Err(ApiError::conflict(
                    "assignment_started",
                    "only a scheduled, unsealed assignment can be deleted; cancel it instead",
                ));
            }
            let team = team_of(&current);
            sync_tx(conn, |tx| -> ApiResult<()> {
                record_family_exit(tx, &current, &team, now)?;
                queries::set_members(tx, &current.id, &[])?;
                queries::delete_assignment(tx, &current.id)?;
                tx.tombstone(
                    "assignments",
                    &current.id,
                    Some(&current.region_code),
                    None,
                    &team,
                    now,
                )?;
                audit(tx, &me, "assignment.delete", Some(&current), None, now)?;
                Ok(())
            })
        })
        .await
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Assignment> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let a = load(conn, &me, &id)?;
            audit_target_reads(conn, &me, std::slice::from_ref(&a), "assignment", now)?;
            Ok(Assignment::from(a))
        })
        .await
}

#[derive(Debug, Default)]
pub struct ListQuery {
    pub unit_id: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
}

pub async fn list(
    state: &AppState,
    me: AuthUser,
    q: ListQuery,
    page: Page,
) -> ApiResult<Paged<Assignment>> {
    let mut f = AssignmentFilter {
        status: q.status.filter(|s| !s.is_empty()),
        kind: q.kind.filter(|s| !s.is_empty()),
        ..Default::default()
    };
    match me.role {
        Role::Admin | Role::Manager => f.region_like = Some(me.region.like_pattern()),
        Role::Inspector => f.member = Some(me.id.clone()),
        Role::Unit => {
            return Ok(Paged {
                items: Vec::new(),
                next: None,
            });
        }
    }
    if let Some(u) = q.unit_id.as_deref().filter(|u| !u.is_empty()) {
        f.unit_id = Some(validate::uuid("unit_id", u)?);
        f.unsealed_only = true;
    }
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let rows = queries::list_assignments(conn, &f, page.after(), page.fetch())?;
            audit_target_reads(conn, &me, &rows, "assignment", now)?;
            Ok(
                page.finish(rows.into_iter().map(Assignment::from).collect(), |a| {
                    a.id.clone()
                }),
            )
        })
        .await
}
