//! Photo evidence through the HTTP API, on SQLite and PostgreSQL: tus uploads (resume, wrong
//! offset, chunk checksums, whole-file hash, termination, expiry, concatenation, owners,
//! races, restarts), image checks, dedupe, evidence rows pending until their bytes arrive, and
//! downloads only for those whose scope holds the evidence.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::common::{BinResp, Direct, PASSWORD, TestApp};
use crate::registry::uscc;

crate::both_backends!(
    an_upload_resumes_checks_chunks_and_completes_its_evidence,
    the_same_bytes_are_stored_once,
    a_file_that_is_not_its_hash_is_discarded,
    images_are_checked_before_they_are_kept,
    limits_are_enforced_before_the_body_is_read,
    uploads_belong_to_their_creator,
    downloads_follow_the_scope_of_the_evidence,
    partial_uploads_join_into_one,
    uploads_end_by_termination_or_expiry,
    an_upload_resumes_on_another_server_after_a_restart,
    two_patches_never_interleave,
    a_stock_tus_client_uploads_unchanged,
    an_interrupted_patch_keeps_what_arrived,
);

crate::both_backends_raw!(
    photos_live_in_an_s3_compatible_store,
    locations_follow_trusted_proxies_only
);

const UPLOADS: &str = "/api/v1/uploads/";

/// A small photo-like JPEG (a gradient), `w` × `h`.
pub fn jpeg(w: u16, h: u16, seed: u8) -> Vec<u8> {
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            px.extend_from_slice(&[
                (x as u8).wrapping_add(seed),
                (y as u8).wrapping_mul(3),
                ((x ^ y) as u8).wrapping_add(seed),
            ]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// [`jpeg`] with the EXIF a phone writes: held upright (orientation 6), the time with its
/// offset, and GPS.
pub fn jpeg_with_exif(w: u16, h: u16, seed: u8) -> Vec<u8> {
    use xuncha::evidence::image::sample::{PhoneExif, phone_exif};
    let tiff = phone_exif(&PhoneExif {
        orientation: 6,
        taken: "2026:11:20 10:21:07",
        offset: "+08:00",
        lat: (30, 16, 1200),
        lon: (120, 9, 3600),
    })
    .unwrap();
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            px.extend_from_slice(&[(x as u8).wrapping_add(seed), (y as u8), 128]);
        }
    }
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.add_exif_metadata(&tiff).unwrap();
    enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn meta(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", STANDARD.encode(v)))
        .collect::<Vec<_>>()
        .join(",")
}

struct Tus<'a> {
    app: &'a TestApp,
    token: String,
}

impl Tus<'_> {
    fn rb(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.app.base)
        };
        self.app
            .client
            .request(method, url)
            .bearer_auth(&self.token)
            .header("tus-resumable", "1.0.0")
    }

    async fn send(&self, method: Method, url: &str, rb: reqwest::RequestBuilder) -> BinResp {
        let path = url
            .find("/api/")
            .map(|i| url[i..].to_string())
            .unwrap_or_else(|| url.to_string());
        self.app.send_bytes(method, &path, rb).await
    }

    /// POST: answers (status, Location).
    async fn create(&self, length: usize, metadata: &str) -> BinResp {
        let rb = self
            .rb(Method::POST, UPLOADS)
            .header("upload-length", length.to_string())
            .header("upload-metadata", metadata);
        self.send(Method::POST, UPLOADS, rb).await
    }

    async fn create_photo(&self, bytes: &[u8]) -> String {
        let r = self
            .create(
                bytes.len(),
                &meta(&[
                    ("sha256", &sha_hex(bytes)),
                    ("filename", "p.jpg"),
                    ("content_type", "image/jpeg"),
                ]),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        r.header("location").unwrap().to_string()
    }

    async fn patch(
        &self,
        url: &str,
        offset: usize,
        chunk: &[u8],
        checksum: Option<&str>,
    ) -> BinResp {
        let mut rb = self
            .rb(Method::PATCH, url)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(chunk.to_vec());
        if let Some(c) = checksum {
            rb = rb.header("upload-checksum", c);
        }
        self.send(Method::PATCH, url, rb).await
    }

    async fn head(&self, url: &str) -> BinResp {
        self.send(Method::HEAD, url, self.rb(Method::HEAD, url))
            .await
    }

    async fn offset(&self, url: &str) -> usize {
        let r = self.head(url).await;
        assert_eq!(r.status, 200);
        r.header("upload-offset").unwrap().parse().unwrap()
    }

    /// The whole file in one PATCH; answers the PATCH.
    async fn upload(&self, bytes: &[u8]) -> (String, BinResp) {
        let url = self.create_photo(bytes).await;
        let r = self.patch(&url, 0, bytes, None).await;
        (url, r)
    }
}

