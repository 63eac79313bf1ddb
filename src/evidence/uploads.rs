//! tus uploads: creation, status, appending bytes, termination, concatenation, expiry.
//!
//! The bytes of an incomplete upload are in `<data_dir>/uploads/<id>.part`; its row says how
//! many of them are acknowledged (`upload_offset`). A PATCH holds the upload with a lease in
//! its row (so two PATCHes, on one server or two, never write the same file at once), cuts
//! the file back to the acknowledged offset (bytes of a PATCH that never finished are not
//! acknowledged), appends, syncs the file to disk, and only then moves the offset. An upload
//! that reaches its length is checked (whole-file SHA-256 against the `sha256` metadata),
//! validated as an image, stored once per hash with its renditions, and completes the
//! evidence rows waiting for that hash.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use actix_web::web;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use futures_util::StreamExt;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::blobs::{BlobStore, Variant};
use super::image::{self, ImageError, ImageInfo, Limits, Renditions};
use super::tus::{Algorithm, Concat};
use crate::app::AppState;
use crate::auth::extractor::AuthUser;
use crate::db::schema::{blobs, uploads};
use crate::db::{DbConn, sync_tx, write_tx};
use crate::error::{ApiError, ApiResult};

/// How long a PATCH holds an upload without renewing its lease.
const LEASE_SECS: i64 = 60;
/// A PATCH renews its lease this often while bytes arrive.
const RENEW_SECS: i64 = 20;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = uploads)]
pub struct UploadRow {
    pub id: String,
    pub user_id: String,
    pub length: i64,
    pub upload_offset: i64,
    pub concat: String,
    pub parts: Option<String>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub metadata: String,
    pub state: String,
    pub locked_until: Option<NaiveDateTime>,
    pub lock_token: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
}

impl UploadRow {
    pub fn part_ids(&self) -> Vec<String> {
        self.parts
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default()
    }
}

/// What a creation asks for (headers already parsed).
pub struct CreateRequest {
    pub length: Option<u64>,
    pub metadata_raw: String,
    pub metadata: BTreeMap<String, String>,
    pub concat: Option<Concat>,
}

pub fn upload_dir(state: &AppState) -> PathBuf {
    state.config.data_dir().join("uploads")
}

fn part_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.part"))
}

fn not_found() -> ApiError {
    ApiError::not_found("upload")
}

fn gone() -> ApiError {
    ApiError::status(
        410,
        "upload_expired",
        "this upload has expired; start a new one",
    )
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The `sha256` metadata: 64 hex digits.
fn sha_of(metadata: &BTreeMap<String, String>) -> ApiResult<Option<String>> {
    match metadata.get("sha256") {
        None => Ok(None),
        Some(h) => {
            let h = h.trim().to_ascii_lowercase();
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Some(h))
            } else {
                Err(ApiError::bad_request(
                    "invalid_metadata",
                    "the sha256 metadata must be the 64 hex digits of the file's SHA-256",
                ))
            }
        }
    }
}

fn find(conn: &mut DbConn, id: &str, user: &str) -> QueryResult<Option<UploadRow>> {
    uploads::table
        .find(id)
        .filter(uploads::user_id.eq(user))
        .select(UploadRow::as_select())
        .first(conn)
        .optional()
}

fn blob_exists(conn: &mut DbConn, sha: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(blobs::table.find(sha))).get_result(conn)
}

/// An upload of the caller, not expired.
pub async fn status(state: &AppState, me: &AuthUser, id: &str) -> ApiResult<UploadRow> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    let (id, user, now) = (id.to_string(), me.id.clone(), state.clock.now());
    let row = state
        .db
        .run(move |conn| Ok(find(conn, &id, &user)?))
        .await?
        .ok_or_else(not_found)?;
    if row.state == "open" && row.expires_at <= now {
        return Err(gone());
    }
    Ok(row)
}

