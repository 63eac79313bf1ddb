//! Diesel queries of the registry. Row structs live here; API types are in `registry::types`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{checklist_templates, codes, equipment, hazards, units};
use crate::db::{DbConn, SyncTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = codes)]
pub struct CodeRow {
    pub id: String,
    pub kind: String,
    pub code: String,
    pub parent_code: Option<String>,
    pub label_zh: String,
    pub label_en: String,
    pub sort_order: i32,
    pub attrs: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = units, treat_none_as_null = true)]
pub struct UnitRow {
    pub id: String,
    pub uscc: String,
    pub name: String,
    pub address: String,
    pub region_code: String,
    pub place_type: String,
    pub public_gathering: bool,
    pub contact_name: String,
    pub contact_phone: String,
    pub blacklisted_from: Option<NaiveDate>,
    pub blacklisted_until: Option<NaiveDate>,
    pub last_accident_on: Option<NaiveDate>,
    pub last_complaint_on: Option<NaiveDate>,
    pub open_hazards: i32,
    pub overdue_hazards: i32,
    pub risk_flags: String,
    pub risk_score: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = equipment, treat_none_as_null = true)]
pub struct EquipmentRow {
    pub id: String,
    pub registration_code: String,
    pub unit_id: String,
    pub region_code: String,
    pub category_code: String,
    pub reg_cert_no: String,
    pub reg_status: String,
    pub commissioned_on: Option<NaiveDate>,
    pub last_inspection_on: Option<NaiveDate>,
    pub next_inspection_due: Option<NaiveDate>,
    pub inspection_conclusion: String,
    pub location: String,
    pub brake_type: String,
    pub fault_count_12m: i32,
    pub hazchem: bool,
    pub risk_flags: String,
    pub risk_score: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = checklist_templates, treat_none_as_null = true)]
