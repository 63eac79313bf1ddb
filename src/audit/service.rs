//! Appending to the chain (inside the sync transaction of the change it records, which
//! orders appends: the clock row's lock on PostgreSQL, the single writer on SQLite) and
//! verifying it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::chain::{self, Fields};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::db::schema::audit_log;
use crate::db::{DbConn, SyncTx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::time::utc;

pub const HEAD_KEY: &str = crate::db::meta::AUDIT_HEAD;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct EntryRow {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_id: Option<String>,
    pub device_pk: Option<String>,
    pub action: String,
    pub entity_table: String,
    pub entity_id: String,
    pub region_code: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl EntryRow {
    fn fields(&self) -> Fields<'_> {
        Fields {
            seq: self.seq,
            at: self.at,
            actor_id: self.actor_id.as_deref(),
            device_pk: self.device_pk.as_deref(),
            action: &self.action,
            entity_table: &self.entity_table,
            entity_id: &self.entity_id,
            region_code: self.region_code.as_deref(),
            before: self.before.as_deref(),
            after: self.after.as_deref(),
        }
    }
}

/// An entry as the API shows it.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_id: Option<String>,
    pub device_id: Option<String>,
    pub action: String,
    pub entity_table: String,
    pub entity_id: String,
    pub region_code: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub hash: String,
}

fn json_of(s: &Option<String>) -> Option<Value> {
    s.as_deref()
        .map(|s| serde_json::from_str(s).unwrap_or(Value::Null))
}

/// What changed, for [`record`].
pub struct Change<'a> {
    pub action: &'a str,
    pub table: &'a str,
    pub id: &'a str,
    pub region: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Appends an entry for a change `me` made, in the change's own transaction.
pub fn record(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    c: Change<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    append(tx, Some(&me.id), Some(&me.device_pk), c, now)
}

/// Appends an entry for a change the server made by itself (a background job).
pub fn record_system(tx: &mut SyncTx<'_>, c: Change<'_>, now: NaiveDateTime) -> QueryResult<()> {
    append(tx, None, None, c, now)
}

fn append(
    tx: &mut SyncTx<'_>,
    actor: Option<&str>,
    device: Option<&str>,
    c: Change<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    // The tail: known once this transaction has appended, else the log's newest entry (read
    // after the clock row's lock, so no other writer appends until the commit).
    let known = tx.chain().last.clone();
    let last = match known {
        Some(t) => Some(t),
        None => audit_log::table
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first(tx.conn())
            .optional()?,
    };
    let (prev_seq, prev_hash) = last.unwrap_or((0, String::new()));
    let mut row = EntryRow {
        seq: prev_seq + 1,
        at: chain::truncate(now),
        actor_id: actor.map(String::from),
        device_pk: device.map(String::from),
        action: c.action.into(),
        entity_table: c.table.into(),
        entity_id: c.id.into(),
        region_code: c.region.map(String::from),
        before: c.before.map(|v| v.to_string()),
        after: c.after.map(|v| v.to_string()),
        prev_hash,
        hash: String::new(),
    };
    row.hash = chain::hash(&row.prev_hash, &row.fields());
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(tx.conn())?;
    // The recorded head moves once, before the commit (db::sync).
    let chain = tx.chain();
    chain.last = Some((row.seq, row.hash));
    chain.moved = true;
    Ok(())
}

/// The verifier's answer.
#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    /// The chain is whole: every entry hashes to what it stores, links to the one before,
    /// the sequence has no gap, and the last entry is the recorded head.
    pub ok: bool,
    pub entries: i64,
    /// The newest entry's sequence number and hash (publish it to anchor the chain).
    pub head_seq: i64,
    pub head_hash: String,
    /// Where the chain first breaks, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

const CHUNK: i64 = 1000;

/// Walks the whole chain in sequence order, a chunk at a time, in one snapshot with the
/// recorded head (entries appended meanwhile are not part of what it checks).
pub fn verify(conn: &mut DbConn) -> QueryResult<Report> {
    crate::db::read_snapshot(conn, verify_in_snapshot)
}

