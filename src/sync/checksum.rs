//! `GET /api/v1/sync/checksum?cursor=C`: lets a device prove its copy complete. For the
//! snapshot its cursor names, per synced table: the number of rows in the caller's scope and
//! an order-independent checksum of their (id, version).
//!
//! The function (documented in the API spec so a phone computes the same over its copy):
//! for each row, the first 8 bytes of SHA-256 of the UTF-8 text `"{id}:{version}"` read as a
//! big-endian unsigned 64-bit integer; the checksum is their sum modulo 2^64, as 16 lower-case
//! hex digits. A cursor is only checkable when it is caught up: when a pull from it would
//! bring nothing, the snapshot it names is the current one; otherwise the answer is
//! `{"stale": true}` (pull first, then ask again).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::pull::{self, PullRequest, PullResponse};
use super::scope::Who;
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::db::read_snapshot;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TableSum {
    pub count: u64,
    pub checksum: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ChecksumResponse {
    Sums {
        cursor: String,
        tables: BTreeMap<&'static str, TableSum>,
    },
    Stale {
        stale: bool,
        reason: String,
    },
}

/// The checksum of one row.
pub fn row_sum(id: &str, version: i64) -> u64 {
    let d = Sha256::digest(format!("{id}:{version}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// The checksum of a set of (id, version).
pub fn table_sum<'a>(rows: impl IntoIterator<Item = (&'a str, i64)>) -> TableSum {
    let mut count = 0;
    let mut sum = 0u64;
    for (id, v) in rows {
        count += 1;
        sum = sum.wrapping_add(row_sum(id, v));
    }
    TableSum {
        count,
        checksum: format!("{sum:016x}"),
    }
}

pub async fn checksum(
    state: &AppState,
    me: AuthUser,
    cursor: String,
) -> ApiResult<ChecksumResponse> {
    if cursor.is_empty() {
        return Err(ApiError::invalid(
            "cursor",
            "required: the cursor of the copy to check",
        ));
    }
    let db_id = state.database_id.clone();
    let cache = state.row_cache.clone();
    let key = state.cursor_key.clone();
    state
        .db
        .run(move |conn| {
            read_snapshot(conn, |conn| -> ApiResult<ChecksumResponse> {
                // Caught up? A pull from the cursor in this same snapshot must bring nothing.
                let req = PullRequest {
                    cursor: Some(cursor.clone()),
                    limit: 1,
                };
                match pull::pull_in_snapshot(conn, &me, &db_id, &key, &req, &cache, None)? {
                    PullResponse::Reset { reason, .. } => {
                        return Ok(ChecksumResponse::Stale {
                            stale: true,
                            reason: format!("reset: {reason}"),
                        });
                    }
                    PullResponse::Changes { changes, .. } if !changes.is_empty() => {
                        return Ok(ChecksumResponse::Stale {
                            stale: true,
                            reason: "changes are pending: pull them, then ask again".into(),
                        });
                    }
                    PullResponse::Changes { .. } => {}
                }
                let who = Who::of(&me);
                let mut tables = BTreeMap::new();
                for (t, rows) in pull::scope_versions(conn, &who)? {
                    tables.insert(t, table_sum(rows.iter().map(|(id, v)| (id.as_str(), *v))));
                }
                Ok(ChecksumResponse::Sums { cursor, tables })
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_documented() {
        let a = table_sum([("a", 1), ("b", 2)]);
        let b = table_sum([("b", 2), ("a", 1)]);
        assert_eq!(a, b);
        assert_eq!(a.count, 2);
        assert_ne!(a, table_sum([("a", 1), ("b", 3)]));
        assert_eq!(table_sum([]).checksum, "0000000000000000");
        // SHA-256("x:1") starts 0x6e1b..., so the sum of one row is its first 8 bytes.
        let one = table_sum([("x", 1)]);
        let d = Sha256::digest(b"x:1");
        assert_eq!(one.checksum, hex::encode(&d[..8]));
    }
}
