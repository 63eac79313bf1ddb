//! `GET /api/v1/sync/pull`: what changed in the caller's scope since their cursor, in the
//! order `(version, table, id)`, a page at a time, read from one snapshot.
//!
//! Sources, merged in that order: rows of synced tables in scope with a newer version
//! (`put`); tombstones of rows the caller could see (`delete`, not in an initial sync); and
//! scope events: a row that entered the caller's scope comes in full with what hangs off it
//! (`put`, however old), one that left it goes (`evict`).

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::cursor::{Cursor, DecodeError, Pos};
use super::rowcache::{RawData, RowCache};
use super::scope::{Who, filters};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::db::schema::{
    assignments, checklist_templates, codes, directives, equipment, evidence, hazards, inspections,
    server_meta, sync_mutations, sync_scope_events, sync_tombstones, units, users,
};
use crate::db::{Db, DbConn, head, read_snapshot};
use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: i64 = 1000;
pub const MAX_LIMIT: i64 = 5000;

#[derive(Debug, Serialize)]
pub struct Change {
    pub table: &'static str,
    pub op: &'static str,
    pub id: String,
    /// The row's own version (what a device keeps and checksums).
    pub version: i64,
    /// The row's JSON; a page first collects changes without it and then fills the ones it
    /// sends (from the row cache, or one read per table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<RawData>,
    /// Where the change stands in the order (the version of the event that caused it).
    #[serde(skip)]
    pub at: i64,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PullResponse {
    Changes {
        changes: Vec<Change>,
        cursor: String,
        has_more: bool,
        last_mutation_seq: i64,
    },
    Reset {
        reset: bool,
        reason: String,
    },
}

/// The JSON of a pull answer, as its `Serialize` would write it, with each row's JSON copied
/// in as it is kept (made by this server's serialiser) rather than parsed and written again.
pub fn page_body(out: &PullResponse) -> Vec<u8> {
    fn push_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
        // Strings and integers: serde_json cannot fail on them.
        let _ = serde_json::to_writer(&mut *buf, v);
    }
    let PullResponse::Changes {
        changes,
        cursor,
        has_more,
        last_mutation_seq,
    } = out
    else {
        return serde_json::to_vec(out).unwrap_or_default();
    };
    let size: usize = changes
        .iter()
        .map(|c| 64 + c.id.len() + c.data.as_ref().map_or(0, |d| d.get().len()))
        .sum();
    let mut buf = Vec::with_capacity(size + cursor.len() + 96);
    buf.extend_from_slice(b"{\"changes\":[");
    for (i, c) in changes.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"table\":");
        push_json(&mut buf, c.table);
        buf.extend_from_slice(b",\"op\":");
        push_json(&mut buf, c.op);
        buf.extend_from_slice(b",\"id\":");
        push_json(&mut buf, &c.id);
        buf.extend_from_slice(b",\"version\":");
        push_json(&mut buf, &c.version);
        if let Some(d) = &c.data {
            buf.extend_from_slice(b",\"data\":");
            buf.extend_from_slice(d.get().as_bytes());
        }
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"cursor\":");
    push_json(&mut buf, cursor);
    buf.extend_from_slice(b",\"has_more\":");
    push_json(&mut buf, has_more);
    buf.extend_from_slice(b",\"last_mutation_seq\":");
    push_json(&mut buf, last_mutation_seq);
    buf.push(b'}');
    buf
}

/// A row as devices get it, serialised once per (table, id, version) into the row cache.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Data {
    Unit(Box<Unit>),
    Equipment(Box<Equipment>),
    Template(Box<Template>),
    Assignment(Box<Assignment>),
    Hazard(Box<Hazard>),
    Evidence(Box<crate::evidence::service::Evidence>),
    Inspection(Box<crate::work::types::Inspection>),
    Directive(Box<crate::work::types::Directive>),
    Code(Box<SyncCode>),
    User(Box<SyncUser>),
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncCode {
    id: String,
    kind: String,
    code: String,
    parent: Option<String>,
    zh: String,
    en: String,
    sort_order: i32,
    attrs: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncUser {
    id: String,
    display_name: String,
    role: String,
    region_code: String,
    active: bool,
}

type CodeTuple = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i32,
    String,
    i64,
);
type UserTuple = (String, String, String, String, bool, i64);

fn code_data(c: CodeTuple) -> (String, i64, Data) {
    let (id, kind, code, parent, zh, en, sort_order, attrs, version) = c;
    let attrs = serde_json::from_str(&attrs).unwrap_or(Value::Null);
    let v = Data::Code(Box::new(SyncCode {
        id: id.clone(),
        kind,
        code,
        parent,
        zh,
        en,
        sort_order,
        attrs,
    }));
    (id, version, v)
}

fn user_data(u: UserTuple) -> (String, i64, Data) {
    let (id, display_name, role, region_code, active, version) = u;
    let v = Data::User(Box::new(SyncUser {
        id: id.clone(),
        display_name,
        role,
        region_code,
        active,
    }));
    (id, version, v)
}

/// Rows as (id, version, JSON), each serialised once.
fn rendered<R>(
    rows: Vec<R>,
    data: fn(R) -> (String, i64, Data),
) -> impl Iterator<Item = (String, i64, Option<RawData>)> {
    rows.into_iter().map(move |r| {
        let (id, version, d) = data(r);
        (id, version, RawData::of(&d))
    })
}

