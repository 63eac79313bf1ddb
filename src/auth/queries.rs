//! Diesel queries for users, credentials, devices, sessions and refresh tokens.
//! Row structs stay here; the API types are in `auth::types`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{device_sessions, devices, refresh_tokens, user_credentials, users};
use crate::db::{DbConn, SyncTx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub region_code: String,
    pub unit_id: Option<String>,
    pub credential_no: Option<String>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRow<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
    pub region_code: &'a str,
    pub unit_id: Option<&'a str>,
    pub credential_no: Option<&'a str>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub credential_no: Option<Option<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: String,
    pub device_id: String,
    pub name: String,
    pub last_mutation_seq: i64,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = device_sessions)]
pub struct SessionRow {
    pub id: String,
    pub device_pk: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

// ---- users (a synced table: writes take a SyncTx) ----

pub fn insert_user(
    tx: &mut SyncTx<'_>,
    row: NewUserRow<'_>,
    password_hash: &str,
) -> QueryResult<()> {
    let now = row.created_at;
    let id = row.id.to_string();
    diesel::insert_into(users::table)
        .values(row)
        .execute(tx.conn())?;
    diesel::insert_into(user_credentials::table)
        .values((
            user_credentials::user_id.eq(&id),
            user_credentials::password_hash.eq(password_hash),
            user_credentials::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    Ok(())
}

pub fn update_user(
    tx: &mut SyncTx<'_>,
    id: &str,
    changes: &UserChanges,
    now: NaiveDateTime,
) -> QueryResult<()> {
    // Cached sessions are checked against this (see db::watch).
    crate::db::note_auth_change();
    let version = tx.version();
    diesel::update(users::table.find(id))
        .set((
            changes,
            users::updated_at.eq(now),
            users::version.eq(version),
        ))
        .execute(tx.conn())?;
    Ok(())
}

pub fn set_password(
    conn: &mut DbConn,
    user_id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(user_credentials::table.find(user_id))
        .set((
            user_credentials::password_hash.eq(hash),
            user_credentials::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_user(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// The user and password hash for a login.
pub fn find_login(conn: &mut DbConn, username: &str) -> QueryResult<Option<(UserRow, String)>> {
    users::table
        .inner_join(user_credentials::table)
        .filter(users::username.eq(username))
        .select((UserRow::as_select(), user_credentials::password_hash))
        .first(conn)
        .optional()
}

pub fn password_hash(conn: &mut DbConn, user_id: &str) -> QueryResult<String> {
    user_credentials::table
        .find(user_id)
        .select(user_credentials::password_hash)
        .first(conn)
}

pub fn count_users(conn: &mut DbConn) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

/// Users under `region_like` (a LIKE pattern), ordered by id, after `after`.
pub fn list_users(
    conn: &mut DbConn,
    region_like: &str,
    role: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut q = users::table
        .filter(users::region_code.like(region_like))
        .select(UserRow::as_select())
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(role) = role {
        q = q.filter(users::role.eq(role));
    }
    if let Some(after) = after {
        q = q.filter(users::id.gt(after));
    }
    q.load(conn)
}

// ---- devices and sessions ----

/// The device row for (user, client device id), created or renamed, marked seen.
pub fn upsert_device(
    conn: &mut DbConn,
    new_id: &str,
    user_id: &str,
    device_id: &str,
    name: &str,
    now: NaiveDateTime,
) -> QueryResult<String> {
    let row = (
        devices::id.eq(new_id),
        devices::user_id.eq(user_id),
        devices::device_id.eq(device_id),
        devices::name.eq(name),
        devices::last_mutation_seq.eq(0i64),
        devices::created_at.eq(now),
        devices::last_seen_at.eq(now),
    );
    crate::with_engine!(&mut *conn, |c| diesel::insert_into(devices::table)
        .values(row)
        .on_conflict((devices::user_id, devices::device_id))
        .do_update()
        .set((devices::name.eq(name), devices::last_seen_at.eq(now)))
        .execute(c))?;
    devices::table
        .filter(devices::user_id.eq(user_id))
        .filter(devices::device_id.eq(device_id))
        .select(devices::id)
        .first(conn)
}

pub fn touch_device(conn: &mut DbConn, device_pk: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(devices::table.find(device_pk))
        .set(devices::last_seen_at.eq(now))
        .execute(conn)?;
    Ok(())
}

pub fn insert_session(
    conn: &mut DbConn,
    sid: &str,
    device_pk: &str,
    user_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(device_sessions::table)
        .values((
            device_sessions::id.eq(sid),
            device_sessions::device_pk.eq(device_pk),
            device_sessions::user_id.eq(user_id),
            device_sessions::created_at.eq(now),
            device_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn insert_refresh(
    conn: &mut DbConn,
    hash: &str,
    sid: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::session_id.eq(sid),
            refresh_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session a refresh token belongs to, and its user.
pub fn find_refresh(conn: &mut DbConn, hash: &str) -> QueryResult<Option<(SessionRow, UserRow)>> {
    refresh_tokens::table
        .inner_join(device_sessions::table.inner_join(users::table))
        .filter(refresh_tokens::token_hash.eq(hash))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

/// Marks a refresh token spent; false if it already was (reuse, or a concurrent refresh).
pub fn spend_refresh(conn: &mut DbConn, hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(hash))
            .filter(refresh_tokens::spent_at.is_null()),
    )
    .set(refresh_tokens::spent_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Spent tokens are kept to recognise a replay; past `before` they are dropped, so a device
/// that refreshes every 15 minutes for years does not pile up rows. (A replay of a token that
/// old is still refused: it is simply unknown.)
pub fn prune_spent_refresh(
    conn: &mut DbConn,
    sid: &str,
    before: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(sid))
            .filter(refresh_tokens::spent_at.lt(before)),
    )
    .execute(conn)
}

pub fn extend_session(conn: &mut DbConn, sid: &str, expires_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(device_sessions::table.find(sid))
        .set(device_sessions::expires_at.eq(expires_at))
        .execute(conn)?;
    Ok(())
}

pub fn revoke_session(
    conn: &mut DbConn,
    sid: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    // Cached sessions are checked against this (see db::watch).
    crate::db::note_auth_change();
    diesel::update(
        device_sessions::table
            .find(sid)
            .filter(device_sessions::revoked_at.is_null()),
    )
    .set((
        device_sessions::revoked_at.eq(now),
        device_sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn revoke_device_sessions(
    conn: &mut DbConn,
    device_pk: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    // Cached sessions are checked against this (see db::watch).
    crate::db::note_auth_change();
    diesel::update(
        device_sessions::table
            .filter(device_sessions::device_pk.eq(device_pk))
            .filter(device_sessions::revoked_at.is_null()),
    )
    .set((
        device_sessions::revoked_at.eq(now),
        device_sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

pub fn revoke_user_sessions(
    conn: &mut DbConn,
    user_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    // Cached sessions are checked against this (see db::watch).
    crate::db::note_auth_change();
    diesel::update(
        device_sessions::table
            .filter(device_sessions::user_id.eq(user_id))
            .filter(device_sessions::revoked_at.is_null()),
    )
    .set((
        device_sessions::revoked_at.eq(now),
        device_sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

pub fn mark_device_revoked(
    conn: &mut DbConn,
    device_pk: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(devices::table.find(device_pk))
        .set(devices::revoked_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// What every authenticated request checks: the session is live and its user active.
pub fn live_session(
    conn: &mut DbConn,
    sid: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(SessionRow, UserRow)>> {
    device_sessions::table
        .inner_join(users::table)
        .filter(device_sessions::id.eq(sid))
        .filter(device_sessions::revoked_at.is_null())
        .filter(device_sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

pub fn find_device(conn: &mut DbConn, id: &str) -> QueryResult<Option<(DeviceRow, UserRow)>> {
    devices::table
        .inner_join(users::table)
        .filter(devices::id.eq(id))
        .select((DeviceRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

/// Devices of users under `region_like` (with one of `roles`, if any are given), optionally
/// of one user, ordered by id after `after`.
pub fn list_devices(
    conn: &mut DbConn,
    region_like: &str,
    roles: &[&str],
    user_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(DeviceRow, UserRow)>> {
    let mut q = devices::table
        .inner_join(users::table)
        .filter(users::region_code.like(region_like))
        .select((DeviceRow::as_select(), UserRow::as_select()))
        .order(devices::id.asc())
        .limit(limit)
        .into_boxed();
    if !roles.is_empty() {
        q = q.filter(users::role.eq_any(roles));
    }
    if let Some(u) = user_id {
        q = q.filter(devices::user_id.eq(u));
    }
    if let Some(after) = after {
        q = q.filter(devices::id.gt(after));
    }
    q.load(conn)
}

pub fn active_sessions(conn: &mut DbConn, device_pk: &str, now: NaiveDateTime) -> QueryResult<i64> {
    device_sessions::table
        .filter(device_sessions::device_pk.eq(device_pk))
        .filter(device_sessions::revoked_at.is_null())
        .filter(device_sessions::expires_at.gt(now))
        .count()
        .get_result(conn)
}
