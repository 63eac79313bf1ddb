//! Failed-login throttling per account and per client address, kept in the database so that
//! every app server on it counts together. Not a synced table.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::login_throttle as lt;
use crate::db::{DbConn, write_tx};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

pub fn account_key(username: &str) -> String {
    format!("user:{username}")
}

pub fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

/// 429 with the remaining wait if any of `keys` is locked now.
pub fn check(conn: &mut DbConn, keys: &[&str], now: NaiveDateTime) -> ApiResult<()> {
    let until: Option<NaiveDateTime> = lt::table
        .filter(lt::key.eq_any(keys))
        .filter(lt::blocked_until.gt(now))
        .select(diesel::dsl::max(lt::blocked_until))
        .first::<Option<NaiveDateTime>>(conn)?;
    match until {
        Some(t) => Err(ApiError::RateLimited {
            retry_after_secs: ((t - now).num_milliseconds().max(0) as u64)
                .div_ceil(1000)
                .max(1),
        }),
        None => Ok(()),
    }
}

/// Counts a failure for `key`; at the limit the key is locked for the lockout time and the
/// count starts again. Every statement is an atomic update, so concurrent failures on several
/// servers all count.
pub fn record_failure(
    conn: &mut DbConn,
    key: &str,
    now: NaiveDateTime,
    limits: Limits,
) -> ApiResult<()> {
    let window_start = now - limits.window;
    write_tx(conn, |conn| {
        let row = (
            lt::key.eq(key),
            lt::failures.eq(0),
            lt::window_started_at.eq(now),
            lt::blocked_until.eq(None::<NaiveDateTime>),
        );
        crate::with_engine!(&mut *conn, |c| diesel::insert_into(lt::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c))?;
        let this = lt::table.filter(lt::key.eq(key));
        diesel::update(this.filter(lt::window_started_at.lt(window_start)))
            .set((lt::failures.eq(0), lt::window_started_at.eq(now)))
            .execute(conn)?;
        diesel::update(this)
            .set(lt::failures.eq(lt::failures + 1))
            .execute(conn)?;
        diesel::update(this.filter(lt::failures.ge(limits.max_failures as i32)))
            .set((
                lt::failures.eq(0),
                lt::window_started_at.eq(now),
                lt::blocked_until.eq(Some(now + limits.lockout)),
            ))
            .execute(conn)?;
        // Forget counters whose window and lockout are over, so that guessing with endless
        // made-up usernames or addresses cannot grow the table without bound.
        diesel::delete(
            lt::table
                .filter(lt::window_started_at.lt(window_start))
                .filter(lt::blocked_until.is_null().or(lt::blocked_until.lt(now))),
        )
        .execute(conn)?;
        Ok(())
    })
}

/// A successful login clears the account's count (not the address's: one good password from
/// an address says nothing about the others tried from it).
pub fn clear(conn: &mut DbConn, key: &str) -> ApiResult<()> {
    diesel::delete(lt::table.filter(lt::key.eq(key))).execute(conn)?;
    Ok(())
}
