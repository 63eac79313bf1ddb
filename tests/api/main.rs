//! Integration tests through the HTTP API, each on SQLite and on PostgreSQL.

mod common;

mod auth;
mod cli;
mod demo;
mod evidence;
mod faults;
mod http;
mod lifecycle;
mod registry;
mod security;
mod sim;
mod spec_routes;
mod storage;
mod surprise;
mod sync;
mod users;