fn verify_in_snapshot(conn: &mut DbConn) -> QueryResult<Report> {
    let head = crate::db::meta::get(conn, HEAD_KEY)?.unwrap_or_default();
    let (head_seq, head_hash) = match head.split_once(':') {
        Some((s, h)) => (s.parse::<i64>().unwrap_or(-1), h.to_string()),
        None => (-1, String::new()),
    };
    let mut report = Report {
        ok: true,
        entries: 0,
        head_seq,
        head_hash: head_hash.clone(),
        broken_at: None,
        problem: None,
    };
    let fail = |r: &mut Report, seq: i64, why: String| {
        r.ok = false;
        r.broken_at = Some(seq);
        r.problem = Some(why);
    };
    let (mut last_seq, mut last_hash) = (0i64, String::new());
    loop {
        let rows: Vec<EntryRow> = audit_log::table
            .filter(audit_log::seq.gt(last_seq))
            .order(audit_log::seq)
            .limit(CHUNK)
            .select(EntryRow::as_select())
            .load(conn)?;
        let n = rows.len() as i64;
        for row in rows {
            report.entries += 1;
            if row.seq != last_seq + 1 {
                fail(
                    &mut report,
                    last_seq + 1,
                    format!("entries {} to {} are missing", last_seq + 1, row.seq - 1),
                );
                return Ok(report);
            }
            if row.prev_hash != last_hash {
                fail(
                    &mut report,
                    row.seq,
                    "does not link to the entry before it".into(),
                );
                return Ok(report);
            }
            if chain::hash(&row.prev_hash, &row.fields()) != row.hash {
                fail(
                    &mut report,
                    row.seq,
                    "its content does not match its hash (edited)".into(),
                );
                return Ok(report);
            }
            last_seq = row.seq;
            last_hash = row.hash;
        }
        if n < CHUNK {
            break;
        }
    }
    if last_seq != head_seq || last_hash != head_hash {
        let at = last_seq + 1;
        fail(
            &mut report,
            at,
            format!(
                "the log ends at entry {last_seq} but the recorded head is entry {head_seq} \
                 (entries cut off the end, or the head edited)"
            ),
        );
    }
    Ok(report)
}

fn may_audit(me: &AuthUser) -> ApiResult<()> {
    if matches!(me.role, Role::Admin | Role::Manager) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only managers and admins read the audit log",
        ))
    }
}

pub async fn verify_api(state: &AppState, me: AuthUser) -> ApiResult<Report> {
    may_audit(&me)?;
    state.db.run(move |conn| Ok(verify(conn)?)).await
}

#[derive(Debug, Default)]
pub struct ListQuery {
    pub entity_table: Option<String>,
    pub entity_id: Option<String>,
}

/// Entries in the caller's region (admins: all), oldest first.
pub async fn list(
    state: &AppState,
    me: AuthUser,
    q: ListQuery,
    page: Page,
) -> ApiResult<Paged<Entry>> {
    may_audit(&me)?;
    let after: i64 = match page.after() {
        None => 0,
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::invalid("after", "is not a cursor of this list"))?,
    };
    let like = (me.role == Role::Manager).then(|| me.region.like_pattern());
    state
        .db
        .run(move |conn| {
            let mut sql = audit_log::table
                .filter(audit_log::seq.gt(after))
                .into_boxed();
            if let Some(like) = &like {
                sql = sql.filter(audit_log::region_code.like(like.clone()));
            }
            if let Some(t) = q.entity_table.filter(|t| !t.is_empty()) {
                sql = sql.filter(audit_log::entity_table.eq(t));
            }
            if let Some(id) = q.entity_id.filter(|t| !t.is_empty()) {
                sql = sql.filter(audit_log::entity_id.eq(id));
            }
            let rows: Vec<EntryRow> = sql
                .order(audit_log::seq)
                .limit(page.fetch())
                .select(EntryRow::as_select())
                .load(conn)?;
            let items = rows
                .into_iter()
                .map(|r| Entry {
                    seq: r.seq,
                    at: utc(r.at),
                    before: json_of(&r.before),
                    after: json_of(&r.after),
                    actor_id: r.actor_id,
                    device_id: r.device_pk,
                    action: r.action,
                    entity_table: r.entity_table,
                    entity_id: r.entity_id,
                    region_code: r.region_code,
                    hash: r.hash,
                })
                .collect();
            Ok(page.finish(items, |e| e.seq.to_string()))
        })
        .await
}
