//! Every input is made here, in code.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use exif::{Field, In, Rational, Tag, Value};

use super::*;

/// A file in a per-process temporary folder, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("xuncha-image-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{n}-{name}"));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn codecs() -> Vec<JpegCodec> {
    vec![
        #[cfg(feature = "turbojpeg")]
        JpegCodec::LibjpegTurbo,
        JpegCodec::PureRust,
    ]
}

/// Gradients with some texture, so JPEG has real work to do.
fn pattern(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let t = ((x * 7 + y * 13) % 32) as u8;
            px.extend_from_slice(&[
                (x * 255 / w) as u8 / 2 + t,
                (y * 255 / h) as u8 / 2 + t,
                128 + t,
            ]);
        }
    }
    px
}

/// Four solid quadrants: top-left red, top-right green, bottom-left blue, bottom-right white.
fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            px.extend_from_slice(match (x < w / 2, y < h / 2) {
                (true, true) => &[255, 0, 0],
                (false, true) => &[0, 255, 0],
                (true, false) => &[0, 0, 255],
                (false, false) => &[255, 255, 255],
            });
        }
    }
    px
}

fn jpeg_with(
    w: u32,
    h: u32,
    pixels: &[u8],
    color: jpeg_encoder::ColorType,
    exif: Option<&[u8]>,
    progressive: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.set_progressive(progressive);
    if let Some(exif) = exif {
        enc.add_exif_metadata(exif).unwrap();
    }
    enc.encode(pixels, w as u16, h as u16, color).unwrap();
    out
}

fn jpeg(w: u32, h: u32, pixels: &[u8], exif: Option<&[u8]>) -> Vec<u8> {
    jpeg_with(w, h, pixels, jpeg_encoder::ColorType::Rgb, exif, false)
}

fn ascii(tag: Tag, s: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![s.as_bytes().to_vec()]),
    }
}

fn rationals(tag: Tag, parts: &[(u32, u32)]) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(
            parts
                .iter()
                .map(|&(num, denom)| Rational { num, denom })
                .collect(),
        ),
    }
}

fn orientation_field(o: u16) -> Field {
    Field {
        tag: Tag::Orientation,
        ifd_num: In::PRIMARY,
        value: Value::Short(vec![o]),
    }
}

/// A TIFF-structured EXIF block holding `fields`.
fn exif_block(fields: &[Field]) -> Vec<u8> {
    let mut writer = exif::experimental::Writer::new();
    for f in fields {
        writer.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

fn decode(jpeg: &[u8]) -> (u32, u32, Vec<u8>, jpeg_decoder::PixelFormat) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    (info.width.into(), info.height.into(), px, info.pixel_format)
}

/// Whether the JPEG has any APP1 (EXIF or XMP) segment before its image data.
fn has_app1(jpeg: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            return false;
        }
        if marker == 0xE1 {
            return true;
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
    false
}

fn assert_clean_rendition(r: &Rendition) {
    let (w, h, _, _) = decode(&r.jpeg);
    assert_eq!((w, h), (r.width, r.height));
    assert!(!has_app1(&r.jpeg), "a rendition carries an APP1 segment");
    assert!(
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(&r.jpeg))
            .is_err()
    );
}

fn near(px: &[u8], want: [u8; 3]) -> bool {
    px.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 48)
}

#[test]
fn jpeg_is_inspected_and_rendered() {
    let file = TempFile::new("plain.jpg", &jpeg(640, 480, &pattern(640, 480), None));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    assert_eq!(
        info,
        ImageInfo {
            format: "jpeg",
            width: 640,
            height: 480,
            taken_at: None,
            gps: None,
            orientation: 1,
        }
    );
    for codec in codecs() {
        let r = render_with(file.path(), &info, &Limits::default(), codec).unwrap();
        assert_eq!((r.preview.width, r.preview.height), (640, 480), "{codec:?}");
        assert_eq!((r.thumb.width, r.thumb.height), (320, 240), "{codec:?}");
        assert_clean_rendition(&r.preview);
        assert_clean_rendition(&r.thumb);
    }
}

