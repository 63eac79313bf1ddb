//! Photo evidence: tus uploads, content-addressed storage, image checks and renditions,
//! evidence rows attached to hazards, scope-checked downloads.

pub mod blobs;
pub mod image;
pub mod pool;
pub mod routes;
pub mod service;
pub mod tus;
pub mod uploads;
