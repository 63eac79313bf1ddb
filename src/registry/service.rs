//! Registry rules: who reads and changes units, equipment and checklist templates, in which
//! region. Managers and inspectors read their region; managers (and admins) change it; a unit
//! user reads its own unit and its equipment. Whatever a caller may not read is 404.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};

use super::codes::{self, CodeBook, CodeTables};
use super::facts;
use super::input::{self, EquipmentInput, FieldErrors, UnitInput, ValidEquipment, ValidUnit};
use super::queries::{self, EquipmentFilter, EquipmentRow, TemplateRow, UnitFilter, UnitRow};
use super::risk::{Flag, RiskRules};
use super::types::{
    Equipment, EquipmentPatch, NewEquipment, NewUnit, Template, TemplateItem, TemplateList,
    TemplatePatch, Unit, UnitPatch,
};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::{RegionCode, Role};
use crate::db::{DbConn, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::validate;

// ---- permissions ----

fn reads_region(me: &AuthUser, region: &str) -> bool {
    match me.role {
        Role::Admin => true,
        Role::Manager | Role::Inspector => me.region.covers_code(region),
        Role::Unit => false,
    }
}

pub fn unit_visible(me: &AuthUser, u: &UnitRow) -> bool {
    reads_region(me, &u.region_code) || me.unit_id.as_deref() == Some(u.id.as_str())
}

pub fn equipment_visible(me: &AuthUser, e: &EquipmentRow) -> bool {
    reads_region(me, &e.region_code) || me.unit_id.as_deref() == Some(e.unit_id.as_str())
}

/// An inspector reads the unit (and its equipment) of an unsealed assignment they are on,
/// wherever it is: their devices hold it through sync already.
fn assignment_unit(
    conn: &mut DbConn,
    me: &AuthUser,
    unit_id: &str,
    region: &str,
) -> diesel::QueryResult<bool> {
    Ok(me.role == Role::Inspector
        && crate::work::hazards::unit_in_reach(conn, me, unit_id, region)?)
}

fn manages_region(me: &AuthUser, region: &str) -> bool {
    match me.role {
        Role::Admin => true,
        Role::Manager => me.region.covers_code(region),
        _ => false,
    }
}

fn field_errors(errs: FieldErrors) -> ApiError {
    let message = errs
        .iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut fields = std::collections::BTreeMap::new();
    for (f, m) in errs {
        fields.entry(f.to_string()).or_insert(m);
    }
    ApiError::Validation { message, fields }
}

/// The region pattern a list runs over: the caller's region narrowed to `requested` (a
/// request outside the caller's region lists nothing). `None`: nothing to list.
fn list_region(me: &AuthUser, requested: Option<&str>) -> ApiResult<Option<String>> {
    let mine = me.region.clone();
    let Some(req) = requested.filter(|r| !r.is_empty()) else {
        return Ok(Some(mine.like_pattern()));
    };
    let req = RegionCode::parse(req).map_err(|e| ApiError::invalid("region", e))?;
    Ok(if mine.covers(&req) {
        Some(req.like_pattern())
    } else if req.covers(&mine) {
        Some(mine.like_pattern())
    } else {
        None
    })
}

/// `q` as a LIKE pattern (substring, metacharacters escaped with `\`).
fn like_text(q: Option<&str>) -> ApiResult<Option<String>> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    if q.chars().count() > 100 {
        return Err(ApiError::invalid("q", "must be at most 100 characters"));
    }
    let mut p = String::from("%");
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    Ok(Some(p))
}

fn check_flag(flag: Option<&str>) -> ApiResult<Option<String>> {
    match flag.filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(f) => Flag::parse(f)
            .map(|f| Some(f.as_str().to_string()))
            .ok_or_else(|| {
                ApiError::invalid(
                    "flag",
                    "is not a risk flag (see GET /api/v1/codes, kind risk_flag)",
                )
            }),
    }
}

/// The risk rules of the configuration (weights, thresholds).
pub(crate) fn rules(state: &AppState) -> ApiResult<RiskRules> {
    RiskRules::from_config(&state.config).map_err(ApiError::internal)
}

