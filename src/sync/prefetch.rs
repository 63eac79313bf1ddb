//! Read-ahead for paged pulls: when a page says `has_more`, the next one is read right away
//! on another database connection while this one is compressed, sent and stored by the
//! device, and handed out when the device asks for it, if nothing was committed since.
//!
//! Invisible in what devices receive: a read-ahead page is used only for the same device,
//! cursor, limit and scope, and only when the sync head is still the one it was read at. No
//! sync transaction committed in between, so the database holds the same synced rows,
//! tombstones, scope events and mutation log as then, and a read now would give the same
//! page. Anything else (another head, another scope, nothing ready) reads the page as usual.
//!
//! Bounded: at most `slots` pages are held or being read at once (one per device; a newer
//! read-ahead of a device replaces its older one), none is kept for more than [`MAX_AGE`],
//! and none is started while fewer than [`SPARE_CONNECTIONS`] connections are free, so that
//! a busy server spends its connections on requests, not on guesses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pull::PullResponse;

/// A read-ahead page not asked for within this time is dropped.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// Free database connections needed to start a read-ahead.
pub const SPARE_CONNECTIONS: usize = 2;

/// A page read ahead, with the head of the snapshot it was read in.
pub struct Ready {
    pub page: PullResponse,
    pub head: i64,
}

/// Filled once by the read-ahead task, which holds its lock until then: a request that comes
/// while the page is being read waits for it instead of reading it a second time.
pub type Cell = Arc<tokio::sync::Mutex<Option<Ready>>>;

struct Slot {
    cursor: String,
    limit: i64,
    scope: String,
    born: Instant,
    cell: Cell,
}

/// What a read-ahead is for.
pub struct Key<'a> {
    pub device: &'a str,
    pub cursor: &'a str,
    pub limit: i64,
    /// The caller's scope fingerprint (user, role, region, unit).
    pub scope: &'a str,
}

pub struct Prefetch {
    slots: usize,
    held: Mutex<HashMap<String, Slot>>,
    served: AtomicU64,
}

impl Prefetch {
    /// At most `slots` pages at once; 0 turns read-ahead off.
    pub fn new(slots: usize) -> Prefetch {
        Prefetch {
            slots,
            held: Mutex::new(HashMap::new()),
            served: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.slots > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding this lock leaves only a map of guesses: keep using it.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a slot for the next page of `key.device` and returns its cell, locked (the
    /// caller fills it and then drops the guard); `None` when all slots are taken.
    pub fn reserve(&self, key: &Key<'_>) -> Option<tokio::sync::OwnedMutexGuard<Option<Ready>>> {
        if !self.enabled() {
            return None;
        }
        let mut held = self.lock();
        held.retain(|_, s| s.born.elapsed() < MAX_AGE);
        if !held.contains_key(key.device) && held.len() >= self.slots {
            return None;
        }
        let cell: Cell = Arc::new(tokio::sync::Mutex::new(None));
        // A new mutex: nobody else can hold it yet.
        let guard = cell.clone().try_lock_owned().ok()?;
        held.insert(
            key.device.to_string(),
            Slot {
                cursor: key.cursor.to_string(),
                limit: key.limit,
                scope: key.scope.to_string(),
                born: Instant::now(),
                cell,
            },
        );
        Some(guard)
    }

    /// Takes the device's read-ahead page cell when it was made for this very request.
    /// Whatever the answer, the device's slot is freed.
    pub fn take(&self, key: &Key<'_>) -> Option<Cell> {
        if !self.enabled() {
            return None;
        }
        let slot = self.lock().remove(key.device)?;
        (slot.cursor == key.cursor
            && slot.limit == key.limit
            && slot.scope == key.scope
            && slot.born.elapsed() < MAX_AGE)
            .then_some(slot.cell)
    }

    /// A read-ahead page went out as the answer to its request.
    pub fn note_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Read-ahead pages that went out since the start.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits until no page is being read ahead (those started before the call have been
    /// read or have failed).
    pub async fn settle(&self) {
        let cells: Vec<Cell> = self.lock().values().map(|s| s.cell.clone()).collect();
        for cell in cells {
            drop(cell.lock().await);
        }
    }

    /// Pages held or being read (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(device: &'a str, cursor: &'a str) -> Key<'a> {
        Key {
            device,
            cursor,
            limit: 100,
            scope: "u:inspector:330101:",
        }
    }

    #[test]
    fn a_slot_serves_only_its_own_request_once() {
        let p = Prefetch::new(4);
        let g = p.reserve(&key("d1", "c1"));
        assert!(g.is_some());
        assert_eq!(p.len(), 1);
        // Another cursor: no page, and the slot is gone.
        assert!(p.take(&key("d1", "c2")).is_none());
        assert!(p.is_empty());
        let _g = p.reserve(&key("d1", "c1"));
        let other_scope = Key {
            scope: "u:manager:3301:",
            ..key("d1", "c1")
        };
        assert!(p.take(&other_scope).is_none());
        let _g = p.reserve(&key("d1", "c1"));
        let other_limit = Key {
            limit: 5,
            ..key("d1", "c1")
        };
        assert!(p.take(&other_limit).is_none());
        let _g = p.reserve(&key("d1", "c1"));
        assert!(p.take(&key("d1", "c1")).is_some());
        assert!(p.take(&key("d1", "c1")).is_none());
    }

    #[test]
    fn slots_are_bounded_and_zero_turns_it_off() {
        let p = Prefetch::new(2);
        let _a = p.reserve(&key("d1", "c"));
        let _b = p.reserve(&key("d2", "c"));
        assert!(p.reserve(&key("d3", "c")).is_none());
        // A device replaces its own.
        assert!(p.reserve(&key("d2", "c2")).is_some());
        assert_eq!(p.len(), 2);
        let off = Prefetch::new(0);
        assert!(off.reserve(&key("d1", "c")).is_none());
        assert!(off.take(&key("d1", "c")).is_none());
    }

    #[tokio::test]
    async fn a_request_waits_for_the_page_being_read() {
        let p = Prefetch::new(1);
        let mut guard = p.reserve(&key("d1", "c1")).expect("a free slot");
        let cell = p.take(&key("d1", "c1")).expect("the slot");
        let waiter = tokio::spawn(async move { cell.lock().await.take().map(|r| r.head) });
        *guard = Some(Ready {
            page: PullResponse::Reset {
                reset: true,
                reason: String::new(),
            },
            head: 7,
        });
        drop(guard);
        assert_eq!(waiter.await.ok().flatten(), Some(7));
    }
}