fn sha1_header(b: &[u8]) -> String {
    format!("sha1 {}", STANDARD.encode(Sha1::digest(b)))
}

struct Place {
    mgr: String,
    ins: String,
    other_ins: String,
    unit_user: String,
    hazard: String,
}

/// A district manager, an inspector of 330106 and one of 330105, a unit in 330106 with a
/// unit user, and a hazard the inspector reported there.
async fn place(app: &TestApp) -> Place {
    let admin = app.admin_token().await;
    app.create_user(&admin, "mgr", "manager", "330106").await;
    app.create_user(&admin, "ins", "inspector", "330106").await;
    app.create_user(&admin, "far", "inspector", "330105").await;
    let mgr = app.token("mgr", PASSWORD).await;
    let r = app
        .post(
            "/api/v1/units",
            &mgr,
            json!({"uscc": uscc("330106", 1), "name": "商场", "address": "路",
                   "region_code": "330106", "place_type": "mall"}),
        )
        .await;
    r.expect(201);
    let unit = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "shop", "password": PASSWORD, "display_name": "商场",
                   "role": "unit", "region_code": "330106", "unit_id": unit}),
        )
        .await;
    r.expect(201);
    let ins = app.token("ins", PASSWORD).await;
    let hazard = uuid::Uuid::new_v4().to_string();
    let r = push(
        app,
        &ins,
        "test-device",
        json!([{"seq": 1, "name": "hazard.report", "args": {"id": hazard, "unit_id": unit,
                "description": "安全钳失效", "level": "general", "fixed_on_site": false}}]),
    )
    .await;
    assert_eq!(r["results"][0]["status"], "applied", "{r}");
    Place {
        mgr,
        ins,
        other_ins: app.token("far", PASSWORD).await,
        unit_user: app.token("shop", PASSWORD).await,
        hazard,
    }
}

async fn push(app: &TestApp, token: &str, device: &str, mutations: Value) -> Value {
    let r = app
        .post(
            "/api/v1/sync/push",
            token,
            json!({"device_id": device, "mutations": mutations}),
        )
        .await;
    r.expect(200);
    r.body
}

async fn attach(app: &TestApp, token: &str, hazard: &str, sha: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let r = app
        .post(
            "/api/v1/evidence",
            token,
            json!({"id": id, "sha256": sha, "hazard_id": hazard, "kind": "finding",
                   "device_time": "2026-11-26T08:00:00Z", "gps": {"lat": 30.27, "lon": 120.15}}),
        )
        .await;
    r.expect(201);
    id
}

async fn download(app: &TestApp, token: &str, id: &str, variant: &str) -> BinResp {
    let path = format!("/api/v1/evidence/{id}/{variant}");
    let rb = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token);
    app.send_bytes(Method::GET, &path, rb).await
}