// ---- code tables ----

pub async fn code_tables(state: &AppState) -> ApiResult<CodeTables> {
    state.db.run(|conn| Ok(codes::tables(conn)?)).await
}

pub async fn codes_version(state: &AppState) -> ApiResult<i64> {
    state.db.run(|conn| Ok(queries::codes_version(conn)?)).await
}

// ---- units ----

#[derive(Debug, Default)]
pub struct UnitQuery {
    pub region: Option<String>,
    pub place_type: Option<String>,
    pub risk_min: Option<i32>,
    pub flag: Option<String>,
    pub overdue: Option<bool>,
    pub q: Option<String>,
}

pub async fn list_units(
    state: &AppState,
    me: AuthUser,
    q: UnitQuery,
    page: Page,
) -> ApiResult<Paged<Unit>> {
    let empty = || Paged {
        items: Vec::new(),
        next: None,
    };
    let mut f = UnitFilter {
        place_type: q.place_type.filter(|p| !p.is_empty()),
        risk_min: q.risk_min,
        flag: check_flag(q.flag.as_deref())?,
        text_like: like_text(q.q.as_deref())?,
        ..Default::default()
    };
    if q.overdue == Some(true) {
        if f.flag.as_deref().is_some_and(|x| x != "overdue_inspection") {
            return Err(ApiError::invalid(
                "overdue",
                "cannot be combined with another flag",
            ));
        }
        f.flag = Some(Flag::OverdueInspection.as_str().into());
    }
    if me.is(Role::Unit) {
        let Some(unit) = me.unit_id.clone() else {
            return Ok(empty());
        };
        f.region_like = "%".into();
        f.only_id = Some(unit);
    } else {
        match list_region(&me, q.region.as_deref())? {
            Some(r) => f.region_like = r,
            None => return Ok(empty()),
        }
    }
    state
        .db
        .run(move |conn| {
            let rows = queries::list_units(conn, &f, page.after(), page.fetch())?;
            Ok(page.finish(rows.into_iter().map(Unit::from).collect(), |u| u.id.clone()))
        })
        .await
}

