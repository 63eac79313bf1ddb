//! Field work: assignments and hazards (inspections, enforcement, campaigns build on them).

pub mod assignments;
pub mod hazards;
pub mod queries;
pub mod routes;
pub mod types;
