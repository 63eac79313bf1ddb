//! Verified sessions, kept for a short while so that a request needs no database read to know
//! its caller (a caught-up sync pull then needs none at all).
//!
//! An entry is used only while (1) the session has not expired by the server's clock, (2) it
//! is younger than `auth_cache_secs`, and (3) nothing that could end it has happened since it
//! was read: the entry carries the auth epoch from before its read, and the epoch moves on
//! every revocation or user change made through this server (at once) or seen in the database
//! by the cluster poll (within `cluster_poll_ms`). Revocation therefore still takes effect at
//! once on the server that made it, and within a poll interval on the others.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::extractor::AuthUser;

/// More sessions than this and the cache starts over (bounded memory, whoever calls).
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    user: Arc<AuthUser>,
    expires_at: NaiveDateTime,
    epoch: u64,
    read_at: Instant,
}

pub struct SessionCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, Entry>>,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> SessionCache {
        SessionCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached caller of session `sid`, if still usable at `now` and `epoch`.
    pub fn get(&self, sid: &str, now: NaiveDateTime, epoch: u64) -> Option<Arc<AuthUser>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let e = entries.get(sid)?;
        (e.epoch == epoch && now < e.expires_at && e.read_at.elapsed() < self.ttl)
            .then(|| e.user.clone())
    }

    /// Keeps `user`, read from the database after the auth epoch was `epoch`.
    pub fn put(&self, user: Arc<AuthUser>, expires_at: NaiveDateTime, epoch: u64) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                user.session_id.clone(),
                Entry {
                    user,
                    expires_at,
                    epoch,
                    read_at: Instant::now(),
                },
            );
        }
    }
}
