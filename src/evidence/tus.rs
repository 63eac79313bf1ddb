//! The tus 1.0.0 headers (https://tus.io/protocols/resumable-upload): parsed strictly, with
//! limits, as pure functions (no I/O), so that they can be tested and fuzzed on their own.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDateTime;

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,expiration,checksum,termination,concatenation";
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
/// Longest `Upload-Metadata` accepted.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Most partial uploads one final upload may join.
pub const MAX_PARTS: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub struct HeaderError(pub String);

fn err(msg: impl Into<String>) -> HeaderError {
    HeaderError(msg.into())
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
/// Keys are unique, non-empty, and contain neither spaces nor commas; values must be UTF-8.
pub fn parse_metadata(header: &str) -> Result<BTreeMap<String, String>, HeaderError> {
    if header.len() > MAX_METADATA_BYTES {
        return Err(err(format!(
            "Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes"
        )));
    }
    let mut out = BTreeMap::new();
    if header.trim().is_empty() {
        return Ok(out);
    }
    for pair in header.split(',') {
        let pair = pair.trim();
        let mut parts = pair.split(' ').filter(|p| !p.is_empty());
        let key = parts
            .next()
            .ok_or_else(|| err("Upload-Metadata has an empty pair"))?;
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err("Upload-Metadata keys are printable ASCII"));
        }
        let value = match parts.next() {
            None => String::new(),
            Some(v) => {
                let bytes = STANDARD
                    .decode(v)
                    .map_err(|_| err(format!("Upload-Metadata `{key}` is not base64")))?;
                String::from_utf8(bytes)
                    .map_err(|_| err(format!("Upload-Metadata `{key}` is not UTF-8")))?
            }
        };
        if parts.next().is_some() {
            return Err(err(format!(
                "Upload-Metadata `{key}` has more than one value"
            )));
        }
        if out.insert(key.to_string(), value).is_some() {
            return Err(err(format!("Upload-Metadata `{key}` appears twice")));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
}

/// `Upload-Checksum`: `<algorithm> <base64 digest>`.
pub fn parse_checksum(header: &str) -> Result<(Algorithm, Vec<u8>), HeaderError> {
    let (name, digest) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| err("Upload-Checksum is `<algorithm> <base64 digest>`"))?;
    let (algo, len) = match name {
        "sha1" => (Algorithm::Sha1, 20),
        "sha256" => (Algorithm::Sha256, 32),
        other => {
            return Err(err(format!(
                "checksum algorithm `{}` is not supported ({CHECKSUM_ALGORITHMS})",
                other.chars().take(16).collect::<String>()
            )));
        }
    };
    let digest = STANDARD
        .decode(digest.trim())
        .map_err(|_| err("the Upload-Checksum digest is not base64"))?;
    if digest.len() != len {
        return Err(err("the Upload-Checksum digest has the wrong length"));
    }
    Ok((algo, digest))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    Partial,
    /// The ids of the partial uploads, in order.
    Final(Vec<String>),
}

/// `Upload-Concat`: `partial`, or `final;<url> <url> …` where each URL (absolute or a path)
/// ends in an upload id.
pub fn parse_concat(header: &str) -> Result<Concat, HeaderError> {
    let header = header.trim();
    if header == "partial" {
        return Ok(Concat::Partial);
    }
    let Some(list) = header.strip_prefix("final;") else {
        return Err(err("Upload-Concat is `partial` or `final;<urls>`"));
    };
    let mut ids = Vec::new();
    for url in list.split(' ').filter(|u| !u.is_empty()) {
        let id = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(err(
                "Upload-Concat names an upload this server did not make",
            ));
        }
        ids.push(id.to_string());
    }
    if ids.is_empty() {
        return Err(err("Upload-Concat final lists no partial uploads"));
    }
    if ids.len() > MAX_PARTS {
        return Err(err(format!(
            "at most {MAX_PARTS} partial uploads per final upload"
        )));
    }
    Ok(Concat::Final(ids))
}

/// A non-negative integer header (`Upload-Length`, `Upload-Offset`).
pub fn parse_u64(name: &str, value: &str) -> Result<u64, HeaderError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!("{name} must be a non-negative integer")));
    }
    v.parse()
        .map_err(|_| err(format!("{name} must be a non-negative integer")))
}

/// An RFC 9110 HTTP date (`Upload-Expires`).
pub fn http_date(t: NaiveDateTime) -> String {
    t.and_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs() {
        let m = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .unwrap();
        assert_eq!(m["filename"], "world_domination_plan.pdf");
        assert_eq!(m["is_confidential"], "");
        assert!(parse_metadata("").unwrap().is_empty());
        assert!(parse_metadata("a !!!").is_err());
        assert!(parse_metadata("a YQ==,a Yg==").is_err());
        assert!(parse_metadata("a YQ== Yg==").is_err());
        assert!(parse_metadata(",").is_err());
        assert!(parse_metadata(&"a".repeat(5000)).is_err());
        // Not UTF-8.
        assert!(parse_metadata("a /w==").is_err());
    }

    #[test]
    fn checksums() {
        let (a, d) = parse_checksum("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").unwrap();
        assert_eq!(a, Algorithm::Sha1);
        assert_eq!(d.len(), 20);
        assert!(parse_checksum("md5 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").is_err());
        assert!(parse_checksum("sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").is_err());
        assert!(parse_checksum("sha1").is_err());
    }

    #[test]
    fn concat() {
        assert_eq!(parse_concat("partial"), Ok(Concat::Partial));
        let a = uuid::Uuid::new_v4().to_string();
        let b = uuid::Uuid::new_v4().to_string();
        assert_eq!(
            parse_concat(&format!(
                "final;/api/v1/uploads/{a} https://x.example/api/v1/uploads/{b}"
            )),
            Ok(Concat::Final(vec![a, b]))
        );
        assert!(parse_concat("final;").is_err());
        assert!(parse_concat("final;/files/../../etc/passwd").is_err());
        assert!(parse_concat("whole").is_err());
    }

    #[test]
    fn integers_and_dates() {
        assert_eq!(parse_u64("Upload-Length", "42"), Ok(42));
        assert!(parse_u64("Upload-Length", "-1").is_err());
        assert!(parse_u64("Upload-Length", "1e3").is_err());
        assert!(parse_u64("Upload-Length", "99999999999999999999").is_err());
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 27)
            .unwrap()
            .and_hms_opt(8, 5, 0)
            .unwrap();
        assert_eq!(http_date(t), "Fri, 27 Nov 2026 08:05:00 GMT");
    }
}
