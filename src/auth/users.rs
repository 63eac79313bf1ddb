//! Users: creation, listing, reading and changes, scoped by role and region.
//! Rules: admins manage everyone; managers manage inspectors and unit users within their
//! region and read every user of it; others read themselves. Whatever a caller may not see
//! is "not found" (404), never "forbidden", so ids of other regions reveal nothing.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::extractor::AuthUser;
use super::password::{self, Hasher};
use super::queries::{self, NewUserRow, UserChanges, UserRow};
use super::region::{RegionCode, Role};
use super::throttle;
use super::types::{NewUser, User, UserPatch};
use crate::app::AppState;
use crate::db::{DbConn, sync_tx, write_tx};
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::validate;

fn visible(me: &AuthUser, user: &UserRow) -> bool {
    if me.id == user.id || me.is(Role::Admin) {
        return true;
    }
    me.is(Role::Manager) && me.region.covers_code(&user.region_code)
}

/// May `me` change `user` (beyond their own display name and password)?
pub(crate) fn manageable(me: &AuthUser, user: &UserRow) -> bool {
    match me.role {
        Role::Admin => true,
        Role::Manager => visible(me, user) && matches!(user.role.as_str(), "inspector" | "unit"),
        _ => false,
    }
}

struct ValidNewUser {
    username: String,
    password: String,
    display_name: String,
    role: Role,
    region: RegionCode,
    unit_id: Option<String>,
    credential_no: Option<String>,
}

fn validate_new(req: NewUser) -> ApiResult<ValidNewUser> {
    let username = validate::username(&req.username)?;
    password::check_policy(&req.password).map_err(|e| ApiError::invalid("password", e))?;
    let display_name = validate::text("display_name", &req.display_name, 100)?;
    let role = Role::parse(&req.role)
        .ok_or_else(|| ApiError::invalid("role", "must be admin, manager, inspector or unit"))?;
    let region =
        RegionCode::parse(&req.region_code).map_err(|e| ApiError::invalid("region_code", e))?;
    // Admins are above every region; the country code is theirs alone.
    if (role == Role::Admin) != (region.as_str() == RegionCode::COUNTRY) {
        return Err(ApiError::invalid(
            "region_code",
            "admins hold the country code 000000, and only they do",
        ));
    }
    let unit_id = match (role, req.unit_id.as_deref()) {
        (Role::Unit, Some(u)) => Some(validate::uuid("unit_id", u)?),
        (Role::Unit, None) => return Err(ApiError::invalid("unit_id", "required for unit users")),
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "unit_id",
                "only unit users belong to a unit",
            ));
        }
        (_, None) => None,
    };
    let credential_no = req
        .credential_no
        .map(|c| validate::text("credential_no", &c, 64))
        .transpose()?;
    Ok(ValidNewUser {
        username,
        password: req.password,
        display_name,
        role,
        region,
        unit_id,
        credential_no,
    })
}

pub async fn create(state: &AppState, me: AuthUser, req: NewUser) -> ApiResult<User> {
    if !matches!(me.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden("only admins and managers create users"));
    }
    let v = validate_new(req)?;
    match me.role {
        Role::Admin => {}
        _ => {
            if !matches!(v.role, Role::Inspector | Role::Unit) {
                return Err(ApiError::forbidden(
                    "managers create inspectors and unit users only",
                ));
            }
            if !me.region.covers(&v.region) {
                return Err(ApiError::forbidden("the region is outside yours"));
            }
        }
    }
    let hash = state.hasher.hash(v.password.clone()).await?;
    let t = state.clock.now();
    state
        .db
        .run(move |conn| insert(conn, &v, &hash, t).map(User::from))
        .await
}

