//! Thin handlers: tus under `/api/v1/uploads/`, evidence rows and their downloads.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::blobs::Variant;
use super::service::{self, Attach};
use super::tus::{self, Concat};
use super::uploads::{self, CreateRequest, Patch, UploadRow};
use crate::app::{AppState, RouteDef};
use crate::auth::extractor::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::http::json::ApiJson;

pub const UPLOADS: &str = "/api/v1/uploads/";

pub fn routes() -> Vec<RouteDef> {
    vec![
        RouteDef::options(UPLOADS, || {
            web::method(actix_web::http::Method::OPTIONS).to(options)
        }),
        RouteDef::post(UPLOADS, || web::post().to(create)),
        RouteDef::head("/api/v1/uploads/{id}", || web::head().to(head)),
        RouteDef::patch("/api/v1/uploads/{id}", || web::patch().to(patch)),
        RouteDef::delete("/api/v1/uploads/{id}", || web::delete().to(terminate)),
        RouteDef::get("/api/v1/evidence", || web::get().to(list)),
        RouteDef::post("/api/v1/evidence", || web::post().to(attach)),
        RouteDef::get("/api/v1/evidence/{id}", || web::get().to(get)),
        RouteDef::get("/api/v1/evidence/{id}/{variant}", || {
            web::get().to(download)
        }),
    ]
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_header", format!("{name} is not visible ASCII"))
        }),
    }
}

fn header_error(e: tus::HeaderError) -> ApiError {
    ApiError::bad_request("invalid_header", e.0)
}

/// Every tus request but OPTIONS names the protocol version; another one is 412.
fn resumable(req: &HttpRequest) -> ApiResult<()> {
    match text(req.headers(), "tus-resumable")? {
        Some(v) if v.trim() == tus::VERSION => Ok(()),
        _ => Err(ApiError::status(
            412,
            "tus_version",
            format!("this server speaks tus {} (Tus-Resumable)", tus::VERSION),
        )),
    }
}

/// Scheme and host for `Location`: from `X-Forwarded-Proto` / `X-Forwarded-Host` only when
/// the peer is a trusted proxy (anyone else could point clients anywhere).
fn public_base(req: &HttpRequest, state: &AppState) -> String {
    let first = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| {
                !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            })
    };
    let trusted = req
        .peer_addr()
        .is_some_and(|a| state.proxies.contains(&a.ip()));
    let local_host = first("host").unwrap_or_else(|| req.app_config().host().to_string());
    let local_scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    if trusted {
        let scheme = match first("x-forwarded-proto").as_deref() {
            Some("https") => "https",
            Some("http") => "http",
            _ => local_scheme,
        };
        let host = first("x-forwarded-host").unwrap_or(local_host);
        format!("{scheme}://{host}")
    } else {
        format!("{local_scheme}://{local_host}")
    }
}

fn tus_headers(resp: &mut actix_web::HttpResponseBuilder) {
    resp.insert_header(("tus-resumable", tus::VERSION))
        .insert_header((header::CACHE_CONTROL, "no-store"));
}

fn state_headers(resp: &mut actix_web::HttpResponseBuilder, row: &UploadRow) {
    resp.insert_header(("upload-offset", row.upload_offset.to_string()));
    if row.state == "open" {
        resp.insert_header(("upload-expires", tus::http_date(row.expires_at)));
    }
}

async fn options(state: web::Data<AppState>, _me: AuthUser) -> HttpResponse {
    let mut resp = HttpResponse::NoContent();
    tus_headers(&mut resp);
    resp.insert_header(("tus-version", tus::VERSION))
        .insert_header(("tus-extension", tus::EXTENSIONS))
        .insert_header(("tus-max-size", state.config.max_upload_bytes.to_string()))
        .insert_header(("tus-checksum-algorithm", tus::CHECKSUM_ALGORITHMS))
        .finish()
}

async fn create(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    resumable(&req)?;
    let h = req.headers();
    let length = text(h, "upload-length")?
        .map(|v| tus::parse_u64("Upload-Length", v))
        .transpose()
        .map_err(header_error)?;
    let metadata_raw = text(h, "upload-metadata")?.unwrap_or("").to_string();
    let metadata = tus::parse_metadata(&metadata_raw).map_err(header_error)?;
    let concat = text(h, "upload-concat")?
        .map(tus::parse_concat)
        .transpose()
        .map_err(header_error)?;
    if matches!(concat, Some(Concat::Final(_))) && length.is_some() {
        return Err(ApiError::bad_request(
            "invalid_header",
            "a final upload takes no Upload-Length: it is the sum of its parts",
        ));
    }
    let row = uploads::create(
        &state,
        &me,
        CreateRequest {
            length,
            metadata_raw,
            metadata,
            concat,
        },
    )
    .await?;
    let mut resp = HttpResponse::Created();
    tus_headers(&mut resp);
    state_headers(&mut resp, &row);
    resp.insert_header((
        header::LOCATION,
        format!("{}{UPLOADS}{}", public_base(&req, &state), row.id),
    ));
    Ok(resp.finish())
}