#[test]
fn large_jpeg_is_decoded_scaled_and_keeps_its_colours() {
    // Left half red, right half blue: a channel mix-up or a wrong scale shows.
    let (w, h) = (2600, 1000);
    let mut px = pattern(w, h);
    for (i, p) in px.chunks_exact_mut(3).enumerate() {
        let left = (i as u32 % w) < w / 2;
        p.copy_from_slice(if left { &[220, 30, 30] } else { &[30, 30, 220] });
    }
    let file = TempFile::new("wide.jpg", &jpeg(w, h, &px, None));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    for codec in codecs() {
        let r = render_with(file.path(), &info, &Limits::default(), codec).unwrap();
        assert_eq!(
            (r.preview.width, r.preview.height),
            (1280, 492),
            "{codec:?}"
        );
        assert_eq!((r.thumb.width, r.thumb.height), (320, 123), "{codec:?}");
        let (tw, _, thumb, _) = decode(&r.thumb.jpeg);
        let at = |x: u32, y: u32| &thumb[((y * tw + x) * 3) as usize..][..3];
        assert!(
            near(at(40, 60), [220, 30, 30]),
            "{codec:?}: {:?}",
            at(40, 60)
        );
        assert!(
            near(at(280, 60), [30, 30, 220]),
            "{codec:?}: {:?}",
            at(280, 60)
        );
    }
}

#[test]
fn orientation_6_turns_the_renditions_upright() {
    let exif = exif_block(&[orientation_field(6)]);
    let (w, h) = (320, 160);
    let file = TempFile::new("rot.jpg", &jpeg(w, h, &quadrants(w, h), Some(&exif)));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    assert_eq!(info.orientation, 6);
    assert_eq!((info.width, info.height), (320, 160));
    assert_eq!(info.display_size(), (160, 320));
    for codec in codecs() {
        let r = render_with(file.path(), &info, &Limits::default(), codec).unwrap();
        assert_eq!((r.thumb.width, r.thumb.height), (160, 320), "{codec:?}");
        assert_eq!((r.preview.width, r.preview.height), (160, 320), "{codec:?}");
        assert_clean_rendition(&r.thumb);
        // Turned a quarter clockwise: the stored left column is now the top row.
        let (tw, th, thumb, _) = decode(&r.thumb.jpeg);
        let at = |x: u32, y: u32| &thumb[((y * tw + x) * 3) as usize..][..3];
        let (left, right, top, bottom) = (tw / 4, tw * 3 / 4, th / 4, th * 3 / 4);
        assert!(
            near(at(left, top), [0, 0, 255]),
            "{codec:?}: {:?}",
            at(left, top)
        );
        assert!(
            near(at(right, top), [255, 0, 0]),
            "{codec:?}: {:?}",
            at(right, top)
        );
        assert!(near(at(right, bottom), [0, 255, 0]), "{codec:?}");
        assert!(near(at(left, bottom), [255, 255, 255]), "{codec:?}");
    }
}

#[test]
fn every_orientation_maps_as_exif_defines_it() {
    // a b c
    // d e f
    let src = pixels::Raster {
        data: b"abcdef".to_vec(),
        width: 3,
        height: 2,
        channels: 1,
    };
    let cases: [(u16, u32, &[u8]); 8] = [
        (1, 3, b"abcdef"),
        (2, 3, b"cbafed"),
        (3, 3, b"fedcba"),
        (4, 3, b"defabc"),
        (5, 2, b"adbecf"),
        (6, 2, b"daebfc"),
        (7, 2, b"fcebda"),
        (8, 2, b"cfbead"),
    ];
    for (o, width, want) in cases {
        let out = pixels::orient(src.clone(), o);
        assert_eq!(out.width, width, "orientation {o}");
        assert_eq!(out.data, want, "orientation {o}");
    }
}

