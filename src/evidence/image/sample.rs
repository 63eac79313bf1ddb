//! The EXIF block a phone writes into a photo, made to order: for the benchmark's generated
//! photo and the tests' (the server only ever reads EXIF).

use exif::{Field, In, Rational, Tag, Value};

/// Where and when, as a phone records them.
pub struct PhoneExif<'a> {
    pub orientation: u16,
    /// `YYYY:MM:DD HH:MM:SS`, the camera's local time.
    pub taken: &'a str,
    /// `+08:00`.
    pub offset: &'a str,
    /// Degrees, minutes, hundredths of seconds; north and east.
    pub lat: (u32, u32, u32),
    pub lon: (u32, u32, u32),
}

/// The EXIF (TIFF) bytes for `jpeg_encoder::Encoder::add_exif_metadata`.
pub fn phone_exif(e: &PhoneExif<'_>) -> Result<Vec<u8>, exif::Error> {
    let ascii = |tag, s: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![s.as_bytes().to_vec()]),
    };
    let dms = |tag, (d, m, s100): (u32, u32, u32)| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(vec![
            Rational { num: d, denom: 1 },
            Rational { num: m, denom: 1 },
            Rational {
                num: s100,
                denom: 100,
            },
        ]),
    };
    let fields = [
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![e.orientation]),
        },
        ascii(Tag::Make, "xuncha"),
        ascii(Tag::DateTimeOriginal, e.taken),
        ascii(Tag::OffsetTimeOriginal, e.offset),
        ascii(Tag::GPSLatitudeRef, "N"),
        dms(Tag::GPSLatitude, e.lat),
        ascii(Tag::GPSLongitudeRef, "E"),
        dms(Tag::GPSLongitude, e.lon),
    ];
    let mut writer = exif::experimental::Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false)?;
    Ok(tiff.into_inner())
}
