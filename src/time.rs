//! Time on the server: UTC everywhere, stored as naive UTC timestamps (both engines keep
//! microseconds), sent as RFC 3339 with `Z`.
//!
//! Every rule that depends on the time (token and session expiry, lockouts, deadlines) reads
//! it from the [`Clock`] in the app state, never from the system directly, so that tests and
//! simulations can move time forward instead of waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};

/// The server's clock: the system's UTC time plus an offset that only tests move.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Now, truncated to what the database stores, so a value read back equals the one written.
    pub fn now(&self) -> NaiveDateTime {
        self.now_utc().naive_utc().trunc_subsecs(6)
    }

    pub fn now_utc(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

/// A stored timestamp as a wire value (serializes as `2026-11-25T08:00:00.123456Z`).
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