#[test]
fn exif_time_and_gps_are_read() {
    let exif = exif_block(&[
        ascii(Tag::DateTimeOriginal, "2024:03:15 14:30:05"),
        ascii(Tag::SubSecTimeOriginal, "12"),
        ascii(Tag::OffsetTimeOriginal, "+08:00"),
        ascii(Tag::GPSLatitudeRef, "N"),
        rationals(Tag::GPSLatitude, &[(31, 1), (13, 1), (476, 10)]),
        ascii(Tag::GPSLongitudeRef, "E"),
        rationals(Tag::GPSLongitude, &[(121, 1), (28, 1), (103, 10)]),
    ]);
    let file = TempFile::new("gps.jpg", &jpeg(64, 48, &pattern(64, 48), Some(&exif)));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    let taken = info.taken_at.unwrap();
    assert_eq!(taken.local.to_string(), "2024-03-15 14:30:05.120");
    assert_eq!(taken.offset, FixedOffset::east_opt(8 * 3600));
    assert_eq!(
        taken.instant().unwrap().to_utc().to_rfc3339(),
        "2024-03-15T06:30:05.120+00:00"
    );
    let (lat, lon) = info.gps.unwrap();
    assert!(
        (lat - (31.0 + 13.0 / 60.0 + 47.6 / 3600.0)).abs() < 1e-9,
        "{lat}"
    );
    assert!(
        (lon - (121.0 + 28.0 / 60.0 + 10.3 / 3600.0)).abs() < 1e-9,
        "{lon}"
    );

    // The renditions do not carry it on.
    let r = render(file.path(), &info, &Limits::default()).unwrap();
    assert_clean_rendition(&r.thumb);
    assert_clean_rendition(&r.preview);
}

#[test]
fn south_and_west_are_negative_and_a_missing_offset_stays_unknown() {
    let exif = exif_block(&[
        ascii(Tag::DateTimeOriginal, "2023:12:31 23:59:59"),
        ascii(Tag::GPSLatitudeRef, "S"),
        rationals(Tag::GPSLatitude, &[(33, 1), (52, 1), (0, 1)]),
        ascii(Tag::GPSLongitudeRef, "W"),
        rationals(Tag::GPSLongitude, &[(7025, 100)]),
    ]);
    let file = TempFile::new("sw.jpg", &jpeg(16, 16, &pattern(16, 16), Some(&exif)));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    let (lat, lon) = info.gps.unwrap();
    assert!((lat + (33.0 + 52.0 / 60.0)).abs() < 1e-9, "{lat}");
    assert!((lon + 70.25).abs() < 1e-9, "{lon}");
    let taken = info.taken_at.unwrap();
    assert_eq!(taken.offset, None);
    assert_eq!(taken.instant(), None);
}

#[test]
fn odd_exif_leaves_facts_absent_instead_of_failing() {
    let exif = exif_block(&[
        ascii(Tag::DateTimeOriginal, "0000:00:00 00:00:00"),
        orientation_field(9),
        // No reference letter: the hemisphere is unknown.
        rationals(Tag::GPSLatitude, &[(31, 1), (0, 1), (0, 1)]),
        rationals(Tag::GPSLongitude, &[(121, 1), (0, 1), (0, 1)]),
    ]);
    let file = TempFile::new("odd.jpg", &jpeg(16, 16, &pattern(16, 16), Some(&exif)));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    assert_eq!((info.taken_at, info.gps, info.orientation), (None, None, 1));

    let file = TempFile::new(
        "junk-exif.jpg",
        &jpeg(
            16,
            16,
            &pattern(16, 16),
            Some(b"MM\0*junk that is not TIFF"),
        ),
    );
    let info = inspect(file.path(), &Limits::default()).unwrap();
    assert_eq!((info.taken_at, info.gps, info.orientation), (None, None, 1));
    render(file.path(), &info, &Limits::default()).unwrap();
}