fn insert(conn: &mut DbConn, v: &ValidNewUser, hash: &str, t: NaiveDateTime) -> ApiResult<UserRow> {
    let id = validate::new_id();
    sync_tx(conn, |tx| {
        let row = NewUserRow {
            id: &id,
            username: &v.username,
            display_name: &v.display_name,
            role: v.role.as_str(),
            region_code: v.region.as_str(),
            unit_id: v.unit_id.as_deref(),
            credential_no: v.credential_no.as_deref(),
            active: true,
            created_at: t,
            updated_at: t,
            version: tx.version(),
        };
        queries::insert_user(tx, row, hash).map_err(|e| match ApiError::from(e) {
            ApiError::Conflict { .. } => {
                ApiError::conflict("username_taken", "that username is taken")
            }
            other => other,
        })?;
        queries::find_user(tx.conn(), &id)?
            .ok_or_else(|| ApiError::internal("inserted user vanished"))
    })
}

pub async fn list(
    state: &AppState,
    me: AuthUser,
    role: Option<String>,
    page: Page,
) -> ApiResult<Paged<User>> {
    let region = match me.role {
        Role::Admin => "%".to_string(),
        Role::Manager => me.region.like_pattern(),
        _ => return Err(ApiError::forbidden("only admins and managers list users")),
    };
    if let Some(r) = role.as_deref()
        && Role::parse(r).is_none()
    {
        return Err(ApiError::invalid(
            "role",
            "must be admin, manager, inspector or unit",
        ));
    }
    state
        .db
        .run(move |conn| {
            let rows =
                queries::list_users(conn, &region, role.as_deref(), page.after(), page.fetch())?;
            Ok(page.finish(rows.into_iter().map(User::from).collect(), |u| u.id.clone()))
        })
        .await
}

