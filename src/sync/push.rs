//! `POST /api/v1/sync/push`: a device's queued mutations, applied in `seq` order, each in its
//! own (nested) transaction through the same services as the REST endpoints, each exactly
//! once; up to [`GROUP`] of them share one commit.
//!
//! `seq <= last applied`: the stored result, nothing applied (a retry after a lost response).
//! `seq > last + 1`: 409 with the expected seq. A mutation that is invalid or not allowed is
//! `rejected` and still advances the sequence; its effects are rolled back whole. A storage
//! failure stops the batch (503) without advancing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::db::schema::{devices, sync_mutations};
use crate::db::{DbConn, SyncBatch, SyncTx, lock_device_seq, sync_batch};
use crate::error::{ApiError, ApiResult};
use crate::registry::risk::RiskRules;
use crate::work::hazards;
use crate::work::types::ReportHazard;
use diesel::prelude::*;

pub const MAX_BATCH: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub device_id: String,
    pub mutations: Vec<Mutation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    pub seq: i64,
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MutationResult {
    pub seq: i64,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
}

/// How one mutation's transaction ends when it does not commit a result.
enum TxErr {
    /// Storage failure or a seq gap: stop the batch.
    Api(ApiError),
    /// The mutation is invalid or not allowed: roll back its effects, record the rejection.
    Rejected(Value),
}

impl From<diesel::result::Error> for TxErr {
    fn from(e: diesel::result::Error) -> Self {
        TxErr::Api(e.into())
    }
}

impl From<ApiError> for TxErr {
    fn from(e: ApiError) -> Self {
        TxErr::Api(e)
    }
}

fn gap(expected: i64) -> ApiError {
    let mut extra = Map::new();
    extra.insert("expected_seq".into(), json!(expected));
    ApiError::Conflict {
        code: "seq_gap",
        message: format!("mutations must continue from seq {expected}"),
        extra,
    }
}

fn args<T: serde::de::DeserializeOwned>(v: &Value) -> ApiResult<T> {
    crate::http::json::parse(v.to_string().as_bytes())
}