#[test]
fn png_is_rendered_with_transparency_over_white() {
    let (w, h) = (300u32, 200u32);
    let mut rgba = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            rgba.extend_from_slice(if x < w / 2 {
                &[0, 0, 0, 0]
            } else {
                &[200, 0, 0, 255]
            });
        }
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &rgba,
        w,
        h,
        image::ExtendedColorType::Rgba8,
    )
    .unwrap();
    // The name says JPEG; the bytes decide.
    let file = TempFile::new("really-a-png.jpg", &png);
    let info = inspect(file.path(), &Limits::default()).unwrap();
    assert_eq!((info.format, info.width, info.height), ("png", 300, 200));
    for codec in codecs() {
        let r = render_with(file.path(), &info, &Limits::default(), codec).unwrap();
        assert_eq!((r.thumb.width, r.thumb.height), (300, 200));
        assert_clean_rendition(&r.thumb);
        let (tw, _, thumb, _) = decode(&r.thumb.jpeg);
        let at = |x: u32, y: u32| &thumb[((y * tw + x) * 3) as usize..][..3];
        assert!(near(at(50, 100), [255, 255, 255]), "{:?}", at(50, 100));
        assert!(near(at(250, 100), [200, 0, 0]), "{:?}", at(250, 100));
    }
}

#[test]
fn webp_is_accepted() {
    let (w, h) = (120, 90);
    let mut webp = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp),
        &pattern(w, h),
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    let file = TempFile::new("photo.webp", &webp);
    let info = inspect(file.path(), &Limits::default()).unwrap();
    assert_eq!((info.format, info.width, info.height), ("webp", 120, 90));
    let r = render(file.path(), &info, &Limits::default()).unwrap();
    assert_eq!((r.preview.width, r.preview.height), (120, 90));
    assert_clean_rendition(&r.preview);
}

#[test]
fn png_and_webp_exif_is_read_and_applied() {
    let exif = exif_block(&[
        orientation_field(6),
        ascii(Tag::GPSLatitudeRef, "N"),
        rationals(Tag::GPSLatitude, &[(30, 1)]),
        ascii(Tag::GPSLongitudeRef, "E"),
        rationals(Tag::GPSLongitude, &[(120, 1)]),
    ]);
    let (w, h) = (40, 20);
    let px = pattern(w, h);
    let mut png = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::set_exif_metadata(&mut encoder, exif.clone()).unwrap();
    image::ImageEncoder::write_image(encoder, &px, w, h, image::ExtendedColorType::Rgb8).unwrap();
    let mut webp = Vec::new();
    let mut encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut webp);
    image::ImageEncoder::set_exif_metadata(&mut encoder, exif.clone()).unwrap();
    image::ImageEncoder::write_image(encoder, &px, w, h, image::ExtendedColorType::Rgb8).unwrap();

    for (format, bytes) in [("png", png), ("webp", webp)] {
        let file = TempFile::new("exif-image", &bytes);
        let info = inspect(file.path(), &Limits::default()).unwrap();
        assert_eq!((info.format, info.width, info.height), (format, 40, 20));
        assert_eq!(info.orientation, 6, "{format}");
        assert_eq!(info.gps, Some((30.0, 120.0)), "{format}");
        let r = render(file.path(), &info, &Limits::default()).unwrap();
        assert_eq!((r.thumb.width, r.thumb.height), (20, 40), "{format}");
        assert_clean_rendition(&r.thumb);
    }
}

/// A PNG signature and IHDR claiming `w`×`h`, then IEND: no pixel data at all.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&w.to_be_bytes());
    png.extend_from_slice(&h.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]); // RGBA8, CRC not checked here
    png.extend_from_slice(&[0, 0, 0, 0]);
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
    png
}

fn fake_info(format: &'static str, width: u32, height: u32) -> ImageInfo {
    ImageInfo {
        format,
        width,
        height,
        taken_at: None,
        gps: None,
        orientation: 1,
    }
}