pub struct TemplateRow {
    pub id: String,
    pub code: String,
    pub scope: String,
    pub category_code: Option<String>,
    pub title_zh: String,
    pub title_en: String,
    pub items: String,
    pub active: bool,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// The hazard facts a unit's risk derives from.
#[derive(Debug, Clone, Queryable)]
pub struct HazardFact {
    pub unit_id: String,
    pub level: String,
    pub state: String,
    pub deadline: Option<NaiveDateTime>,
}

// ---- codes ----

pub fn all_codes(conn: &mut DbConn) -> QueryResult<Vec<CodeRow>> {
    codes::table
        .select(CodeRow::as_select())
        .order((
            codes::kind.asc(),
            codes::sort_order.asc(),
            codes::code.asc(),
        ))
        .load(conn)
}

pub fn codes_version(conn: &mut DbConn) -> QueryResult<i64> {
    codes::table
        .select(diesel::dsl::max(codes::version))
        .first::<Option<i64>>(conn)
        .map(|v| v.unwrap_or(0))
}

// ---- units ----

pub fn find_unit(conn: &mut DbConn, id: &str) -> QueryResult<Option<UnitRow>> {
    units::table
        .find(id)
        .select(UnitRow::as_select())
        .first(conn)
        .optional()
}

pub fn units_by_uscc(conn: &mut DbConn, usccs: &[String]) -> QueryResult<Vec<UnitRow>> {
    units::table
        .filter(units::uscc.eq_any(usccs))
        .select(UnitRow::as_select())
        .load(conn)
}

// A note on `[one]` below: diesel does not keep a prepared statement for a query with an
// `IN (…)` list (its SQL changes with the list's length), so every call is parsed and planned
// again; the common one-unit call (a hazard report refreshing its unit's facts) takes `=`,
// which is prepared once per connection.

pub fn units_by_id(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<UnitRow>> {
    if let [one] = ids {
        return units::table
            .filter(units::id.eq(one))
            .select(UnitRow::as_select())
            .load(conn);
    }
    units::table
        .filter(units::id.eq_any(ids))
        .select(UnitRow::as_select())
        .load(conn)
}

/// Filters of the unit list (all optional; `region_like` always applies).
#[derive(Debug, Default, Clone)]
pub struct UnitFilter {
    pub region_like: String,
    pub only_id: Option<String>,
    pub place_type: Option<String>,
    pub risk_min: Option<i32>,
    pub flag: Option<String>,
    pub text_like: Option<String>,
}

pub fn list_units(
    conn: &mut DbConn,
    f: &UnitFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UnitRow>> {
    let mut q = units::table
        .filter(units::region_code.like(&f.region_like))
        .select(UnitRow::as_select())
        .order(units::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(id) = &f.only_id {
        q = q.filter(units::id.eq(id));
    }
    if let Some(p) = &f.place_type {
        q = q.filter(units::place_type.eq(p));
    }
    if let Some(r) = f.risk_min {
        q = q.filter(units::risk_score.ge(r));
    }
    if let Some(flag) = &f.flag {
        q = q.filter(units::risk_flags.like(format!("%\"{flag}\"%")));
    }
    if let Some(t) = &f.text_like {
        q = q.filter(
            units::name
                .like(t)
                .escape('\\')
                .or(units::uscc.like(t).escape('\\')),
        );
    }
    if let Some(after) = after {
        q = q.filter(units::id.gt(after));
    }
    q.load(conn)
}

pub fn count_units(conn: &mut DbConn) -> QueryResult<i64> {
    units::table.count().get_result(conn)
}

pub fn insert_units(tx: &mut SyncTx<'_>, rows: &[UnitRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::with_engine!(tx.conn(), |c| diesel::insert_into(units::table)
        .values(rows)
        .execute(c))?;
    Ok(())
}

pub fn update_unit(tx: &mut SyncTx<'_>, row: &UnitRow) -> QueryResult<()> {
    diesel::update(units::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}

/// Equipment follows its unit's region (it is scoped by it).
pub fn set_equipment_region(
    tx: &mut SyncTx<'_>,
    unit_id: &str,
    region: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let v = tx.version();
    diesel::update(
        equipment::table
            .filter(equipment::unit_id.eq(unit_id))
            .filter(equipment::region_code.ne(region)),
    )
    .set((
        equipment::region_code.eq(region),
        equipment::updated_at.eq(now),
        equipment::version.eq(v),
    ))
    .execute(tx.conn())
}

// ---- equipment ----

pub fn find_equipment(conn: &mut DbConn, id: &str) -> QueryResult<Option<EquipmentRow>> {
    equipment::table
        .find(id)
        .select(EquipmentRow::as_select())
        .first(conn)
        .optional()
}

pub fn equipment_by_code(conn: &mut DbConn, codes: &[String]) -> QueryResult<Vec<EquipmentRow>> {
    equipment::table
        .filter(equipment::registration_code.eq_any(codes))
        .select(EquipmentRow::as_select())
        .load(conn)
}

pub fn equipment_of_units(
    conn: &mut DbConn,
    unit_ids: &[String],
) -> QueryResult<Vec<EquipmentRow>> {
    if let [one] = unit_ids {
        return equipment::table
            .filter(equipment::unit_id.eq(one))
            .select(EquipmentRow::as_select())
            .load(conn);
    }
    equipment::table
        .filter(equipment::unit_id.eq_any(unit_ids))
        .select(EquipmentRow::as_select())
        .load(conn)
}

#[derive(Debug, Default, Clone)]
pub struct EquipmentFilter {
    pub region_like: String,
    pub unit_id: Option<String>,
    /// A category or, when it ends in `000`, a top-level category and its sub-codes.
    pub category_like: Option<String>,
    pub reg_status: Option<String>,
    pub overdue_before: Option<NaiveDate>,
    pub risk_min: Option<i32>,
    pub flag: Option<String>,
    pub text_like: Option<String>,
}

pub fn list_equipment(
    conn: &mut DbConn,
    f: &EquipmentFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<EquipmentRow>> {
    let mut q = equipment::table
        .filter(equipment::region_code.like(&f.region_like))
        .select(EquipmentRow::as_select())
        .order(equipment::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(u) = &f.unit_id {
        q = q.filter(equipment::unit_id.eq(u));
    }
    if let Some(c) = &f.category_like {
        q = q.filter(equipment::category_code.like(c));
    }
    if let Some(s) = &f.reg_status {
        q = q.filter(equipment::reg_status.eq(s));
    }
    if let Some(d) = f.overdue_before {
        q = q
            .filter(equipment::next_inspection_due.lt(d))
            .filter(equipment::reg_status.eq_any(["registered", "unregistered"]));
    }
    if let Some(r) = f.risk_min {
        q = q.filter(equipment::risk_score.ge(r));
    }
    if let Some(flag) = &f.flag {
        q = q.filter(equipment::risk_flags.like(format!("%\"{flag}\"%")));
    }
    if let Some(t) = &f.text_like {
        q = q.filter(
            equipment::registration_code
                .like(t)
                .escape('\\')
                .or(equipment::location.like(t).escape('\\')),
        );
    }
    if let Some(after) = after {
        q = q.filter(equipment::id.gt(after));
    }
    q.load(conn)
}

pub fn insert_equipment(tx: &mut SyncTx<'_>, rows: &[EquipmentRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::with_engine!(tx.conn(), |c| diesel::insert_into(equipment::table)
        .values(rows)
        .execute(c))?;
    Ok(())
}

pub fn update_equipment(tx: &mut SyncTx<'_>, row: &EquipmentRow) -> QueryResult<()> {
    diesel::update(equipment::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}

// ---- hazards (facts for risk) ----

pub fn hazard_facts(conn: &mut DbConn, unit_ids: &[String]) -> QueryResult<Vec<HazardFact>> {
    // Open: every state but fixed_on_site, verified and closed (spelled out with `=`, not an
    // `IN` list, for the statement cache).
    let open = hazards::state
        .eq("reported")
        .or(hazards::state.eq("classified"))
        .or(hazards::state.eq("rectifying"))
        .or(hazards::state.eq("rectification_submitted"));
    let columns = (
        hazards::unit_id,
        hazards::level,
        hazards::state,
        hazards::deadline,
    );
    if let [one] = unit_ids {
        return hazards::table
            .filter(hazards::unit_id.eq(one))
            .filter(open)
            .select(columns)
            .load(conn);
    }
    hazards::table
        .filter(hazards::unit_id.eq_any(unit_ids))
        .filter(open)
        .select(columns)
        .load(conn)
}

// ---- checklist templates ----

pub fn list_templates(conn: &mut DbConn) -> QueryResult<Vec<TemplateRow>> {
    checklist_templates::table
        .select(TemplateRow::as_select())
        .order(checklist_templates::code.asc())
        .load(conn)
}

pub fn find_template(conn: &mut DbConn, id: &str) -> QueryResult<Option<TemplateRow>> {
    checklist_templates::table
        .find(id)
        .select(TemplateRow::as_select())
        .first(conn)
        .optional()
}

pub fn update_template(tx: &mut SyncTx<'_>, row: &TemplateRow) -> QueryResult<()> {
    diesel::update(checklist_templates::table.find(&row.id))
        .set(row)
        .execute(tx.conn())?;
    Ok(())
}