async fn an_upload_resumes_checks_chunks_and_completes_its_evidence(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg_with_exif(640, 480, 1);
    let sha = sha_hex(&photo);
    // The device attaches the evidence offline, before the bytes: pending.
    let id = uuid::Uuid::new_v4().to_string();
    let r = push(
        &app,
        &p.ins,
        "test-device",
        json!([{"seq": 2, "name": "evidence.attach", "args": {"id": id, "sha256": sha,
                "hazard_id": p.hazard, "kind": "finding"}}]),
    )
    .await;
    assert_eq!(r["results"][0]["status"], "applied", "{r}");
    let ev = app.get(&format!("/api/v1/evidence/{id}"), &p.ins).await;
    ev.expect(200);
    assert_eq!(ev.body["status"], "pending");
    let r = download(&app, &p.ins, &id, "original").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["code"], "evidence_pending");

    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let r = tus
        .send(Method::OPTIONS, UPLOADS, tus.rb(Method::OPTIONS, UPLOADS))
        .await;
    assert_eq!(r.status, 204);
    assert!(r.header("tus-extension").unwrap().contains("concatenation"));
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha1,sha256"));

    let url = tus.create_photo(&photo).await;
    assert!(url.starts_with(&app.base), "absolute Location: {url}");
    assert_eq!(tus.offset(&url).await, 0);
    let half = photo.len() / 2;
    let r = tus
        .patch(&url, 0, &photo[..half], Some(&sha1_header(&photo[..half])))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("upload-offset"), Some(half.to_string().as_str()));
    assert!(r.header("upload-expires").unwrap().ends_with("GMT"));
    // Resume: the server says where it stands.
    let h = tus.head(&url).await;
    assert_eq!(h.header("upload-offset"), Some(half.to_string().as_str()));
    assert_eq!(
        h.header("upload-length"),
        Some(photo.len().to_string().as_str())
    );
    assert_eq!(h.header("cache-control"), Some("no-store"));
    // The wrong offset is refused and changes nothing.
    let r = tus.patch(&url, 0, &photo[..10], None).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["upload_offset"], half);
    // A chunk that does not match its checksum is dropped.
    let rest = &photo[half..];
    let r = tus
        .patch(&url, half, rest, Some(&sha1_header(b"something else")))
        .await;
    assert_eq!(r.status, 460);
    assert_eq!(tus.offset(&url).await, half);
    let sha256_rest = format!("sha256 {}", STANDARD.encode(Sha256::digest(rest)));
    let r = tus.patch(&url, half, rest, Some(&sha256_rest)).await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(
        r.header("upload-offset"),
        Some(photo.len().to_string().as_str())
    );

    // The evidence is complete, with what the photo says.
    let ev = app.get(&format!("/api/v1/evidence/{id}"), &p.ins).await;
    assert_eq!(ev.body["status"], "complete", "{}", ev.text);
    // Held upright: displayed 480 wide, 640 high.
    assert_eq!(
        (ev.body["width"].clone(), ev.body["height"].clone()),
        (json!(480), json!(640))
    );
    assert_eq!(ev.body["orientation"], 6);
    assert_eq!(ev.body["taken_at"], "2026-11-20T02:21:07Z");
    let lat = ev.body["exif_gps"]["lat"].as_f64().unwrap();
    let lon = ev.body["exif_gps"]["lon"].as_f64().unwrap();
    assert!(
        (lat - 30.27).abs() < 1e-6 && (lon - 120.16).abs() < 1e-6,
        "{lat} {lon}"
    );
    let original = download(&app, &p.ins, &id, "original").await;
    assert_eq!(original.status, 200);
    assert_eq!(original.bytes, photo, "the original is kept byte for byte");
    assert_eq!(original.header("content-type"), Some("image/jpeg"));
    let thumb = download(&app, &p.ins, &id, "thumb").await;
    assert_eq!(thumb.status, 200);
    assert_eq!(&thumb.bytes[..2], &[0xFF, 0xD8], "a JPEG");
    assert!(thumb.bytes.len() < photo.len());
    // Ranges and revalidation.
    let path = format!("/api/v1/evidence/{id}/original");
    let rb = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&p.ins)
        .header("range", "bytes=10-19");
    let r = app.send_bytes(Method::GET, &path, rb).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.bytes, photo[10..20]);
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{}", photo.len()).as_str())
    );
    let etag = original.header("etag").unwrap().to_string();
    let rb = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&p.ins)
        .header("if-none-match", &etag);
    assert_eq!(app.send_bytes(Method::GET, &path, rb).await.status, 304);
    // Devices get the completed row through pull.
    let r = app.get("/api/v1/sync/pull?limit=5000", &p.ins).await;
    let row = r.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["table"] == "evidence" && c["id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("evidence not pulled: {}", r.text));
    assert_eq!(row["data"]["status"], "complete");
}

async fn the_same_bytes_are_stored_once(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(320, 200, 2);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let (_, r) = tus.upload(&photo).await;
    assert_eq!(r.status, 204);
    // Another user, the same bytes: complete at creation, nothing to send.
    let unit = Tus {
        app: &app,
        token: p.unit_user.clone(),
    };
    let r = unit
        .create(photo.len(), &meta(&[("sha256", &sha_hex(&photo))]))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("upload-offset"),
        Some(photo.len().to_string().as_str())
    );
    let url = r.header("location").unwrap().to_string();
    assert_eq!(unit.offset(&url).await, photo.len());
    let mut db = Direct::open(&app);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM blobs"), 1);
    // Evidence attached after the bytes arrived is complete at once.
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    let ev = app.get(&format!("/api/v1/evidence/{id}"), &p.ins).await;
    assert_eq!(ev.body["status"], "complete", "{}", ev.text);
}

