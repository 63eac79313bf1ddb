//! Format sniffing and header parsing: the real format, the dimensions and the raw EXIF
//! block, read from the bytes without decoding a pixel. Filenames and content types are
//! never consulted.

use std::io::{self, Read, Seek, SeekFrom};

use super::ImageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Jpeg,
    Png,
    WebP,
}

impl Format {
    pub(super) fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::WebP => "webp",
        }
    }
}

/// A JPEG frame header (SOF), as far as decoding cost depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JpegFrame {
    pub progressive: bool,
    /// Sampling factors (horizontal, vertical) of each component.
    pub sampling: Vec<(u8, u8)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// The EXIF block as TIFF data (without the `Exif\0\0` prefix).
    pub exif: Option<Vec<u8>>,
    pub jpeg: Option<JpegFrame>,
}

impl Header {
    pub(super) fn too_large(&self) -> ImageError {
        ImageError::TooLarge {
            width: self.width,
            height: self.height,
        }
    }
}

/// An EXIF block larger than this is ignored (JPEG caps it at 64 KiB anyway).
const MAX_EXIF: u32 = 1 << 20;

/// Recognises the format from the first bytes.
pub(super) fn sniff(head: &[u8]) -> Result<Format, ImageError> {
    let unsupported = |format| Err(ImageError::Unsupported { format });
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(Format::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(Format::Png)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Ok(Format::WebP)
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        iso_bmff_brand(head).map_or(Err(ImageError::NotAnImage), unsupported)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        unsupported("gif")
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        unsupported("tiff")
    } else if head.starts_with(&[0xFF, 0x0A]) || head.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        unsupported("jxl")
    } else {
        Err(ImageError::NotAnImage)
    }
}

/// The image format of an ISO base media file (`ftyp` box), from its major and compatible
/// brands; `None` for other such files (MP4, QuickTime video).
fn iso_bmff_brand(head: &[u8]) -> Option<&'static str> {
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = size.clamp(12, head.len());
    // Major brand at 8..12, minor version at 12..16, compatible brands after.
    let brands =
        std::iter::once(&head[8..12]).chain(head.get(16..end).unwrap_or(&[]).chunks_exact(4));
    let mut found = None;
    for brand in brands {
        let kind = match brand {
            b"avif" | b"avis" => "avif",
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs" => "heic",
            b"mif1" | b"msf1" | b"heif" => "heif",
            _ => continue,
        };
        // The most specific brand wins: a `mif1` file that also says `heic` is HEIC.
        found = match (found, kind) {
            (Some("avif"), _) | (_, "avif") => Some("avif"),
            (Some("heic"), _) | (_, "heic") => Some("heic"),
            _ => Some(kind),
        };
    }
    found
}

/// Sniffs and parses the header of an image starting at the reader's position 0.
pub(super) fn read_header<R: Read + Seek>(r: &mut R) -> Result<Header, ImageError> {
    let mut head = [0u8; 64];
    let n = read_up_to(r, &mut head)?;
    let format = sniff(&head[..n])?;
    r.seek(SeekFrom::Start(0))?;
    let header = match format {
        Format::Jpeg => jpeg_header(r),
        Format::Png => png_header(r),
        Format::WebP => webp_header(r),
    };
    header.map_err(|e| match e {
        HeaderError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            ImageError::Corrupt("the header is truncated".into())
        }
        HeaderError::Io(e) => ImageError::Io(e),
        HeaderError::Image(e) => e,
    })
}

/// Header parsing fails on the image or on reading; a short read is the image's fault.
enum HeaderError {
    Io(io::Error),
    Image(ImageError),
}

impl From<io::Error> for HeaderError {
    fn from(e: io::Error) -> Self {
        HeaderError::Io(e)
    }
}

impl From<ImageError> for HeaderError {
    fn from(e: ImageError) -> Self {
        HeaderError::Image(e)
    }
}

fn corrupt(msg: &str) -> HeaderError {
    HeaderError::Image(ImageError::Corrupt(msg.into()))
}

