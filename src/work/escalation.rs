//! Overdue hazards (`classified` or `rectifying` past their deadline) escalate to their
//! region's managers: the hazard gets `escalated_at` (devices and lists show it; managers
//! filter on `?overdue=true`) and an audit entry by the system. Each hazard escalates once
//! per deadline, whichever app server runs the job: the candidates are read again inside
//! the sync transaction, after the clock row's lock, and only unescalated ones change.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::queries::{self, HazardRow};
use crate::audit;
use crate::db::schema::hazards;
use crate::db::{DbConn, sync_tx};
use crate::error::ApiResult;
use crate::registry::facts;
use crate::registry::risk::RiskRules;

/// Escalated per transaction (the job runs again for the rest).
const BATCH: i64 = 500;

/// The states in which a passed deadline makes a hazard overdue.
pub const OVERDUE_STATES: [&str; 2] = ["classified", "rectifying"];

fn due(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<Vec<HazardRow>> {
    hazards::table
        .filter(hazards::state.eq_any(OVERDUE_STATES))
        .filter(hazards::deadline.lt(now))
        .filter(hazards::escalated_at.is_null())
        .order(hazards::id)
        .limit(BATCH)
        .select(HazardRow::as_select())
        .load(conn)
}

/// Escalates what is overdue at `now`; answers how many hazards it escalated.
pub fn escalate_overdue(
    conn: &mut DbConn,
    now: NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<usize> {
    let mut total = 0;
    loop {
        // A cheap look first: most runs find nothing and then write nothing (no clock bump).
        if due(conn, now)?.is_empty() {
            return Ok(total);
        }
        let n = sync_tx(conn, |tx| -> ApiResult<usize> {
            let rows = due(tx.conn(), now)?;
            let mut units: Vec<String> = Vec::new();
            for h in &rows {
                let mut next = h.clone();
                next.escalated_at = Some(now);
                next.updated_at = now;
                next.version = tx.version();
                queries::update_hazard(tx, &next)?;
                audit::record_system(
                    tx,
                    audit::service::Change {
                        action: "hazard.escalate",
                        table: "hazards",
                        id: &h.id,
                        region: Some(&h.region_code),
                        before: None,
                        after: Some(serde_json::json!({
                            "state": h.state,
                            "deadline": h.deadline.map(crate::time::utc),
                            "escalated_to": "managers of the region",
                        })),
                    },
                    now,
                )?;
                if !units.contains(&h.unit_id) {
                    units.push(h.unit_id.clone());
                }
            }
            // The units' overdue counts (a risk fact) move with it.
            facts::refresh_units(tx, &units, now, rules)?;
            Ok(rows.len())
        })?;
        total += n;
        if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}
