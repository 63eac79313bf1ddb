//! Evidence rows: attached to a hazard by a device (`evidence.attach`, possibly before the
//! photo's bytes arrive), completed when the blob is, read only by those whose scope holds
//! the hazard.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::auth::region::Role;
use crate::db::schema::{blobs, evidence};
use crate::db::{DbConn, SyncTx, sync_tx};
use crate::error::{ApiError, ApiResult};
use crate::time::utc;
use crate::validate;
use crate::work::hazards;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = evidence)]
pub struct EvidenceRow {
    pub id: String,
    pub hazard_id: String,
    pub unit_id: String,
    pub region_code: String,
    pub inspection_id: Option<String>,
    pub item_code: Option<String>,
    pub kind: String,
    pub sha256: String,
    pub status: String,
    pub device_time: Option<NaiveDateTime>,
    pub gps_lat: Option<f64>,
    pub gps_lon: Option<f64>,
    pub taken_at: Option<NaiveDateTime>,
    pub exif_gps_lat: Option<f64>,
    pub exif_gps_lon: Option<f64>,
    pub orientation: Option<i32>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub uploaded_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
}

/// An evidence row as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub id: String,
    pub hazard_id: String,
    pub unit_id: String,
    pub inspection_id: Option<String>,
    pub item_code: Option<String>,
    pub kind: String,
    pub sha256: String,
    /// `pending` until the photo's bytes are stored, then `complete`.
    pub status: String,
    pub device_time: Option<DateTime<Utc>>,
    pub gps: Option<Gps>,
    /// From the photo's EXIF, once complete: when it was taken (as UTC when the camera
    /// recorded its offset, else the camera's local time), where, and its orientation (1-8).
    pub taken_at: Option<DateTime<Utc>>,
    pub exif_gps: Option<Gps>,
    pub orientation: Option<i32>,
    /// As displayed (after orientation), once complete.
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub uploaded_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<EvidenceRow> for Evidence {
    fn from(r: EvidenceRow) -> Self {
        Evidence {
            gps: match (r.gps_lat, r.gps_lon) {
                (Some(lat), Some(lon)) => Some(Gps { lat, lon }),
                _ => None,
            },
            id: r.id,
            hazard_id: r.hazard_id,
            unit_id: r.unit_id,
            inspection_id: r.inspection_id,
            item_code: r.item_code,
            kind: r.kind,
            sha256: r.sha256,
            status: r.status,
            device_time: r.device_time.map(utc),
            taken_at: r.taken_at.map(utc),
            exif_gps: match (r.exif_gps_lat, r.exif_gps_lon) {
                (Some(lat), Some(lon)) => Some(Gps { lat, lon }),
                _ => None,
            },
            orientation: r.orientation,
            width: r.width,
            height: r.height,
            uploaded_by: r.uploaded_by,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

/// `evidence.attach` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    pub id: String,
    pub sha256: String,
    pub hazard_id: String,
    pub kind: String,
    #[serde(default)]
    pub inspection_id: Option<String>,
    #[serde(default)]
    pub item_code: Option<String>,
    #[serde(default)]
    pub device_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub gps: Option<Gps>,
}

/// What an evidence row copies from its blob.
type BlobFacts = (
    Option<NaiveDateTime>,
    Option<f64>,
    Option<f64>,
    i32,
    i32,
    i32,
);

fn blob_facts(conn: &mut DbConn, sha: &str) -> QueryResult<Option<BlobFacts>> {
    blobs::table
        .find(sha)
        .select((
            blobs::taken_at,
            blobs::gps_lat,
            blobs::gps_lon,
            blobs::orientation,
            blobs::width,
            blobs::height,
        ))
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<EvidenceRow>> {
    evidence::table
        .find(id)
        .select(EvidenceRow::as_select())
        .first(conn)
        .optional()
}

/// `evidence.attach` inside the caller's sync transaction.
pub fn attach_tx(
    tx: &mut SyncTx<'_>,
    me: &AuthUser,
    args: Attach,
    now: NaiveDateTime,
) -> ApiResult<EvidenceRow> {
    let id = validate::uuid("id", &args.id)?;
    let sha = args.sha256.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            "sha256",
            "must be the 64 hex digits of the photo's SHA-256",
        ));
    }
    let kinds: &[&str] = match me.role {
        Role::Unit => &["rectification"],
        _ => &["finding", "rectification", "verification"],
    };
    if !kinds.contains(&args.kind.as_str()) {
        return Err(ApiError::invalid(
            "kind",
            format!("must be one of {}", kinds.join(", ")),
        ));
    }
    if let Some(g) = args.gps
        && !(g.lat.is_finite()
            && g.lon.is_finite()
            && (-90.0..=90.0).contains(&g.lat)
            && (-180.0..=180.0).contains(&g.lon))
    {
        return Err(ApiError::invalid("gps", "lat within ±90, lon within ±180"));
    }
    let (inspection_id, item_code) =
        validate::inspection_item(args.inspection_id.as_deref(), args.item_code.as_deref())?;
    let hazard_id = validate::uuid("hazard_id", &args.hazard_id)?;
    let hazard = hazards::load(tx.conn(), me, &hazard_id).map_err(|e| match e {
        ApiError::NotFound { .. } => ApiError::invalid("hazard_id", "no such hazard"),
        other => other,
    })?;
    if let Some(existing) = find(tx.conn(), &id)? {
        // The same attach again (a retry outside the push log): no-op.
        if existing.uploaded_by == me.id && existing.sha256 == sha {
            return Ok(existing);
        }
        return Err(ApiError::conflict(
            "already_exists",
            "evidence with this id exists",
        ));
    }
    let blob = blob_facts(tx.conn(), &sha)?;
    let row = EvidenceRow {
        id,
        hazard_id: hazard.id,
        unit_id: hazard.unit_id,
        region_code: hazard.region_code,
        inspection_id,
        item_code,
        kind: args.kind,
        sha256: sha,
        status: if blob.is_some() {
            "complete"
        } else {
            "pending"
        }
        .into(),
        device_time: args.device_time.map(|t| t.naive_utc()),
        gps_lat: args.gps.map(|g| g.lat),
        gps_lon: args.gps.map(|g| g.lon),
        taken_at: blob.and_then(|b| b.0),
        exif_gps_lat: blob.and_then(|b| b.1),
        exif_gps_lon: blob.and_then(|b| b.2),
        orientation: blob.map(|b| b.3),
        width: blob.map(|b| b.4),
        height: blob.map(|b| b.5),
        uploaded_by: me.id.clone(),
        created_at: now,
        updated_at: now,
        version: tx.version(),
    };
    diesel::insert_into(evidence::table)
        .values(&row)
        .execute(tx.conn())?;
    // Who attached which photo to what, and when, is itself evidence.
    crate::audit::record(
        tx,
        me,
        crate::audit::service::Change {
            action: "evidence.attach",
            table: "evidence",
            id: &row.id,
            region: Some(&row.region_code),
            before: None,
            after: serde_json::to_value(Evidence::from(row.clone())).ok(),
        },
        now,
    )?;
    Ok(row)
}