/// Applies "after this position" to a boxed query of one table.
macro_rules! after_pos {
    ($q:expr, $name:literal, $ver:expr, $pos:expr) => {{
        let p: &Pos = $pos;
        if p.t.is_empty() || $name < p.t.as_str() {
            $q.filter($ver.gt(p.v))
        } else if $name == p.t.as_str() {
            // A row value, which both engines take as one range of a (…, version, id)
            // index: `version > v OR (version = v AND id > i)` was a filter over every row
            // of the part from its start, so each page of a big scope read all the pages
            // before it again (PostgreSQL: 4.3 ms instead of 1.5 ms on the 3rd page of a
            // district's equipment, growing with each page).
            let after = diesel::dsl::sql::<diesel::sql_types::Bool>(concat!(
                "(\"",
                $name,
                "\".\"version\", \"",
                $name,
                "\".\"id\") > ("
            ))
            .bind::<diesel::sql_types::BigInt, _>(p.v)
            .sql(", ")
            .bind::<diesel::sql_types::Text, _>(p.id.clone())
            .sql(")");
            $q.filter(after)
        } else {
            $q.filter($ver.ge(p.v))
        }
    }};
}

/// Per table: a page of changed rows in scope, rows by id in scope (for entries), and which
/// of some ids are in scope (for exits).
macro_rules! table_source {
    ($page:ident, $by_ids:ident, $in_scope:ident, $versions:ident, $at_version:ident,
     $name:literal, $t:ident,
     $filter:expr,
        $parts:expr, $select:expr, $row:ty, $data:expr) => {
        /// (id, version) of every row of the table in scope (for checksums).
        pub(super) fn $versions(conn: &mut DbConn, who: &Who) -> QueryResult<Vec<(String, i64)>> {
            $t::table
                .into_boxed()
                .filter($filter(who))
                .select(($t::id, $t::version))
                .load(conn)
        }

        /// The next `n` rows of the table in scope after `pos`, as changes without data
        /// (only (id, version) is read: an index serves it without the rows).
        fn $page(
            conn: &mut DbConn,
            who: &Who,
            pos: &Pos,
            head: i64,
            n: i64,
        ) -> QueryResult<Vec<Change>> {
            let mut rows: Vec<(String, i64)> = Vec::new();
            for part in $parts(who) {
                let q = $t::table
                    .into_boxed()
                    .filter(part)
                    .filter($t::version.le(head))
                    .order(($t::version.asc(), $t::id.asc()))
                    .limit(n);
                let q = after_pos!(q, $name, $t::version, pos);
                rows.extend(
                    q.select(($t::id, $t::version))
                        .load::<(String, i64)>(conn)?,
                );
            }
            let mut out: Vec<Change> = rows
                .into_iter()
                .map(|(id, version)| Change {
                    table: $name,
                    op: "put",
                    id,
                    version,
                    data: None,
                    at: version,
                })
                .collect();
            // A row in several parts comes once; the page needs the first `n` of the union.
            out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
            out.dedup_by(|a, b| a.id == b.id && a.at == b.at);
            out.truncate(n as usize);
            Ok(out)
        }

        /// Rows by id no newer than `max_version`, in `who`'s scope (`None`: ids already
        /// known to be in scope in this snapshot, as a page's are).
        fn $by_ids(
            conn: &mut DbConn,
            who: Option<&Who>,
            ids: &[String],
            max_version: i64,
            at: i64,
        ) -> QueryResult<Vec<Change>> {
            let mut q = $t::table.into_boxed();
            if let Some(who) = who {
                q = q.filter($filter(who));
            }
            let rows: Vec<$row> = q
                .filter($t::id.eq_any(ids))
                .filter($t::version.le(max_version))
                .select($select)
                .load(conn)?;
            Ok(rendered(rows, $data)
                .map(|(id, version, data)| Change {
                    table: $name,
                    op: "put",
                    id,
                    version,
                    data,
                    at,
                })
                .collect())
        }

        /// Rows stamped with a version in `lo..=hi` (written by one sync transaction, or one
        /// batch of them), in (version, id) order after `after`, at most `n`, as (id,
        /// version, JSON). The (version, id) index serves the range and the order.
        pub(super) fn $at_version(
            conn: &mut DbConn,
            lo: i64,
            hi: i64,
            after: (i64, &str),
            n: i64,
        ) -> QueryResult<Vec<(String, i64, Option<RawData>)>> {
            let (av, aid) = after;
            let rows: Vec<$row> = $t::table
                .filter($t::version.between(lo, hi))
                .filter(
                    $t::version
                        .gt(av)
                        .or($t::version.eq(av).and($t::id.gt(aid))),
                )
                .order(($t::version.asc(), $t::id.asc()))
                .limit(n)
                .select($select)
                .load(conn)?;
            Ok(rendered(rows, $data).collect())
        }

        fn $in_scope(conn: &mut DbConn, who: &Who, ids: &[String]) -> QueryResult<Vec<String>> {
            $t::table
                .into_boxed()
                .filter($filter(who))
                .filter($t::id.eq_any(ids))
                .select($t::id)
                .load(conn)
        }
    };
}

