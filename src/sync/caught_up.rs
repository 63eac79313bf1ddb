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

struct Entry {
    head: i64,
    seq: i64,
    /// The cursor this server gave the device at `head` (a device that sends it back need
    /// not have it decoded and checked again: it was made for this device and scope).
    cursor: String,
}

#[derive(Default)]
pub struct CaughtUp {
    /// device pk → what it was told when it caught up
    seqs: RwLock<HashMap<String, Entry>>,
}

/// What [`CaughtUp::get`] found.
pub enum Found {
    /// The device sent back the very cursor it was given at this head.
    Same(i64),
    /// The device is known at this head, but sent another cursor (check it first).
    Other(i64),
}

impl CaughtUp {
    pub fn get(&self, device_pk: &str, head: i64, cursor: &str) -> Option<Found> {
        let seqs = self.seqs.read().ok()?;
        match seqs.get(device_pk) {
            Some(e) if e.head == head && e.cursor == cursor => Some(Found::Same(e.seq)),
            Some(e) if e.head == head => Some(Found::Other(e.seq)),
            _ => None,
        }
    }

    pub fn put(&self, device_pk: &str, head: i64, seq: i64, cursor: &str) {
        if let Ok(mut seqs) = self.seqs.write() {
            if seqs.len() >= MAX_DEVICES {
                seqs.clear();
            }
            match seqs.get_mut(device_pk) {
                Some(e) if e.head >= head => {}
                Some(e) => {
                    *e = Entry {
                        head,
                        seq,
                        cursor: cursor.to_string(),
                    }
                }
                None => {
                    seqs.insert(
                        device_pk.to_string(),
                        Entry {
                            head,
                            seq,
                            cursor: cursor.to_string(),
                        },
                    );
                }
            }
        }
    }
}
