//! Login, token refresh with rotation and reuse detection, logout, and device revocation.

use chrono::Duration;

use super::extractor::AuthUser;
use super::queries::{self, UserRow};
use super::region::Role;
use super::throttle::{self, Limits};
use super::tokens::{self, hash_refresh};
use super::types::{Device, LoginRequest, LoginUser, RefreshRequest, TokenPair};
use crate::app::AppState;
use crate::db::write_tx;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::validate;

fn limits(state: &AppState, per_account: bool) -> Limits {
    let c = &state.config;
    Limits {
        max_failures: if per_account {
            c.login_max_failures_per_account
        } else {
            c.login_max_failures_per_address
        },
        window: Duration::seconds(c.login_failure_window_secs as i64),
        lockout: Duration::seconds(c.login_lockout_secs as i64),
    }
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong username or password")
}

/// Verifies the password (throttled per account and per address), then opens a device
/// session and answers the first token pair.
pub async fn login(
    state: &AppState,
    req: LoginRequest,
    client_addr: String,
) -> ApiResult<TokenPair> {
    let device_id = validate::text("device_id", &req.device_id, 128)?;
    let device_name =
        validate::optional_text("device_name", req.device_name.as_deref().unwrap_or(""), 128)?;
    if req.password.is_empty() || req.password.chars().count() > crate::auth::password::MAX_LEN {
        return Err(bad_credentials());
    }
    // A username that cannot exist still goes through the whole path (dummy hash, counters),
    // so the answer does not tell which usernames exist.
    let username = req.username.trim().to_ascii_lowercase();
    // An empty or overlong one, or one with a NUL (PostgreSQL refuses NUL in a query
    // parameter: that was a 500, found while fuzzing), is refused at once: no user has it.
    if username.is_empty() || username.len() > 64 || username.contains('\0') {
        return Err(bad_credentials());
    }
    let account_key = throttle::account_key(&username);
    let address_key = throttle::address_key(&client_addr);

    let clock = state.clock.clone();
    let (k1, k2, name) = (account_key.clone(), address_key.clone(), username.clone());
    let found = state
        .db
        .run(move |conn| {
            throttle::check(conn, &[&k1, &k2], clock.now())?;
            Ok(queries::find_login(conn, &name)?)
        })
        .await?;
    let (user, hash) = match found {
        Some((u, h)) if u.active => (Some(u), Some(h)),
        _ => (None, None),
    };
    let ok = state.hasher.verify(req.password, hash).await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            let (la, lb) = (limits(state, true), limits(state, false));
            let t = state.clock.now();
            state
                .db
                .run(move |conn| {
                    throttle::record_failure(conn, &account_key, t, la)?;
                    throttle::record_failure(conn, &address_key, t, lb)?;
                    Ok(())
                })
                .await?;
            tracing::info!(username = %username, addr = %client_addr, "login failed");
            return Err(bad_credentials());
        }
    };

    let refresh = tokens::random_token();
    let refresh_hash = hash_refresh(&refresh);
    let ttl = Duration::days(state.config.refresh_token_ttl_days as i64);
    let user_id = user.id.clone();
    let sid = validate::new_id();
    let sid2 = sid.clone();
    let t = state.clock.now();
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                throttle::clear(conn, &account_key)?;
                let device_pk = queries::upsert_device(
                    conn,
                    &validate::new_id(),
                    &user_id,
                    &device_id,
                    &device_name,
                    t,
                )?;
                queries::insert_session(conn, &sid2, &device_pk, &user_id, t, t + ttl)?;
                queries::insert_refresh(conn, &refresh_hash, &sid2, t)?;
                Ok::<_, ApiError>(())
            })
        })
        .await?;
    tracing::info!(user = %user.id, session = %sid, "login");
    pair(state, &user, &sid, refresh)
}

fn pair(state: &AppState, user: &UserRow, sid: &str, refresh: String) -> ApiResult<TokenPair> {
    Ok(TokenPair {
        access_token: state.tokens.issue(
            &user.id,
            &user.role,
            &user.region_code,
            sid,
            state.clock.now_utc().timestamp(),
        )?,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_secs(),
        user: LoginUser::from(user),
    })
}

/// How long a spent refresh token is remembered for replay detection.
const SPENT_REFRESH_KEPT_DAYS: i64 = 7;

enum RefreshOutcome {
    Rotated(Box<UserRow>, String),
    Reused,
    Ended,
}