use crate::registry::queries::{EquipmentRow, TemplateRow, UnitRow};
use crate::registry::types::{Equipment, Template, Unit};
use crate::work::queries::{AssignmentRow, DirectiveRow, HazardRow, InspectionRow};
use crate::work::types::{Assignment, Directive, Hazard, Inspection};

/// `fn $name(row) -> (id, version, data)`: a row as a page holds it until it is sent.
macro_rules! row_data {
    ($($name:ident: $row:ty => $variant:ident($api:ty);)*) => {$(
        fn $name(r: $row) -> (String, i64, Data) {
            (r.id.clone(), r.version, Data::$variant(Box::new(<$api>::from(r))))
        }
    )*};
}

row_data! {
    unit_data: UnitRow => Unit(Unit);
    equipment_data: EquipmentRow => Equipment(Equipment);
    template_data: TemplateRow => Template(Template);
    assignment_data: AssignmentRow => Assignment(Assignment);
    hazard_data: HazardRow => Hazard(Hazard);
    inspection_data: InspectionRow => Inspection(Inspection);
    directive_data: DirectiveRow => Directive(Directive);
    evidence_data: crate::evidence::service::EvidenceRow => Evidence(crate::evidence::service::Evidence);
}

table_source!(
    page_assignments,
    assignments_by_ids,
    assignments_in_scope,
    assignments_versions,
    assignments_at_version,
    "assignments",
    assignments,
    filters::assignments,
    |w| filters::whole(filters::assignments(w)),
    AssignmentRow::as_select(),
    AssignmentRow,
    assignment_data
);
table_source!(
    page_templates,
    templates_by_ids,
    templates_in_scope,
    templates_versions,
    templates_at_version,
    "checklist_templates",
    checklist_templates,
    filters::checklist_templates,
    |w| filters::whole(filters::checklist_templates(w)),
    TemplateRow::as_select(),
    TemplateRow,
    template_data
);
table_source!(
    page_codes,
    codes_by_ids,
    codes_in_scope,
    codes_versions,
    codes_at_version,
    "codes",
    codes,
    filters::codes,
    |w| filters::whole(filters::codes(w)),
    (
        codes::id,
        codes::kind,
        codes::code,
        codes::parent_code,
        codes::label_zh,
        codes::label_en,
        codes::sort_order,
        codes::attrs,
        codes::version
    ),
    CodeTuple,
    code_data
);
table_source!(
    page_equipment,
    equipment_by_ids,
    equipment_in_scope,
    equipment_versions,
    equipment_at_version,
    "equipment",
    equipment,
    filters::equipment,
    filters::equipment_parts,
    EquipmentRow::as_select(),
    EquipmentRow,
    equipment_data
);
table_source!(
    page_hazards,
    hazards_by_ids,
    hazards_in_scope,
    hazards_versions,
    hazards_at_version,
    "hazards",
    hazards,
    filters::hazards,
    filters::hazards_parts,
    HazardRow::as_select(),
    HazardRow,
    hazard_data
);
table_source!(
    page_evidence,
    evidence_by_ids,
    evidence_in_scope,
    evidence_versions,
    evidence_at_version,
    "evidence",
    evidence,
    filters::evidence,
    filters::evidence_parts,
    crate::evidence::service::EvidenceRow::as_select(),
    crate::evidence::service::EvidenceRow,
    evidence_data
);
table_source!(
    page_inspections,
    inspections_by_ids,
    inspections_in_scope,
    inspections_versions,
    inspections_at_version,
    "inspections",
    inspections,
    filters::inspections,
    filters::inspections_parts,
    InspectionRow::as_select(),
    InspectionRow,
    inspection_data
);
table_source!(
    page_directives,
    directives_by_ids,
    directives_in_scope,
    directives_versions,
    directives_at_version,
    "directives",
    directives,
    filters::directives,
    filters::directives_parts,
    DirectiveRow::as_select(),
    DirectiveRow,
    directive_data
);
table_source!(
    page_units,
    units_by_ids,
    units_in_scope,
    units_versions,
    units_at_version,
    "units",
    units,
    filters::units,
    filters::units_parts,
    UnitRow::as_select(),
    UnitRow,
    unit_data
);
table_source!(
    page_users,
    users_by_ids,
    users_in_scope,
    users_versions,
    users_at_version,
    "users",
    users,
    filters::users,
    |w| filters::whole(filters::users(w)),
    (
        users::id,
        users::display_name,
        users::role,
        users::region_code,
        users::active,
        users::version
    ),
    UserTuple,
    user_data
);

/// Rows of `table` by id, in `who`'s scope (when given), no newer than `max_version`, as puts
/// ordered at `at`.
fn puts(
    conn: &mut DbConn,
    who: Option<&Who>,
    table: &str,
    ids: &[String],
    max_version: i64,
    at: i64,
) -> QueryResult<Vec<Change>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match table {
        "assignments" => assignments_by_ids(conn, who, ids, max_version, at),
        "checklist_templates" => templates_by_ids(conn, who, ids, max_version, at),
        "codes" => codes_by_ids(conn, who, ids, max_version, at),
        "directives" => directives_by_ids(conn, who, ids, max_version, at),
        "equipment" => equipment_by_ids(conn, who, ids, max_version, at),
        "evidence" => evidence_by_ids(conn, who, ids, max_version, at),
        "hazards" => hazards_by_ids(conn, who, ids, max_version, at),
        "inspections" => inspections_by_ids(conn, who, ids, max_version, at),
        "units" => units_by_ids(conn, who, ids, max_version, at),
        "users" => users_by_ids(conn, who, ids, max_version, at),
        _ => Ok(Vec::new()),
    }
}

