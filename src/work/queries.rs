//! Diesel queries of the work capability (assignments, hazards). Rows here; API types in
//! `work::types`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{assignment_members, assignments, directives, hazards, inspections};
use crate::db::{DbConn, SyncTx};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = assignments, treat_none_as_null = true)]
pub struct AssignmentRow {
    pub id: String,
    pub kind: String,
    pub unit_id: String,
    pub equipment_ids: String,
    pub region_code: String,
    pub team: String,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    pub campaign_id: Option<String>,
    pub notes: String,
    pub status: String,
    pub sealed: bool,
    pub reveal_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = hazards, treat_none_as_null = true)]
pub struct HazardRow {
    pub id: String,
    pub unit_id: String,
    pub equipment_id: Option<String>,
    pub region_code: String,
    pub inspection_id: Option<String>,
    pub item_code: Option<String>,
    pub description: String,
    pub level: String,
    pub state: String,
    pub fixed_on_site: bool,
    pub deadline: Option<NaiveDateTime>,
    pub notice_no: Option<String>,
    pub reported_by: String,
    pub reported_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub field_versions: String,
    pub proposed_level: Option<String>,
    pub commitments: Option<String>,
    pub rectification_note: Option<String>,
    pub equipment_stopped: bool,
    pub classified_by: Option<String>,
    pub classified_at: Option<NaiveDateTime>,
    pub verified_by: Option<String>,
    pub verified_at: Option<NaiveDateTime>,
    pub closed_by: Option<String>,
    pub reopen_count: i32,
    pub campaign_id: Option<String>,
    pub escalated_at: Option<NaiveDateTime>,
    pub rectification_submitted_by: Option<String>,
}

// ---- assignments ----

pub fn find_assignment(conn: &mut DbConn, id: &str) -> QueryResult<Option<AssignmentRow>> {
    assignments::table
        .find(id)
        .select(AssignmentRow::as_select())
        .first(conn)
        .optional()
}

