//! The image-processing core run when an evidence upload completes: find out what the bytes
//! really are, refuse what we do not take before any pixel buffer exists, read the EXIF
//! facts (time taken, GPS, orientation), and make a metadata-free, auto-oriented thumbnail
//! (320 px) and preview (1280 px).
//!
//! Blocking and CPU-bound: call it on a blocking thread. The original file is only read.
//!
//! JPEG is decoded once, scaled in the DCT to the smallest size that still covers the
//! preview (a 4000 px photo decodes at 2000 px), and both renditions come from that decode.
//! With the `turbojpeg` feature (default) libjpeg-turbo decodes and encodes JPEG; without it,
//! or with [`JpegCodec::PureRust`], `jpeg-decoder` and `jpeg-encoder` do.

mod meta;
mod pixels;
mod probe;
pub mod sample;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use chrono::{DateTime, FixedOffset, NaiveDateTime};

use probe::Format;

/// Longest side of the thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 320;
/// Longest side of the preview, in pixels.
pub const PREVIEW_SIDE: u32 = 1280;
/// JPEG quality of both renditions.
pub const RENDITION_QUALITY: u8 = 80;

/// What an image may cost before it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most pixels (width × height) of an accepted image.
    pub max_pixels: u64,
    /// Longest accepted side, so that a 1 × 50,000,000 strip is refused too.
    pub max_side: u32,
    /// Most bytes that rendering may hold at once (file, decoded pixels, renditions). An image
    /// whose estimate is above it is refused before decoding.
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 50_000_000,
            max_side: 65_535,
            max_alloc: 256 << 20,
        }
    }
}

/// When the photo was taken, as the camera wrote it (EXIF DateTimeOriginal, with
/// SubSecTimeOriginal and OffsetTimeOriginal when present). Device clocks are data: this
/// is evidence of what the device claimed, never an ordering key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakenAt {
    /// The wall-clock time on the device.
    pub local: NaiveDateTime,
    /// The device's UTC offset at that time, when the camera recorded it.
    pub offset: Option<FixedOffset>,
}

impl TakenAt {
    /// The absolute instant, when the offset is known.
    pub fn instant(&self) -> Option<DateTime<FixedOffset>> {
        self.offset
            .and_then(|o| self.local.and_local_timezone(o).single())
    }
}

/// What [`inspect`] learnt from an image's headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// `"jpeg"`, `"png"` or `"webp"`: sniffed from the bytes.
    pub format: &'static str,
    /// Width of the stored pixels, before orientation.
    pub width: u32,
    /// Height of the stored pixels, before orientation.
    pub height: u32,
    pub taken_at: Option<TakenAt>,
    /// Latitude and longitude in degrees, south and west negative.
    pub gps: Option<(f64, f64)>,
    /// EXIF orientation, 1 to 8 (1 when absent or invalid).
    pub orientation: u16,
}

impl ImageInfo {
    /// Width and height as displayed, after orientation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.orientation >= 5 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// One JPEG rendition. Width and height are as displayed (already oriented).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renditions {
    /// Longest side [`THUMB_SIDE`] (or the image's own, if smaller).
    pub thumb: Rendition,
    /// Longest side [`PREVIEW_SIDE`] (or the image's own, if smaller).
    pub preview: Rendition,
}

/// Why an image was refused. The API maps `Unsupported` to 415, `NotAnImage` to 415,
/// `TooLarge` and `Corrupt` to 422, and `Io` (the server's own storage) to 500.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An image format recognised but not accepted (HEIC, HEIF, AVIF, GIF, TIFF, JPEG XL, or
    /// a JPEG flavour phones do not write, such as arithmetic-coded or CMYK).
    #[error("{format} images are not accepted; send JPEG, PNG or WebP")]
    Unsupported { format: &'static str },
    #[error("the file is not an image")]
    NotAnImage,
    /// Dimensions, pixel count or the memory decoding would need exceed [`Limits`].
    #[error("the image is too large ({width}x{height})")]
    TooLarge { width: u32, height: u32 },
    /// Truncated or undecodable.
    #[error("the image is damaged: {0}")]
    Corrupt(String),
    /// Reading the file failed (not the image's fault).
    #[error("reading the image: {0}")]
    Io(#[from] std::io::Error),
}

/// Which code decodes and encodes JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegCodec {
    #[cfg(feature = "turbojpeg")]
    LibjpegTurbo,
    /// `jpeg-decoder` with its DCT scaling, `jpeg-encoder` for the renditions. About 1.3x
    /// libjpeg-turbo's time. It refuses truncated files too, but not one cut short and then
    /// closed with an end marker: that decodes with the missing part filled in.
    PureRust,
}

