//! Rows and queries of plans, their targets and recusals, and the pool a draw reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{
    assignment_members, assignments, equipment, recusals, surprise_plan_targets, surprise_plans,
    units, users,
};
use crate::work::queries::AssignmentRow;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = surprise_plans, treat_none_as_null = true)]
pub struct PlanRow {
    pub id: String,
    pub title: String,
    pub region_code: String,
    pub campaign_id: Option<String>,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    pub target_count: i32,
    pub team_size: i32,
    pub min_key_share: Option<i32>,
    pub reveal_mode: String,
    pub criteria: String,
    pub status: String,
    pub seed: String,
    pub seed_commitment: String,
    pub algorithm: String,
    pub pool_hash: Option<String>,
    pub snapshot: Option<String>,
    pub result: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub drawn_by: Option<String>,
    pub drawn_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = recusals)]
pub struct RecusalRow {
    pub id: String,
    pub user_id: String,
    pub unit_id: String,
    pub reason: String,
    pub note: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

pub fn find_plan(conn: &mut DbConn, id: &str) -> QueryResult<Option<PlanRow>> {
    surprise_plans::table
        .find(id)
        .select(PlanRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_plans(
    conn: &mut DbConn,
    region_like: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<PlanRow>> {
    let mut q = surprise_plans::table
        .filter(surprise_plans::region_code.like(region_like))
        .select(PlanRow::as_select())
        .order(surprise_plans::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(surprise_plans::id.gt(a.to_string()));
    }
    q.load(conn)
}

/// The assignment ids a plan's draw created, in draw order.
pub fn plan_targets(conn: &mut DbConn, plan_id: &str) -> QueryResult<Vec<String>> {
    surprise_plan_targets::table
        .filter(surprise_plan_targets::plan_id.eq(plan_id))
        .order(surprise_plan_targets::ordinal.asc())
        .select(surprise_plan_targets::assignment_id)
        .load(conn)
}

/// The assignments a plan's draw created, in draw order (one query).
pub fn plan_assignments(conn: &mut DbConn, plan_id: &str) -> QueryResult<Vec<AssignmentRow>> {
    surprise_plan_targets::table
        .inner_join(assignments::table.on(assignments::id.eq(surprise_plan_targets::assignment_id)))
        .filter(surprise_plan_targets::plan_id.eq(plan_id))
        .order(surprise_plan_targets::ordinal.asc())
        .select(AssignmentRow::as_select())
        .load(conn)
}

/// A unit of the region as the pool sees it.
pub struct PoolUnit {
    pub id: String,
    pub risk_score: i32,
    pub public_gathering: bool,
    pub risk_flags: String,
}

/// The region's units; their risk flags only `with_flags` (a criterion reads them).
pub fn region_units(
    conn: &mut DbConn,
    region_like: &str,
    with_flags: bool,
) -> QueryResult<Vec<PoolUnit>> {
    let base = units::table.filter(units::region_code.like(region_like));
    let rows: Vec<(String, i32, bool, String)> = if with_flags {
        base.select((
            units::id,
            units::risk_score,
            units::public_gathering,
            units::risk_flags,
        ))
        .load(conn)?
    } else {
        base.select((units::id, units::risk_score, units::public_gathering))
            .load::<(String, i32, bool)>(conn)?
            .into_iter()
            .map(|(id, score, pg)| (id, score, pg, String::new()))
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|(id, risk_score, public_gathering, risk_flags)| PoolUnit {
            id,
            risk_score,
            public_gathering,
            risk_flags,
        })
        .collect())
}

/// Units of the region holding equipment in use whose category matches one of `categories`
/// (a code ending in `000` matches its whole top-level category). The match is made in the
/// query: a city holds 300,000 pieces, of which a criterion keeps few.
pub fn units_holding(
    conn: &mut DbConn,
    region_like: &str,
    categories: &[String],
) -> QueryResult<BTreeSet<String>> {
    type Backend = <DbConn as diesel::Connection>::Backend;
    type Cond =
        Box<dyn BoxableExpression<equipment::table, Backend, SqlType = diesel::sql_types::Bool>>;
    let mut any: Option<Cond> = None;
    for c in categories {
        let one: Cond = match c.strip_suffix("000") {
            Some(top) if c.len() == 4 => Box::new(equipment::category_code.like(format!("{top}%"))),
            _ => Box::new(equipment::category_code.eq(c.clone())),
        };
        any = Some(match any {
            None => one,
            Some(prev) => Box::new(prev.or(one)),
        });
    }
    let Some(any) = any else {
        return Ok(BTreeSet::new());
    };
    let rows: Vec<String> = equipment::table
        .filter(equipment::region_code.like(region_like))
        .filter(equipment::reg_status.ne("scrapped"))
        .filter(equipment::reg_status.ne("suspended"))
        .filter(any)
        .select(equipment::unit_id)
        .distinct()
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// An inspector who may sit on a drawn team.
pub struct PoolInspector {
    pub id: String,
    pub region_code: String,
}

/// Active inspectors holding an enforcement credential, in the region.
pub fn region_inspectors(conn: &mut DbConn, region_like: &str) -> QueryResult<Vec<PoolInspector>> {
    let rows: Vec<(String, String)> = users::table
        .filter(users::role.eq("inspector"))
        .filter(users::active.eq(true))
        .filter(users::credential_no.is_not_null())
        .filter(users::region_code.like(region_like))
        .select((users::id, users::region_code))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, region_code)| PoolInspector { id, region_code })
        .collect())
}

/// Open assignments (scheduled or in progress) overlapping the window, per inspector.
pub fn loads(
    conn: &mut DbConn,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> QueryResult<HashMap<String, u32>> {
    let rows: Vec<String> = assignments::table
        .inner_join(assignment_members::table)
        .filter(assignments::status.eq_any(["scheduled", "in_progress"]))
        .filter(assignments::window_start.lt(end))
        .filter(assignments::window_end.gt(start))
        .select(assignment_members::user_id)
        .load(conn)?;
    let mut out = HashMap::new();
    for u in rows {
        *out.entry(u).or_insert(0) += 1;
    }
    Ok(out)
}

/// (inspector, unit) pairs to recuse: declared recusals, and inspectors who worked on an
/// assignment of the unit (not cancelled) whose window ended after `since`.
pub fn recused_pairs(
    conn: &mut DbConn,
    since: NaiveDateTime,
) -> QueryResult<BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let declared: Vec<(String, String)> = recusals::table
        .select((recusals::user_id, recusals::unit_id))
        .load(conn)?;
    let recent: Vec<(String, String)> = assignments::table
        .inner_join(assignment_members::table)
        .filter(assignments::status.ne("cancelled"))
        .filter(assignments::window_end.gt(since))
        .select((assignment_members::user_id, assignments::unit_id))
        .load(conn)?;
    for (u, unit) in declared.into_iter().chain(recent) {
        out.entry(u).or_default().insert(unit);
    }
    Ok(out)
}

/// (unit, category, equipment id) of the units' equipment in use.
pub fn equipment_in_use(
    conn: &mut DbConn,
    unit_ids: &[String],
) -> QueryResult<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for chunk in unit_ids.chunks(500) {
        out.extend(
            equipment::table
                .filter(equipment::unit_id.eq_any(chunk))
                .filter(equipment::reg_status.ne("scrapped"))
                .filter(equipment::reg_status.ne("suspended"))
                .select((equipment::unit_id, equipment::category_code, equipment::id))
                .load::<(String, String, String)>(conn)?,
        );
    }
    Ok(out)
}

pub fn list_recusals(
    conn: &mut DbConn,
    user_id: Option<&str>,
    region_like: &str,
) -> QueryResult<Vec<RecusalRow>> {
    let mut q = recusals::table
        .inner_join(users::table.on(users::id.eq(recusals::user_id)))
        .filter(users::region_code.like(region_like))
        .select(RecusalRow::as_select())
        .order(recusals::created_at.asc())
        .limit(5000)
        .into_boxed();
    if let Some(u) = user_id {
        q = q.filter(recusals::user_id.eq(u.to_string()));
    }
    q.load(conn)
}