fn load_unit(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<UnitRow> {
    let nf = || ApiError::not_found("unit");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let u = queries::find_unit(conn, &id)?.ok_or_else(nf)?;
    if unit_visible(me, &u) || assignment_unit(conn, me, &u.id, &u.region_code)? {
        Ok(u)
    } else {
        Err(nf())
    }
}

pub async fn get_unit(state: &AppState, me: AuthUser, id: String) -> ApiResult<Unit> {
    state
        .db
        .run(move |conn| load_unit(conn, &me, &id).map(Unit::from))
        .await
}

/// A new unit row from validated input (facts are computed by the caller's refresh).
pub fn new_unit_row(v: &ValidUnit, id: String, now: NaiveDateTime, version: i64) -> UnitRow {
    UnitRow {
        id,
        uscc: v.uscc.as_str().to_string(),
        name: v.name.clone(),
        address: v.address.clone(),
        region_code: v.region.as_str().to_string(),
        place_type: v.place_type.clone(),
        public_gathering: v.public_gathering,
        contact_name: v.contact_name.clone(),
        contact_phone: v.contact_phone.clone(),
        blacklisted_from: None,
        blacklisted_until: None,
        last_accident_on: None,
        last_complaint_on: None,
        open_hazards: 0,
        overdue_hazards: 0,
        risk_flags: "[]".into(),
        risk_score: 0,
        created_at: now,
        updated_at: now,
        version,
    }
}

/// Copies validated input over an existing row (identity, facts and stamps untouched).
pub fn apply_unit(row: &mut UnitRow, v: &ValidUnit) {
    row.uscc = v.uscc.as_str().to_string();
    row.name = v.name.clone();
    row.address = v.address.clone();
    row.region_code = v.region.as_str().to_string();
    row.place_type = v.place_type.clone();
    row.public_gathering = v.public_gathering;
    row.contact_name = v.contact_name.clone();
    row.contact_phone = v.contact_phone.clone();
}

/// A unit moved to another region: devices of the old region get evicts for it and for what
/// hangs off it (its equipment and hazards). Call in the transaction that moves it.
pub fn record_region_move(
    tx: &mut crate::db::SyncTx<'_>,
    unit_id: &str,
    old_region: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    use crate::db::ScopeKey;
    use crate::db::schema::{directives, evidence, hazards, inspections, units};
    use diesel::prelude::*;
    for (table, ids) in crate::sync::scope::unit_family(tx.conn(), unit_id)? {
        for id in ids {
            tx.scope_event(false, table, &id, ScopeKey::Region(old_region), now)?;
        }
    }
    diesel::update(hazards::table.filter(hazards::unit_id.eq(unit_id)))
        .set((
            hazards::region_code.eq(units::table
                .find(unit_id)
                .select(units::region_code)
                .single_value()
                .assume_not_null()),
            hazards::version.eq(tx.version()),
            hazards::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    diesel::update(evidence::table.filter(evidence::unit_id.eq(unit_id)))
        .set((
            evidence::region_code.eq(units::table
                .find(unit_id)
                .select(units::region_code)
                .single_value()
                .assume_not_null()),
            evidence::version.eq(tx.version()),
            evidence::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    diesel::update(directives::table.filter(directives::unit_id.eq(unit_id)))
        .set((
            directives::region_code.eq(units::table
                .find(unit_id)
                .select(units::region_code)
                .single_value()
                .assume_not_null()),
            directives::version.eq(tx.version()),
            directives::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    diesel::update(inspections::table.filter(inspections::unit_id.eq(unit_id)))
        .set((
            inspections::region_code.eq(units::table
                .find(unit_id)
                .select(units::region_code)
                .single_value()
                .assume_not_null()),
            inspections::version.eq(tx.version()),
            inspections::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    Ok(())
}

fn uscc_taken() -> ApiError {
    ApiError::conflict("uscc_taken", "a unit with this USCC is already registered")
}

pub async fn create_unit(state: &AppState, me: AuthUser, req: NewUnit) -> ApiResult<Unit> {
    if !matches!(me.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden(
            "only managers and admins register units",
        ));
    }
    let rules = rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let book = CodeBook::load(conn)?;
            let input = UnitInput {
                uscc: req.uscc,
                name: req.name,
                address: req.address,
                region_code: req.region_code,
                place_type: req.place_type,
                contact_name: req.contact_name.unwrap_or_default(),
                contact_phone: req.contact_phone.unwrap_or_default(),
            };
            let v = input::check_unit(&input, &book, &me.region).map_err(field_errors)?;
            let id = validate::new_id();
            sync_tx(conn, |tx| -> ApiResult<()> {
                if !queries::units_by_uscc(tx.conn(), &[v.uscc.as_str().to_string()])?.is_empty() {
                    return Err(uscc_taken());
                }
                let row = new_unit_row(&v, id.clone(), now, tx.version());
                queries::insert_units(tx, &[row]).map_err(|e| match ApiError::from(e) {
                    ApiError::Conflict { .. } => uscc_taken(),
                    other => other,
                })?;
                facts::refresh_units(tx, std::slice::from_ref(&id), now, &rules)?;
                Ok(())
            })?;
            Ok(Unit::from(
                queries::find_unit(conn, &id)?
                    .ok_or_else(|| ApiError::internal("unit vanished"))?,
            ))
        })
        .await
}

fn patch_date(
    errs: &mut FieldErrors,
    field: &'static str,
    current: Option<NaiveDate>,
    patch: Option<Option<String>>,
) -> Option<NaiveDate> {
    match patch {
        None => current,
        Some(None) => None,
        Some(Some(s)) => {
            let d = input::date(errs, field, &s);
            if d.is_none() && s.trim().is_empty() {
                None
            } else {
                d
            }
        }
    }
}

pub async fn update_unit(
    state: &AppState,
    me: AuthUser,
    id: String,
    p: UnitPatch,
) -> ApiResult<Unit> {
    let rules = rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let current = load_unit(conn, &me, &id)?;
            if !manages_region(&me, &current.region_code) {
                return Err(ApiError::forbidden(
                    "only managers of its region change a unit",
                ));
            }
            let book = CodeBook::load(conn)?;
            let input = UnitInput {
                uscc: current.uscc.clone(),
                name: p.name.unwrap_or_else(|| current.name.clone()),
                address: p.address.unwrap_or_else(|| current.address.clone()),
                region_code: p.region_code.unwrap_or_else(|| current.region_code.clone()),
                place_type: p.place_type.unwrap_or_else(|| current.place_type.clone()),
                contact_name: p
                    .contact_name
                    .unwrap_or_else(|| current.contact_name.clone()),
                contact_phone: p
                    .contact_phone
                    .unwrap_or_else(|| current.contact_phone.clone()),
            };
            let checked = input::check_unit(&input, &book, &me.region);
            let mut errs = FieldErrors::new();
            let bf = patch_date(
                &mut errs,
                "blacklisted_from",
                current.blacklisted_from,
                p.blacklisted_from,
            );
            let bu = patch_date(
                &mut errs,
                "blacklisted_until",
                current.blacklisted_until,
                p.blacklisted_until,
            );
            let la = patch_date(
                &mut errs,
                "last_accident_on",
                current.last_accident_on,
                p.last_accident_on,
            );
            let lc = patch_date(
                &mut errs,
                "last_complaint_on",
                current.last_complaint_on,
                p.last_complaint_on,
            );
            if let (Some(f), Some(u)) = (bf, bu)
                && u < f
            {
                errs.push(("blacklisted_until", "is before blacklisted_from".into()));
            }
            let v = match checked {
                Ok(v) if errs.is_empty() => v,
                Ok(_) => return Err(field_errors(errs)),
                Err(mut e) => {
                    e.extend(errs);
                    return Err(field_errors(e));
                }
            };
            let mut next = current.clone();
            apply_unit(&mut next, &v);
            next.blacklisted_from = bf;
            next.blacklisted_until = bu;
            next.last_accident_on = la;
            next.last_complaint_on = lc;
            if next != current {
                sync_tx(conn, |tx| -> ApiResult<()> {
                    next.updated_at = now;
                    next.version = tx.version();
                    queries::update_unit(tx, &next)?;
                    if next.region_code != current.region_code {
                        queries::set_equipment_region(tx, &next.id, &next.region_code, now)?;
                        record_region_move(tx, &next.id, &current.region_code, now)?;
                    }
                    facts::refresh_units(tx, std::slice::from_ref(&next.id), now, &rules)?;
                    Ok(())
                })?;
            }
            Ok(Unit::from(
                queries::find_unit(conn, &current.id)?
                    .ok_or_else(|| ApiError::not_found("unit"))?,
            ))
        })
        .await
}

// ---- equipment ----

#[derive(Debug, Default)]
pub struct EquipmentQuery {
    pub region: Option<String>,
    pub unit_id: Option<String>,
    pub category: Option<String>,
    pub reg_status: Option<String>,
    pub overdue: Option<bool>,
    pub risk_min: Option<i32>,
    pub flag: Option<String>,
    pub q: Option<String>,
}

pub async fn list_equipment(
    state: &AppState,
    me: AuthUser,
    q: EquipmentQuery,
    page: Page,
) -> ApiResult<Paged<Equipment>> {
    let empty = || Paged {
        items: Vec::new(),
        next: None,
    };
    let category_like = match q
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => {
            let c =
                super::ids::CategoryCode::parse(c).map_err(|e| ApiError::invalid("category", e))?;
            let s = c.as_str();
            Some(if s.ends_with("000") {
                format!("{}%", &s[..1])
            } else if s.ends_with("00") {
                format!("{}%", &s[..2])
            } else {
                s.to_string()
            })
        }
    };
    let unit_id = q
        .unit_id
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| validate::uuid("unit_id", u))
        .transpose()?;
    let mut f = EquipmentFilter {
        unit_id,
        category_like,
        reg_status: q.reg_status.filter(|s| !s.is_empty()),
        overdue_before: (q.overdue == Some(true)).then(|| state.clock.now().date()),
        risk_min: q.risk_min,
        flag: check_flag(q.flag.as_deref())?,
        text_like: like_text(q.q.as_deref())?,
        ..Default::default()
    };
    if me.is(Role::Unit) {
        let Some(unit) = me.unit_id.clone() else {
            return Ok(empty());
        };
        if f.unit_id.as_ref().is_some_and(|u| *u != unit) {
            return Ok(empty());
        }
        f.unit_id = Some(unit);
        f.region_like = "%".into();
    } else {
        match list_region(&me, q.region.as_deref())? {
            Some(r) => f.region_like = r,
            None => return Ok(empty()),
        }
    }
    state
        .db
        .run(move |conn| {
            let rows = queries::list_equipment(conn, &f, page.after(), page.fetch())?;
            Ok(
                page.finish(rows.into_iter().map(Equipment::from).collect(), |e| {
                    e.id.clone()
                }),
            )
        })
        .await
}

fn load_equipment(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<EquipmentRow> {
    let nf = || ApiError::not_found("equipment");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let e = queries::find_equipment(conn, &id)?.ok_or_else(nf)?;
    if equipment_visible(me, &e) || assignment_unit(conn, me, &e.unit_id, &e.region_code)? {
        Ok(e)
    } else {
        Err(nf())
    }
}

pub async fn get_equipment(state: &AppState, me: AuthUser, id: String) -> ApiResult<Equipment> {
    state
        .db
        .run(move |conn| load_equipment(conn, &me, &id).map(Equipment::from))
        .await
}

fn opt_date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A new equipment row of `unit` from validated input, its facts stamped.
pub fn new_equipment_row(
    v: &ValidEquipment,
    unit: (&str, &str, bool),
    id: String,
    now: NaiveDateTime,
    version: i64,
    rules: &RiskRules,
) -> EquipmentRow {
    let (unit_id, region, public_gathering) = unit;
    let mut row = EquipmentRow {
        id,
        registration_code: v.registration_code.as_str().to_string(),
        unit_id: unit_id.to_string(),
        region_code: region.to_string(),
        category_code: String::new(),
        reg_cert_no: String::new(),
        reg_status: String::new(),
        commissioned_on: None,
        last_inspection_on: None,
        next_inspection_due: None,
        inspection_conclusion: String::new(),
        location: String::new(),
        brake_type: String::new(),
        fault_count_12m: 0,
        hazchem: false,
        risk_flags: "[]".into(),
        risk_score: 0,
        created_at: now,
        updated_at: now,
        version,
    };
    apply_equipment(&mut row, v);
    facts::stamp_equipment(&mut row, public_gathering, now.date(), rules);
    row
}

/// Copies validated input over a row (identity, unit and stamps untouched).
pub fn apply_equipment(row: &mut EquipmentRow, v: &ValidEquipment) {
    row.category_code = v.category.as_str().to_string();
    row.reg_cert_no = v.reg_cert_no.clone();
    row.reg_status = v.reg_status.clone();
    row.commissioned_on = v.commissioned_on;
    row.last_inspection_on = v.last_inspection_on;
    row.next_inspection_due = v.next_inspection_due;
    row.inspection_conclusion = v.inspection_conclusion.clone();
    row.location = v.location.clone();
    row.brake_type = v.brake_type.clone();
    row.fault_count_12m = v.fault_count_12m;
    row.hazchem = v.hazchem;
}

fn code_taken() -> ApiError {
    ApiError::conflict(
        "registration_code_taken",
        "equipment with this registration code is already registered",
    )
}

pub async fn create_equipment(
    state: &AppState,
    me: AuthUser,
    req: NewEquipment,
) -> ApiResult<Equipment> {
    if !matches!(me.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden(
            "only managers and admins register equipment",
        ));
    }
    let rules = rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let unit = load_unit(conn, &me, &req.unit_id)
                .map_err(|_| ApiError::invalid("unit_id", "no such unit in your region"))?;
            if !manages_region(&me, &unit.region_code) {
                return Err(ApiError::invalid("unit_id", "no such unit in your region"));
            }
            let book = CodeBook::load(conn)?;
            let input = EquipmentInput {
                registration_code: req.registration_code,
                reg_cert_no: req.reg_cert_no.unwrap_or_default(),
                category_code: req.category_code,
                reg_status: req.reg_status,
                commissioned_on: req.commissioned_on.unwrap_or_default(),
                last_inspection_on: req.last_inspection_on.unwrap_or_default(),
                next_inspection_due: req.next_inspection_due.unwrap_or_default(),
                inspection_conclusion: req.inspection_conclusion.unwrap_or_default(),
                location: req.location.unwrap_or_default(),
                brake_type: req.brake_type.unwrap_or_default(),
                fault_count_12m: req
                    .fault_count_12m
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                hazchem: req.hazchem.map(|b| b.to_string()).unwrap_or_default(),
            };
            let v = input::check_equipment(&input, &book).map_err(field_errors)?;
            let id = validate::new_id();
            sync_tx(conn, |tx| -> ApiResult<()> {
                let code = v.registration_code.as_str().to_string();
                if !queries::equipment_by_code(tx.conn(), &[code])?.is_empty() {
                    return Err(code_taken());
                }
                let row = new_equipment_row(
                    &v,
                    (&unit.id, &unit.region_code, unit.public_gathering),
                    id.clone(),
                    now,
                    tx.version(),
                    &rules,
                );
                queries::insert_equipment(tx, &[row]).map_err(|e| match ApiError::from(e) {
                    ApiError::Conflict { .. } => code_taken(),
                    other => other,
                })?;
                facts::refresh_units(tx, std::slice::from_ref(&unit.id), now, &rules)?;
                Ok(())
            })?;
            Ok(Equipment::from(
                queries::find_equipment(conn, &id)?
                    .ok_or_else(|| ApiError::internal("equipment vanished"))?,
            ))
        })
        .await
}

