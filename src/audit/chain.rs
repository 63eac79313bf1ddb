//! The chain's hash function, kept free of storage so a verifier outside the server can
//! copy it:
//!
//! `hash = hex(SHA-256("xuncha-audit-v1\n" || prev_hash || "\n" || f(seq) || f(at) ||
//! f(actor_id) || f(device_pk) || f(action) || f(entity_table) || f(entity_id) ||
//! f(region_code) || f(before) || f(after)))`, where `f(x)` is the UTF-8 byte length of `x`
//! in decimal, `:`, `x`, `\n`, and `f(null)` is `-\n`; `at` is written
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, UTC). The first entry's `prev_hash` is empty.

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

/// The fields an entry's hash covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields<'a> {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_id: Option<&'a str>,
    pub device_pk: Option<&'a str>,
    pub action: &'a str,
    pub entity_table: &'a str,
    pub entity_id: &'a str,
    pub region_code: Option<&'a str>,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// Times as the chain writes them: microseconds, which both engines store exactly.
pub fn at_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `at` cut to whole microseconds, as stored.
pub fn truncate(at: NaiveDateTime) -> NaiveDateTime {
    let us = at.and_utc().timestamp_micros();
    chrono::DateTime::from_timestamp_micros(us).map_or(at, |t| t.naive_utc())
}

pub fn hash(prev_hash: &str, f: &Fields<'_>) -> String {
    let mut h = Sha256::new();
    h.update(b"xuncha-audit-v1\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    let mut put = |v: Option<&str>| match v {
        Some(s) => {
            h.update(s.len().to_string().as_bytes());
            h.update(b":");
            h.update(s.as_bytes());
            h.update(b"\n");
        }
        None => h.update(b"-\n"),
    };
    put(Some(&f.seq.to_string()));
    put(Some(&at_text(f.at)));
    put(f.actor_id);
    put(f.device_pk);
    put(Some(f.action));
    put(Some(f.entity_table));
    put(Some(f.entity_id));
    put(f.region_code);
    put(f.before);
    put(f.after);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(before: Option<&'static str>) -> Fields<'static> {
        Fields {
            seq: 1,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000)
                .unwrap()
                .naive_utc(),
            actor_id: Some("u"),
            device_pk: None,
            action: "hazard.close",
            entity_table: "hazards",
            entity_id: "h",
            region_code: Some("330106"),
            before,
            after: Some("{}"),
        }
    }

    #[test]
    fn every_field_and_the_link_count() {
        let base = hash("", &fields(None));
        assert_eq!(base.len(), 64);
        assert_ne!(base, hash("x", &fields(None)));
        // Null and empty are different values.
        assert_ne!(base, hash("", &fields(Some(""))));
        // Lengths keep field boundaries: moving a character across a boundary changes it.
        let mut a = fields(None);
        a.entity_table = "hazard";
        a.entity_id = "sh";
        assert_ne!(base, hash("", &a));
        assert_eq!(at_text(fields(None).at), "2023-11-14T22:13:20.123456Z");
    }
}