/// Evicts for those of `ids` that are not in the caller's scope now.
fn evicts(
    conn: &mut DbConn,
    who: &Who,
    table: &'static str,
    ids: &[String],
    at: i64,
) -> QueryResult<Vec<Change>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let inside = match table {
        "assignments" => assignments_in_scope(conn, who, ids)?,
        "checklist_templates" => templates_in_scope(conn, who, ids)?,
        "codes" => codes_in_scope(conn, who, ids)?,
        "directives" => directives_in_scope(conn, who, ids)?,
        "equipment" => equipment_in_scope(conn, who, ids)?,
        "evidence" => evidence_in_scope(conn, who, ids)?,
        "hazards" => hazards_in_scope(conn, who, ids)?,
        "inspections" => inspections_in_scope(conn, who, ids)?,
        "units" => units_in_scope(conn, who, ids)?,
        "users" => users_in_scope(conn, who, ids)?,
        _ => Vec::new(),
    };
    Ok(ids
        .iter()
        .filter(|id| !inside.contains(id))
        .map(|id| Change {
            table,
            op: "evict",
            id: id.clone(),
            version: at,
            data: None,
            at,
        })
        .collect())
}

fn static_table(name: &str) -> Option<&'static str> {
    super::scope::TABLES.iter().copied().find(|t| *t == name)
}

/// What an assignment's arrival or departure brings along: its unit, the unit's equipment
/// and hazards (when the target is known), and its team.
fn assignment_family(conn: &mut DbConn, id: &str) -> QueryResult<Vec<(&'static str, Vec<String>)>> {
    let Some(a) = crate::work::queries::find_assignment(conn, id)? else {
        return Ok(vec![("assignments", vec![id.to_string()])]);
    };
    let mut family = vec![("assignments", vec![a.id.clone()])];
    if !a.sealed {
        family.extend(super::scope::unit_family(conn, &a.unit_id)?);
    }
    family.push(("users", crate::work::assignments::team_of(&a)));
    Ok(family)
}

#[derive(Queryable)]
struct EventRow {
    version: i64,
    kind: String,
    table_name: String,
    row_id: String,
    user_id: Option<String>,
    region_code: Option<String>,
    unit_id: Option<String>,
}

/// The caller's scope events after `base` (and through `head`), expanded into changes.
fn scope_changes(
    conn: &mut DbConn,
    who: &Who,
    base: i64,
    pos: &Pos,
    head: i64,
) -> QueryResult<Vec<Change>> {
    let events: Vec<EventRow> = sync_scope_events::table
        .filter(sync_scope_events::version.gt(base))
        .filter(sync_scope_events::version.le(head))
        .order(sync_scope_events::version.asc())
        .select((
            sync_scope_events::version,
            sync_scope_events::kind,
            sync_scope_events::table_name,
            sync_scope_events::row_id,
            sync_scope_events::user_id,
            sync_scope_events::region_code,
            sync_scope_events::unit_id,
        ))
        .load(conn)?;
    let mut out = Vec::new();
    for e in events {
        let mine = e.user_id.as_deref() == Some(who.user())
            || e.region_code.as_deref().is_some_and(|r| who.covers(r))
            || match who {
                Who::Unit { unit, .. } => e.unit_id.as_deref() == Some(unit.as_str()),
                _ => false,
            };
        if !mine {
            continue;
        }
        let Some(table) = static_table(&e.table_name) else {
            continue;
        };
        let family = if table == "assignments" {
            assignment_family(conn, &e.row_id)?
        } else {
            vec![(table, vec![e.row_id.clone()])]
        };
        for (t, ids) in family {
            if e.kind == "enter" {
                // Rows newer than the walk's position come anyway, at their own version; the
                // older ones may have been passed over while out of scope: send them now.
                out.extend(puts(conn, Some(who), t, &ids, base.max(pos.v), e.version)?);
            } else {
                out.extend(evicts(conn, who, t, &ids, e.version)?);
            }
        }
    }
    Ok(out)
}

#[derive(Queryable)]
struct TombRow {
    table_name: String,
    row_id: String,
    version: i64,
    region_code: Option<String>,
    unit_id: Option<String>,
    user_ids: Option<String>,
}