impl Default for JpegCodec {
    fn default() -> Self {
        #[cfg(feature = "turbojpeg")]
        return JpegCodec::LibjpegTurbo;
        #[cfg(not(feature = "turbojpeg"))]
        return JpegCodec::PureRust;
    }
}

/// Sniffs the format and reads dimensions and EXIF from the headers, decoding no pixels.
/// Refuses non-images, formats we do not take, and images over `limits`.
pub fn inspect(path: &Path, limits: &Limits) -> Result<ImageInfo, ImageError> {
    let mut reader = BufReader::new(File::open(path)?);
    let header = probe::read_header(&mut reader)?;
    check_dimensions(&header, limits)?;
    let meta = header.exif.map(meta::parse).unwrap_or_default();
    Ok(ImageInfo {
        format: header.format.name(),
        width: header.width,
        height: header.height,
        taken_at: meta.taken_at,
        gps: meta.gps,
        orientation: meta.orientation,
    })
}

/// Makes the thumbnail and preview of an image [`inspect`] accepted, with the default codec.
pub fn render(path: &Path, info: &ImageInfo, limits: &Limits) -> Result<Renditions, ImageError> {
    render_with(path, info, limits, JpegCodec::default())
}

/// [`render`] with a chosen JPEG codec (benchmarks and tests compare them).
pub fn render_with(
    path: &Path,
    info: &ImageInfo,
    limits: &Limits,
    codec: JpegCodec,
) -> Result<Renditions, ImageError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    // The file itself counts against the budget; read no more than the budget allows.
    if len > limits.max_alloc {
        return Err(ImageError::TooLarge {
            width: info.width,
            height: info.height,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limits.max_alloc + 1).read_to_end(&mut bytes)?;

    // Parse again from the very bytes we decode: sizes and budgets must be theirs.
    let header = probe::read_header(&mut Cursor::new(&bytes[..]))?;
    if header.format.name() != info.format {
        return Err(ImageError::Corrupt(
            "the file changed since it was inspected".into(),
        ));
    }
    check_dimensions(&header, limits)?;

    let (pw, ph) = fit(header.width, header.height, PREVIEW_SIDE);
    let (tw, th) = fit(pw, ph, THUMB_SIDE);
    let budget = Budget {
        max_alloc: limits.max_alloc,
        // Held from decode to the end: the file, both rendition rasters and an oriented copy
        // of each (RGB), the encoded outputs (smaller than the rasters).
        fixed: bytes.len() as u64
            + 3 * 2 * (u64::from(pw) * u64::from(ph) + u64::from(tw) * u64::from(th)),
    };
    if !budget.allows(0) {
        return Err(header.too_large());
    }

    let decoded = match header.format {
        Format::Jpeg => pixels::decode_jpeg(&bytes, &header, (pw, ph), &budget, codec)?,
        Format::Png | Format::WebP => pixels::decode_other(&bytes, &header, &budget, limits)?,
    };
    drop(bytes);

    let preview = if (decoded.width, decoded.height) == (pw, ph) {
        decoded
    } else {
        let resized = pixels::resize(&decoded, pw, ph)?;
        drop(decoded); // the largest buffer; free it before encoding
        resized
    };
    let thumb = pixels::resize(&preview, tw, th)?;
    let orientation = info.orientation;
    let preview = pixels::orient(preview, orientation);
    let thumb = pixels::orient(thumb, orientation);
    Ok(Renditions {
        thumb: pixels::encode(&thumb, codec)?,
        preview: pixels::encode(&preview, codec)?,
    })
}

/// How much memory rendering may still take for decoding.
struct Budget {
    max_alloc: u64,
    fixed: u64,
}

impl Budget {
    /// Whether a decode needing `bytes` more fits.
    fn allows(&self, bytes: u64) -> bool {
        self.fixed.saturating_add(bytes) <= self.max_alloc
    }

    /// What is left for a decoder's own allocations.
    fn remaining(&self) -> u64 {
        self.max_alloc.saturating_sub(self.fixed)
    }
}

fn check_dimensions(header: &probe::Header, limits: &Limits) -> Result<(), ImageError> {
    let (w, h) = (header.width, header.height);
    if w == 0 || h == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    if w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(ImageError::TooLarge {
            width: w,
            height: h,
        });
    }
    Ok(())
}

/// Scales `w`×`h` so that its longest side is at most `side`, keeping the aspect ratio (never
/// upscaling, never below one pixel).
fn fit(w: u32, h: u32, side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= side {
        return (w, h);
    }
    let scale = |x: u32| -> u32 {
        let v = (u64::from(x) * u64::from(side) + u64::from(long) / 2) / u64::from(long);
        (v as u32).clamp(1, side)
    };
    (scale(w), scale(h))
}