pub async fn create(state: &AppState, me: &AuthUser, req: CreateRequest) -> ApiResult<UploadRow> {
    let cfg = &state.config;
    let now = state.clock.now();
    let sha = sha_of(&req.metadata)?;
    let id = uuid::Uuid::now_v7().to_string();
    let (concat, parts, length) = match &req.concat {
        Some(Concat::Final(ids)) => ("final", Some(ids.clone()), None),
        Some(Concat::Partial) => ("partial", None, req.length),
        None => ("none", None, req.length),
    };
    if concat != "final" && length.is_none() {
        return Err(ApiError::bad_request(
            "missing_length",
            "Upload-Length is required (deferred lengths are not supported)",
        ));
    }
    if let Some(len) = length
        && len > cfg.max_upload_bytes
    {
        return Err(ApiError::PayloadTooLarge {
            message: format!("uploads are at most {} bytes", cfg.max_upload_bytes),
        });
    }
    if concat != "partial" && sha.is_none() {
        return Err(ApiError::bad_request(
            "invalid_metadata",
            "Upload-Metadata must carry sha256 (hex of the whole file)",
        ));
    }
    let row = UploadRow {
        id,
        user_id: me.id.clone(),
        length: length.unwrap_or(0) as i64,
        upload_offset: 0,
        concat: concat.into(),
        parts: parts
            .as_ref()
            .map(|p| serde_json::to_string(p).unwrap_or_else(|_| "[]".into())),
        sha256: sha.clone(),
        filename: req.metadata.get("filename").map(|f| clip(f, 255)),
        content_type: req.metadata.get("content_type").map(|f| clip(f, 255)),
        metadata: req.metadata_raw,
        state: "open".into(),
        locked_until: None,
        lock_token: None,
        created_at: now,
        expires_at: now + Duration::hours(cfg.upload_expiry_hours as i64),
        completed_at: None,
    };
    let max_open = cfg.max_open_uploads_per_user as i64;
    let max_bytes = cfg.max_upload_bytes as i64;
    let dir = upload_dir(state);
    let part_rows = parts.clone();
    let (mut row, known) = state
        .db
        .run(move |conn| {
            let mut row = row;
            let known = match &row.sha256 {
                Some(s) if row.concat != "partial" => blob_exists(conn, s)?,
                _ => false,
            };
            if let Some(ids) = &part_rows {
                row.length = final_length(conn, &row.user_id, ids, now)?;
                if row.length > max_bytes {
                    return Err(ApiError::PayloadTooLarge {
                        message: format!("uploads are at most {max_bytes} bytes"),
                    });
                }
            }
            if known {
                // Stored already, whoever sent it: complete at once.
                row.upload_offset = row.length;
                row.state = "complete".into();
                row.completed_at = Some(now);
            }
            write_tx(conn, |conn| -> ApiResult<()> {
                let open: i64 = uploads::table
                    .filter(uploads::user_id.eq(&row.user_id))
                    .filter(uploads::state.eq("open"))
                    .filter(uploads::expires_at.gt(now))
                    .count()
                    .get_result(conn)?;
                if !known && open >= max_open {
                    return Err(ApiError::status(
                        429,
                        "too_many_uploads",
                        format!(
                            "at most {max_open} incomplete uploads at once; finish or delete one"
                        ),
                    ));
                }
                diesel::insert_into(uploads::table)
                    .values(&row)
                    .execute(conn)?;
                Ok(())
            })?;
            Ok((row, known))
        })
        .await?;
    if known {
        return Ok(row);
    }
    std::fs::create_dir_all(&dir).map_err(ApiError::internal_from)?;
    let Some(ids) = parts else {
        // Bytes come by PATCH.
        std::fs::File::create(part_path(&dir, &row.id)).map_err(ApiError::internal_from)?;
        return Ok(row);
    };
    // A final upload: its parts, joined, are its bytes.
    let (d, joined, target) = (dir.clone(), ids.clone(), part_path(&dir, &row.id));
    web::block(move || join_parts(&d, &joined, &target))
        .await
        .map_err(ApiError::internal_from)??;
    row.upload_offset = row.length;
    let done = complete(state, &row).await?;
    let (parts, user) = (ids.clone(), me.id.clone());
    state
        .db
        .run(move |conn| {
            diesel::delete(
                uploads::table
                    .filter(uploads::id.eq_any(&parts))
                    .filter(uploads::user_id.eq(&user)),
            )
            .execute(conn)?;
            Ok(())
        })
        .await?;
    for p in ids {
        let _ = std::fs::remove_file(part_path(&dir, &p));
    }
    Ok(done)
}