/// Deletes of rows the caller could see, after `base`.
/// Deletes are rare: all of them after the position are read (a page boundary must never
/// skip one that a filter dropped from a limited read).
fn tombstones(
    conn: &mut DbConn,
    who: &Who,
    base: i64,
    pos: &Pos,
    head: i64,
) -> QueryResult<Vec<Change>> {
    let from = base.max(pos.v - 1);
    let rows: Vec<TombRow> = sync_tombstones::table
        .filter(sync_tombstones::version.gt(from))
        .filter(sync_tombstones::version.le(head))
        .order((
            sync_tombstones::version.asc(),
            sync_tombstones::table_name.asc(),
            sync_tombstones::row_id.asc(),
        ))
        .select((
            sync_tombstones::table_name,
            sync_tombstones::row_id,
            sync_tombstones::version,
            sync_tombstones::region_code,
            sync_tombstones::unit_id,
            sync_tombstones::user_ids,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|t| {
            let users: Vec<String> = t
                .user_ids
                .as_deref()
                .and_then(|u| serde_json::from_str(u).ok())
                .unwrap_or_default();
            match who {
                Who::Region { .. } => t.region_code.as_deref().is_some_and(|r| who.covers(r)),
                Who::Inspector { user, .. } => {
                    users.contains(user)
                        || (t.table_name != "assignments"
                            && t.region_code.as_deref().is_some_and(|r| who.covers(r)))
                }
                Who::Unit { unit, .. } => t.unit_id.as_deref() == Some(unit.as_str()),
                Who::Nobody { .. } => false,
            }
        })
        .filter_map(|t| {
            let table = static_table(&t.table_name)?;
            Some(Change {
                table,
                op: "delete",
                id: t.row_id,
                version: t.version,
                data: None,
                at: t.version,
            })
        })
        .collect())
}