fn unsupported(format: &'static str) -> HeaderError {
    HeaderError::Image(ImageError::Unsupported { format })
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_array<const N: usize, R: Read>(r: &mut R) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn read_vec<R: Read>(r: &mut R, len: u32) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    // `take` bounds the allocation by what the file really holds, not what a length claims.
    r.take(u64::from(len)).read_to_end(&mut v)?;
    if v.len() != len as usize {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(v)
}

/// Strips the `Exif\0\0` prefix some PNG and WebP writers keep.
fn tiff_payload(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(b"Exif\0\0") {
        data.drain(..6);
    }
    data
}

/// Walks JPEG markers from SOI to the first SOS.
fn jpeg_header<R: Read + Seek>(r: &mut R) -> Result<Header, HeaderError> {
    read_array::<2, _>(r)?; // SOI, checked by sniff
    let mut frame: Option<(u32, u32, JpegFrame)> = None;
    let mut exif = None;
    loop {
        let [first] = read_array::<1, _>(r)?;
        if first != 0xFF {
            return Err(corrupt("expected a JPEG marker"));
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            [marker] = read_array::<1, _>(r)?; // fill bytes may precede a marker
        }
        match marker {
            0x01 | 0xD0..=0xD7 => continue, // no length, no payload
            0xD8 | 0xD9 | 0x00 => return Err(corrupt("no image data before the end marker")),
            _ => {}
        }
        let len = u16::from_be_bytes(read_array(r)?);
        let len = len
            .checked_sub(2)
            .ok_or_else(|| corrupt("bad JPEG segment length"))?;
        match marker {
            0xDA => break,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if frame.is_some() {
                    return Err(corrupt("two frame headers"));
                }
                frame = Some(jpeg_frame(marker, &read_vec(r, len.into())?)?);
            }
            0xE1 if exif.is_none() => {
                let data = read_vec(r, len.into())?;
                if let Some(tiff) = data.strip_prefix(b"Exif\0\0") {
                    exif = Some(tiff.to_vec());
                }
            }
            _ => {
                r.seek_relative(len.into())?;
            }
        }
    }
    let (width, height, frame) = frame.ok_or_else(|| corrupt("no frame header"))?;
    Ok(Header {
        format: Format::Jpeg,
        width,
        height,
        exif,
        jpeg: Some(frame),
    })
}

fn jpeg_frame(marker: u8, p: &[u8]) -> Result<(u32, u32, JpegFrame), HeaderError> {
    let progressive = match marker {
        0xC0 | 0xC1 => false,
        0xC2 => true,
        0xC3 => return Err(unsupported("lossless JPEG")),
        0xC9..=0xCB => return Err(unsupported("arithmetic-coded JPEG")),
        _ => return Err(unsupported("hierarchical JPEG")),
    };
    if p.len() < 6 {
        return Err(corrupt("short frame header"));
    }
    if p[0] != 8 {
        return Err(unsupported("12-bit JPEG"));
    }
    let height = u32::from(u16::from_be_bytes([p[1], p[2]]));
    let width = u32::from(u16::from_be_bytes([p[3], p[4]]));
    if height == 0 {
        // The height would come later, in a DNL marker; phones never write that.
        return Err(unsupported("JPEG with a DNL height"));
    }
    let count = usize::from(p[5]);
    match count {
        1 | 3 => {}
        4 => return Err(unsupported("CMYK JPEG")),
        _ => return Err(corrupt("bad JPEG component count")),
    }
    let components = p
        .get(6..6 + 3 * count)
        .ok_or_else(|| corrupt("short frame header"))?;
    let mut sampling = Vec::with_capacity(count);
    for c in components.chunks_exact(3) {
        let (h, v) = (c[1] >> 4, c[1] & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(corrupt("bad JPEG sampling factors"));
        }
        sampling.push((h, v));
    }
    Ok((
        width,
        height,
        JpegFrame {
            progressive,
            sampling,
        },
    ))
}

