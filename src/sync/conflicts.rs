//! `GET /api/v1/sync/conflicts`: the losing sides of same-field edits, for managers of the
//! region to review.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::error::{ApiError, ApiResult};
use crate::http::pagination::{Page, Paged};
use crate::time::utc;
use crate::work::queries::{self, ConflictRow};

#[derive(Debug, Serialize)]
pub struct Conflict {
    pub id: String,
    pub table: String,
    pub row_id: String,
    pub field: String,
    /// The value the row has now.
    pub kept_value: Value,
    /// The value that lost.
    pub lost_value: Value,
    /// Whose edit won: `server` (a managers' field) or `device` (content: last received).
    pub winner: String,
    pub user_id: String,
    pub mutation_seq: i64,
    pub base_version: i64,
    pub version: i64,
    pub region_code: String,
    pub created_at: DateTime<Utc>,
}

impl From<ConflictRow> for Conflict {
    fn from(r: ConflictRow) -> Self {
        Conflict {
            kept_value: serde_json::from_str(&r.kept_value).unwrap_or(Value::Null),
            lost_value: serde_json::from_str(&r.lost_value).unwrap_or(Value::Null),
            id: r.id,
            table: r.table_name,
            row_id: r.row_id,
            field: r.field,
            winner: r.winner,
            user_id: r.user_id,
            mutation_seq: r.mutation_seq,
            base_version: r.base_version,
            version: r.version,
            region_code: r.region_code,
            created_at: utc(r.created_at),
        }
    }
}

pub async fn list(state: &AppState, me: AuthUser, page: Page) -> ApiResult<Paged<Conflict>> {
    if !matches!(me.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden("only managers review sync conflicts"));
    }
    let like = me.region.like_pattern();
    state
        .db
        .run(move |conn| {
            let rows = queries::list_conflicts(conn, &like, page.after(), page.fetch())?;
            Ok(
                page.finish(rows.into_iter().map(Conflict::from).collect(), |c| {
                    c.id.clone()
                }),
            )
        })
        .await
}
