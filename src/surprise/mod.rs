//! Unannounced checks (四不两直): plans drawn by the server from a committed secret seed, sealed
//! assignments revealed only at the window or on dispatch, audited reads of revealed targets,
//! and verification of the draw once the window has closed.

pub mod draw;
pub mod queries;
pub mod routes;
pub mod service;
