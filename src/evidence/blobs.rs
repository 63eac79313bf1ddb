//! Where evidence bytes live: an `object_store` (a local directory by default), addressed by
//! SHA-256. The original is stored byte for byte; renditions beside it.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::error::ApiError;

/// Bytes read from the upload file per write to the store.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    Preview,
    Thumb,
}

impl Variant {
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "original" => Some(Variant::Original),
            "preview" => Some(Variant::Preview),
            "thumb" => Some(Variant::Thumb),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Preview => "preview",
            Variant::Thumb => "thumb",
        }
    }
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Bytes buffered per part when copying a file in (S3 parts are at least 5 MiB).
    part_size: usize,
}

fn unavailable(e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { .. } => ApiError::not_found("file"),
        other => ApiError::unavailable(format!("blob store: {other}")),
    }
}

/// The key of `sha256`'s `variant` (fanned out by the first two hex digits).
pub fn key(sha256: &str, variant: Variant) -> StorePath {
    let fan = sha256.get(..2).unwrap_or("xx");
    StorePath::from(format!("{}/{fan}/{sha256}", variant.name()))
}

impl BlobStore {
    /// A store in a local directory (created if missing).
    pub fn local(dir: &Path) -> Result<BlobStore, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the blob store {}: {e}", dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("blob store {}: {e}", dir.display()))?;
        Ok(BlobStore {
            store: Arc::new(fs),
            part_size: 1024 * 1024,
        })
    }

    /// The store the configuration names: an S3-compatible bucket, else a local directory.
    pub fn from_config(cfg: &crate::config::Config) -> Result<BlobStore, String> {
        if cfg.blob_store_s3_bucket.trim().is_empty() {
            return BlobStore::local(&cfg.blob_store_dir());
        }
        let endpoint = cfg.blob_store_s3_endpoint.trim();
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(cfg.blob_store_s3_bucket.trim())
            .with_region(cfg.blob_store_s3_region.trim())
            .with_access_key_id(cfg.blob_store_s3_access_key_id.trim())
            .with_secret_access_key(
                cfg.blob_store_s3_secret_access_key
                    .as_deref()
                    .unwrap_or("")
                    .trim(),
            );
        if !endpoint.is_empty() {
            b = b
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let s3 = b
            .build()
            .map_err(|e| format!("blob store: S3 settings: {e}"))?;
        Ok(BlobStore {
            store: Arc::new(s3),
            part_size: 5 * 1024 * 1024,
        })
    }

    /// Copies the file at `path` to `sha256`'s original, a chunk at a time.
    pub async fn put_file(&self, sha256: &str, path: &Path) -> Result<(), ApiError> {
        let upload = self
            .store
            .put_multipart(&key(sha256, Variant::Original))
            .await
            .map_err(unavailable)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut file = std::fs::File::open(path).map_err(ApiError::internal_from)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).map_err(ApiError::internal_from)?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(2).await.map_err(unavailable)?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(unavailable)?;
        Ok(())
    }

    pub async fn put_bytes(
        &self,
        sha256: &str,
        variant: Variant,
        bytes: Vec<u8>,
    ) -> Result<(), ApiError> {
        self.store
            .put(&key(sha256, variant), PutPayload::from(bytes))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The stored object, or the given byte range of it, as a stream.
    pub async fn get(
        &self,
        sha256: &str,
        variant: Variant,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<object_store::GetResult, ApiError> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        self.store
            .get_opts(&key(sha256, variant), opts)
            .await
            .map_err(unavailable)
    }

    /// Removes every variant of `sha256` (missing ones are fine).
    pub async fn delete(&self, sha256: &str) -> Result<(), ApiError> {
        for v in [Variant::Original, Variant::Preview, Variant::Thumb] {
            match self.store.delete(&key(sha256, v)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }
}
