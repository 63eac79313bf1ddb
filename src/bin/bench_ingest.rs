//! Photo-evidence ingest benchmark; `scripts/bench_ingest.sh` runs it beside `vipsthumbnail`.
//!
//! - `bench_ingest gen OUT.jpg` writes a phone-like photo: 4000×3000, quality 90, 4:2:0, with
//!   EXIF (time taken, GPS, orientation 6 as a phone held upright writes it), 4–5 MB.
//! - `bench_ingest once FILE [CODEC [DIR]]` ingests it once (inspect + render) in this fresh
//!   process and prints `ms=… peak_kb=… base_kb=…` (VmHWM after and before); with DIR, writes
//!   the renditions there as thumb.jpg and preview.jpg to look at.
//! - `bench_ingest loop FILE N [CODEC]` ingests it N times in one process and prints the
//!   median (warm caches and allocator).
//!
//! CODEC is `default`, `turbo` (libjpeg-turbo) or `rust`.

// Outside tests, nothing unwraps: a value from a client or the database that is not there is
// an error to answer, not a panic (clippy fails the build on a new one).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use xuncha::evidence::image::{self as evidence_image, JpegCodec, Limits, Renditions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let result = match (arg(0), arg(1)) {
        (Some("gen"), Some(out)) => generate(Path::new(out)),
        (Some("once"), Some(file)) => {
            codec(arg(2)).and_then(|c| once(Path::new(file), c, arg(3).map(Path::new)))
        }
        (Some("loop"), Some(file)) => match arg(2).and_then(|n| n.parse().ok()) {
            Some(n) => codec(arg(3)).and_then(|c| repeat(Path::new(file), n, c)),
            None => Err("loop needs a count".into()),
        },
        _ => {
            Err("usage: bench_ingest gen OUT.jpg | once FILE [CODEC] | loop FILE N [CODEC]".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_ingest: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn codec(name: Option<&str>) -> Result<JpegCodec, Box<dyn std::error::Error>> {
    match name.unwrap_or("default") {
        "default" => Ok(JpegCodec::default()),
        #[cfg(feature = "turbojpeg")]
        "turbo" => Ok(JpegCodec::LibjpegTurbo),
        "rust" => Ok(JpegCodec::PureRust),
        other => Err(format!("unknown codec {other} (built without turbojpeg?)").into()),
    }
}

/// One ingest: what the upload-completion path does, less hashing and storage.
fn ingest(file: &Path, codec: JpegCodec) -> Result<Renditions, Box<dyn std::error::Error>> {
    let limits = Limits::default();
    let info = evidence_image::inspect(file, &limits)?;
    Ok(evidence_image::render_with(file, &info, &limits, codec)?)
}

/// VmHWM: the process's peak resident memory, in KiB.
fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn once(file: &Path, codec: JpegCodec, save: Option<&Path>) -> Res {
    let base = peak_kb();
    let start = Instant::now();
    let r = ingest(file, codec)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "ms={ms:.2} peak_kb={} base_kb={base} thumb={}x{}:{}B preview={}x{}:{}B codec={codec:?}",
        peak_kb(),
        r.thumb.width,
        r.thumb.height,
        r.thumb.jpeg.len(),
        r.preview.width,
        r.preview.height,
        r.preview.jpeg.len(),
    );
    if let Some(dir) = save {
        std::fs::write(dir.join("thumb.jpg"), &r.thumb.jpeg)?;
        std::fs::write(dir.join("preview.jpg"), &r.preview.jpeg)?;
    }
    Ok(())
}

fn repeat(file: &Path, n: usize, codec: JpegCodec) -> Res {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let start = Instant::now();
        ingest(file, codec)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median_ms={:.2} min_ms={:.2} runs={} codec={codec:?}",
        times[times.len() / 2],
        times[0],
        times.len()
    );
    Ok(())
}

/// A photo-like scene: broad gradients, a few frequencies of structure, and sensor-like
/// noise, so the entropy-coded data is as heavy as a phone's (a flat image would flatter us).
fn generate(out: &Path) -> Res {
    let (w, h) = (4000u32, 3000u32);
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    for y in 0..h {
        let fy = y as f32 / h as f32;
        for x in 0..w {
            let fx = x as f32 / w as f32;
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = ((s >> 32) & 0xFF) as f32 / 255.0 - 0.5;
            let (xf, yf) = (x as f32, y as f32);
            let rgb = [
                90.0 + 100.0 * fx
                    + 30.0 * (fx * 37.0 + fy * 11.0).sin()
                    + 25.0 * (xf * 0.05).sin() * (yf * 0.031).cos(),
                80.0 + 90.0 * fy
                    + 30.0 * (fy * 23.0).cos()
                    + 20.0 * (xf * 0.013 + yf * 0.021).sin(),
                120.0 + 60.0 * (1.0 - fx) * fy + 35.0 * (xf * 0.002 * yf * 0.003).sin(),
            ];
            px.extend(rgb.map(|c| (c + noise * 40.0).clamp(0.0, 255.0) as u8));
        }
    }
    let tiff = evidence_image::sample::phone_exif(&evidence_image::sample::PhoneExif {
        orientation: 6,
        taken: "2025:06:03 10:21:07",
        offset: "+08:00",
        lat: (31, 13, 4760),
        lon: (121, 28, 1030),
    })?;

    let mut encoder = jpeg_encoder::Encoder::new_file(out, 90)?;
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.add_exif_metadata(&tiff)?;
    encoder.encode(&px, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)?;
    println!("{} bytes, {w}x{h}", std::fs::metadata(out)?.len());
    Ok(())
}