/// The assignments of `ids` that exist (a few ids: no order).
pub fn assignments_by_id(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<AssignmentRow>> {
    assignments::table
        .filter(assignments::id.eq_any(ids))
        .select(AssignmentRow::as_select())
        .load(conn)
}

pub fn insert_assignment(
    tx: &mut SyncTx<'_>,
    row: &AssignmentRow,
    team: &[String],
) -> QueryResult<()> {
    diesel::insert_into(assignments::table)
        .values(row)
        .execute(tx.conn())?;
    set_members(tx, &row.id, team)
}

pub fn update_assignment(tx: &mut SyncTx<'_>, row: &AssignmentRow) -> QueryResult<()> {
    diesel::update(assignments::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}

/// Replaces the member set of an assignment.
pub fn set_members(tx: &mut SyncTx<'_>, assignment_id: &str, team: &[String]) -> QueryResult<()> {
    diesel::delete(
        assignment_members::table.filter(assignment_members::assignment_id.eq(assignment_id)),
    )
    .execute(tx.conn())?;
    let rows: Vec<_> = team
        .iter()
        .map(|u| {
            (
                assignment_members::assignment_id.eq(assignment_id),
                assignment_members::user_id.eq(u),
            )
        })
        .collect();
    crate::with_engine!(tx.conn(), |c| diesel::insert_into(
        assignment_members::table
    )
    .values(&rows)
    .execute(c))?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub region_like: Option<String>,
    pub member: Option<String>,
    pub unit_id: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    /// Sealed rows never match (a filter on the target must not reveal sealed targets).
    pub unsealed_only: bool,
}

pub fn list_assignments(
    conn: &mut DbConn,
    f: &AssignmentFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AssignmentRow>> {
    let mut q = assignments::table
        .select(AssignmentRow::as_select())
        .order(assignments::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(r) = &f.region_like {
        q = q.filter(assignments::region_code.like(r));
    }
    if let Some(m) = &f.member {
        q = q.filter(
            assignments::id.eq_any(
                assignment_members::table
                    .filter(assignment_members::user_id.eq(m))
                    .select(assignment_members::assignment_id),
            ),
        );
    }
    if let Some(u) = &f.unit_id {
        q = q.filter(assignments::unit_id.eq(u));
    }
    if let Some(s) = &f.status {
        q = q.filter(assignments::status.eq(s));
    }
    if let Some(k) = &f.kind {
        q = q.filter(assignments::kind.eq(k));
    }
    if f.unsealed_only {
        q = q.filter(assignments::sealed.eq(false));
    }
    if let Some(after) = after {
        q = q.filter(assignments::id.gt(after));
    }
    q.load(conn)
}

// ---- hazards ----

pub fn find_hazard(conn: &mut DbConn, id: &str) -> QueryResult<Option<HazardRow>> {
    hazards::table
        .find(id)
        .select(HazardRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_hazard(tx: &mut SyncTx<'_>, row: &HazardRow) -> QueryResult<()> {
    diesel::insert_into(hazards::table)
        .values(row)
        .execute(tx.conn())?;
    Ok(())
}

pub fn update_hazard(tx: &mut SyncTx<'_>, row: &HazardRow) -> QueryResult<()> {
    diesel::update(hazards::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct HazardFilter {
    pub unit_id: Option<String>,
    pub level: Option<String>,
    pub state: Option<String>,
    /// Overdue (or not) at this time: `classified` or `rectifying` past the deadline.
    pub overdue: Option<(bool, NaiveDateTime)>,
}

/// Hazards within `scope` (the caller's, from the sync scope) matching `f`, by id.
pub fn list_hazards(
    conn: &mut DbConn,
    scope: Box<
        dyn BoxableExpression<
                hazards::table,
                <DbConn as diesel::Connection>::Backend,
                SqlType = diesel::sql_types::Bool,
            > + '_,
    >,
    f: &HazardFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<HazardRow>> {
    let mut q = hazards::table
        .select(HazardRow::as_select())
        .order(hazards::id.asc())
        .limit(limit)
        .into_boxed()
        .filter(scope);
    if let Some(u) = &f.unit_id {
        q = q.filter(hazards::unit_id.eq(u));
    }
    if let Some(l) = &f.level {
        q = q.filter(hazards::level.eq(l));
    }
    if let Some((want, now)) = f.overdue {
        let states = super::escalation::OVERDUE_STATES;
        if want {
            q = q.filter(hazards::state.eq_any(states).and(hazards::deadline.lt(now)));
        } else {
            q = q.filter(
                hazards::state
                    .ne_all(states)
                    .or(hazards::deadline.is_null())
                    .or(hazards::deadline.ge(now)),
            );
        }
    }
    if let Some(s) = &f.state {
        q = q.filter(hazards::state.eq(s));
    }
    if let Some(after) = after {
        q = q.filter(hazards::id.gt(after));
    }
    q.load(conn)
}

pub fn delete_assignment(tx: &mut SyncTx<'_>, id: &str) -> QueryResult<()> {
    diesel::delete(assignments::table.find(id)).execute(tx.conn())?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::sync_conflicts)]
pub struct ConflictRow {
    pub id: String,
    pub table_name: String,
    pub row_id: String,
    pub field: String,
    pub kept_value: String,
    pub lost_value: String,
    pub winner: String,
    pub user_id: String,
    pub device_pk: String,
    pub mutation_seq: i64,
    pub base_version: i64,
    pub version: i64,
    pub region_code: String,
    pub created_at: NaiveDateTime,
}

pub fn insert_conflict(tx: &mut SyncTx<'_>, row: &ConflictRow) -> QueryResult<()> {
    diesel::insert_into(crate::db::schema::sync_conflicts::table)
        .values(row)
        .execute(tx.conn())?;
    Ok(())
}

pub fn list_conflicts(
    conn: &mut DbConn,
    region_like: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ConflictRow>> {
    use crate::db::schema::sync_conflicts as c;
    let mut q = c::table
        .filter(c::region_code.like(region_like))
        .select(ConflictRow::as_select())
        .order(c::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(c::id.gt(a));
    }
    q.load(conn)
}

/// The assignments of `unit_id` whose team includes `user_id`.
pub fn member_assignments_of_unit(
    conn: &mut DbConn,
    user_id: &str,
    unit_id: &str,
) -> QueryResult<Vec<AssignmentRow>> {
    assignments::table
        .inner_join(assignment_members::table)
        .filter(assignment_members::user_id.eq(user_id))
        .filter(assignments::unit_id.eq(unit_id))
        .select(AssignmentRow::as_select())
        .load(conn)
}

// ---- inspections ----

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = inspections, treat_none_as_null = true)]
pub struct InspectionRow {
    pub id: String,
    pub assignment_id: String,
    pub unit_id: String,
    pub region_code: String,
    pub team: String,
    pub status: String,
    pub started_by: String,
    pub started_at: NaiveDateTime,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub results: String,
    pub finished_at: Option<NaiveDateTime>,
    pub signatory_name: Option<String>,
    pub refused_to_sign: bool,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<NaiveDateTime>,
    pub corrects_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

pub fn find_inspection(conn: &mut DbConn, id: &str) -> QueryResult<Option<InspectionRow>> {
    inspections::table
        .find(id)
        .select(InspectionRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_inspection(tx: &mut SyncTx<'_>, row: &InspectionRow) -> QueryResult<()> {
    diesel::insert_into(inspections::table)
        .values(row)
        .execute(tx.conn())?;
    Ok(())
}

pub fn update_inspection(tx: &mut SyncTx<'_>, row: &InspectionRow) -> QueryResult<()> {
    diesel::update(inspections::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct InspectionFilter {
    pub assignment_id: Option<String>,
    pub unit_id: Option<String>,
    pub status: Option<String>,
}

/// Inspection records within `scope` matching `f`, by id.
pub fn list_inspections(
    conn: &mut DbConn,
    scope: Box<
        dyn BoxableExpression<
                inspections::table,
                <DbConn as diesel::Connection>::Backend,
                SqlType = diesel::sql_types::Bool,
            > + '_,
    >,
    f: &InspectionFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<InspectionRow>> {
    let mut q = inspections::table.into_boxed().filter(scope);
    if let Some(a) = &f.assignment_id {
        q = q.filter(inspections::assignment_id.eq(a.clone()));
    }
    if let Some(u) = &f.unit_id {
        q = q.filter(inspections::unit_id.eq(u.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(inspections::status.eq(s.clone()));
    }
    if let Some(a) = after {
        q = q.filter(inspections::id.gt(a.to_string()));
    }
    q.order(inspections::id)
        .limit(limit)
        .select(InspectionRow::as_select())
        .load(conn)
}

/// Are all of an assignment's inspection records submitted?
pub fn open_inspections_of(conn: &mut DbConn, assignment_id: &str) -> QueryResult<i64> {
    inspections::table
        .filter(inspections::assignment_id.eq(assignment_id))
        .filter(inspections::status.ne("submitted"))
        .count()
        .get_result(conn)
}

// ---- enforcement actions (directives) ----

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = directives, treat_none_as_null = true)]
pub struct DirectiveRow {
    pub id: String,
    pub kind: String,
    pub doc_no: String,
    pub unit_id: String,
    pub equipment_id: Option<String>,
    pub hazard_id: Option<String>,
    pub inspection_id: Option<String>,
    pub region_code: String,
    pub state: String,
    pub content: String,
    pub article: Option<String>,
    pub amount_yuan: Option<i64>,
    pub deadline: Option<NaiveDateTime>,
    pub until_on: Option<chrono::NaiveDate>,
    pub issued_by: String,
    pub issued_at: NaiveDateTime,
    pub closed_by: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
    pub close_note: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

pub fn find_directive(conn: &mut DbConn, id: &str) -> QueryResult<Option<DirectiveRow>> {
    directives::table
        .find(id)
        .select(DirectiveRow::as_select())
        .first(conn)
        .optional()
}

pub fn directive_by_doc_no(conn: &mut DbConn, doc_no: &str) -> QueryResult<Option<DirectiveRow>> {
    directives::table
        .filter(directives::doc_no.eq(doc_no))
        .select(DirectiveRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_directive(tx: &mut SyncTx<'_>, row: &DirectiveRow) -> QueryResult<()> {
    diesel::insert_into(directives::table)
        .values(row)
        .execute(tx.conn())?;
    Ok(())
}

pub fn update_directive(tx: &mut SyncTx<'_>, row: &DirectiveRow) -> QueryResult<()> {
    diesel::update(directives::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct DirectiveFilter {
    pub unit_id: Option<String>,
    pub kind: Option<String>,
    pub state: Option<String>,
}

pub fn list_directives(
    conn: &mut DbConn,
    scope: Box<
        dyn BoxableExpression<
                directives::table,
                <DbConn as diesel::Connection>::Backend,
                SqlType = diesel::sql_types::Bool,
            > + '_,
    >,
    f: &DirectiveFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<DirectiveRow>> {
    let mut q = directives::table.into_boxed().filter(scope);
    if let Some(u) = &f.unit_id {
        q = q.filter(directives::unit_id.eq(u.clone()));
    }
    if let Some(k) = &f.kind {
        q = q.filter(directives::kind.eq(k.clone()));
    }
    if let Some(s) = &f.state {
        q = q.filter(directives::state.eq(s.clone()));
    }
    if let Some(a) = after {
        q = q.filter(directives::id.gt(a.to_string()));
    }
    q.order(directives::id)
        .limit(limit)
        .select(DirectiveRow::as_select())
        .load(conn)
}
