//! The EXIF facts evidence needs: when, where, which way up. A damaged or odd EXIF block
//! never refuses the photo; the facts it cannot give are simply absent.

use chrono::{FixedOffset, NaiveDate};
use exif::{Exif, In, Tag, Value};

use super::TakenAt;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Meta {
    pub taken_at: Option<TakenAt>,
    pub gps: Option<(f64, f64)>,
    pub orientation: u16,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            taken_at: None,
            gps: None,
            orientation: 1,
        }
    }
}

/// Reads the facts from a TIFF-structured EXIF block.
pub(super) fn parse(tiff: Vec<u8>) -> Meta {
    let mut reader = exif::Reader::new();
    // Keep whatever fields parsed when another one is broken.
    reader.continue_on_error(true);
    let exif = match reader.read_raw(tiff) {
        Ok(exif) => exif,
        Err(exif::Error::PartialResult(partial)) => partial.into_inner().0,
        Err(_) => return Meta::default(),
    };
    Meta {
        taken_at: taken_at(&exif),
        gps: gps(&exif),
        orientation: orientation(&exif),
    }
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(values) => values.first().map(Vec::as_slice),
        _ => None,
    }
}

fn taken_at(exif: &Exif) -> Option<TakenAt> {
    let mut dt = exif::DateTime::from_ascii(ascii(exif, Tag::DateTimeOriginal)?).ok()?;
    if let Some(subsec) = ascii(exif, Tag::SubSecTimeOriginal) {
        // A bad subsecond field leaves the whole seconds.
        let _ = dt.parse_subsec(subsec);
    }
    if let Some(offset) = ascii(exif, Tag::OffsetTimeOriginal) {
        let _ = dt.parse_offset(offset);
    }
    // from_ascii does not range-check ("0000:00:00 00:00:00" is common for "unknown").
    let local = NaiveDate::from_ymd_opt(dt.year.into(), dt.month.into(), dt.day.into())?
        .and_hms_nano_opt(
            dt.hour.into(),
            dt.minute.into(),
            dt.second.into(),
            dt.nanosecond.unwrap_or(0),
        )?;
    let offset = dt
        .offset
        .and_then(|minutes| FixedOffset::east_opt(i32::from(minutes) * 60));
    Some(TakenAt { local, offset })
}

/// Degrees from GPS degrees/minutes/seconds rationals, signed by the reference letter.
fn coordinate(exif: &Exif, value: Tag, reference: Tag, negative: u8, max: f64) -> Option<f64> {
    let Value::Rational(parts) = &exif.get_field(value, In::PRIMARY)?.value else {
        return None;
    };
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|r| r.denom == 0) {
        return None;
    }
    let degrees: f64 = parts
        .iter()
        .zip([1.0, 60.0, 3600.0])
        .map(|(r, div)| r.to_f64() / div)
        .sum();
    if !degrees.is_finite() || degrees > max {
        return None;
    }
    // Without its reference letter the hemisphere is a guess, and evidence does not guess.
    let sign = match ascii(exif, reference)?.first()?.to_ascii_uppercase() {
        r if r == negative => -1.0,
        b'N' | b'E' => 1.0,
        _ => return None,
    };
    Some(sign * degrees)
}

fn gps(exif: &Exif) -> Option<(f64, f64)> {
    let lat = coordinate(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S', 90.0)?;
    let lon = coordinate(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W', 180.0)?;
    Some((lat, lon))
}

fn orientation(exif: &Exif) -> u16 {
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|o| u16::try_from(o).ok())
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}
