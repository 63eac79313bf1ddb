//! The answer to a caught-up device, without the database.
//!
//! A device whose cursor is at the head, with nothing committed since, gets an empty page and
//! its own cursor back; the one value it needs from the database is `last_mutation_seq` at
//! that head. That value cannot change once the head is committed (a later mutation commits
//! at a later version), so it is kept here per device, keyed by the head it was read at.
//! The head itself comes from [`Watch`](crate::db::Watch), which never runs ahead of the
//! database: when it lags, the device is sent to the database, never told a false "nothing".

use std::collections::HashMap;
use std::sync::RwLock;

/// More devices than this and the map starts over (bounded memory).
const MAX_DEVICES: usize = 200_000;

#[derive(Default)]
pub struct CaughtUp {
    /// device pk → (head, last_mutation_seq at that head)
    seqs: RwLock<HashMap<String, (i64, i64)>>,
}

impl CaughtUp {
    pub fn get(&self, device_pk: &str, head: i64) -> Option<i64> {
        let seqs = self.seqs.read().ok()?;
        match seqs.get(device_pk) {
            Some(&(at, seq)) if at == head => Some(seq),
            _ => None,
        }
    }

    pub fn put(&self, device_pk: &str, head: i64, seq: i64) {
        if let Ok(mut seqs) = self.seqs.write() {
            if seqs.len() >= MAX_DEVICES {
                seqs.clear();
            }
            match seqs.get_mut(device_pk) {
                Some(v) if v.0 >= head => {}
                Some(v) => *v = (head, seq),
                None => {
                    seqs.insert(device_pk.to_string(), (head, seq));
                }
            }
        }
    }
}
