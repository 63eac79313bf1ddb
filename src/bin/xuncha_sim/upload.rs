//! Photo uploads over tus 1.0.0: create, PATCH with a checksum, and the broken connection a
//! phone sees in the field: a PATCH cut off midway, then HEAD for the offset the server
//! acknowledges and a PATCH of the rest from there.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt as _;
use reqwest::header::CONTENT_TYPE;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::api::{Api, Fault};
use super::device::{DevErr, Device, Faults, Settings};
use super::stats::Ep;

impl Device {
    /// HEAD: the offset the server holds.
    async fn upload_offset(
        &mut self,
        api: &Api,
        s: &Settings,
        location: &str,
    ) -> Result<u64, DevErr> {
        let r = self
            .call(api, s, Ep::UploadHead, Faults::None, |c, tok| {
                c.head(location)
                    .bearer_auth(tok)
                    .header("tus-resumable", "1.0.0")
            })
            .await?;
        if r.status != 200 {
            return Err(self.unexpected(api, Ep::UploadHead, &r));
        }
        r.header("upload-offset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| DevErr(format!("device {}: HEAD without Upload-Offset", self.idx)))
    }

    /// Uploads photo `i` over tus; some uploads break off midway and resume from the offset
    /// the server acknowledges (HEAD, then PATCH from there).
    pub async fn upload(&mut self, api: &Api, s: &Settings, i: usize) -> Result<(), DevErr> {
        let Some(photo) = self.photos.get(i) else {
            return Ok(());
        };
        let Some(bytes) = photo.bytes.clone() else {
            return Ok(());
        };
        let len = bytes.len() as u64;
        let meta = format!(
            "sha256 {},filename {},content_type {}",
            B64.encode(&photo.sha256),
            B64.encode(&photo.name),
            B64.encode("image/jpeg")
        );
        let create_url = api.url("/api/v1/uploads/");
        let r = self
            .call(api, s, Ep::UploadCreate, Faults::None, |c, tok| {
                c.post(&create_url)
                    .bearer_auth(tok)
                    .header("tus-resumable", "1.0.0")
                    .header("upload-length", len.to_string())
                    .header("upload-metadata", &meta)
            })
            .await?;
        if r.status != 201 {
            return Err(self.unexpected(api, Ep::UploadCreate, &r));
        }
        let location = r.header("location").map(str::to_string).ok_or_else(|| {
            DevErr(format!(
                "device {}: upload created without Location",
                self.idx
            ))
        })?;
        let mut offset = r
            .header("upload-offset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                DevErr(format!(
                    "device {}: upload created without Upload-Offset",
                    self.idx
                ))
            })?;
        if offset >= len {
            api.stats
                .event("upload complete at creation (photo already stored)");
        } else if self.rng.chance(s.interrupt_rate) {
            // The connection breaks partway through the body.
            let cut = offset + ((len - offset) as f64 * self.rng.range_f64(0.2, 0.8)) as u64;
            let part = bytes[offset as usize..cut as usize].to_vec();
            let stream = futures_util::stream::iter([Ok::<Vec<u8>, std::io::Error>(part)]).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Err(std::io::Error::other("simulated connection loss"))
                }),
            );
            let rb = api
                .client
                .patch(&location)
                .bearer_auth(&self.access)
                .header("tus-resumable", "1.0.0")
                .header("upload-offset", offset.to_string())
                .header(CONTENT_TYPE, "application/offset+octet-stream")
                .body(reqwest::Body::wrap_stream(stream));
            match api.send(Ep::UploadPatch, rb, Fault::None).await {
                Err(_) => api
                    .stats
                    .event("upload interrupted midway (connection broken)"),
                Ok(r) => api.stats.event(&format!(
                    "interrupted upload PATCH answered {} anyway",
                    r.status
                )),
            }
            // A phone retries after a pause (tus-js-client: 1 s); meanwhile the server notices
            // the broken connection and acknowledges what it received.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let before = offset;
            offset = self.upload_offset(api, s, &location).await?;
            if offset > before {
                api.stats
                    .event("upload resumed from bytes kept by the server");
                api.stats
                    .event_n("upload bytes kept across interruptions", offset - before);
            } else {
                api.stats
                    .event("upload resumed from where it started (HEAD: nothing of the broken PATCH kept yet)");
            }
        }
        // The spec lets a PATCH whose client vanished hold the upload for about a minute.
        let mut locked_since: Option<Instant> = None;
        let mut tries = 0;
        while offset < len {
            tries += 1;
            if tries > 200 {
                return Err(DevErr(format!(
                    "device {}: upload did not finish after {tries} PATCHes",
                    self.idx
                )));
            }
            let chunk = bytes[offset as usize..].to_vec();
            let checksum = if self.rng.chance(0.5) {
                format!("sha1 {}", B64.encode(Sha1::digest(&chunk)))
            } else {
                format!("sha256 {}", B64.encode(Sha256::digest(&chunk)))
            };
            let r = self
                .call(api, s, Ep::UploadPatch, Faults::AnswerLost, |c, tok| {
                    c.patch(&location)
                        .bearer_auth(tok)
                        .header("tus-resumable", "1.0.0")
                        .header("upload-offset", offset.to_string())
                        .header("upload-checksum", &checksum)
                        .header(CONTENT_TYPE, "application/offset+octet-stream")
                        .body(chunk.clone())
                })
                .await;
            if !matches!(&r, Ok(r) if r.status == 423)
                && let Some(t) = locked_since.take()
            {
                let waited = t.elapsed().as_secs_f64();
                api.stats.event(if waited < 5.0 {
                    "upload locked (423) after a break: free again within 5 s"
                } else if waited < 30.0 {
                    "upload locked (423) after a break: free again within 30 s"
                } else {
                    "upload locked (423) after a break: free again after 30 s or more"
                });
            }
            match r {
                Ok(r) if r.status == 204 => {
                    offset = r
                        .header("upload-offset")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(offset);
                }
                Ok(r) if r.status == 409 => {
                    // A dropped answer: the server may hold more than the device thought.
                    api.stats
                        .event("upload PATCH at a stale offset (409): HEAD and resume");
                    offset = self.upload_offset(api, s, &location).await?;
                }
                Ok(r) if r.status == 423 => {
                    let since = *locked_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(90) {
                        return Err(self.unexpected(api, Ep::UploadPatch, &r));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    offset = self.upload_offset(api, s, &location).await?;
                }
                Ok(r) => return Err(self.unexpected(api, Ep::UploadPatch, &r)),
                Err(e) => return Err(e),
            }
        }
        if let Some(p) = self.photos.get_mut(i) {
            p.uploaded = true;
            p.bytes = None;
        }
        Ok(())
    }
}
