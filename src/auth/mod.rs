//! Login, tokens, device sessions, the auth extractor, users, roles and regions.

pub mod cache;
pub mod extractor;
pub mod password;
pub mod queries;
pub mod region;
pub mod routes;
pub mod service;
pub mod throttle;
pub mod tokens;
pub mod types;
pub mod users;

pub use extractor::AuthUser;
pub use region::{RegionCode, Role};