fn pruned_through(conn: &mut DbConn) -> QueryResult<i64> {
    let v: Option<String> = server_meta::table
        .find("tombstones_pruned_through")
        .select(server_meta::value)
        .first(conn)
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn last_mutation_seq(conn: &mut DbConn, device_pk: &str, through: i64) -> QueryResult<i64> {
    sync_mutations::table
        .filter(sync_mutations::device_pk.eq(device_pk))
        .filter(sync_mutations::version.le(through))
        .select(diesel::dsl::max(sync_mutations::seq))
        .first::<Option<i64>>(conn)
        .map(|v| v.unwrap_or(0))
}

pub struct PullRequest {
    pub cursor: Option<String>,
    pub limit: i64,
}

/// Reads one page. Blocking; runs in one snapshot. `spare`: the pool, to read stored row
/// JSON on a second connection at the same time when one is free (see [`fill`]).
pub fn pull_page(
    conn: &mut DbConn,
    me: &AuthUser,
    db_id: &str,
    key: &[u8],
    req: &PullRequest,
    cache: &RowCache,
    spare: Option<&Db>,
) -> ApiResult<PullResponse> {
    read_snapshot(conn, |conn| {
        pull_in_snapshot(conn, me, db_id, key, req, cache, spare)
    })
}

/// Ids per read when filling a page's data.
const FILL_CHUNK: usize = 1000;
/// Ids per read when the stored JSON is read on two connections at once (smaller, so that
/// the two halves come out even).
const SPLIT_CHUNK: usize = 500;
/// Fewer stored entries than this to read (an incremental pull, a small scope): one
/// connection does it, so that a second one is taken only for pages of an initial-sync size,
/// where the reads take several milliseconds (about 3 ms per 1,000 on PostgreSQL). A judgment,
/// not a measured break-even.
const SPLIT_MIN: usize = 1500;

/// Gives the changes about to be sent their data: from the row cache, else read (one query
/// per table and chunk) and kept in the cache.
///
/// The JSON stored when the rows were written needs no snapshot (an entry is used only when
/// its version is the page's, and an entry's JSON is fixed by its row's version), so when
/// `spare` lends a second connection, half of those reads go there, on another thread: the
/// database works on both at once. What has no entry is rendered in the page's snapshot.
fn fill(
    conn: &mut DbConn,
    spare: Option<&Db>,
    cache: &RowCache,
    changes: &mut [Change],
    head: i64,
) -> ApiResult<()> {
    let mut by_table: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.op == "put" && c.data.is_none() {
            by_table.entry(c.table).or_default().push(i);
        }
    }
    // From the row cache; what it lacks, per table.
    let mut missing: Vec<(&'static str, Vec<usize>)> = Vec::new();
    for (table, idx) in by_table {
        let keys: Vec<(&str, i64)> = idx
            .iter()
            .map(|&i| (changes[i].id.as_str(), changes[i].version))
            .collect();
        let hits = cache.get_many(table, &keys);
        let mut lacking = Vec::new();
        for (&i, hit) in idx.iter().zip(hits) {
            match hit {
                Some(d) => changes[i].data = Some(d),
                None => lacking.push(i),
            }
        }
        if !lacking.is_empty() {
            missing.push((table, lacking));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    // Then the stored JSON, for every table at once (on one or two connections).
    let ids: Vec<Vec<String>> = missing
        .iter()
        .map(|(_, idx)| idx.iter().map(|&i| changes[i].id.clone()).collect())
        .collect();
    let total: usize = ids.iter().map(Vec::len).sum();
    let mut aside = match spare {
        Some(db) if total >= SPLIT_MIN => db.try_aside(super::prefetch::SPARE_CONNECTIONS),
        _ => None,
    };
    let chunk = if aside.is_some() {
        SPLIT_CHUNK
    } else {
        FILL_CHUNK
    };
    let jobs: Vec<Job<'_>> = missing
        .iter()
        .zip(&ids)
        .enumerate()
        .flat_map(|(k, ((table, _), ids))| ids.chunks(chunk).map(move |c| (k, *table, c)))
        .collect();
    let mut stored: Vec<Vec<(String, i64, String)>> = vec![Vec::new(); missing.len()];
    for (k, rows) in stored_entries(conn, aside.as_mut().map(|a| a.conn()), &jobs)? {
        stored[k].extend(rows);
    }
    drop(aside);
    for (((table, idx), ids), entries) in missing.into_iter().zip(ids).zip(stored) {
        let mut found: std::collections::HashMap<String, (i64, RawData)> =
            std::collections::HashMap::with_capacity(ids.len());
        for (id, v, json) in entries {
            found.insert(id, (v, RawData::from(json)));
        }
        // What is not stored (or is of another version) is rendered from the rows.
        let unstored: Vec<String> = idx
            .iter()
            .filter(|&&i| {
                found
                    .get(&changes[i].id)
                    .is_none_or(|(v, _)| *v != changes[i].version)
            })
            .map(|&i| changes[i].id.clone())
            .collect();
        for chunk in unstored.chunks(FILL_CHUNK) {
            // The ids come from this snapshot's page reads, which applied the scope.
            for c in puts(conn, None, table, chunk, head, 0)? {
                if let Some(d) = c.data {
                    found.insert(c.id, (c.version, d));
                }
            }
        }
        let mut fresh = Vec::with_capacity(idx.len());
        for &i in &idx {
            let c = &mut changes[i];
            match found.remove(&c.id) {
                Some((v, d)) if v == c.version => {
                    c.data = Some(d.clone());
                    fresh.push((c.id.clone(), v, d));
                }
                _ => {
                    return Err(ApiError::internal(format!(
                        "{table} {} changed within one snapshot",
                        c.id
                    )));
                }
            }
        }
        cache.put_many(table, &fresh);
    }
    Ok(())
}

/// A read of stored entries: (its key, table, ids).
type Job<'a> = (usize, &'static str, &'a [String]);
/// What a read gave: (its key, the entries).
type Entries = (usize, Vec<(String, i64, String)>);

/// The stored entries of each job's ids; every other job on `aside`, on a thread of its own,
/// when there is one.
fn stored_entries(
    conn: &mut DbConn,
    aside: Option<&mut DbConn>,
    jobs: &[Job<'_>],
) -> ApiResult<Vec<Entries>> {
    fn run<'a>(
        conn: &mut DbConn,
        jobs: impl Iterator<Item = &'a Job<'a>>,
    ) -> QueryResult<Vec<Entries>> {
        jobs.map(|(k, table, ids)| Ok((*k, super::stored::get_many(conn, table, ids)?)))
            .collect()
    }
    let Some(other) = aside else {
        return Ok(run(conn, jobs.iter())?);
    };
    let odd = || jobs.iter().skip(1).step_by(2);
    std::thread::scope(|s| {
        let theirs = s.spawn(|| run(other, odd()));
        let mut out = run(conn, jobs.iter().step_by(2))?;
        match theirs.join() {
            Ok(Ok(rows)) => out.extend(rows),
            // The second connection failed (it may have gone stale in the pool): its share
            // is read on the page's own, which still answers.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "stored-JSON reads on a second connection failed");
                out.extend(run(conn, odd())?);
            }
            Err(_) => return Err(ApiError::internal("a stored-JSON read panicked")),
        }
        Ok(out)
    })
}

/// The `at` of the n-th smallest of `changes` (`i64::MAX` when there are fewer than `n`).
/// The page reads give distinct (table, id) changes, so n of them are n distinct entries.
fn nth_smallest_at(changes: &[Change], n: usize) -> i64 {
    if n == 0 || changes.len() < n {
        return i64::MAX;
    }
    let mut ats: Vec<i64> = changes.iter().map(|c| c.at).collect();
    *ats.select_nth_unstable(n - 1).1
}

/// [`pull_page`] inside a snapshot the caller holds.
pub fn pull_in_snapshot(
    conn: &mut DbConn,
    me: &AuthUser,
    db_id: &str,
    key: &[u8],
    req: &PullRequest,
    cache: &RowCache,
    spare: Option<&Db>,
) -> ApiResult<PullResponse> {
    let who = Who::of(me);
    let fingerprint = who.fingerprint(me);
    let given = match req.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match Cursor::decode(c, key) {
            Ok(c) => Some(c),
            Err(DecodeError::Forged) => {
                return Err(ApiError::bad_request(
                    "invalid_cursor",
                    "the cursor is not one this server made",
                ));
            }
        },
    };
    let reset = |reason: &str| PullResponse::Reset {
        reset: true,
        reason: reason.to_string(),
    };
    {
        let head = head(conn)?;
        let (base, pos) = match &given {
            None => (head, Pos::through(0)),
            Some(c) => {
                if c.db != db_id {
                    return Ok(reset("the cursor is from another database"));
                }
                if c.scope != fingerprint {
                    return Ok(reset("your user or scope changed"));
                }
                if c.pos.v > head || c.base > head {
                    return Ok(reset("the cursor is ahead of this database"));
                }
                if c.base < pruned_through(conn)? {
                    return Ok(reset(
                        "the cursor is older than the deleted-row history kept",
                    ));
                }
                if c.pos.t.is_empty() && c.pos.v == head && c.base == head {
                    // Caught up and nothing committed since: nothing to read. (Every write
                    // to synced data, tombstones and scope events included, bumps the head.)
                    return Ok(PullResponse::Changes {
                        changes: Vec::new(),
                        cursor: c.encode(key),
                        has_more: false,
                        last_mutation_seq: last_mutation_seq(conn, &me.device_pk, head)?,
                    });
                }
                (c.base, c.pos.clone())
            }
        };
        let n = req.limit + 1;
        // Each table gives its next `n` rows after the position; the page is the first `n`
        // of their union. Once `n` candidates are known, no row newer than the n-th of them
        // can make the page, so later tables are read only up to that version.
        type Page = fn(&mut DbConn, &Who, &Pos, i64, i64) -> QueryResult<Vec<Change>>;
        const PAGES: [Page; 10] = [
            page_assignments,
            page_templates,
            page_codes,
            page_directives,
            page_equipment,
            page_evidence,
            page_hazards,
            page_inspections,
            page_units,
            page_users,
        ];
        let mut all: Vec<Change> = Vec::new();
        let mut upto = head;
        for page in PAGES {
            all.extend(page(conn, &who, &pos, upto, n)?);
            upto = upto.min(nth_smallest_at(&all, n as usize));
        }
        if given.is_some() || pos.v > 0 {
            // An initial sync holds no tombstones and needs no scope events: everything in
            // scope through `base` comes whole. Later pages of it, and every later pull, do.
            all.extend(tombstones(conn, &who, base, &pos, head)?);
            all.extend(scope_changes(conn, &who, base, &pos, head)?);
        }
        // Order, drop what is not after the position, and one change per (at, table, id)
        // (the first source's: a stable sort keeps them in the order they were added).
        all.retain(|c| pos.before(c.at, c.table, &c.id));
        all.sort_by(|a, b| (a.at, a.table, a.id.as_str()).cmp(&(b.at, b.table, b.id.as_str())));
        all.dedup_by(|later, first| {
            later.at == first.at && later.table == first.table && later.id == first.id
        });
        let has_more = all.len() as i64 > req.limit;
        all.truncate(req.limit as usize);
        let mut changes = all;
        fill(conn, spare, cache, &mut changes, head)?;
        let (next, through) = match (has_more, changes.last()) {
            (true, Some(last)) => (
                Cursor {
                    db: db_id.to_string(),
                    scope: fingerprint.clone(),
                    base,
                    pos: Pos {
                        v: last.at,
                        t: last.table.to_string(),
                        id: last.id.clone(),
                    },
                },
                last.at - 1,
            ),
            _ => (
                Cursor {
                    db: db_id.to_string(),
                    scope: fingerprint.clone(),
                    base: head,
                    pos: Pos::through(head),
                },
                head,
            ),
        };
        let last_seq = last_mutation_seq(conn, &me.device_pk, through)?;
        Ok(PullResponse::Changes {
            changes,
            cursor: next.encode(key),
            has_more,
            last_mutation_seq: last_seq,
        })
    }
}

pub async fn pull(state: &AppState, me: AuthUser, req: PullRequest) -> ApiResult<PullResponse> {
    if !(1..=MAX_LIMIT).contains(&req.limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if let Some(answer) = caught_up(state, &me, &req) {
        return Ok(answer);
    }
    let device = me.device_pk.clone();
    let scope = Who::of(&me).fingerprint(&me);
    let limit = req.limit;
    let (out, me) = match read_ahead_page(state, &me, &scope, &req).await? {
        Some(page) => (page, me),
        None => {
            let (db_id, key, cache, db) = (
                state.database_id.clone(),
                state.cursor_key.clone(),
                state.row_cache.clone(),
                spare_db(state),
            );
            state
                .db
                .run(move |conn| {
                    pull_page(conn, &me, &db_id, &key, &req, &cache, db.as_ref()).map(|o| (o, me))
                })
                .await?
        }
    };
    if let PullResponse::Changes {
        cursor,
        has_more: true,
        ..
    } = &out
    {
        read_ahead(state, &me, &scope, cursor, limit);
    }
    audit_target_reads(state, me, &out).await?;
    if let PullResponse::Changes {
        cursor,
        has_more: false,
        last_mutation_seq,
        ..
    } = &out
        && let Ok(c) = Cursor::decode(cursor, &state.cursor_key)
    {
        state.db.watch().observe_head(c.base);
        state
            .caught_up
            .put(&device, c.base, *last_mutation_seq, cursor);
    }
    Ok(out)
}

/// The pool for a page's second connection (see [`fill`]): PostgreSQL only, unless
/// configured to one. On SQLite the lookups run in this process, and a second connection
/// (its own page cache, a thread) showed no gain in `scripts/bench_sync.sh` (slower, within
/// that bench's noise), against 196k → 251k rows/s answering on PostgreSQL.
fn spare_db(state: &AppState) -> Option<Db> {
    (state.config.sync_page_connections > 1 && state.db.engine() == "postgres")
        .then(|| state.db.clone())
}

/// The page read ahead for this very request (see [`super::prefetch`]), when the sync head
/// has not moved since it was read.
async fn read_ahead_page(
    state: &AppState,
    me: &AuthUser,
    scope: &str,
    req: &PullRequest,
) -> ApiResult<Option<PullResponse>> {
    let Some(cursor) = req.cursor.as_deref() else {
        return Ok(None);
    };
    let key = super::prefetch::Key {
        device: &me.device_pk,
        cursor,
        limit: req.limit,
        scope,
    };
    let Some(cell) = state.prefetch.take(&key) else {
        return Ok(None);
    };
    // Waits while the page is still being read.
    let Some(ready) = cell.lock().await.take() else {
        return Ok(None);
    };
    let now = state.db.run(|conn| Ok(crate::db::head(conn)?)).await?;
    if now != ready.head {
        return Ok(None);
    }
    state.prefetch.note_served();
    Ok(Some(ready.page))
}

/// Starts reading the page after `cursor` for this device on another connection, to be
/// handed out by [`read_ahead_page`] (see [`super::prefetch`]).
fn read_ahead(state: &AppState, me: &AuthUser, scope: &str, cursor: &str, limit: i64) {
    if !state.prefetch.enabled() || state.db.free_connections() < super::prefetch::SPARE_CONNECTIONS
    {
        return;
    }
    let key = super::prefetch::Key {
        device: &me.device_pk,
        cursor,
        limit,
        scope,
    };
    let Some(mut slot) = state.prefetch.reserve(&key) else {
        return;
    };
    let st = state.clone();
    let me = me.clone();
    let req = PullRequest {
        cursor: Some(cursor.to_string()),
        limit,
    };
    actix_web::rt::spawn(async move {
        let (db_id, key, cache, db) = (
            st.database_id.clone(),
            st.cursor_key.clone(),
            st.row_cache.clone(),
            spare_db(&st),
        );
        let read = st
            .db
            .run(move |conn| {
                read_snapshot(conn, |conn| {
                    let page =
                        pull_in_snapshot(conn, &me, &db_id, &key, &req, &cache, db.as_ref())?;
                    Ok(super::prefetch::Ready {
                        page,
                        head: head(conn)?,
                    })
                })
            })
            .await;
        match read {
            Ok(ready) => *slot = Some(ready),
            // The device's own request reads the page again and meets the error itself.
            Err(e) => tracing::debug!(error = %e, "read-ahead of a pull page failed"),
        }
    });
}

/// A page that hands out revealed unannounced targets before their visit ended: each such
/// read goes to the audit log (after the page was read; the rows are checked again there).
async fn audit_target_reads(state: &AppState, me: AuthUser, out: &PullResponse) -> ApiResult<()> {
    #[derive(serde::Deserialize)]
    struct Shell {
        kind: String,
        sealed: bool,
    }
    let PullResponse::Changes { changes, .. } = out else {
        return Ok(());
    };
    let ids: Vec<String> = changes
        .iter()
        .filter(|c| c.table == "assignments" && c.op == "put")
        .filter(|c| {
            c.data
                .as_ref()
                .and_then(|d| serde_json::from_str::<Shell>(d.get()).ok())
                .is_some_and(|s| s.kind == "surprise" && !s.sealed)
        })
        .map(|c| c.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let rows = crate::work::queries::assignments_by_id(conn, &ids)?;
            crate::surprise::service::audit_target_reads(conn, &me, &rows, "pull", now)
        })
        .await
}

/// The answer for a device at the head when nothing was committed since, from memory (see
/// [`super::caught_up`]); `None` sends the pull to the database.
fn caught_up(state: &AppState, me: &AuthUser, req: &PullRequest) -> Option<PullResponse> {
    use super::caught_up::Found;
    let given = req.cursor.as_deref()?;
    let head = state.db.watch().head();
    if head == 0 {
        return None;
    }
    let seq = match state.caught_up.get(&me.device_pk, head, given)? {
        // Made by this server for this device's session at this head: a change of the
        // user's scope would have moved the head (the users row is synced).
        Found::Same(seq) => seq,
        Found::Other(seq) => {
            let c = Cursor::decode(given, &state.cursor_key).ok()?;
            let at_head = c.pos.t.is_empty() && c.pos.v == head && c.base == head;
            if !at_head || c.db != *state.database_id || c.scope != Who::of(me).fingerprint(me) {
                return None;
            }
            seq
        }
    };
    Some(PullResponse::Changes {
        changes: Vec::new(),
        cursor: given.to_string(),
        has_more: false,
        last_mutation_seq: seq,
    })
}

/// A table's rows as (id, version).
pub type TableVersions = (&'static str, Vec<(String, i64)>);

/// (id, version) of every row in the caller's scope, per synced table.
pub fn scope_versions(conn: &mut DbConn, who: &Who) -> QueryResult<Vec<TableVersions>> {
    Ok(vec![
        ("assignments", assignments_versions(conn, who)?),
        ("checklist_templates", templates_versions(conn, who)?),
        ("codes", codes_versions(conn, who)?),
        ("directives", directives_versions(conn, who)?),
        ("equipment", equipment_versions(conn, who)?),
        ("evidence", evidence_versions(conn, who)?),
        ("hazards", hazards_versions(conn, who)?),
        ("inspections", inspections_versions(conn, who)?),
        ("units", units_versions(conn, who)?),
        ("users", users_versions(conn, who)?),
    ])
}
