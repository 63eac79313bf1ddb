//! Time on the server: UTC everywhere, stored as naive UTC timestamps (both engines keep
//! microseconds), sent as RFC 3339 with `Z`.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// Now, truncated to what the database stores, so a value read back equals the one written.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A stored timestamp as a wire value (serializes as `2026-11-25T08:00:00.123456Z`).
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
