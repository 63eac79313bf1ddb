//! Pixels: decoding (JPEG scaled in the DCT, PNG and WebP through `image`), resizing,
//! orienting, and encoding the renditions.

use std::io::Cursor;

use fast_image_resize as fir;

use super::probe::{Format, Header};
use super::{Budget, ImageError, JpegCodec, Limits, RENDITION_QUALITY, Rendition};

/// 8-bit pixels, grey (1 channel) or RGB (3), rows packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Raster {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
}

/// A progressive JPEG costs a pass over every block per scan; encoders write about ten.
/// Thousands of tiny scans are a CPU bomb, refused before decoding.
const MAX_SCANS: usize = 256;

fn corrupt(what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(format!("{what}: {e}"))
}

/// Decodes a JPEG once, at the smallest DCT scale (1/8, 1/4, 1/2 or 1) whose output still
/// covers `cover` (the preview size, in stored orientation).
pub(super) fn decode_jpeg(
    bytes: &[u8],
    header: &Header,
    cover: (u32, u32),
    budget: &Budget,
    codec: JpegCodec,
) -> Result<Raster, ImageError> {
    let frame = header
        .jpeg
        .as_ref()
        .ok_or_else(|| ImageError::Corrupt("no JPEG frame".into()))?;
    let (w, h) = (u64::from(header.width), u64::from(header.height));
    if frame.progressive {
        let scans = bytes.windows(2).filter(|p| p == &[0xFF, 0xDA]).count();
        if scans > MAX_SCANS {
            return Err(ImageError::Corrupt(format!(
                "{scans} scans in a progressive JPEG"
            )));
        }
    }

    let denom = [8u64, 4, 2, 1]
        .into_iter()
        .find(|d| w.div_ceil(*d) >= u64::from(cover.0) && h.div_ceil(*d) >= u64::from(cover.1))
        .unwrap_or(1);
    let channels = frame.sampling.len().min(3) as u64;
    let out = w.div_ceil(denom) * h.div_ceil(denom) * channels;
    // Decoders keep component planes about as large as the output, and a progressive JPEG
    // keeps every coefficient (2 bytes each) of the full-size image until the last scan.
    let (hmax, vmax) = frame
        .sampling
        .iter()
        .fold((1, 1), |(a, b), &(h, v)| (a.max(h), b.max(v)));
    let coefficients: u64 = if frame.progressive {
        frame
            .sampling
            .iter()
            .map(|&(sh, sv)| {
                let cw = (w * u64::from(sh)).div_ceil(u64::from(hmax));
                let ch = (h * u64::from(sv)).div_ceil(u64::from(vmax));
                cw.div_ceil(8) * ch.div_ceil(8) * 64 * 2
            })
            .sum()
    } else {
        0
    };
    if !budget.allows(2 * out + coefficients) {
        return Err(header.too_large());
    }

    let raster = match codec {
        #[cfg(feature = "turbojpeg")]
        JpegCodec::LibjpegTurbo => turbo::decode(bytes, denom as usize)?,
        JpegCodec::PureRust => decode_jpeg_rust(bytes, (w, h), denom, budget)?,
    };
    let expected = (w.div_ceil(denom), h.div_ceil(denom));
    if (u64::from(raster.width), u64::from(raster.height)) != expected {
        return Err(ImageError::Corrupt(format!(
            "decoded {}x{}, expected {}x{}",
            raster.width, raster.height, expected.0, expected.1
        )));
    }
    Ok(raster)
}

fn decode_jpeg_rust(
    bytes: &[u8],
    (w, h): (u64, u64),
    denom: u64,
    budget: &Budget,
) -> Result<Raster, ImageError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(budget.remaining()).unwrap_or(usize::MAX));
    // `scale` takes the smallest DCT size whose output reaches the requested width *or*
    // height. Asking for the long side at 1/denom (and the impossible on the other) makes it
    // pick exactly 1/denom.
    let at = |x: u64| u16::try_from(x.div_ceil(denom)).unwrap_or(u16::MAX);
    let (rw, rh) = if w >= h {
        (at(w), u16::MAX)
    } else {
        (u16::MAX, at(h))
    };
    decoder.scale(rw, rh).map_err(|e| corrupt("JPEG", e))?;
    // A truncated file ends in an error here ("failed to fill whole buffer"), not in grey.
    let data = decoder.decode().map_err(|e| corrupt("JPEG", e))?;
    let info = decoder
        .info()
        .ok_or_else(|| ImageError::Corrupt("JPEG without a frame".into()))?;
    let channels = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        other => {
            return Err(ImageError::Corrupt(format!(
                "unexpected JPEG pixel format {other:?}"
            )));
        }
    };
    raster(data, info.width.into(), info.height.into(), channels)
}

