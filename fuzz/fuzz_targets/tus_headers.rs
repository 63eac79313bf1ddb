//! The tus header parsers (Upload-Metadata, Upload-Checksum, Upload-Concat, Upload-Length
//! and Upload-Offset): no panic on any header value, limits held, and what they accept is
//! well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xuncha::evidence::tus::{
    Concat, MAX_METADATA_BYTES, MAX_PARTS, parse_checksum, parse_concat, parse_metadata, parse_u64,
};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = parse_metadata(h) {
        assert!(h.len() <= MAX_METADATA_BYTES);
        assert!(m.keys().all(|k| !k.is_empty() && !k.contains([' ', ','])));
    }
    if let Ok((_, digest)) = parse_checksum(h) {
        assert!(!digest.is_empty());
    }
    if let Ok(Concat::Final(ids)) = parse_concat(h) {
        assert!(!ids.is_empty() && ids.len() <= MAX_PARTS);
    }
    if let Ok(n) = parse_u64("Upload-Offset", h) {
        assert_eq!(h.trim().parse::<u64>().ok(), Some(n));
    }
});