#[test]
fn huge_dimensions_are_refused_from_the_header() {
    let file = TempFile::new("huge.png", &png_header_only(100_000, 100_000));
    let err = inspect(file.path(), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 100_000,
                height: 100_000
            }
        ),
        "{err:?}"
    );
    // render checks for itself, whatever it is told.
    let err = render(file.path(), &fake_info("png", 10, 10), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");

    // A strip within the pixel limit but with an absurd side.
    let file = TempFile::new("strip.png", &png_header_only(70_000, 1));
    let err = inspect(file.path(), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");
}

/// A deflate stream of `n` zero bytes, about 13 bits per 258 bytes: fixed Huffman codes, one
/// literal 0, then <length 258, distance 1> copies, then literals for the rest.
fn zlib_zeros(n: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        len: u32,
    }
    impl Bits {
        fn lsb(&mut self, value: u32, bits: u32) {
            self.acc |= value << self.len;
            self.len += bits;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u32, bits: u32) {
            for i in (0..bits).rev() {
                self.lsb((code >> i) & 1, 1);
            }
        }
    }
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        len: 0,
    };
    b.lsb(1, 1); // final block
    b.lsb(1, 2); // fixed Huffman codes
    b.code(0x30, 8); // literal 0
    let copies = (n - 1) / 258;
    for _ in 0..copies {
        b.code(0b1100_0101, 8); // length code 285 = 258
        b.code(0, 5); // distance code 0 = 1
    }
    for _ in 0..(n - 1 - copies * 258) {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    if b.len > 0 {
        b.lsb(0, 8 - b.len);
    }
    let adler = ((n % 65521) as u32) << 16 | 1;
    b.out.extend_from_slice(&adler.to_be_bytes());
    b.out
}

fn crc32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk with a valid CRC, so the decoder reads on to where our limits must stop it.
fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(kind.iter().chain(data).copied());
    png.extend_from_slice(&crc.to_be_bytes());
}

/// A one-bit grey PNG, all black, compressed about 1000:1.
fn black_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    // Each row: filter byte 0, then w bits.
    let raw = (1 + w.div_ceil(8) as usize) * h as usize;
    png_chunk(&mut png, b"IDAT", &zlib_zeros(raw));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn decompression_bomb_is_refused_before_decoding() {
    // The construction is a real PNG: a small one decodes, black.
    let file = TempFile::new("small-black.png", &black_png(300, 200));
    let info = inspect(file.path(), &Limits::default()).unwrap();
    let r = render(file.path(), &info, &Limits::default()).unwrap();
    let (_, _, px, _) = decode(&r.thumb.jpeg);
    assert!(px.iter().all(|&v| v < 8));

    // 8000 x 8000: 8 MB of scanlines, 64 MB as 8-bit pixels, some 50 KB on disk.
    let png = black_png(8000, 8000);
    assert!(png.len() < 100_000, "{} bytes", png.len());
    let file = TempFile::new("bomb.png", &png);

    let err = inspect(file.path(), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 8000,
                height: 8000
            }
        ),
        "{err:?}"
    );

    // Allowed by pixel count but not by memory: still refused, before any decoding.
    let limits = Limits {
        max_pixels: 100_000_000,
        max_alloc: 16 << 20,
        ..Limits::default()
    };
    let info = inspect(file.path(), &limits).unwrap();
    let err = render(file.path(), &info, &limits).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");
}

#[test]
fn jpeg_over_the_memory_budget_is_refused() {
    let file = TempFile::new("big.jpg", &jpeg(1600, 1200, &pattern(1600, 1200), None));
    let limits = Limits {
        max_alloc: 2 << 20,
        ..Limits::default()
    };
    let info = inspect(file.path(), &limits).unwrap();
    for codec in codecs() {
        let err = render_with(file.path(), &info, &limits, codec).unwrap_err();
        assert!(
            matches!(err, ImageError::TooLarge { .. }),
            "{codec:?}: {err:?}"
        );
    }
}