fn load_visible(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<UserRow> {
    let not_found = || ApiError::not_found("user");
    let id = validate::uuid("id", id).map_err(|_| not_found())?;
    let user = queries::find_user(conn, &id)?.ok_or_else(not_found)?;
    if visible(me, &user) {
        Ok(user)
    } else {
        Err(not_found())
    }
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<User> {
    state
        .db
        .run(move |conn| load_visible(conn, &me, &id).map(User::from))
        .await
}

/// The caller, as loaded by the auth extractor in the same request.
pub fn me(me: AuthUser) -> User {
    User::from(UserRow::clone(&me.row))
}

pub async fn update(
    state: &AppState,
    me: AuthUser,
    id: String,
    patch: UserPatch,
) -> ApiResult<User> {
    let me2 = me.clone();
    let target = state
        .db
        .run(move |conn| load_visible(conn, &me2, &id))
        .await?;
    let is_self = target.id == me.id;
    let manage = manageable(&me, &target);
    if !manage && !is_self {
        return Err(ApiError::forbidden("you may not change this user"));
    }
    if !manage && (patch.active.is_some() || patch.credential_no.is_some()) {
        return Err(ApiError::forbidden(
            "only admins and managers change `active` or `credential_no`",
        ));
    }
    if is_self && patch.active == Some(false) {
        return Err(ApiError::invalid(
            "active",
            "you cannot deactivate yourself",
        ));
    }
    let mut changes = UserChanges {
        display_name: patch
            .display_name
            .as_deref()
            .map(|d| validate::text("display_name", d, 100))
            .transpose()?,
        active: patch.active,
        ..Default::default()
    };
    if let Some(c) = patch.credential_no {
        changes.credential_no = Some(
            c.map(|c| validate::text("credential_no", &c, 64))
                .transpose()?,
        );
    }
    let new_hash = match patch.password {
        Some(pw) => {
            password::check_policy(&pw).map_err(|e| ApiError::invalid("password", e))?;
            if is_self {
                check_current(state, &target, patch.current_password).await?;
            }
            Some(state.hasher.hash(pw).await?)
        }
        None => None,
    };
    let by = me.id.clone();
    let t = state.clock.now();
    state
        .db
        .run(move |conn| {
            let user_id = target.id.clone();
            // Secrets and sessions; inside the same transaction as the profile change.
            let secrets = |conn: &mut DbConn| -> ApiResult<()> {
                if let Some(h) = &new_hash {
                    queries::set_password(conn, &user_id, h, t)?;
                }
                // A new password or a deactivation ends every session of the account
                // (the caller's own too, when it changed its own password).
                if new_hash.is_some() || changes.active == Some(false) {
                    let reason = if new_hash.is_some() {
                        "password_changed"
                    } else {
                        "user_deactivated"
                    };
                    queries::revoke_user_sessions(conn, &user_id, reason, t)?;
                }
                Ok(())
            };
            let profile_changed = changes.display_name.is_some()
                || changes.active.is_some()
                || changes.credential_no.is_some();
            if profile_changed {
                sync_tx(conn, |tx| {
                    queries::update_user(tx, &user_id, &changes, t)?;
                    secrets(tx.conn())
                })?;
            } else {
                write_tx(conn, secrets)?;
            }
            tracing::info!(user = %user_id, by = %by, "user changed");
            Ok(User::from(
                queries::find_user(conn, &user_id)?.ok_or_else(|| ApiError::not_found("user"))?,
            ))
        })
        .await
}

/// Checks the caller's current password, throttled like logins (same per-account counter),
/// so a stolen access token cannot be used to guess it.
async fn check_current(state: &AppState, user: &UserRow, current: Option<String>) -> ApiResult<()> {
    let current = current.ok_or_else(|| {
        ApiError::invalid("current_password", "required to change your own password")
    })?;
    let uid = user.id.clone();
    let key = throttle::account_key(&user.username);
    let k = key.clone();
    let t = state.clock.now();
    let hash = state
        .db
        .run(move |conn| {
            throttle::check(conn, &[&k], t)?;
            Ok(queries::password_hash(conn, &uid)?)
        })
        .await?;
    if state.hasher.verify(current, Some(hash)).await? {
        return Ok(());
    }
    let limits = throttle::Limits {
        max_failures: state.config.login_max_failures_per_account,
        window: chrono::Duration::seconds(state.config.login_failure_window_secs as i64),
        lockout: chrono::Duration::seconds(state.config.login_lockout_secs as i64),
    };
    state
        .db
        .run(move |conn| throttle::record_failure(conn, &key, t, limits))
        .await?;
    Err(ApiError::invalid("current_password", "is wrong"))
}

/// On an empty database, creates `admin` with `password` or a random one, which is returned
/// so that the caller can print it once. Blocking.
pub fn bootstrap_admin(
    conn: &mut DbConn,
    hasher: &Arc<Hasher>,
    password: Option<&str>,
    now: NaiveDateTime,
) -> Result<Option<String>, String> {
    if queries::count_users(conn).map_err(|e| e.to_string())? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let pw = match password {
        Some(p) => p.to_string(),
        None => super::tokens::random_token()[..20].to_string(),
    };
    let hash = hasher.hash_blocking(&pw)?;
    let v = ValidNewUser {
        username: "admin".into(),
        password: String::new(),
        display_name: "Administrator".into(),
        role: Role::Admin,
        region: RegionCode::country(),
        unit_id: None,
        credential_no: None,
    };
    match insert(conn, &v, &hash, now) {
        Ok(_) => Ok(generated.then_some(pw)),
        // Another server on the same database created it first.
        Err(ApiError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `xuncha user add`: creates a user from the command line. Blocking.
pub fn add_from_cli(
    conn: &mut DbConn,
    hasher: &Arc<Hasher>,
    req: NewUser,
    now: NaiveDateTime,
) -> Result<User, String> {
    let v = validate_new(req).map_err(|e| e.body()["error"]["message"].to_string())?;
    let hash = hasher.hash_blocking(&v.password)?;
    insert(conn, &v, &hash, now)
        .map(User::from)
        .map_err(|e| e.body()["error"]["message"].to_string())
}