/// IHDR gives the size; the chunk walk looks for eXIf.
fn png_header<R: Read + Seek>(r: &mut R) -> Result<Header, HeaderError> {
    read_array::<8, _>(r)?; // signature, checked by sniff
    let [l0, l1, l2, l3, t0, t1, t2, t3] = read_array::<8, _>(r)?;
    if u32::from_be_bytes([l0, l1, l2, l3]) != 13 || &[t0, t1, t2, t3] != b"IHDR" {
        return Err(corrupt("PNG without IHDR"));
    }
    let ihdr = read_array::<13, _>(r)?;
    let width = u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]);
    let height = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
    r.seek_relative(4)?; // CRC
    let mut exif = None;
    loop {
        let mut chunk = [0u8; 8];
        if read_up_to(r, &mut chunk)? < 8 {
            break; // a missing IEND is for the decoder to judge
        }
        let len = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        match &chunk[4..8] {
            b"IEND" => break,
            b"eXIf" if exif.is_none() && len <= MAX_EXIF => {
                exif = Some(tiff_payload(read_vec(r, len)?));
                r.seek_relative(4)?;
            }
            _ => r.seek_relative(i64::from(len) + 4)?,
        }
    }
    Ok(Header {
        format: Format::Png,
        width,
        height,
        exif,
        jpeg: None,
    })
}

/// RIFF chunks: VP8 (lossy), VP8L (lossless) or VP8X (extended, with the canvas size and
/// optional EXIF chunk).
fn webp_header<R: Read + Seek>(r: &mut R) -> Result<Header, HeaderError> {
    read_array::<12, _>(r)?; // RIFF, size, WEBP: checked by sniff
    let mut size: Option<(u32, u32)> = None;
    let mut extended = false;
    let mut exif = None;
    loop {
        let mut chunk = [0u8; 8];
        if read_up_to(r, &mut chunk)? < 8 {
            break;
        }
        let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        let padded = i64::from(len) + i64::from(len & 1);
        let fourcc = [chunk[0], chunk[1], chunk[2], chunk[3]];
        let need = match &fourcc {
            b"VP8X" | b"VP8 " => 10,
            b"VP8L" => 5,
            _ => 0,
        };
        if len < need {
            return Err(corrupt("short WebP chunk"));
        }
        match &fourcc {
            b"VP8X" if size.is_none() => {
                let p = read_array::<10, _>(r)?;
                if p[0] & 0x02 != 0 {
                    return Err(unsupported("animated WebP"));
                }
                let w = 1 + u32::from_le_bytes([p[4], p[5], p[6], 0]);
                let h = 1 + u32::from_le_bytes([p[7], p[8], p[9], 0]);
                size = Some((w, h));
                extended = true;
                r.seek_relative(padded - 10)?;
            }
            b"VP8 " if size.is_none() => {
                let p = read_array::<10, _>(r)?;
                // A key frame (bit 0 clear) with its start code carries the size.
                if p[0] & 1 != 0 || p[3..6] != [0x9D, 0x01, 0x2A] {
                    return Err(corrupt("bad VP8 frame header"));
                }
                let w = u32::from(u16::from_le_bytes([p[6], p[7]]) & 0x3FFF);
                let h = u32::from(u16::from_le_bytes([p[8], p[9]]) & 0x3FFF);
                size = Some((w, h));
                r.seek_relative(padded - 10)?;
            }
            b"VP8L" if size.is_none() => {
                let p = read_array::<5, _>(r)?;
                if p[0] != 0x2F {
                    return Err(corrupt("bad VP8L signature"));
                }
                let bits = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
                size = Some((1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)));
                r.seek_relative(padded - 5)?;
            }
            b"EXIF" if exif.is_none() && len <= MAX_EXIF => {
                exif = Some(tiff_payload(read_vec(r, len)?));
                r.seek_relative(padded - i64::from(len))?;
            }
            _ => r.seek_relative(padded)?,
        }
        // A simple file is one image chunk; only an extended one has more worth reading.
        if size.is_some() && !extended {
            break;
        }
    }
    let (width, height) = size.ok_or_else(|| corrupt("WebP without an image"))?;
    Ok(Header {
        format: Format::WebP,
        width,
        height,
        exif,
        jpeg: None,
    })
}
