//! Synced rows kept as devices receive them: `sync_row_json` holds each row's JSON with the
//! version it was made from, written by the one sync write path ([`crate::db::sync_tx`], and
//! a sync batch once for all its transactions) just before it commits, from the rows it
//! stamped. A page then
//! reads (id, version, JSON) instead of decoding every column and serialising it again, which
//! is most of the work of an initial sync when the row cache has not seen the rows yet.
//!
//! Always correct, only faster: a reader uses an entry only when its version is the row's
//! version in the same snapshot; otherwise (rows written before this table existed, until
//! they are next written) the row is rendered from its columns as before.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::rowcache::RawData;
use crate::db::DbConn;
use crate::db::schema::{sync_row_json, sync_tombstones};

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

type Render =
    fn(&mut DbConn, i64, i64, (i64, &str), i64) -> QueryResult<Vec<(String, i64, Option<RawData>)>>;

/// Stores the JSON of every synced row stamped with a version in `lo..=hi`, and drops the
/// entries of rows deleted at those versions. Runs inside the write transaction that wrote
/// them, before it commits: [`crate::db::sync_tx`] for its version, a sync batch once for all
/// of its transactions (a push of 100 mutations probes and renders once, not 100 times).
pub fn store_versions(conn: &mut DbConn, lo: i64, hi: i64) -> QueryResult<()> {
    use super::pull as r;
    // Which tables were written, in one query (most transactions write one or two).
    let w = probe(conn, lo, hi)?;
    if w.sync_tombstones {
        // First: a row deleted and made again (same id) within the range keeps its entry.
        let gone: Vec<(String, String)> = sync_tombstones::table
            .filter(sync_tombstones::version.between(lo, hi))
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
    let tables: [(bool, &'static str, Render); 10] = [
        (w.assignments, "assignments", r::assignments_at_version),
        (
            w.checklist_templates,
            "checklist_templates",
            r::templates_at_version,
        ),
        (w.codes, "codes", r::codes_at_version),
        (w.directives, "directives", r::directives_at_version),
        (w.equipment, "equipment", r::equipment_at_version),
        (w.evidence, "evidence", r::evidence_at_version),
        (w.hazards, "hazards", r::hazards_at_version),
        (w.inspections, "inspections", r::inspections_at_version),
        (w.units, "units", r::units_at_version),
        (w.users, "users", r::users_at_version),
    ];
    for (_, table, render) in tables.into_iter().filter(|t| t.0) {
        let mut after = (lo - 1, String::new());
        loop {
            let rows = render(conn, lo, hi, (after.0, &after.1), RENDER_CHUNK)?;
            let Some((id, version, _)) = rows.last() else {
                break;
            };
            after = (*version, id.clone());
            let full = rows.len() as i64 == RENDER_CHUNK;
            // A row that does not serialise (it cannot happen) is left to be rendered when read.
            let entries: Vec<NewEntry<'_>> = rows
                .iter()
                .filter_map(|(id, version, d)| {
                    d.as_ref().map(|d| NewEntry {
                        tbl: table,
                        id,
                        version: *version,
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
    Ok(())
}

/// Has the table a row with a version in the range?
#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = Bool)]
    assignments: bool,
    #[diesel(sql_type = Bool)]
    checklist_templates: bool,
    #[diesel(sql_type = Bool)]
    codes: bool,
    #[diesel(sql_type = Bool)]
    directives: bool,
    #[diesel(sql_type = Bool)]
    equipment: bool,
    #[diesel(sql_type = Bool)]
    evidence: bool,
    #[diesel(sql_type = Bool)]
    hazards: bool,
    #[diesel(sql_type = Bool)]
    inspections: bool,
    #[diesel(sql_type = Bool)]
    units: bool,
    #[diesel(sql_type = Bool)]
    users: bool,
    #[diesel(sql_type = Bool)]
    sync_tombstones: bool,
}

/// The probe as plain SQL (`$lo`, `$hi`: the engine's placeholders for the bounds), one
/// column per synced table (named as in [`Written`]) and the tombstones. Built by diesel's
/// query builder, each `EXISTS` selected every column of its table.
fn probe_sql(lo: &str, hi: &str) -> String {
    let tables = super::scope::TABLES.iter().chain(&["sync_tombstones"]);
    let parts: Vec<String> = tables
        .map(|t| format!("EXISTS (SELECT 1 FROM {t} WHERE version BETWEEN {lo} AND {hi}) AS {t}"))
        .collect();
    format!("SELECT {}", parts.join(", "))
}

fn probe(conn: &mut DbConn, lo: i64, hi: i64) -> QueryResult<Written> {
    use std::sync::LazyLock;
    static SQLITE: LazyLock<String> = LazyLock::new(|| probe_sql("?1", "?2"));
    static PG: LazyLock<String> = LazyLock::new(|| probe_sql("$1", "$2"));
    match conn {
        DbConn::Sqlite(c) => diesel::sql_query(SQLITE.as_str())
            .bind::<BigInt, _>(lo)
            .bind::<BigInt, _>(hi)
            .get_result(c),
        DbConn::Pg(c) => diesel::sql_query(PG.as_str())
            .bind::<BigInt, _>(lo)
            .bind::<BigInt, _>(hi)
            .get_result(c),
    }
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