async fn a_file_that_is_not_its_hash_is_discarded(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(100, 100, 3);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let r = tus
        .create(photo.len(), &meta(&[("sha256", &sha_hex(b"other bytes"))]))
        .await;
    let url = r.header("location").unwrap().to_string();
    let r = tus.patch(&url, 0, &photo, None).await;
    assert_eq!(r.status, 460);
    assert_eq!(r.body["error"]["code"], "checksum_mismatch");
    assert_eq!(tus.head(&url).await.status, 404, "the upload was discarded");
    let mut db = Direct::open(&app);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM blobs"), 0);
}

async fn images_are_checked_before_they_are_kept(app: TestApp) {
    let p = place(&app).await;
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    // Not an image, whatever its name says.
    let text = b"GIF? no: just text pretending to be a photo".to_vec();
    let url = tus
        .create(
            text.len(),
            &meta(&[("sha256", &sha_hex(&text)), ("filename", "a.jpg")]),
        )
        .await
        .header("location")
        .unwrap()
        .to_string();
    assert_eq!(tus.patch(&url, 0, &text, None).await.status, 415);
    // HEIC: recognised, refused.
    let mut heic = vec![0, 0, 0, 24];
    heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    heic.extend_from_slice(&[0u8; 64]);
    let (_, r) = tus.upload(&heic).await;
    assert_eq!(r.status, 415, "{}", String::from_utf8_lossy(&r.bytes));
    let msg = r.body["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(msg.contains("heic"), "{msg}");
    // Truncated.
    let photo = jpeg(400, 300, 4);
    let cut = photo[..photo.len() / 2].to_vec();
    let (_, r) = tus.upload(&cut).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.bytes));
    // A PNG that claims 100000 × 100000 pixels: refused from its header.
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &[0u8; 3],
        1,
        1,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let (_, r) = tus.upload(&png).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.body["error"]["code"], "image_too_large");
    let mut db = Direct::open(&app);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM blobs"), 0);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM uploads"),
        0,
        "refused uploads are dropped"
    );
}

async fn limits_are_enforced_before_the_body_is_read(app: TestApp) {
    let p = place(&app).await;
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let r = tus
        .create(26_214_401, &meta(&[("sha256", &"0".repeat(64))]))
        .await;
    assert_eq!(r.status, 413);
    let r = tus.create(10, "").await;
    assert_eq!(r.status, 400, "sha256 metadata is required");
    let r = tus.create(10, &meta(&[("sha256", "xyz")])).await;
    assert_eq!(r.status, 400);
    let url = tus
        .create(10, &meta(&[("sha256", &"a".repeat(64))]))
        .await
        .header("location")
        .unwrap()
        .to_string();
    // More bytes than the upload takes, announced by Content-Length: 413.
    let r = tus.patch(&url, 0, &[0u8; 11], None).await;
    assert_eq!(r.status, 413);
    assert_eq!(tus.offset(&url).await, 0);
    // The wrong media type, and a missing protocol version.
    let rb = tus
        .rb(Method::PATCH, &url)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", "0")
        .body(vec![1u8; 3]);
    assert_eq!(tus.send(Method::PATCH, &url, rb).await.status, 415);
    let rb = app
        .client
        .head(&url)
        .bearer_auth(&p.ins)
        .header("tus-resumable", "0.2.2");
    let r = tus.send(Method::HEAD, &url, rb).await;
    assert_eq!(r.status, 412);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    // Incomplete uploads per user are limited.
    let app2 = TestApp::spawn_on_with(app.db.beside(), |c| c.max_open_uploads_per_user = 2).await;
    let tus2 = Tus {
        app: &app2,
        token: p.ins.clone(),
    };
    assert_eq!(
        tus2.create(10, &meta(&[("sha256", &"b".repeat(64))]))
            .await
            .status,
        201
    );
    let r = tus2.create(10, &meta(&[("sha256", &"c".repeat(64))])).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("60"));
}

