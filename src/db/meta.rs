//! Server-wide values kept in the database, so that every app server on one database shares
//! them and restarts keep them: the database id and secrets generated on first start.

use diesel::prelude::*;

use super::DbConn;
use super::schema::server_meta;

pub const DATABASE_ID: &str = "database_id";
pub const TOKEN_KEY: &str = "token_signing_key";
pub const CURSOR_KEY: &str = "cursor_signing_key";
/// The audit chain's newest entry, `seq:hash` (see `audit`).
pub const AUDIT_HEAD: &str = "audit_head";

/// The stored value of `key`, creating it with `make()` if absent. Safe when several servers
/// start together: the first insert wins and everyone reads the winner.
pub fn get_or_init(
    conn: &mut DbConn,
    key: &str,
    make: impl FnOnce() -> String,
) -> QueryResult<String> {
    if let Some(v) = get(conn, key)? {
        return Ok(v);
    }
    let row = (server_meta::key.eq(key), server_meta::value.eq(make()));
    crate::with_engine!(conn, |c| diesel::insert_into(server_meta::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    server_meta::table
        .find(key)
        .select(server_meta::value)
        .first(conn)
}

pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    server_meta::table
        .find(key)
        .select(server_meta::value)
        .first(conn)
        .optional()
}

/// Claims the periodic job `name` until `until` if its last claim expired by `now`: true
/// for exactly one of several app servers asking at once (a compare-and-set on one row).
/// Times are stored as RFC 3339 text, which sorts as time.
pub fn claim_job(
    conn: &mut DbConn,
    name: &str,
    now: chrono::NaiveDateTime,
    until: chrono::NaiveDateTime,
) -> QueryResult<bool> {
    let key = format!("job:{name}");
    let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    get_or_init(conn, &key, || fmt(now - chrono::Duration::seconds(1)))?;
    let claimed = diesel::update(
        server_meta::table
            .filter(server_meta::key.eq(&key))
            .filter(server_meta::value.le(fmt(now))),
    )
    .set(server_meta::value.eq(fmt(until)))
    .execute(conn)?;
    Ok(claimed == 1)
}