/// The length of a final upload made of `ids`: each must be a complete partial upload of
/// `user` that has not expired.
fn final_length(
    conn: &mut DbConn,
    user: &str,
    ids: &[String],
    now: NaiveDateTime,
) -> ApiResult<i64> {
    let mut total = 0i64;
    for id in ids {
        let ok = find(conn, id, user)?
            .filter(|p| p.concat == "partial" && p.state == "complete" && p.expires_at > now);
        let Some(p) = ok else {
            return Err(ApiError::bad_request(
                "invalid_concat",
                "every part of a final upload must be a complete partial upload of yours",
            ));
        };
        total = total.saturating_add(p.length);
    }
    Ok(total)
}

fn join_parts(dir: &Path, ids: &[String], target: &Path) -> ApiResult<()> {
    let mut out = std::fs::File::create(target).map_err(ApiError::internal_from)?;
    for id in ids {
        let mut part = std::fs::File::open(part_path(dir, id)).map_err(ApiError::internal_from)?;
        std::io::copy(&mut part, &mut out).map_err(ApiError::internal_from)?;
    }
    out.sync_all().map_err(ApiError::internal_from)?;
    Ok(())
}

/// What a PATCH brings.
pub struct Patch {
    pub offset: u64,
    pub checksum: Option<(Algorithm, Vec<u8>)>,
    pub content_length: Option<u64>,
}

