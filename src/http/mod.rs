//! HTTP plumbing shared by every capability: the JSON body extractor, list pagination,
//! middleware (request ids and logs, selective compression, the error envelope everywhere)
//! and the client's address behind trusted proxies.

pub mod client;
pub mod health;
pub mod json;
pub mod middleware;
pub mod pagination;