/// Noise: entropy-coded data fills most of the file, so a cut lands inside it.
fn noisy_jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let px: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8
        })
        .collect();
    jpeg(w, h, &px, None)
}

#[test]
fn truncated_jpeg_is_corrupt_not_grey() {
    let whole = noisy_jpeg(800, 600);
    let cut = &whole[..whole.len() * 6 / 10];
    let file = TempFile::new("cut.jpg", cut);
    // The header is whole, so it inspects; the pixels are not.
    let info = inspect(file.path(), &Limits::default()).unwrap();
    for codec in codecs() {
        let err = render_with(file.path(), &info, &Limits::default(), codec).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt(_)), "{codec:?}: {err:?}");
    }
    // Cut inside the header.
    let file = TempFile::new("cut-header.jpg", &whole[..40]);
    let err = inspect(file.path(), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err:?}");

    // PNG too.
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &pattern(200, 200),
        200,
        200,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    let file = TempFile::new("cut.png", &png[..png.len() / 2]);
    let info = inspect(file.path(), &Limits::default()).unwrap();
    let err = render(file.path(), &info, &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err:?}");
}

/// libjpeg-turbo also refuses data cut short and then closed with an end marker. The pure-Rust
/// decoder fills such a gap without telling, so this holds for the default codec only.
#[cfg(feature = "turbojpeg")]
#[test]
fn truncated_jpeg_closed_with_an_end_marker_is_corrupt() {
    let whole = noisy_jpeg(800, 600);
    let mut cut = whole[..whole.len() / 2].to_vec();
    cut.extend_from_slice(&[0xFF, 0xD9]);
    let file = TempFile::new("cut-eoi.jpg", &cut);
    let info = inspect(file.path(), &Limits::default()).unwrap();
    let err = render_with(
        file.path(),
        &info,
        &Limits::default(),
        JpegCodec::LibjpegTurbo,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err:?}");
}

#[test]
fn progressive_and_grey_jpegs_render() {
    let progressive = jpeg_with(
        700,
        500,
        &pattern(700, 500),
        jpeg_encoder::ColorType::Rgb,
        None,
        true,
    );
    let grey_px: Vec<u8> = pattern(400, 300).chunks_exact(3).map(|p| p[0]).collect();
    let grey = jpeg_with(
        400,
        300,
        &grey_px,
        jpeg_encoder::ColorType::Luma,
        None,
        false,
    );
    for codec in codecs() {
        let file = TempFile::new("progressive.jpg", &progressive);
        let info = inspect(file.path(), &Limits::default()).unwrap();
        let r = render_with(file.path(), &info, &Limits::default(), codec).unwrap();
        assert_eq!((r.thumb.width, r.thumb.height), (320, 229), "{codec:?}");

        let file = TempFile::new("grey.jpg", &grey);
        let info = inspect(file.path(), &Limits::default()).unwrap();
        let r = render_with(file.path(), &info, &Limits::default(), codec).unwrap();
        assert_eq!((r.thumb.width, r.thumb.height), (320, 240), "{codec:?}");
        let (_, _, _, format) = decode(&r.thumb.jpeg);
        assert_eq!(format, jpeg_decoder::PixelFormat::L8, "{codec:?}");
    }
}

#[test]
fn a_scan_bomb_is_refused() {
    let mut bytes = jpeg_with(
        64,
        64,
        &pattern(64, 64),
        jpeg_encoder::ColorType::Rgb,
        None,
        true,
    );
    // Scan headers past the end marker still count: refusing is cheaper than parsing.
    for _ in 0..300 {
        bytes.extend_from_slice(&[0xFF, 0xDA]);
    }
    let file = TempFile::new("scans.jpg", &bytes);
    let info = inspect(file.path(), &Limits::default()).unwrap();
    let err = render(file.path(), &info, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ImageError::Corrupt(ref m) if m.contains("scans")),
        "{err:?}"
    );
}

