//! Keeping the stored risk facts true: recomputed inside the write transaction that changes
//! what they derive from, and swept periodically for what changes with the date alone
//! (inspections falling due, hazard deadlines passing, blacklist windows).

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::ids::CategoryCode;
use super::queries::{self, EquipmentRow};
use super::risk::{EquipmentFacts, Flags, RiskRules, UnitFacts, equipment_flags, unit_flags};
use crate::db::schema::units;
use crate::db::{DbConn, SyncTx, sync_tx};
use crate::error::ApiError;

/// Units refreshed per query batch (keeps `IN (…)` lists bounded on both engines).
const CHUNK: usize = 500;

/// Stamps an equipment row's flags and score from its own facts and its unit's place.
/// Returns whether they changed.
pub fn stamp_equipment(
    row: &mut EquipmentRow,
    public_gathering: bool,
    today: NaiveDate,
    rules: &RiskRules,
) -> bool {
    let flags = match CategoryCode::parse(&row.category_code) {
        Ok(cat) => equipment_flags(
            &EquipmentFacts {
                category: &cat,
                reg_status: &row.reg_status,
                commissioned_on: row.commissioned_on,
                last_inspection_on: row.last_inspection_on,
                next_inspection_due: row.next_inspection_due,
                inspection_conclusion: &row.inspection_conclusion,
                brake_type: &row.brake_type,
                fault_count_12m: row.fault_count_12m,
                hazchem: row.hazchem,
                public_gathering,
            },
            today,
            rules,
        ),
        Err(_) => Flags::default(),
    };
    let json = flags.to_json();
    let score = rules.score(&flags);
    let changed = row.risk_flags != json || row.risk_score != score;
    row.risk_flags = json;
    row.risk_score = score;
    changed
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RefreshStats {
    pub units_changed: u64,
    pub equipment_changed: u64,
}

/// Recomputes the facts of `unit_ids` and their equipment inside `tx`, writing only the rows
/// whose facts changed (stamped with the transaction's version).
pub fn refresh_units(
    tx: &mut SyncTx<'_>,
    unit_ids: &[String],
    now: NaiveDateTime,
    rules: &RiskRules,
) -> QueryResult<RefreshStats> {
    let mut stats = RefreshStats::default();
    let today = now.date();
    for chunk in unit_ids.chunks(CHUNK) {
        let units = queries::units_by_id(tx.conn(), chunk)?;
        let equipment = queries::equipment_of_units(tx.conn(), chunk)?;
        let hazards = queries::hazard_facts(tx.conn(), chunk)?;
        let mut by_unit: HashMap<String, Vec<EquipmentRow>> = HashMap::new();
        for e in equipment {
            by_unit.entry(e.unit_id.clone()).or_default().push(e);
        }
        let mut counts: HashMap<&str, (i64, i64, i64)> = HashMap::new();
        for h in &hazards {
            let c = counts.entry(h.unit_id.as_str()).or_default();
            c.0 += 1;
            if matches!(h.state.as_str(), "classified" | "rectifying")
                && h.deadline.is_some_and(|d| d < now)
            {
                c.1 += 1;
            }
            if h.level == "major" {
                c.2 += 1;
            }
        }
        for unit in &units {
            let mut flags = Flags::default();
            for e in by_unit.get_mut(&unit.id).into_iter().flatten() {
                if stamp_equipment(e, unit.public_gathering, today, rules) {
                    e.updated_at = now;
                    e.version = tx.version();
                    queries::update_equipment(tx, e)?;
                    stats.equipment_changed += 1;
                }
                flags.union(Flags::from_json(&e.risk_flags));
            }
            let (open, overdue, major) = counts.get(unit.id.as_str()).copied().unwrap_or_default();
            let own = unit_flags(
                &UnitFacts {
                    public_gathering: unit.public_gathering,
                    blacklisted_from: unit.blacklisted_from,
                    blacklisted_until: unit.blacklisted_until,
                    last_accident_on: unit.last_accident_on,
                    last_complaint_on: unit.last_complaint_on,
                    open_hazards: open,
                    overdue_hazards: overdue,
                    open_major_hazards: major,
                },
                today,
                rules,
            );
            flags.union(own);
            let mut next = unit.clone();
            next.risk_flags = flags.to_json();
            next.risk_score = rules.score(&flags);
            next.open_hazards = open as i32;
            next.overdue_hazards = overdue as i32;
            if next != *unit {
                next.updated_at = now;
                next.version = tx.version();
                queries::update_unit(tx, &next)?;
                stats.units_changed += 1;
            }
        }
    }
    Ok(stats)
}

/// Recomputes every unit's facts, `CHUNK` units per transaction (so writers are never held
/// up for long), for what changes with the date alone. Idempotent; rows whose facts did not
/// change are not written (and so not re-sent to devices).
pub fn refresh_all(
    conn: &mut DbConn,
    now: NaiveDateTime,
    rules: &RiskRules,
    mut progress: impl FnMut(u64),
) -> Result<RefreshStats, ApiError> {
    let mut total = RefreshStats::default();
    let mut after = String::new();
    let mut seen = 0u64;
    loop {
        let ids: Vec<String> = units::table
            .filter(units::id.gt(&after))
            .select(units::id)
            .order(units::id.asc())
            .limit(CHUNK as i64)
            .load(conn)?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let s = sync_tx(conn, |tx| -> Result<_, ApiError> {
            Ok(refresh_units(tx, &ids, now, rules)?)
        })?;
        total.units_changed += s.units_changed;
        total.equipment_changed += s.equipment_changed;
        seen += ids.len() as u64;
        progress(seen);
        after = last;
    }
    Ok(total)
}

/// The periodic job: recomputes every unit's facts when this server wins the interval's
/// claim (with several app servers, one of them per interval). Blocking.
pub fn refresh_job(
    conn: &mut DbConn,
    now: NaiveDateTime,
    interval_secs: u64,
    rules: &RiskRules,
) -> Result<Option<RefreshStats>, ApiError> {
    // The claim lasts a little less than the interval, so the next tick can take it.
    let hold = chrono::Duration::seconds(interval_secs.saturating_sub(30).max(30) as i64);
    if !crate::db::meta::claim_job(conn, "risk_refresh", now, now + hold)? {
        return Ok(None);
    }
    refresh_all(conn, now, rules, |_| {}).map(Some)
}
