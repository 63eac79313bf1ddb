//! xuncha (巡查): the server behind the field app of special-equipment safety inspectors.
//! See README.md for running it and ../api-spec/openapi.yaml for the API.

// Outside tests, nothing unwraps: a value from a client or the database that is not there is
// an error to answer, not a panic (clippy fails the build on a new one).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod evidence;
pub mod http;
pub mod registry;
pub mod surprise;
pub mod sync;
pub mod time;
pub mod validate;
pub mod work;