/// Rotates the refresh token: the presented one is spent, a new one issued. Presenting a
/// spent token again means it was copied: the whole device session is revoked.
pub async fn refresh(state: &AppState, req: RefreshRequest) -> ApiResult<TokenPair> {
    let presented = hash_refresh(req.refresh_token.trim());
    let fresh = tokens::random_token();
    let fresh_hash = hash_refresh(&fresh);
    let ttl = Duration::days(state.config.refresh_token_ttl_days as i64);
    let t = state.clock.now();
    let outcome = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let Some((session, user)) = queries::find_refresh(conn, &presented)? else {
                    return Ok(None);
                };
                if session.revoked_at.is_some() || session.expires_at <= t || !user.active {
                    return Ok(Some(RefreshOutcome::Ended));
                }
                if !queries::spend_refresh(conn, &presented, t)? {
                    queries::revoke_session(conn, &session.id, "refresh_token_reused", t)?;
                    tracing::warn!(session = %session.id, user = %user.id,
                        "spent refresh token presented again: session revoked");
                    return Ok(Some(RefreshOutcome::Reused));
                }
                queries::insert_refresh(conn, &fresh_hash, &session.id, t)?;
                queries::prune_spent_refresh(
                    conn,
                    &session.id,
                    t - Duration::days(SPENT_REFRESH_KEPT_DAYS),
                )?;
                queries::extend_session(conn, &session.id, t + ttl)?;
                queries::touch_device(conn, &session.device_pk, t)?;
                Ok::<_, ApiError>(Some(RefreshOutcome::Rotated(Box::new(user), session.id)))
            })
        })
        .await?;
    match outcome {
        Some(RefreshOutcome::Rotated(user, sid)) => pair(state, &user, &sid, fresh),
        Some(RefreshOutcome::Reused) => Err(ApiError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; the session has been ended for safety",
        )),
        Some(RefreshOutcome::Ended) => Err(ApiError::unauthorized(
            "session_revoked",
            "this session has ended; log in again",
        )),
        None => Err(ApiError::unauthorized(
            "invalid_refresh_token",
            "the refresh token is not valid",
        )),
    }
}

/// Ends the caller's device session.
pub async fn logout(state: &AppState, me: AuthUser) -> ApiResult<()> {
    let t = state.clock.now();
    state
        .db
        .run(move |conn| Ok(queries::revoke_session(conn, &me.session_id, "logout", t)?))
        .await
}

/// Devices follow the users' rules: admins act on every device, managers on those of the
/// inspectors and unit users of their region, everyone on their own.
fn acts_on_devices_of(me: &AuthUser, owner: &UserRow) -> bool {
    me.id == owner.id || super::users::manageable(me, owner)
}

pub async fn list_devices(
    state: &AppState,
    me: AuthUser,
    user_id: Option<String>,
    page: Page,
) -> ApiResult<Paged<Device>> {
    let user_id = user_id.map(|u| validate::uuid("user_id", &u)).transpose()?;
    let t = state.clock.now();
    state
        .db
        .run(move |conn| {
            const MANAGED: &[&str] = &["inspector", "unit"];
            let (region, roles, only): (String, &[&str], _) = match me.role {
                Role::Admin => ("%".to_string(), &[], user_id),
                Role::Manager => (me.region.like_pattern(), MANAGED, user_id),
                // Others see their own devices only, whatever filter they pass.
                _ => ("%".to_string(), &[], Some(me.id.clone())),
            };
            let rows = queries::list_devices(
                conn,
                &region,
                roles,
                only.as_deref(),
                page.after(),
                page.fetch(),
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for (d, u) in rows {
                let n = queries::active_sessions(conn, &d.id, t)?;
                items.push(Device::new(d, &u, n));
            }
            Ok(page.finish(items, |d| d.id.clone()))
        })
        .await
}

/// Ends every session of a device (a lost or stolen phone). The user can log in again with
/// the password; the device's data on the server is untouched.
pub async fn revoke_device(state: &AppState, me: AuthUser, id: String) -> ApiResult<Device> {
    let t = state.clock.now();
    state
        .db
        .run(move |conn| {
            let not_found = || ApiError::not_found("device");
            let id = validate::uuid("id", &id).map_err(|_| not_found())?;
            let (_, owner) = queries::find_device(conn, &id)?.ok_or_else(not_found)?;
            if !acts_on_devices_of(&me, &owner) {
                return Err(not_found());
            }
            write_tx(conn, |conn| {
                queries::revoke_device_sessions(conn, &id, "device_revoked", t)?;
                queries::mark_device_revoked(conn, &id, t)?;
                Ok::<_, ApiError>(())
            })?;
            tracing::info!(device = %id, by = %me.id, "device revoked");
            let (d, u) = queries::find_device(conn, &id)?.ok_or_else(not_found)?;
            Ok(Device::new(d, &u, 0))
        })
        .await
}