/// Runs one named mutation inside `tx`.
fn dispatch(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    m: &Mutation,
    now: chrono::NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<String> {
    match m.name.as_str() {
        "hazard.report" => {
            hazards::report_tx(tx, me, args::<ReportHazard>(&m.args)?, now, rules)?;
            Ok("applied".into())
        }
        "hazard.update" => {
            let origin = hazards::Origin {
                device_pk: &me.device_pk,
                seq: m.seq,
            };
            let status = hazards::update_tx(tx, me, &origin, args(&m.args)?, now, rules)?;
            Ok(status.into())
        }
        "inspection.start" => {
            crate::work::inspections::start_tx(tx, me, args(&m.args)?, now)?;
            Ok("applied".into())
        }
        "inspection.record_item" => {
            crate::work::inspections::record_item_tx(tx, me, args(&m.args)?, now)?;
            Ok("applied".into())
        }
        "inspection.submit" => {
            crate::work::inspections::submit_tx(tx, me, args(&m.args)?, now)?;
            Ok("applied".into())
        }
        name if name
            .strip_prefix("hazard.")
            .is_some_and(|a| crate::work::lifecycle::ACTIONS.contains(&a)) =>
        {
            let action = name.trim_start_matches("hazard.");
            crate::work::lifecycle::act_pushed(tx, me, action, &m.args, now, rules)?;
            Ok("applied".into())
        }
        "assignment.dispatch" => {
            crate::surprise::service::dispatch_tx(tx, me, args(&m.args)?, now)?;
            Ok("applied".into())
        }
        "directive.issue" => {
            crate::work::enforcement::issue_tx(tx, me, args(&m.args)?, now, rules)?;
            Ok("applied".into())
        }
        "evidence.attach" => {
            crate::evidence::service::attach_tx(tx, me, args(&m.args)?, now)?;
            Ok("applied".into())
        }
        other => Err(ApiError::bad_request(
            "unknown_mutation",
            format!(
                "`{}` is not a mutation this server knows",
                crate::registry::input::clip(other)
            ),
        )),
    }
}

fn store(
    tx: &mut SyncTx<'_>,
    device_pk: &str,
    m: &Mutation,
    result: &MutationResult,
    now: chrono::NaiveDateTime,
) -> ApiResult<()> {
    let version = tx.version();
    // PostgreSQL refuses NUL in text (a 500, found while fuzzing); a name holding one
    // is an unknown mutation, recorded as rejected, so the log keeps it with U+FFFD instead.
    let name = m.name.replace('\0', "\u{fffd}");
    diesel::insert_into(sync_mutations::table)
        .values((
            sync_mutations::device_pk.eq(device_pk),
            sync_mutations::seq.eq(m.seq),
            sync_mutations::name.eq(&name),
            sync_mutations::status.eq(&result.status),
            sync_mutations::result
                .eq(serde_json::to_string(result).map_err(ApiError::internal_from)?),
            sync_mutations::version.eq(version),
            sync_mutations::applied_at.eq(now),
        ))
        .execute(tx.conn())?;
    diesel::update(devices::table.find(device_pk))
        .set(devices::last_mutation_seq.eq(m.seq))
        .execute(tx.conn())?;
    Ok(())
}

fn stored(conn: &mut DbConn, device_pk: &str, seq: i64) -> ApiResult<MutationResult> {
    let r: Option<String> = sync_mutations::table
        .find((device_pk, seq))
        .select(sync_mutations::result)
        .first(conn)
        .optional()?;
    Ok(r.and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or(MutationResult {
            seq,
            status: "applied".into(),
            error: None,
            version: None,
        }))
}

/// Is this error the storage's (stop the batch) rather than the mutation's (reject it)?
fn stops_batch(e: &ApiError) -> bool {
    matches!(e, ApiError::Unavailable(_) | ApiError::Internal(_))
}

/// Applies `m` (whose seq is the next one) as one sync transaction of `batch`.
fn apply_one(
    batch: &mut SyncBatch<'_>,
    me: &AuthUser,
    m: &Mutation,
    now: chrono::NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<MutationResult> {
    let pk = me.device_pk.as_str();
    let attempt = batch.tx(|tx| -> Result<MutationResult, TxErr> {
        match dispatch(tx, me, m, now, rules) {
            Ok(status) => {
                let result = MutationResult {
                    seq: m.seq,
                    status,
                    error: None,
                    version: Some(tx.version()),
                };
                store(tx, pk, m, &result, now)?;
                Ok(result)
            }
            Err(e) if stops_batch(&e) => Err(TxErr::Api(e)),
            Err(e) => Err(TxErr::Rejected(e.body()["error"].clone())),
        }
    });
    let reason = match attempt {
        Ok(r) => return Ok(r),
        Err(TxErr::Rejected(reason)) => reason,
        Err(TxErr::Api(e)) => return Err(e),
    };
    batch.tx(|tx| -> ApiResult<MutationResult> {
        let result = MutationResult {
            seq: m.seq,
            status: "rejected".into(),
            error: Some(reason),
            version: None,
        };
        store(tx, pk, m, &result, now)?;
        Ok(result)
    })
}

/// Mutations committed together (see [`SyncBatch`]): one commit, one fsync, for this many.
/// Bounded so that other writers wait for at most one group.
const GROUP: usize = 100;

/// Applies `mutations` (consecutive seqs) in order, a group per commit; stops at a seq gap
/// or a storage failure (what was applied before it stays, unacknowledged until retried).
fn apply_all(
    conn: &mut DbConn,
    me: &AuthUser,
    mutations: &[Mutation],
    now: chrono::NaiveDateTime,
    rules: &RiskRules,
) -> ApiResult<Vec<MutationResult>> {
    let pk = me.device_pk.as_str();
    let mut results = Vec::with_capacity(mutations.len());
    // A retry is answered from the log without taking the write lock.
    let last: i64 = devices::table
        .find(pk)
        .select(devices::last_mutation_seq)
        .first(conn)?;
    let mut rest = mutations;
    while let Some(m) = rest.first()
        && m.seq <= last
    {
        results.push(stored(conn, pk, m.seq)?);
        rest = &rest[1..];
    }
    if let Some(m) = rest.first()
        && m.seq > last + 1
    {
        return Err(gap(last + 1));
    }
    for group in rest.chunks(GROUP) {
        let stop = sync_batch(conn, |batch| -> ApiResult<Option<ApiError>> {
            // Locked until the commit: two pushes of one device apply one after the other.
            let mut last = lock_device_seq(batch.conn(), pk)?;
            for m in group {
                if m.seq <= last {
                    results.push(stored(batch.conn(), pk, m.seq)?);
                    continue;
                }
                if m.seq > last + 1 {
                    return Ok(Some(gap(last + 1)));
                }
                match apply_one(batch, me, m, now, rules) {
                    Ok(r) => {
                        last = m.seq;
                        results.push(r);
                    }
                    Err(e) => return Ok(Some(e)),
                }
            }
            Ok(None)
        })?;
        if let Some(e) = stop {
            return Err(e);
        }
    }
    Ok(results)
}

pub async fn push(state: &AppState, me: AuthUser, req: PushRequest) -> ApiResult<PushResponse> {
    if req.mutations.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "mutations",
            format!("at most {MAX_BATCH} a push"),
        ));
    }
    for (i, m) in req.mutations.iter().enumerate() {
        if m.seq < 1 {
            return Err(ApiError::invalid(
                "mutations",
                format!("item {}: seq must be at least 1", i + 1),
            ));
        }
        if i > 0 && m.seq != req.mutations[i - 1].seq + 1 {
            return Err(ApiError::invalid(
                "mutations",
                format!("item {}: seqs must be consecutive", i + 1),
            ));
        }
    }
    let rules = RiskRules::from_config(&state.config).map_err(ApiError::internal)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let device: Option<String> = devices::table
                .find(&me.device_pk)
                .select(devices::device_id)
                .first(conn)
                .optional()?;
            if device.as_deref() != Some(req.device_id.as_str()) {
                return Err(ApiError::invalid(
                    "device_id",
                    "is not the device this session was opened on",
                ));
            }
            let results = apply_all(conn, &me, &req.mutations, now, &rules)?;
            Ok(PushResponse { results })
        })
        .await
}
