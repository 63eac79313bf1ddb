//! Field work: assignments, inspection records, hazards and their lifecycle (enforcement and
//! campaigns build on them).

pub mod assignments;
pub mod campaigns;
pub mod enforcement;
pub mod escalation;
pub mod hazards;
pub mod inspections;
pub mod lifecycle;
pub mod queries;
pub mod reports;
pub mod routes;
pub mod types;