fn raster(data: Vec<u8>, width: u32, height: u32, channels: u8) -> Result<Raster, ImageError> {
    let expected = u64::from(width) * u64::from(height) * u64::from(channels);
    if data.len() as u64 != expected {
        return Err(ImageError::Corrupt(format!(
            "decoded {} bytes for {width}x{height}x{channels}",
            data.len()
        )));
    }
    Ok(Raster {
        data,
        width,
        height,
        channels,
    })
}

#[cfg(feature = "turbojpeg")]
mod turbo {
    use super::{Raster, corrupt, raster};
    use crate::evidence::image::{ImageError, RENDITION_QUALITY};
    use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor};

    /// libjpeg-turbo reports warnings as errors after decoding everything it could. Most mean
    /// missing or damaged data (a truncated file is completed in grey: refused); these few
    /// leave every pixel decoded and are common in camera files.
    fn is_benign(message: &str) -> bool {
        message.contains("extraneous bytes before marker")
            || message.contains("bad ICC marker")
            || message.starts_with("Warning:")
            || message.starts_with("Unknown Adobe color transform")
    }

    pub(super) fn decode(bytes: &[u8], denom: usize) -> Result<Raster, ImageError> {
        let mut d = Decompressor::new().map_err(|e| corrupt("libjpeg-turbo", e))?;
        let header = d.read_header(bytes).map_err(|e| corrupt("JPEG", e))?;
        let factor = ScalingFactor::new(1, denom);
        d.set_scaling_factor(factor)
            .map_err(|e| corrupt("JPEG", e))?;
        let scaled = header.scaled(factor);
        let (format, channels) = if header.colorspace == Colorspace::Gray {
            (PixelFormat::GRAY, 1u8)
        } else {
            (PixelFormat::RGB, 3u8)
        };
        let mut pixels = vec![0u8; scaled.width * scaled.height * usize::from(channels)];
        let image = Image {
            pixels: &mut pixels[..],
            width: scaled.width,
            pitch: scaled.width * usize::from(channels),
            height: scaled.height,
            format,
        };
        match d.decompress(bytes, image) {
            Ok(()) => {}
            Err(turbojpeg::Error::TurboJpegError(m)) if is_benign(&m) => {}
            Err(e) => return Err(corrupt("JPEG", e)),
        }
        let dim = |x: usize| u32::try_from(x).map_err(|e| corrupt("JPEG", e));
        raster(pixels, dim(scaled.width)?, dim(scaled.height)?, channels)
    }

    pub(super) fn encode(r: &Raster) -> Result<Vec<u8>, ImageError> {
        let fail = |e| corrupt("encoding JPEG", e);
        let mut c = Compressor::new().map_err(fail)?;
        c.set_quality(RENDITION_QUALITY.into()).map_err(fail)?;
        let (format, subsamp) = if r.channels == 1 {
            (PixelFormat::GRAY, turbojpeg::Subsamp::Gray)
        } else {
            (PixelFormat::RGB, turbojpeg::Subsamp::Sub2x2)
        };
        c.set_subsamp(subsamp).map_err(fail)?;
        c.compress_to_vec(Image {
            pixels: &r.data[..],
            width: r.width as usize,
            pitch: r.width as usize * usize::from(r.channels),
            height: r.height as usize,
            format,
        })
        .map_err(fail)
    }
}

/// PNG and WebP through `image`, under its own limits as well as ours.
pub(super) fn decode_other(
    bytes: &[u8],
    header: &Header,
    budget: &Budget,
    limits: &Limits,
) -> Result<Raster, ImageError> {
    let format = match header.format {
        Format::Png => image::ImageFormat::Png,
        Format::WebP => image::ImageFormat::WebP,
        Format::Jpeg => return Err(ImageError::Corrupt("not PNG or WebP".into())),
    };
    let map_err = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => header.too_large(),
        other => corrupt(header.format.name(), other),
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(budget.remaining());
    reader.limits(image_limits);
    let decoder = reader.into_decoder().map_err(map_err)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if (w, h) != (header.width, header.height) {
        return Err(ImageError::Corrupt(format!(
            "header says {}x{}, decoder {w}x{h}",
            header.width, header.height
        )));
    }
    // The decoded image, then its 8-bit conversion.
    let need =
        image::ImageDecoder::total_bytes(&decoder).saturating_add(u64::from(w) * u64::from(h) * 4);
    if !budget.allows(need) {
        return Err(header.too_large());
    }
    let img = image::DynamicImage::from_decoder(decoder).map_err(map_err)?;
    Ok(flatten(img))
}