enum Hasher {
    None,
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::None => {}
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::None => Vec::new(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Takes the upload's lease; answers why not when it cannot.
async fn acquire(state: &AppState, me: &AuthUser, id: &str, token: &str) -> ApiResult<UploadRow> {
    let now = state.clock.now();
    let (id, user, token) = (id.to_string(), me.id.clone(), token.to_string());
    state
        .db
        .run(move |conn| {
            let row = find(conn, &id, &user)?.ok_or_else(not_found)?;
            if row.concat == "final" {
                return Err(ApiError::forbidden(
                    "a final upload is made of its parts; it takes no PATCH",
                ));
            }
            if row.state == "open" && row.expires_at <= now {
                return Err(gone());
            }
            if row.state != "open" {
                return Ok(row);
            }
            let taken = diesel::update(
                uploads::table
                    .find(&id)
                    .filter(uploads::state.eq("open"))
                    .filter(
                        uploads::locked_until
                            .is_null()
                            .or(uploads::locked_until.lt(now)),
                    ),
            )
            .set((
                uploads::locked_until.eq(now + Duration::seconds(LEASE_SECS)),
                uploads::lock_token.eq(&token),
            ))
            .execute(conn)?;
            if taken == 0 {
                return Err(ApiError::status(
                    423,
                    "upload_locked",
                    "another request is writing to this upload; retry after it ends",
                ));
            }
            find(conn, &id, &user)?.ok_or_else(not_found)
        })
        .await
}

/// Moves the acknowledged offset and gives the lease back.
async fn release(state: &AppState, id: &str, token: &str, offset: i64) -> ApiResult<()> {
    let (id, token) = (id.to_string(), token.to_string());
    state
        .db
        .run(move |conn| {
            diesel::update(
                uploads::table
                    .find(&id)
                    .filter(uploads::lock_token.eq(&token)),
            )
            .set((
                uploads::upload_offset.eq(offset),
                uploads::locked_until.eq(None::<NaiveDateTime>),
                uploads::lock_token.eq(None::<String>),
            ))
            .execute(conn)?;
            Ok(())
        })
        .await
}

async fn renew(state: &AppState, id: &str, token: &str) -> ApiResult<bool> {
    let now = state.clock.now();
    let (id, token) = (id.to_string(), token.to_string());
    state
        .db
        .run(move |conn| {
            Ok(diesel::update(
                uploads::table
                    .find(&id)
                    .filter(uploads::lock_token.eq(&token)),
            )
            .set(uploads::locked_until.eq(now + Duration::seconds(LEASE_SECS)))
            .execute(conn)?
                == 1)
        })
        .await
}

/// Appends the body of a PATCH. Answers the upload as it stands afterwards.
pub async fn patch(
    state: &AppState,
    me: &AuthUser,
    id: &str,
    req: Patch,
    mut body: web::Payload,
) -> ApiResult<UploadRow> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    let token = uuid::Uuid::new_v4().to_string();
    let row = acquire(state, me, id, &token).await?;
    if row.state != "open" {
        return if req.offset as i64 == row.length && req.content_length.unwrap_or(0) == 0 {
            Ok(row)
        } else {
            Err(offset_conflict(row.length))
        };
    }
    let start = row.upload_offset;
    let outcome = append(state, &row, &req, &mut body, &token).await;
    let end = match outcome {
        Ok(end) => end,
        Err((keep, e)) => {
            release(state, &row.id, &token, keep.unwrap_or(start)).await?;
            return Err(e);
        }
    };
    release(state, &row.id, &token, end).await?;
    let mut row = row;
    row.upload_offset = end;
    if end == row.length {
        if row.concat == "partial" {
            let (id, now) = (row.id.clone(), state.clock.now());
            state
                .db
                .run(move |conn| {
                    diesel::update(uploads::table.find(&id))
                        .set((uploads::state.eq("complete"), uploads::completed_at.eq(now)))
                        .execute(conn)?;
                    Ok(())
                })
                .await?;
            row.state = "complete".into();
            return Ok(row);
        }
        return complete(state, &row).await;
    }
    Ok(row)
}

fn offset_conflict(expected: i64) -> ApiError {
    let mut extra = serde_json::Map::new();
    extra.insert("upload_offset".into(), serde_json::json!(expected));
    ApiError::Conflict {
        code: "offset_mismatch",
        message: format!("Upload-Offset must be {expected}, the bytes the server holds"),
        extra,
    }
}

/// Writes the body after the acknowledged bytes. `Ok(new offset)`; on failure, the offset
/// to acknowledge (if any bytes are kept) and the error.
async fn append(
    state: &AppState,
    row: &UploadRow,
    req: &Patch,
    body: &mut web::Payload,
    token: &str,
) -> Result<i64, (Option<i64>, ApiError)> {
    let start = row.upload_offset;
    if req.offset as i64 != start {
        return Err((None, offset_conflict(start)));
    }
    let room = (row.length - start) as u64;
    if let Some(n) = req.content_length
        && n > room
    {
        return Err((
            None,
            ApiError::PayloadTooLarge {
                message: format!("this upload takes {room} more bytes"),
            },
        ));
    }
    let path = part_path(&upload_dir(state), &row.id);
    let spool = |e: std::io::Error| (None, spool_error(e));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(spool)?;
    // Bytes past the acknowledged offset were never acknowledged: drop them.
    file.set_len(start as u64).map_err(spool)?;
    file.seek(SeekFrom::Start(start as u64)).map_err(spool)?;
    let mut hasher = match &req.checksum {
        None => Hasher::None,
        Some((Algorithm::Sha1, _)) => Hasher::Sha1(Sha1::new()),
        Some((Algorithm::Sha256, _)) => Hasher::Sha256(Sha256::new()),
    };
    let mut written: u64 = 0;
    let mut renewed = std::time::Instant::now();
    let cut = |file: &std::fs::File| {
        let _ = file.set_len(start as u64);
    };
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // The client went away. Without a checksum, what arrived is good; with one,
                // it cannot be checked and is dropped.
                if req.checksum.is_some() {
                    cut(&file);
                    return Err((
                        None,
                        ApiError::bad_request("body_incomplete", e.to_string()),
                    ));
                }
                let kept = file.sync_data().map(|_| start + written as i64).ok();
                return Err((
                    kept,
                    ApiError::bad_request("body_incomplete", e.to_string()),
                ));
            }
        };
        if written + chunk.len() as u64 > room {
            cut(&file);
            return Err((
                None,
                ApiError::PayloadTooLarge {
                    message: format!("this upload takes {room} more bytes"),
                },
            ));
        }
        hasher.update(&chunk);
        if let Err(e) = file.write_all(&chunk) {
            cut(&file);
            return Err((None, spool_error(e)));
        }
        written += chunk.len() as u64;
        if renewed.elapsed().as_secs() as i64 >= RENEW_SECS {
            renewed = std::time::Instant::now();
            match renew(state, &row.id, token).await {
                Ok(true) => {}
                Ok(false) => {
                    cut(&file);
                    return Err((
                        None,
                        ApiError::status(423, "upload_locked", "this request lost its hold"),
                    ));
                }
                Err(e) => {
                    cut(&file);
                    return Err((None, e));
                }
            }
        }
    }
    if let Some((_, expected)) = &req.checksum
        && hasher.finish() != *expected
    {
        cut(&file);
        return Err((
            None,
            ApiError::status(
                460,
                "checksum_mismatch",
                "the chunk does not match its Upload-Checksum; it was discarded",
            ),
        ));
    }
    if let Err(e) = file.sync_data() {
        cut(&file);
        return Err((None, spool_error(e)));
    }
    Ok(start + written as i64)
}