async fn head(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    resumable(&req)?;
    let row = uploads::status(&state, &me, &id).await?;
    let mut resp = HttpResponse::Ok();
    tus_headers(&mut resp);
    state_headers(&mut resp, &row);
    resp.insert_header(("upload-length", row.length.to_string()));
    if !row.metadata.is_empty() {
        resp.insert_header(("upload-metadata", row.metadata.clone()));
    }
    match row.concat.as_str() {
        "partial" => {
            resp.insert_header(("upload-concat", "partial"));
        }
        "final" => {
            let urls: Vec<String> = row
                .part_ids()
                .iter()
                .map(|p| format!("{UPLOADS}{p}"))
                .collect();
            resp.insert_header(("upload-concat", format!("final;{}", urls.join(" "))));
        }
        _ => {}
    }
    Ok(resp.finish())
}

async fn patch(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    resumable(&req)?;
    let h = req.headers();
    if text(h, "content-type")?.map(|c| c.trim()) != Some("application/offset+octet-stream") {
        return Err(ApiError::UnsupportedMediaType {
            message: "a PATCH carries Content-Type: application/offset+octet-stream".into(),
        });
    }
    let offset = text(h, "upload-offset")?
        .ok_or_else(|| ApiError::bad_request("invalid_header", "Upload-Offset is required"))
        .and_then(|v| tus::parse_u64("Upload-Offset", v).map_err(header_error))?;
    let checksum = text(h, "upload-checksum")?
        .map(tus::parse_checksum)
        .transpose()
        .map_err(|e| ApiError::bad_request("unsupported_checksum", e.0))?;
    let content_length = text(h, "content-length")?
        .map(|v| tus::parse_u64("Content-Length", v))
        .transpose()
        .map_err(header_error)?;
    let row = uploads::patch(
        &state,
        &me,
        &id,
        Patch {
            offset,
            checksum,
            content_length,
        },
        body,
    )
    .await?;
    let mut resp = HttpResponse::NoContent();
    tus_headers(&mut resp);
    state_headers(&mut resp, &row);
    Ok(resp.finish())
}

async fn terminate(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    resumable(&req)?;
    uploads::terminate(&state, &me, &id).await?;
    let mut resp = HttpResponse::NoContent();
    tus_headers(&mut resp);
    Ok(resp.finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    hazard_id: String,
}

async fn list(
    state: web::Data<AppState>,
    me: AuthUser,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let items = service::list(&state, me, q.into_inner().hazard_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn attach(
    state: web::Data<AppState>,
    me: AuthUser,
    body: ApiJson<Attach>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(service::attach(&state, me, body.0).await?))
}

async fn get(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service::get(&state, me, id.into_inner()).await?))
}

/// `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` (one range) against `size`.
fn parse_range(value: &str, size: u64) -> Option<Result<std::ops::Range<u64>, ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answer the whole body
    }
    let (a, b) = spec.split_once('-')?;
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            size.saturating_sub(n)..size
        }
        (a, "") => a.parse().ok()?..size,
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            if b < a {
                return None;
            }
            a..(b + 1).min(size)
        }
    };
    if range.start >= size || range.is_empty() {
        return Some(Err(()));
    }
    Some(Ok(range))
}

async fn download(
    state: web::Data<AppState>,
    me: AuthUser,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, variant) = path.into_inner();
    let variant = Variant::parse(&variant).ok_or_else(|| ApiError::not_found("file"))?;
    let (row, format) = service::for_download(&state, me, id).await?;
    let etag = format!("\"{}-{}\"", row.sha256, variant.name());
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // If-None-Match compares weakly.
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let cache = "private, max-age=86400";
    if not_modified {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let content_type = match variant {
        Variant::Original => match format.as_str() {
            "png" => "image/png",
            "webp" => "image/webp",
            _ => "image/jpeg",
        },
        _ => "image/jpeg",
    };
    let whole = state.blobs.get(&row.sha256, variant, None).await?;
    let size = whole.meta.size;
    let range = match (variant, req.headers().get(header::RANGE)) {
        (Variant::Original, Some(v)) => v.to_str().ok().and_then(|v| parse_range(v, size)),
        _ => None,
    };
    let mut resp = match range {
        Some(Err(())) => {
            return Ok(HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(
                    ApiError::status(416, "range_not_satisfiable", "no such byte range").body(),
                ));
        }
        Some(Ok(r)) => {
            let mut resp = HttpResponse::PartialContent();
            resp.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
            drop(whole);
            let len = r.end - r.start;
            let part = state.blobs.get(&row.sha256, variant, Some(r)).await?;
            resp.insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, cache))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header((header::CONTENT_TYPE, content_type))
                .no_chunking(len);
            return Ok(resp.streaming(
                part.into_stream()
                    .map(|c| c.map_err(|e| ApiError::unavailable(e.to_string()))),
            ));
        }
        None => HttpResponse::Ok(),
    };
    if variant == Variant::Original {
        resp.insert_header((header::ACCEPT_RANGES, "bytes"));
    }
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_TYPE, content_type))
        .no_chunking(size);
    Ok(resp.streaming(
        whole
            .into_stream()
            .map(|c| c.map_err(|e| ApiError::unavailable(e.to_string()))),
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok(95..100)));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=9-1", 100), None);
    }
}