/// To 8-bit grey or RGB; transparency is composed over white, as a viewer shows it.
fn flatten(img: image::DynamicImage) -> Raster {
    let (width, height) = (img.width(), img.height());
    let color = img.color();
    if color.has_alpha() {
        let rgba = img.into_rgba8();
        let mut data = Vec::with_capacity(rgba.as_raw().len() / 4 * 3);
        for px in rgba.as_raw().chunks_exact(4) {
            let a = u32::from(px[3]);
            for &c in &px[..3] {
                data.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
            }
        }
        Raster {
            data,
            width,
            height,
            channels: 3,
        }
    } else if !color.has_color() {
        Raster {
            data: img.into_luma8().into_raw(),
            width,
            height,
            channels: 1,
        }
    } else {
        Raster {
            data: img.into_rgb8().into_raw(),
            width,
            height,
            channels: 3,
        }
    }
}

/// Resamples to `width`×`height` (Catmull-Rom: sharp, and cheaper than Lanczos).
pub(super) fn resize(src: &Raster, width: u32, height: u32) -> Result<Raster, ImageError> {
    if (src.width, src.height) == (width, height) {
        return Ok(src.clone());
    }
    let pixel_type = if src.channels == 1 {
        fir::PixelType::U8
    } else {
        fir::PixelType::U8x3
    };
    let from = fir::images::ImageRef::new(src.width, src.height, &src.data, pixel_type)
        .map_err(|e| corrupt("resizing", e))?;
    let mut to = fir::images::Image::new(width, height, pixel_type);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::CatmullRom));
    fir::Resizer::new()
        .resize(&from, &mut to, &options)
        .map_err(|e| corrupt("resizing", e))?;
    Ok(Raster {
        data: to.into_vec(),
        width,
        height,
        channels: src.channels,
    })
}

/// Applies an EXIF orientation, so the result displays upright with no metadata.
pub(super) fn orient(src: Raster, orientation: u16) -> Raster {
    if !(2..=8).contains(&orientation) {
        return src;
    }
    let (w, h) = (src.width as isize, src.height as isize);
    // Display pixel (dx, dy) shows stored pixel (x0 + dx*a + dy*b, y0 + dx*c + dy*d), from
    // the EXIF definition ("the 0th row represents the visual ... side").
    let (x0, y0, a, b, c, d) = match orientation {
        2 => (w - 1, 0, -1, 0, 0, 1),
        3 => (w - 1, h - 1, -1, 0, 0, -1),
        4 => (0, h - 1, 1, 0, 0, -1),
        5 => (0, 0, 0, 1, 1, 0),
        6 => (0, h - 1, 0, 1, -1, 0),
        7 => (w - 1, h - 1, 0, -1, -1, 0),
        _ => (w - 1, 0, 0, -1, 1, 0), // 8
    };
    let (dw, dh) = if orientation >= 5 { (h, w) } else { (w, h) };
    // In stored pixel indices: where a display row starts, and the steps along and across.
    let walk = Walk {
        start: y0 * w + x0,
        along: a + c * w,
        across: b + d * w,
        width: dw as usize,
    };
    let data = match src.channels {
        1 => walk.run::<1>(&src.data),
        _ => walk.run::<3>(&src.data),
    };
    Raster {
        data,
        width: dw as u32,
        height: dh as u32,
        channels: src.channels,
    }
}

struct Walk {
    start: isize,
    along: isize,
    across: isize,
    width: usize,
}

impl Walk {
    fn run<const C: usize>(&self, src: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; src.len()];
        for (dy, row) in out.chunks_exact_mut(self.width * C).enumerate() {
            let mut at = self.start + dy as isize * self.across;
            for px in row.chunks_exact_mut(C) {
                let i = at as usize * C;
                px.copy_from_slice(&src[i..i + C]);
                at += self.along;
            }
        }
        out
    }
}

/// Encodes a rendition: baseline JPEG, 4:2:0, a JFIF header and nothing else.
pub(super) fn encode(r: &Raster, codec: JpegCodec) -> Result<Rendition, ImageError> {
    let jpeg = match codec {
        #[cfg(feature = "turbojpeg")]
        JpegCodec::LibjpegTurbo => turbo::encode(r)?,
        JpegCodec::PureRust => encode_rust(r)?,
    };
    Ok(Rendition {
        jpeg,
        width: r.width,
        height: r.height,
    })
}

fn encode_rust(r: &Raster) -> Result<Vec<u8>, ImageError> {
    let fail = |e| corrupt("encoding JPEG", e);
    let side = |x: u32| u16::try_from(x).map_err(|e| corrupt("encoding JPEG", e));
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, RENDITION_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    let color = if r.channels == 1 {
        jpeg_encoder::ColorType::Luma
    } else {
        jpeg_encoder::ColorType::Rgb
    };
    encoder
        .encode(&r.data, side(r.width)?, side(r.height)?, color)
        .map_err(fail)?;
    Ok(out)
}