/// A failed write to the upload spool. A full disk (or quota) is storage unavailable: 503,
/// retry later, nothing of the chunk kept. Anything else is unexpected (500).
fn spool_error(e: std::io::Error) -> ApiError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            ApiError::unavailable(format!("upload spool: {e}"))
        }
        _ => ApiError::internal_from(e),
    }
}

fn image_error(e: ImageError) -> ApiError {
    match e {
        ImageError::Unsupported { .. } | ImageError::NotAnImage => ApiError::UnsupportedMediaType {
            message: e.to_string(),
        },
        ImageError::TooLarge { .. } => ApiError::Unprocessable {
            code: "image_too_large",
            message: e.to_string(),
            extra: Default::default(),
        },
        ImageError::Corrupt(_) => ApiError::Unprocessable {
            code: "image_damaged",
            message: e.to_string(),
            extra: Default::default(),
        },
        ImageError::Io(e) => ApiError::internal_from(e),
    }
}

/// Checks, validates and stores a fully received upload.
async fn complete(state: &AppState, row: &UploadRow) -> ApiResult<UploadRow> {
    let dir = upload_dir(state);
    let path = part_path(&dir, &row.id);
    let Some(sha) = row.sha256.clone() else {
        return Err(ApiError::internal("a complete upload without a hash"));
    };
    let limits = Limits {
        max_pixels: state.config.max_image_pixels,
        ..Limits::default()
    };
    let s = sha.clone();
    // Stored meanwhile by someone else: nothing to check or keep (as at creation).
    let known = state.db.run(move |conn| Ok(blob_exists(conn, &s)?)).await?;
    // Bounded memory: a few photos decode and copy at a time; the others wait here.
    let _permit = state
        .ingest_permits
        .acquire()
        .await
        .map_err(ApiError::internal_from)?;
    let processed = if known {
        Ok(None)
    } else {
        let (p, s) = (path.clone(), sha.clone());
        state
            .ingest_pool
            .run(move || process(&p, &s, &limits))
            .await?
            .map(Some)
    };
    let processed = match processed {
        Ok(p) => p,
        Err(e) => {
            discard(state, &row.id).await;
            return Err(e);
        }
    };
    if let Some((_, renditions)) = &processed {
        store_blob(&state.blobs, &sha, &path, renditions).await?;
    }
    let now = state.clock.now();
    let (id, user) = (row.id.clone(), row.user_id.clone());
    let size = row.length;
    let info = processed.map(|(i, _)| i);
    state
        .db
        .run(move |conn| finish_rows(conn, &id, &user, &sha, size, info.as_ref(), now))
        .await?;
    let _ = std::fs::remove_file(&path);
    let mut done = row.clone();
    done.state = "complete".into();
    done.upload_offset = done.length;
    done.completed_at = Some(now);
    Ok(done)
}

/// Whole-file hash check, then the image: blocking work.
fn process(path: &Path, sha: &str, limits: &Limits) -> ApiResult<(ImageInfo, Renditions)> {
    let mut file = std::fs::File::open(path).map_err(ApiError::internal_from)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(ApiError::internal_from)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    if hex::encode(h.finalize()) != sha {
        return Err(ApiError::status(
            460,
            "checksum_mismatch",
            "the file does not match its sha256 metadata; the upload was discarded",
        ));
    }
    let info = image::inspect(path, limits).map_err(image_error)?;
    let renditions = image::render(path, &info, limits).map_err(image_error)?;
    Ok((info, renditions))
}