async fn uploads_belong_to_their_creator(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(64, 64, 5);
    let mine = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let theirs = Tus {
        app: &app,
        token: p.other_ins.clone(),
    };
    let url = mine.create_photo(&photo).await;
    assert_eq!(theirs.head(&url).await.status, 404);
    assert_eq!(theirs.patch(&url, 0, &photo, None).await.status, 404);
    let rb = theirs.rb(Method::DELETE, &url);
    assert_eq!(theirs.send(Method::DELETE, &url, rb).await.status, 404);
    assert_eq!(mine.offset(&url).await, 0);
    // Without a token: 401.
    let rb = app.client.head(&url).header("tus-resumable", "1.0.0");
    assert_eq!(mine.send(Method::HEAD, &url, rb).await.status, 401);
}

async fn downloads_follow_the_scope_of_the_evidence(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(200, 150, 6);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    assert_eq!(tus.upload(&photo).await.1.status, 204);
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    for (who, token) in [("manager", &p.mgr), ("unit user", &p.unit_user)] {
        let r = download(&app, token, &id, "preview").await;
        assert_eq!(r.status, 200, "{who}");
    }
    // Another district's inspector: as if it did not exist.
    for variant in ["original", "preview", "thumb"] {
        let r = download(&app, &p.other_ins, &id, variant).await;
        assert_eq!(r.status, 404, "{variant}");
    }
    assert_eq!(
        app.get(&format!("/api/v1/evidence/{id}"), &p.other_ins)
            .await
            .status,
        404
    );
    let list = app
        .get(
            &format!("/api/v1/evidence?hazard_id={}", p.hazard),
            &p.other_ins,
        )
        .await;
    assert_eq!(list.status, 404);
    let list = app
        .get(&format!("/api/v1/evidence?hazard_id={}", p.hazard), &p.mgr)
        .await;
    list.expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    // The hash alone is no key: an unknown variant or id is 404 too.
    assert_eq!(download(&app, &p.mgr, &id, "raw").await.status, 404);
    // A unit user may only attach rectification photos.
    let r = app
        .post(
            "/api/v1/evidence",
            &p.unit_user,
            json!({"id": uuid::Uuid::new_v4().to_string(), "sha256": sha_hex(&photo),
                   "hazard_id": p.hazard, "kind": "finding"}),
        )
        .await;
    r.expect(422);
}

async fn partial_uploads_join_into_one(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(300, 300, 7);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let (a, b) = photo.split_at(photo.len() / 3);
    let mut urls = Vec::new();
    for part in [a, b] {
        let rb = tus
            .rb(Method::POST, UPLOADS)
            .header("upload-length", part.len().to_string())
            .header("upload-concat", "partial");
        let r = tus.send(Method::POST, UPLOADS, rb).await;
        assert_eq!(r.status, 201);
        let url = r.header("location").unwrap().to_string();
        assert_eq!(tus.patch(&url, 0, part, None).await.status, 204);
        assert_eq!(
            tus.head(&url).await.header("upload-concat"),
            Some("partial")
        );
        urls.push(url);
    }
    let rb = tus
        .rb(Method::POST, UPLOADS)
        .header("upload-concat", format!("final;{} {}", urls[0], urls[1]))
        .header("upload-metadata", meta(&[("sha256", &sha_hex(&photo))]));
    let r = tus.send(Method::POST, UPLOADS, rb).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    let original = download(&app, &p.ins, &id, "original").await;
    assert_eq!(original.bytes, photo);
    // A final upload takes no PATCH.
    let final_url = r.header("location").unwrap().to_string();
    assert_eq!(tus.patch(&final_url, 0, b"x", None).await.status, 403);
}

