//! The audit log: every state change (and every read of a sealed target) as an append-only,
//! hash-chained entry — who, from which device, when, what, before and after — and the
//! verifier that detects any edit or deletion of history.

pub mod chain;
pub mod routes;
pub mod service;

pub use service::{Entry, record, record_system, verify};