async fn store_blob(
    blobs: &BlobStore,
    sha: &str,
    path: &Path,
    renditions: &Renditions,
) -> ApiResult<()> {
    blobs.put_file(sha, path).await?;
    blobs
        .put_bytes(sha, Variant::Preview, renditions.preview.jpeg.clone())
        .await?;
    blobs
        .put_bytes(sha, Variant::Thumb, renditions.thumb.jpeg.clone())
        .await?;
    Ok(())
}

/// The blob row (once per hash), the upload complete, and the evidence rows that waited for
/// this hash complete too, in one sync transaction (devices see the evidence complete).
fn finish_rows(
    conn: &mut DbConn,
    id: &str,
    user: &str,
    sha: &str,
    size: i64,
    info: Option<&ImageInfo>,
    now: NaiveDateTime,
) -> ApiResult<()> {
    sync_tx(conn, |tx| -> ApiResult<()> {
        if let Some(info) = info {
            let taken = info
                .taken_at
                .map(|t| t.instant().map(|i| i.naive_utc()).unwrap_or(t.local));
            let (w, h) = info.display_size();
            crate::with_engine!(tx.conn(), |c| {
                diesel::insert_into(blobs::table)
                    .values((
                        blobs::sha256.eq(sha),
                        blobs::size.eq(size),
                        blobs::format.eq(info.format),
                        blobs::width.eq(w as i32),
                        blobs::height.eq(h as i32),
                        blobs::taken_at.eq(taken),
                        blobs::gps_lat.eq(info.gps.map(|g| g.0)),
                        blobs::gps_lon.eq(info.gps.map(|g| g.1)),
                        blobs::orientation.eq(info.orientation as i32),
                        blobs::created_by.eq(user),
                        blobs::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
            })?;
        }
        diesel::update(uploads::table.find(id))
            .set((
                uploads::state.eq("complete"),
                uploads::upload_offset.eq(uploads::length),
                uploads::completed_at.eq(now),
                uploads::locked_until.eq(None::<NaiveDateTime>),
                uploads::lock_token.eq(None::<String>),
            ))
            .execute(tx.conn())?;
        super::service::complete_pending(tx, sha, now)
    })
}

/// Drops an upload and its bytes (a failed check).
async fn discard(state: &AppState, id: &str) {
    let id2 = id.to_string();
    let _ = state
        .db
        .run(move |conn| {
            diesel::delete(uploads::table.find(&id2)).execute(conn)?;
            Ok(())
        })
        .await;
    let _ = std::fs::remove_file(part_path(&upload_dir(state), id));
}

/// DELETE: the upload and its bytes are gone.
pub async fn terminate(state: &AppState, me: &AuthUser, id: &str) -> ApiResult<()> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    let (id2, user, now) = (id.to_string(), me.id.clone(), state.clock.now());
    state
        .db
        .run(move |conn| {
            let row = find(conn, &id2, &user)?.ok_or_else(not_found)?;
            if row.locked_until.is_some_and(|t| t > now) {
                return Err(ApiError::status(
                    423,
                    "upload_locked",
                    "a request is writing to this upload; retry after it ends",
                ));
            }
            diesel::delete(uploads::table.find(&id2)).execute(conn)?;
            Ok(())
        })
        .await?;
    let _ = std::fs::remove_file(part_path(&upload_dir(state), id));
    Ok(())
}

/// Deletes incomplete uploads past their expiry (and completed ones a day later), with
/// their bytes. Returns how many went.
pub fn sweep(conn: &mut DbConn, dir: &Path, now: NaiveDateTime) -> ApiResult<usize> {
    let old: Vec<String> = uploads::table
        .filter(
            uploads::state
                .eq("open")
                .and(uploads::expires_at.le(now))
                .or(uploads::state
                    .eq("complete")
                    .and(uploads::expires_at.le(now - Duration::days(1)))),
        )
        .filter(
            uploads::locked_until
                .is_null()
                .or(uploads::locked_until.lt(now)),
        )
        .select(uploads::id)
        .limit(10_000)
        .load(conn)?;
    for chunk in old.chunks(500) {
        diesel::delete(uploads::table.filter(uploads::id.eq_any(chunk))).execute(conn)?;
        for id in chunk {
            let _ = std::fs::remove_file(part_path(dir, id));
        }
    }
    Ok(old.len())
}