async fn uploads_end_by_termination_or_expiry(app: TestApp) {
    let p = place(&app).await;
    let mut tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let photo = jpeg(64, 48, 8);
    let url = tus.create_photo(&photo).await;
    assert_eq!(tus.patch(&url, 0, &photo[..10], None).await.status, 204);
    let rb = tus.rb(Method::DELETE, &url);
    assert_eq!(tus.send(Method::DELETE, &url, rb).await.status, 204);
    assert_eq!(tus.head(&url).await.status, 404);
    // Expiry: gone after a day, then swept with its bytes.
    let url = tus.create_photo(&photo).await;
    assert_eq!(tus.patch(&url, 0, &photo[..10], None).await.status, 204);
    app.clock.advance(chrono::Duration::hours(25));
    tus.token = app.token("ins", PASSWORD).await;
    assert_eq!(tus.head(&url).await.status, 410);
    assert_eq!(tus.patch(&url, 10, &photo[10..], None).await.status, 410);
    // The sweep (the periodic job's work, at the server's time) removes it.
    let cfg = crate::common::test_config(&app.db);
    let db = xuncha::db::Db::open(&cfg.db_target().unwrap(), cfg.pool_options()).unwrap();
    let mut conn = db.get().unwrap();
    let dir = app.db.data_dir().join("uploads");
    let swept = xuncha::evidence::uploads::sweep(&mut conn, &dir, app.clock.now()).unwrap();
    assert_eq!(swept, 1);
    // The command does the same at the real time (nothing has expired by then).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xuncha"))
        .args(["uploads", "sweep"])
        .env("DATABASE_URL", &app.db.url)
        .env("XUNCHA_DATA_DIR", app.db.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 expired uploads removed"));
    assert_eq!(tus.head(&url).await.status, 404);
    let parts = std::fs::read_dir(app.db.data_dir().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(parts, 0, "the bytes went with it");
}

async fn an_upload_resumes_on_another_server_after_a_restart(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(500, 400, 9);
    let half = photo.len() / 2;
    let url = {
        let other = app.spawn_beside(|_| {}).await;
        let tus = Tus {
            app: &other,
            token: p.ins.clone(),
        };
        let url = tus.create_photo(&photo).await;
        assert_eq!(tus.patch(&url, 0, &photo[..half], None).await.status, 204);
        url
        // The server that took the first half stops here.
    };
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let path = &url[url.find("/api/").unwrap()..];
    assert_eq!(tus.offset(path).await, half);
    let r = tus.patch(path, half, &photo[half..], None).await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.bytes));
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    assert_eq!(download(&app, &p.ins, &id, "original").await.bytes, photo);
}

async fn two_patches_never_interleave(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(400, 400, 10);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let url = tus.create_photo(&photo).await;
    // The first PATCH sends its body slowly: one chunk, then waits.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let first = {
        let rb = tus
            .rb(Method::PATCH, &url)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body(reqwest::Body::wrap_stream(body));
        actix_rt::spawn(async move { rb.send().await.map(|r| r.status().as_u16()) })
    };
    tx.send(photo[..100].to_vec()).unwrap();
    // Wait until the server holds the upload for it.
    let mut db = Direct::open(&app);
    let held = "SELECT COUNT(*) AS n FROM uploads WHERE lock_token IS NOT NULL";
    wait_for_count(&mut db, held, 1, "the first PATCH never started").await;
    let r = tus.patch(&url, 0, &photo, None).await;
    assert!(
        r.status == 423 || r.status == 409,
        "the second PATCH must wait its turn: {}",
        r.status
    );
    tx.send(photo[100..].to_vec()).unwrap();
    drop(tx);
    assert_eq!(first.await.unwrap().unwrap(), 204);
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    assert_eq!(download(&app, &p.ins, &id, "original").await.bytes, photo);
}

/// tuspy, from PyPI, as its documentation uses it (scripts/test.sh installs it into
/// target/pytools): create, upload half, resume on the same URL after a HEAD, sha1 checksums.
async fn a_stock_tus_client_uploads_unchanged(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(800, 600, 11);
    let file = app.db.data_dir().join("photo.jpg");
    std::fs::write(&file, &photo).unwrap();
    let pythonpath = std::env::var("XUNCHA_TEST_PYTHONPATH")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/pytools").to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/tus_upload.py");
    let args = vec![
        script.to_string(),
        format!("{}{UPLOADS}", app.base),
        p.ins.clone(),
        file.display().to_string(),
        sha_hex(&photo),
        "16384".to_string(),
    ];
    // The client blocks; the server runs on this test's thread meanwhile.
    let out = actix_rt::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(&args)
            .env("PYTHONPATH", pythonpath)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'tusclient'"),
        "tuspy is not installed: run scripts/test.sh, which installs it into target/pytools"
    );
    assert!(out.status.success(), "tuspy failed: {stderr}");
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(url.starts_with(&format!("{}{UPLOADS}", app.base)), "{url}");
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    assert_eq!(download(&app, &p.ins, &id, "original").await.bytes, photo);
}