/// The evidence rows waiting for `sha` are complete (inside the sync transaction that
/// stores the blob row).
pub fn complete_pending(tx: &mut SyncTx<'_>, sha: &str, now: NaiveDateTime) -> ApiResult<()> {
    let Some((taken_at, lat, lon, orientation, width, height)) = blob_facts(tx.conn(), sha)? else {
        return Ok(());
    };
    let version = tx.version();
    diesel::update(
        evidence::table
            .filter(evidence::sha256.eq(sha))
            .filter(evidence::status.eq("pending")),
    )
    .set((
        evidence::status.eq("complete"),
        evidence::taken_at.eq(taken_at),
        evidence::exif_gps_lat.eq(lat),
        evidence::exif_gps_lon.eq(lon),
        evidence::orientation.eq(Some(orientation)),
        evidence::width.eq(Some(width)),
        evidence::height.eq(Some(height)),
        evidence::updated_at.eq(now),
        evidence::version.eq(version),
    ))
    .execute(tx.conn())?;
    Ok(())
}

/// An evidence row the caller may see (its hazard is in their reach), else 404.
pub fn load(conn: &mut DbConn, me: &AuthUser, id: &str) -> ApiResult<EvidenceRow> {
    let nf = || ApiError::not_found("evidence");
    let id = validate::uuid("id", id).map_err(|_| nf())?;
    let row = find(conn, &id)?.ok_or_else(nf)?;
    hazards::load(conn, me, &row.hazard_id).map_err(|e| match e {
        ApiError::NotFound { .. } => nf(),
        other => other,
    })?;
    Ok(row)
}

pub async fn get(state: &AppState, me: AuthUser, id: String) -> ApiResult<Evidence> {
    state
        .db
        .run(move |conn| load(conn, &me, &id).map(Evidence::from))
        .await
}

/// The evidence of one hazard the caller may see.
pub async fn list(state: &AppState, me: AuthUser, hazard_id: String) -> ApiResult<Vec<Evidence>> {
    state
        .db
        .run(move |conn| {
            let h = hazards::load(conn, &me, &hazard_id)?;
            let rows: Vec<EvidenceRow> = evidence::table
                .filter(evidence::hazard_id.eq(&h.id))
                .order((evidence::created_at.asc(), evidence::id.asc()))
                .limit(1000)
                .select(EvidenceRow::as_select())
                .load(conn)?;
            Ok(rows.into_iter().map(Evidence::from).collect())
        })
        .await
}

/// REST twin of the push mutation.
pub async fn attach(state: &AppState, me: AuthUser, args: Attach) -> ApiResult<Evidence> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| sync_tx(conn, |tx| attach_tx(tx, &me, args, now)).map(Evidence::from))
        .await
}

/// What a download needs: the hash, and the original's format.
pub async fn for_download(
    state: &AppState,
    me: AuthUser,
    id: String,
) -> ApiResult<(EvidenceRow, String)> {
    state
        .db
        .run(move |conn| {
            let row = load(conn, &me, &id)?;
            if row.status != "complete" {
                return Err(ApiError::status(
                    409,
                    "evidence_pending",
                    "the photo of this evidence has not been uploaded yet",
                ));
            }
            let format: String = blobs::table
                .find(&row.sha256)
                .select(blobs::format)
                .first(conn)?;
            Ok((row, format))
        })
        .await
}