pub async fn update_equipment(
    state: &AppState,
    me: AuthUser,
    id: String,
    p: EquipmentPatch,
) -> ApiResult<Equipment> {
    let rules = rules(state)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let current = load_equipment(conn, &me, &id)?;
            if !manages_region(&me, &current.region_code) {
                return Err(ApiError::forbidden(
                    "only managers of its region change equipment",
                ));
            }
            let book = CodeBook::load(conn)?;
            let date_or = |patch: Option<Option<String>>, cur: Option<NaiveDate>| match patch {
                None => opt_date(cur),
                Some(v) => v.unwrap_or_default(),
            };
            let input = EquipmentInput {
                registration_code: current.registration_code.clone(),
                reg_cert_no: p.reg_cert_no.unwrap_or_else(|| current.reg_cert_no.clone()),
                category_code: p
                    .category_code
                    .unwrap_or_else(|| current.category_code.clone()),
                reg_status: p.reg_status.unwrap_or_else(|| current.reg_status.clone()),
                commissioned_on: date_or(p.commissioned_on, current.commissioned_on),
                last_inspection_on: date_or(p.last_inspection_on, current.last_inspection_on),
                next_inspection_due: date_or(p.next_inspection_due, current.next_inspection_due),
                inspection_conclusion: p
                    .inspection_conclusion
                    .unwrap_or_else(|| current.inspection_conclusion.clone()),
                location: p.location.unwrap_or_else(|| current.location.clone()),
                brake_type: p.brake_type.unwrap_or_else(|| current.brake_type.clone()),
                fault_count_12m: p
                    .fault_count_12m
                    .unwrap_or(current.fault_count_12m)
                    .to_string(),
                hazchem: p.hazchem.unwrap_or(current.hazchem).to_string(),
            };
            let v = input::check_equipment(&input, &book).map_err(field_errors)?;
            let mut next = current.clone();
            apply_equipment(&mut next, &v);
            if next != current {
                sync_tx(conn, |tx| -> ApiResult<()> {
                    next.updated_at = now;
                    next.version = tx.version();
                    queries::update_equipment(tx, &next)?;
                    // Re-stamps the equipment's facts and its unit's.
                    facts::refresh_units(tx, std::slice::from_ref(&next.unit_id), now, &rules)?;
                    Ok(())
                })?;
            }
            Ok(Equipment::from(
                queries::find_equipment(conn, &current.id)?
                    .ok_or_else(|| ApiError::not_found("equipment"))?,
            ))
        })
        .await
}

