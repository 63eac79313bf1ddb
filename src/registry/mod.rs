//! The registry: what inspectors inspect. Units (使用单位) and their equipment, checklist
//! templates, code tables, CSV import, derived risk facts, and the demo city generator.

pub mod codes;
pub mod demo;
pub mod facts;
pub mod ids;
pub mod import;
pub mod input;
pub mod queries;
pub mod risk;
pub mod routes;
pub mod service;
pub mod types;
