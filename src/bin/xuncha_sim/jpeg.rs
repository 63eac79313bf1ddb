//! Photos: a few real JPEGs made at start (a site-like gradient with noise, so they compress
//! like photos), and per photo a copy with its own comment segment, so that every device's
//! photo has its own SHA-256 and is really uploaded (the server stores a file once per hash).

use jpeg_encoder::{ColorType, Encoder};
use sha2::{Digest, Sha256};

use super::rng::Rng;

/// Base images made at start: `count` JPEGs of `width` x `height`.
pub fn base_images(
    count: usize,
    width: u16,
    height: u16,
    seed: u64,
) -> Result<Vec<Vec<u8>>, String> {
    let mut rng = Rng::new(seed ^ 0x4a50_4547);
    (0..count)
        .map(|k| {
            let (w, h) = (usize::from(width), usize::from(height));
            let (a, b, c) = (
                rng.below(256) as usize,
                rng.below(256) as usize,
                rng.below(256) as usize,
            );
            let mut px = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    let n = rng.below(24) as usize;
                    px.push(((x * 255 / w + a + n) % 256) as u8);
                    px.push(((y * 255 / h + b + n) % 256) as u8);
                    px.push((((x + y) * 128 / (w + h) + c + n + k * 40) % 256) as u8);
                }
            }
            let mut out = Vec::new();
            Encoder::new(&mut out, 85)
                .encode(&px, width, height, ColorType::Rgb)
                .map_err(|e| format!("JPEG encoding failed: {e}"))?;
            Ok(out)
        })
        .collect()
}

/// `base` with a COM segment carrying `tag` right after SOI: a valid JPEG of its own hash.
pub fn variant(base: &[u8], tag: &str) -> Vec<u8> {
    let text = tag.as_bytes();
    let len = (text.len() + 2).min(usize::from(u16::MAX)) as u16;
    let mut out = Vec::with_capacity(base.len() + text.len() + 4);
    out.extend_from_slice(&base[..2.min(base.len())]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&text[..usize::from(len) - 2]);
    out.extend_from_slice(&base[2.min(base.len())..]);
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
