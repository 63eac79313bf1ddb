//! Delta sync (contract in DESIGN.md): pull what changed in the device's scope since its
//! cursor, push queued mutations idempotently.

pub mod caught_up;
pub mod checksum;
pub mod conflicts;
pub mod cursor;
pub mod prefetch;
pub mod prune;
pub mod pull;
pub mod push;
pub mod routes;
pub mod rowcache;
pub mod scope;
pub mod stored;