// ---- checklist templates ----

pub async fn list_templates(state: &AppState, _me: AuthUser) -> ApiResult<TemplateList> {
    state
        .db
        .run(|conn| {
            Ok(TemplateList {
                items: queries::list_templates(conn)?
                    .into_iter()
                    .map(Template::from)
                    .collect(),
            })
        })
        .await
}

fn load_template(conn: &mut DbConn, id: &str) -> ApiResult<TemplateRow> {
    let nf = || ApiError::not_found("checklist template");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    queries::find_template(conn, &id)?.ok_or_else(nf)
}

pub async fn get_template(state: &AppState, _me: AuthUser, id: String) -> ApiResult<Template> {
    state
        .db
        .run(move |conn| load_template(conn, &id).map(Template::from))
        .await
}

fn check_items(items: &[TemplateItem]) -> ApiResult<Vec<TemplateItem>> {
    if items.is_empty() || items.len() > 200 {
        return Err(ApiError::invalid("items", "must hold 1 to 200 items"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        // The validators' own messages ("must not be empty", "must be at most N characters",
        // "must not contain control characters"), placed under `items` with the item's number.
        let at = |e: ApiError| match e {
            ApiError::Validation { message, .. } => {
                ApiError::invalid("items", format!("item {}: {message}", i + 1))
            }
            other => other,
        };
        let code = validate::text("code", &it.code, 32).map_err(at)?;
        if !seen.insert(code.clone()) {
            return Err(ApiError::invalid(
                "items",
                format!("item {}: code `{code}` appears twice", i + 1),
            ));
        }
        let text_zh = validate::text("text_zh", &it.text_zh, 500).map_err(at)?;
        let text_en = validate::text("text_en", &it.text_en, 500).map_err(at)?;
        let major_clause = it
            .major_clause
            .as_deref()
            .map(|c| validate::optional_text("major_clause", c, 200))
            .transpose()
            .map_err(at)?
            .filter(|c| !c.is_empty());
        out.push(TemplateItem {
            code,
            text_zh,
            text_en,
            major_clause,
            per_equipment: it.per_equipment,
        });
    }
    Ok(out)
}

pub async fn update_template(
    state: &AppState,
    me: AuthUser,
    id: String,
    p: TemplatePatch,
) -> ApiResult<Template> {
    if !me.is(Role::Admin) {
        return Err(ApiError::forbidden("only admins edit checklist templates"));
    }
    let now = state.clock.now();
    let items = p.items.as_deref().map(check_items).transpose()?;
    let title_zh = p
        .title_zh
        .as_deref()
        .map(|t| validate::text("title_zh", t, 200))
        .transpose()?;
    let title_en = p
        .title_en
        .as_deref()
        .map(|t| validate::text("title_en", t, 200))
        .transpose()?;
    state
        .db
        .run(move |conn| {
            let mut row = load_template(conn, &id)?;
            let before = row.clone();
            if let Some(t) = title_zh {
                row.title_zh = t;
            }
            if let Some(t) = title_en {
                row.title_en = t;
            }
            if let Some(items) = items {
                row.items = serde_json::to_string(&items).map_err(ApiError::internal_from)?;
            }
            if let Some(a) = p.active {
                row.active = a;
            }
            if row == before {
                return Ok(Template::from(row)); // nothing changed: devices need nothing new
            }
            sync_tx(conn, |tx| -> ApiResult<()> {
                row.updated_at = now;
                row.version = tx.version();
                queries::update_template(tx, &row)?;
                Ok(())
            })?;
            Ok(Template::from(row))
        })
        .await
}
