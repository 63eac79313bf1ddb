//! Synced rows kept as devices receive them: `sync_row_json` holds each row's JSON with the
//! version it was made from, written by the one sync write path ([`crate::db::sync_tx`])
//! just before its transaction closes, from the rows that transaction stamped. A page then
//! reads (id, version, JSON) instead of decoding every column and serialising it again, which
//! is most of the work of an initial sync when the row cache has not seen the rows yet.
//!
//! Always correct, only faster: a reader uses an entry only when its version is the row's
//! version in the same snapshot; otherwise (rows written before this table existed, until
//! they are next written) the row is rendered from its columns as before.

use diesel::dsl::exists;
use diesel::prelude::*;

use super::rowcache::RawData;
use crate::db::DbConn;
use crate::db::schema::{
    assignments, checklist_templates, codes, directives, equipment, evidence, hazards, inspections,
    sync_row_json, sync_tombstones, units, users,
};

/// Rows rendered per read while a transaction's rows are stored (bounds memory when one
/// transaction wrote a whole registry import).
const RENDER_CHUNK: i64 = 2000;
/// Entries per INSERT (4 values each: well under both engines' limits on bound values).
const INSERT_CHUNK: usize = 250;

#[derive(Insertable)]
#[diesel(table_name = sync_row_json)]
struct NewEntry<'a> {
    tbl: &'static str,
    id: &'a str,
    version: i64,
    json: &'a str,
}

type Render = fn(&mut DbConn, i64, &str, i64) -> QueryResult<Vec<(String, Option<RawData>)>>;

/// Stores the JSON of every synced row stamped with `version`, and drops the entries of rows
/// deleted at it. Runs inside the sync transaction that wrote them, before it closes.
pub fn store_version(conn: &mut DbConn, version: i64) -> QueryResult<()> {
    use super::pull as r;
    // Which tables this transaction wrote, in one query (most write one or two).
    let written: (
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = diesel::select((
        exists(assignments::table.filter(assignments::version.eq(version))),
        exists(checklist_templates::table.filter(checklist_templates::version.eq(version))),
        exists(codes::table.filter(codes::version.eq(version))),
        exists(directives::table.filter(directives::version.eq(version))),
        exists(equipment::table.filter(equipment::version.eq(version))),
        exists(evidence::table.filter(evidence::version.eq(version))),
        exists(hazards::table.filter(hazards::version.eq(version))),
        exists(inspections::table.filter(inspections::version.eq(version))),
        exists(units::table.filter(units::version.eq(version))),
        exists(users::table.filter(users::version.eq(version))),
        exists(sync_tombstones::table.filter(sync_tombstones::version.eq(version))),
    ))
    .get_result(conn)?;
    let tables: [(bool, &'static str, Render); 10] = [
        (written.0, "assignments", r::assignments_at_version),
        (written.1, "checklist_templates", r::templates_at_version),
        (written.2, "codes", r::codes_at_version),
        (written.3, "directives", r::directives_at_version),
        (written.4, "equipment", r::equipment_at_version),
        (written.5, "evidence", r::evidence_at_version),
        (written.6, "hazards", r::hazards_at_version),
        (written.7, "inspections", r::inspections_at_version),
        (written.8, "units", r::units_at_version),
        (written.9, "users", r::users_at_version),
    ];
    for (_, table, render) in tables.into_iter().filter(|t| t.0) {
        let mut after = String::new();
        loop {
            let rows = render(conn, version, &after, RENDER_CHUNK)?;
            let Some((last, _)) = rows.last() else { break };
            after = last.clone();
            let full = rows.len() as i64 == RENDER_CHUNK;
            // A row that does not serialise (it cannot happen) is left to be rendered when read.
            let entries: Vec<NewEntry<'_>> = rows
                .iter()
                .filter_map(|(id, d)| {
                    d.as_ref().map(|d| NewEntry {
                        tbl: table,
                        id,
                        version,
                        json: d.get(),
                    })
                })
                .collect();
            for chunk in entries.chunks(INSERT_CHUNK) {
                upsert(conn, chunk)?;
            }
            if !full {
                break;
            }
        }
    }
    if written.10 {
        let gone: Vec<(String, String)> = sync_tombstones::table
            .filter(sync_tombstones::version.eq(version))
            .select((sync_tombstones::table_name, sync_tombstones::row_id))
            .load(conn)?;
        let mut by_table: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (table, id) in gone {
            by_table.entry(table).or_default().push(id);
        }
        for (table, ids) in by_table {
            for chunk in ids.chunks(INSERT_CHUNK) {
                diesel::delete(
                    sync_row_json::table
                        .filter(sync_row_json::tbl.eq(&table))
                        .filter(sync_row_json::id.eq_any(chunk)),
                )
                .execute(conn)?;
            }
        }
    }
    Ok(())
}

fn upsert(conn: &mut DbConn, entries: &[NewEntry<'_>]) -> QueryResult<()> {
    macro_rules! upsert {
        ($values:expr, $c:expr) => {
            diesel::insert_into(sync_row_json::table)
                .values($values)
                .on_conflict((sync_row_json::id, sync_row_json::tbl))
                .do_update()
                .set((
                    sync_row_json::version.eq(diesel::upsert::excluded(sync_row_json::version)),
                    sync_row_json::json.eq(diesel::upsert::excluded(sync_row_json::json)),
                ))
                .execute($c)
        };
    }
    match conn {
        // One statement per row: diesel has no multi-row upsert for SQLite, and a prepared
        // statement run again costs little there (no round trip).
        DbConn::Sqlite(c) => {
            for e in entries {
                upsert!(e, c)?;
            }
        }
        DbConn::Pg(c) => {
            upsert!(entries, c)?;
        }
    }
    Ok(())
}

/// The stored entries of some rows of `table`: (id, version, JSON). The caller uses one only
/// when its version is the row's.
pub fn get_many(
    conn: &mut DbConn,
    table: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, i64, String)>> {
    sync_row_json::table
        .filter(sync_row_json::tbl.eq(table))
        .filter(sync_row_json::id.eq_any(ids))
        .select((
            sync_row_json::id,
            sync_row_json::version,
            sync_row_json::json,
        ))
        .load(conn)
}
