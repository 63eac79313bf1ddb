//! What this server knows about the database without asking it: the sync head (so a pull
//! from a caught-up device needs no query) and an epoch that moves whenever a session is
//! revoked or a user changes (so verified sessions can be cached).
//!
//! Three sources keep it true:
//! - writes through this server: [`sync_tx`](super::sync_tx) and the auth queries note what
//!   they did in a thread-local; [`Db::run`](super::Db::run) applies the note when the closure
//!   has returned, that is after the commit, before the response is sent;
//! - writes by other servers or the CLI: a poll of [`poll`] every `cluster_poll_ms`;
//! - every pull that reads the head from the database reports it back.
//!
//! The head here is never ahead of the database (it only ever holds committed versions), so
//! a stale value only sends a caught-up device to the database; it never skips a change.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use diesel::prelude::*;

use super::DbConn;
use super::schema::{server_meta, sync_clock};

thread_local! {
    static COMMITTED: Cell<i64> = const { Cell::new(0) };
    static AUTH_CHANGED: Cell<bool> = const { Cell::new(false) };
}

/// A sync transaction committed `version` on this thread.
pub(super) fn note_committed(version: i64) {
    COMMITTED.with(|c| c.set(c.get().max(version)));
}

/// A session or user row is being changed on this thread (revocation, deactivation, role or
/// region). Call it in the query that writes; it takes effect once the closure returns.
pub fn note_auth_change() {
    AUTH_CHANGED.with(|c| c.set(true));
}

/// Takes (and clears) what this thread noted.
pub(super) fn take_notes() -> (i64, bool) {
    (
        COMMITTED.with(|c| c.replace(0)),
        AUTH_CHANGED.with(|c| c.replace(false)),
    )
}

#[derive(Debug, Default)]
pub struct Watch {
    head: AtomicI64,
    auth_epoch: AtomicU64,
    /// The database's own auth epoch as last polled (-1: not yet).
    seen_db_epoch: AtomicI64,
}

impl Watch {
    pub fn new() -> Watch {
        Watch {
            seen_db_epoch: AtomicI64::new(-1),
            ..Watch::default()
        }
    }

    /// The newest head known to be committed.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    pub fn observe_head(&self, version: i64) {
        self.head.fetch_max(version, Ordering::AcqRel);
    }

    /// Moves whenever cached sessions may no longer be valid.
    pub fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(Ordering::Acquire)
    }

    pub fn auth_changed(&self) {
        self.auth_epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn apply_notes(&self) {
        let (committed, auth) = take_notes();
        if committed > 0 {
            self.observe_head(committed);
        }
        if auth {
            self.auth_changed();
        }
    }

    /// Applies a poll's answer.
    pub fn observe(&self, polled: Polled) {
        self.observe_head(polled.head);
        let before = self.seen_db_epoch.swap(polled.auth_epoch, Ordering::AcqRel);
        if before != polled.auth_epoch {
            self.auth_changed();
        }
    }
}

/// What a poll reads.
#[derive(Debug, Clone, Copy)]
pub struct Polled {
    pub head: i64,
    pub auth_epoch: i64,
}

/// Reads the committed head and the auth epoch (bumped by triggers on sessions and users).
pub fn poll(conn: &mut DbConn) -> QueryResult<Polled> {
    let head = sync_clock::table
        .filter(sync_clock::id.eq(1))
        .select(sync_clock::seq)
        .first::<i64>(conn)?;
    let epoch: Option<String> = server_meta::table
        .find("auth_epoch")
        .select(server_meta::value)
        .first(conn)
        .optional()?;
    Ok(Polled {
        head,
        auth_epoch: epoch.and_then(|e| e.parse().ok()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_apply_once_and_head_only_grows() {
        let w = Watch::new();
        note_committed(7);
        note_committed(5);
        note_auth_change();
        w.apply_notes();
        assert_eq!(w.head(), 7);
        assert_eq!(w.auth_epoch(), 1);
        w.apply_notes();
        assert_eq!(w.auth_epoch(), 1, "notes are taken");
        w.observe_head(3);
        assert_eq!(w.head(), 7);
        w.observe(Polled {
            head: 9,
            auth_epoch: 4,
        });
        assert_eq!((w.head(), w.auth_epoch()), (9, 2));
        w.observe(Polled {
            head: 9,
            auth_epoch: 4,
        });
        assert_eq!(
            w.auth_epoch(),
            2,
            "an unchanged database epoch changes nothing"
        );
    }
}