/// With an S3 bucket configured, originals and renditions go there (and come back from
/// there, ranges included), nothing to the local blob directory.
async fn photos_live_in_an_s3_compatible_store(backend: crate::common::Backend) {
    let db = crate::common::TestDb::new(backend);
    let s3_root = db.data_dir().join("s3");
    let endpoint = crate::common::start_s3(&s3_root, "evidence");
    let app = TestApp::spawn_on_with(db, |c| {
        c.blob_store_s3_bucket = "evidence".into();
        c.blob_store_s3_endpoint = endpoint.clone();
        c.blob_store_s3_access_key_id = crate::common::S3_ACCESS_KEY.into();
        c.blob_store_s3_secret_access_key = Some(crate::common::S3_SECRET_KEY.into());
    })
    .await;
    let p = place(&app).await;
    let photo = jpeg(640, 480, 12);
    let sha = sha_hex(&photo);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let (_, r) = tus.upload(&photo).await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.bytes));
    let stored = s3_root
        .join("evidence")
        .join("original")
        .join(&sha[..2])
        .join(&sha);
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        photo,
        "the original is in the bucket"
    );
    assert!(
        s3_root
            .join("evidence")
            .join("thumb")
            .join(&sha[..2])
            .join(&sha)
            .exists()
    );
    assert!(!app.db.data_dir().join("blobs").join("original").exists());
    let id = attach(&app, &p.ins, &p.hazard, &sha).await;
    assert_eq!(download(&app, &p.ins, &id, "original").await.bytes, photo);
    let path = format!("/api/v1/evidence/{id}/original");
    let rb = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&p.ins)
        .header("range", "bytes=-100");
    let r = app.send_bytes(Method::GET, &path, rb).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.bytes, photo[photo.len() - 100..]);
}

/// Waits (yielding to the server on this thread) until `sql` counts `want` rows.
async fn wait_for_count(db: &mut Direct, sql: &str, want: i64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.count(sql) != want {
        assert!(std::time::Instant::now() < deadline, "{what}");
        actix_rt::task::yield_now().await;
    }
}

/// The connection drops in the middle of a PATCH: the bytes that arrived are kept (no
/// checksum was asked for), and the client resumes from there.
async fn an_interrupted_patch_keeps_what_arrived(app: TestApp) {
    let p = place(&app).await;
    let photo = jpeg(500, 300, 13);
    let tus = Tus {
        app: &app,
        token: p.ins.clone(),
    };
    let url = tus.create_photo(&photo).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Vec<u8>, std::io::Error>>();
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let rb = tus
        .rb(Method::PATCH, &url)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(reqwest::Body::wrap_stream(body));
    let sent = actix_rt::spawn(async move { rb.send().await.is_err() });
    tx.send(Ok(photo[..1000].to_vec())).unwrap();
    // Wait until the server is writing, then break the body off.
    let mut db = Direct::open(&app);
    let held = "SELECT COUNT(*) AS n FROM uploads WHERE lock_token IS NOT NULL";
    wait_for_count(&mut db, held, 1, "the PATCH never started").await;
    tx.send(Err(std::io::Error::other("network gone"))).unwrap();
    assert!(sent.await.unwrap(), "the client saw its request fail");
    // The server keeps the 1000 bytes once it has let go of the upload.
    wait_for_count(&mut db, held, 0, "the PATCH never ended").await;
    let offset = tus.offset(&url).await;
    assert_eq!(offset, 1000);
    assert_eq!(
        tus.patch(&url, offset, &photo[offset..], None).await.status,
        204
    );
    let id = attach(&app, &p.ins, &p.hazard, &sha_hex(&photo)).await;
    assert_eq!(download(&app, &p.ins, &id, "original").await.bytes, photo);
}

/// `Location` uses X-Forwarded-Proto/Host only from a configured proxy.
async fn locations_follow_trusted_proxies_only(backend: crate::common::Backend) {
    for trusted in [false, true] {
        let app = TestApp::spawn_with(backend, |c| {
            if trusted {
                c.trusted_proxies = vec!["127.0.0.1".into()];
            }
        })
        .await;
        let admin = app.admin_token().await;
        let photo = jpeg(32, 32, 14);
        let tus = Tus {
            app: &app,
            token: admin,
        };
        let rb = tus
            .rb(Method::POST, UPLOADS)
            .header("upload-length", photo.len().to_string())
            .header("upload-metadata", meta(&[("sha256", &sha_hex(&photo))]))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "xuncha.example.gov.cn");
        let r = tus.send(Method::POST, UPLOADS, rb).await;
        assert_eq!(r.status, 201);
        let location = r.header("location").unwrap();
        if trusted {
            assert!(
                location.starts_with("https://xuncha.example.gov.cn/api/v1/uploads/"),
                "{location}"
            );
        } else {
            assert!(location.starts_with(&app.base), "{location}");
        }
    }
}
