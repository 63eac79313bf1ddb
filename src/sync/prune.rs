//! Pruning the sync log: tombstones and scope events older than the retention are deleted,
//! and `tombstones_pruned_through` remembers the newest version removed, so that a cursor
//! from before it resets instead of silently missing a delete or an evict.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{server_meta, sync_scope_events, sync_tombstones};
use crate::db::{DbConn, write_tx};
use crate::error::ApiError;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub tombstones: usize,
    pub scope_events: usize,
    /// The newest version removed (0: nothing was).
    pub through: i64,
}

/// Deletes what is older than `retention_days`. Idempotent; safe with several servers.
pub fn prune(
    conn: &mut DbConn,
    now: NaiveDateTime,
    retention_days: u64,
) -> Result<Pruned, ApiError> {
    let cutoff = now - chrono::Duration::days(retention_days as i64);
    write_tx(conn, |conn| -> Result<Pruned, ApiError> {
        let t: Option<i64> = sync_tombstones::table
            .filter(sync_tombstones::deleted_at.lt(cutoff))
            .select(diesel::dsl::max(sync_tombstones::version))
            .first(conn)?;
        let e: Option<i64> = sync_scope_events::table
            .filter(sync_scope_events::created_at.lt(cutoff))
            .select(diesel::dsl::max(sync_scope_events::version))
            .first(conn)?;
        let through = t.unwrap_or(0).max(e.unwrap_or(0));
        if through == 0 {
            return Ok(Pruned::default());
        }
        let tombstones =
            diesel::delete(sync_tombstones::table.filter(sync_tombstones::version.le(through)))
                .execute(conn)?;
        let scope_events =
            diesel::delete(sync_scope_events::table.filter(sync_scope_events::version.le(through)))
                .execute(conn)?;
        let before: i64 = server_meta::table
            .find("tombstones_pruned_through")
            .select(server_meta::value)
            .first::<String>(conn)
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        diesel::update(server_meta::table.find("tombstones_pruned_through"))
            .set(server_meta::value.eq(before.max(through).to_string()))
            .execute(conn)?;
        Ok(Pruned {
            tombstones,
            scope_events,
            through,
        })
    })
}

/// The periodic job: prunes when this server wins the turn (one server per interval).
pub fn prune_job(
    conn: &mut DbConn,
    now: NaiveDateTime,
    retention_days: u64,
    interval_secs: u64,
) -> Result<Option<Pruned>, ApiError> {
    let hold = chrono::Duration::seconds(interval_secs.saturating_sub(30).max(30) as i64);
    if !crate::db::meta::claim_job(conn, "sync_prune", now, now + hold)? {
        return Ok(None);
    }
    prune(conn, now, retention_days).map(Some)
}