#[test]
fn non_images_are_refused() {
    for (name, bytes) in [
        ("notes.jpg", &b"inspection notes, not a photo\n"[..]),
        ("empty.jpg", b""),
        ("x.png", b"\x89PN"),
        // An MP4 video is an ISO media file, but not an image one.
        ("clip.jpg", b"\0\0\0\x18ftypisom\0\0\0\0isommp41"),
    ] {
        let file = TempFile::new(name, bytes);
        let err = inspect(file.path(), &Limits::default()).unwrap_err();
        assert!(matches!(err, ImageError::NotAnImage), "{name}: {err:?}");
        let err = render(file.path(), &fake_info("jpeg", 1, 1), &Limits::default()).unwrap_err();
        assert!(matches!(err, ImageError::NotAnImage), "{name}: {err:?}");
    }
}

#[test]
fn heic_and_other_image_formats_are_unsupported() {
    for (bytes, format) in [
        (&b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"[..], "heic"),
        (b"\0\0\0\x1cftypmif1\0\0\0\0mif1heicmiaf", "heic"),
        (b"\0\0\0\x14ftypmif1\0\0\0\0mif1", "heif"),
        (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", "avif"),
        (b"GIF89a\x01\0\x01\0", "gif"),
        (b"II*\0\x08\0\0\0", "tiff"),
    ] {
        let file = TempFile::new("photo.jpg", bytes);
        let err = inspect(file.path(), &Limits::default()).unwrap_err();
        assert!(
            matches!(err, ImageError::Unsupported { format: f } if f == format),
            "{format}: {err:?}"
        );
    }
}

#[test]
fn render_refuses_a_file_that_is_not_what_was_inspected() {
    let file = TempFile::new("swap.jpg", &png_header_only(10, 10));
    let err = render(file.path(), &fake_info("jpeg", 10, 10), &Limits::default()).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt(_)), "{err:?}");
}

#[test]
fn fit_keeps_the_aspect_and_never_upscales() {
    assert_eq!(fit(4000, 3000, 1280), (1280, 960));
    assert_eq!(fit(3000, 4000, 320), (240, 320));
    assert_eq!(fit(640, 480, 1280), (640, 480));
    assert_eq!(fit(60_000, 2, 320), (320, 1));
}

#[test]
fn damaged_files_never_panic() {
    let exif = exif_block(&[orientation_field(3), ascii(Tag::GPSLatitudeRef, "N")]);
    let (w, h) = (96, 64);
    let px = pattern(w, h);
    let mut png = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::set_exif_metadata(&mut encoder, exif.clone()).unwrap();
    image::ImageEncoder::write_image(encoder, &px, w, h, image::ExtendedColorType::Rgb8).unwrap();
    let mut webp = Vec::new();
    let mut encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut webp);
    image::ImageEncoder::set_exif_metadata(&mut encoder, exif.clone()).unwrap();
    image::ImageEncoder::write_image(encoder, &px, w, h, image::ExtendedColorType::Rgb8).unwrap();
    let bases = [
        jpeg(w, h, &px, Some(&exif)),
        jpeg_with(w, h, &px, jpeg_encoder::ColorType::Rgb, None, true),
        png,
        webp,
    ];
    let mut s = 0x1234_5678_9ABC_DEF1u64;
    let mut next = move |n: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % n.max(1) as u64) as usize
    };
    for base in &bases {
        for _ in 0..150 {
            let mut bytes = base.clone();
            for _ in 0..1 + next(4) {
                let at = next(bytes.len());
                match next(4) {
                    0 => bytes[at] = next(256) as u8,
                    1 => bytes[at] = 0xFF,
                    2 => bytes.truncate(at.max(1)),
                    _ => bytes.insert(at, next(256) as u8),
                }
            }
            let file = TempFile::new("damaged", &bytes);
            if let Ok(info) = inspect(file.path(), &Limits::default()) {
                for codec in codecs() {
                    let _ = render_with(file.path(), &info, &Limits::default(), codec);
                }
            }
        }
    }
}
