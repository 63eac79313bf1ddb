//! Rows as devices receive them (their JSON), kept by (table, id, version) so that the
//! initial syncs of many devices of one district — the 8 a.m. rush — read and serialise each
//! row once instead of once per device.
//!
//! A key never goes stale: every committed write of a synced row stamps it with a new
//! version from the sync clock (the guard triggers refuse anything else), and pulls fill the
//! cache only from committed snapshots. The data of a row does not depend on who reads it
//! (sealed assignments are shells for everyone). Bounded by bytes; the oldest entries go
//! first.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use foldhash::fast::FixedState;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A row's JSON, shared by every answer that carries it. Made by this server's serialiser
/// (here, or when the row was written: see [`super::stored`]) and written into pages as it
/// is, without being parsed again.
#[derive(Debug, Clone)]
pub struct RawData(pub Arc<str>);

impl Serialize for RawData {
    /// The JSON as a value (checked on the way: pages do not come through here, see
    /// [`super::pull::page_body`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl RawData {
    /// Serialises `v` once.
    pub fn of<T: Serialize>(v: &T) -> Option<RawData> {
        serde_json::to_string(v).ok().map(RawData::from)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

impl From<String> for RawData {
    fn from(s: String) -> RawData {
        RawData(Arc::from(s))
    }
}

/// (table, version, hash of the id): looked up without allocating; the entry keeps the id
/// to tell a hash collision from a hit.
type Key = (&'static str, i64, u64);

#[derive(Default)]
struct Inner {
    map: HashMap<Key, (Box<str>, RawData), FixedState>,
    order: VecDeque<Key>,
    bytes: usize,
}

fn id_hash(id: &str) -> u64 {
    FixedState::with_seed(0x7875_6e63_6861).hash_one(id)
}

pub struct RowCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

/// What an entry costs besides its JSON (key, map and queue slots).
const OVERHEAD: usize = 96;

impl RowCache {
    pub fn new(max_bytes: usize) -> RowCache {
        RowCache {
            max_bytes,
            inner: Mutex::default(),
        }
    }

    /// The cached JSON of each (id, version) of `table` (in the same order; `None`: absent).
    pub fn get_many(&self, table: &'static str, rows: &[(&str, i64)]) -> Vec<Option<RawData>> {
        if self.max_bytes == 0 {
            return vec![None; rows.len()];
        }
        let Ok(inner) = self.inner.lock() else {
            return vec![None; rows.len()];
        };
        rows.iter()
            .map(|(id, v)| match inner.map.get(&(table, *v, id_hash(id))) {
                Some((stored, data)) if &**stored == *id => Some(data.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn put_many(&self, table: &'static str, rows: &[(String, i64, RawData)]) {
        if self.max_bytes == 0 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for (id, v, data) in rows {
            let cost = data.len() + id.len() + OVERHEAD;
            if cost > self.max_bytes / 8 {
                continue; // one huge row does not flush the rest
            }
            let key = (table, *v, id_hash(id));
            if inner.map.contains_key(&key) {
                continue; // the row, or (rarely) another whose id hashes alike: keep it
            }
            inner.bytes += cost;
            inner
                .map
                .insert(key, (id.clone().into_boxed_str(), data.clone()));
            inner.order.push_back(key);
            while inner.bytes > self.max_bytes {
                let Some(old) = inner.order.pop_front() else {
                    break;
                };
                if let Some((old_id, d)) = inner.map.remove(&old) {
                    inner.bytes = inner
                        .bytes
                        .saturating_sub(d.len() + old_id.len() + OVERHEAD);
                }
            }
        }
    }

    /// Bytes held (JSON plus bookkeeping).
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawData {
        RawData::of(&s.to_string()).unwrap()
    }

    #[test]
    fn keys_are_table_id_and_version_and_the_oldest_go_first() {
        let c = RowCache::new(1000);
        c.put_many(
            "units",
            &[("a".into(), 1, raw("one")), ("b".into(), 1, raw("two"))],
        );
        let got = c.get_many("units", &[("a", 1), ("a", 2), ("b", 1)]);
        assert_eq!(got[0].as_ref().unwrap().get(), "\"one\"");
        assert!(got[1].is_none(), "another version is another row");
        assert!(c.get_many("equipment", &[("a", 1)])[0].is_none());
        // Filling past the bound drops the oldest.
        for i in 0..20 {
            c.put_many("units", &[(format!("x{i}"), 5, raw("filler"))]);
        }
        assert!(c.bytes() <= 1000);
        assert!(c.get_many("units", &[("a", 1)])[0].is_none());
        assert!(c.get_many("units", &[("x19", 5)])[0].is_some());
        let off = RowCache::new(0);
        off.put_many("units", &[("a".into(), 1, raw("one"))]);
        assert!(off.get_many("units", &[("a", 1)])[0].is_none());
    }
}
