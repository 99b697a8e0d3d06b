//! Validation rules shared by every write (and, through the protocol crate, by
//! the server): text limits, identity numbers, phones, coordinates, photos.

pub mod id_number;
pub mod phone;

use serde::{Deserialize, Serialize};

use crate::error::{Code, ValidationError};

/// A checked value, or the rule it broke.
type Result<T> = std::result::Result<T, ValidationError>;

pub use id_number::IdNumber;
pub use phone::{Phone, PhoneKind};

/// Length limits, in characters (not bytes: one Chinese character is one).
pub mod limits {
    /// A person's name.
    pub const NAME: usize = 50;
    /// Place names, room numbers, short labels.
    pub const LABEL: usize = 100;
    /// An incident title.
    pub const TITLE: usize = 100;
    /// An address line.
    pub const ADDRESS: usize = 200;
    /// Descriptions and notes.
    pub const NOTES: usize = 2000;
    /// Residents involved in one incident or served by one log.
    pub const RESIDENTS_PER_RECORD: usize = 50;
    /// Care tags on one resident.
    pub const CARE_TAGS: usize = 20;
    /// Largest accepted photo.
    pub const PHOTO_BYTES: u64 = 10 * 1024 * 1024;
    /// Photos on one record.
    pub const PHOTOS_PER_RECORD: usize = 9;
}

/// Trims `value` and checks it is not blank, not longer than `max`
/// characters, and free of control characters (newlines and tabs are allowed
/// when `multiline`).
pub fn text(field: &str, value: &str, max: usize, multiline: bool) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValidationError::new(field, Code::Required));
    }
    optional_text(field, v, max, multiline)
}

/// Like [`text`], but blank is allowed and becomes an empty string.
pub fn optional_text(field: &str, value: &str, max: usize, multiline: bool) -> Result<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(ValidationError::new(field, Code::TooLong { max }));
    }
    if v.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
    {
        return Err(ValidationError::new(field, Code::ControlCharacter));
    }
    Ok(v.to_owned())
}

/// The coordinate reference system a location was measured in. Phones report
/// WGS-84 from GNSS; Chinese map SDKs return GCJ-02 or BD-09, so the tag is kept
/// to allow a correct conversion on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CoordinateSystem {
    /// WGS-84, as GNSS reports it.
    #[default]
    Wgs84,
    /// GCJ-02, the national obfuscated datum used by most Chinese map SDKs.
    Gcj02,
    /// BD-09, Baidu's datum.
    Bd09,
}

/// A place on Earth with its measured accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude in degrees, −90..=90.
    pub latitude: f64,
    /// Longitude in degrees, −180..=180.
    pub longitude: f64,
    /// Horizontal accuracy radius in metres, if known.
    pub accuracy_m: Option<f64>,
    /// Datum of the coordinates.
    #[serde(default)]
    pub crs: CoordinateSystem,
}

impl Location {
    /// Checks the ranges; `field` prefixes the error's field name.
    pub fn validate(&self, field: &str) -> Result<()> {
        if !self.latitude.is_finite() || !(-90.0..=90.0).contains(&self.latitude) {
            return Err(ValidationError::new(format!("{field}.latitude"), Code::OutOfRange));
        }
        if !self.longitude.is_finite() || !(-180.0..=180.0).contains(&self.longitude) {
            return Err(ValidationError::new(format!("{field}.longitude"), Code::OutOfRange));
        }
        if let Some(a) = self.accuracy_m
            && (!a.is_finite() || !(0.0..=100_000.0).contains(&a))
        {
            return Err(ValidationError::new(format!("{field}.accuracy_m"), Code::OutOfRange));
        }
        Ok(())
    }
}

/// Photo types accepted, recognised by their first bytes (never by a file
/// name): on the phone at capture, and on the server for a department's
/// photos and for serving any photo.
pub fn photo_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && matches!(&bytes[8..12], b"heic" | b"heix" | b"hevc" | b"heif" | b"mif1" | b"msf1")
    {
        Some("image/heic")
    } else {
        None
    }
}

/// A birth date given without an ID number: not after `today`, not before
/// 1900 (an ID number's own date is checked by [`IdNumber::parse`]).
pub fn birth_date(date: chrono::NaiveDate, today: chrono::NaiveDate) -> Result<()> {
    use chrono::Datelike;
    if date > today {
        return Err(ValidationError::new("birth_date", Code::InFuture));
    }
    if date.year() < 1900 {
        return Err(ValidationError::new("birth_date", Code::BadDate));
    }
    Ok(())
}

/// A time stamp no more than a few minutes ahead of `now` (phones drift).
pub fn not_in_future(field: &str, at_ms: i64, now_ms: i64) -> Result<()> {
    const SKEW_MS: i64 = 10 * 60 * 1000;
    if at_ms > now_ms + SKEW_MS {
        return Err(ValidationError::new(field, Code::InFuture));
    }
    if at_ms < 0 {
        return Err(ValidationError::new(field, Code::OutOfRange));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<impl std::fmt::Debug>) -> Code {
        r.unwrap_err().code
    }

    #[test]
    fn text_limits_count_characters() {
        assert_eq!(text("name", "  张伟 ", 50, false).unwrap(), "张伟");
        assert_eq!(code(text("name", "   ", 50, false)), Code::Required);
        assert!(text("name", &"张".repeat(50), 50, false).is_ok());
        assert_eq!(
            code(text("name", &"张".repeat(51), 50, false)),
            Code::TooLong { max: 50 }
        );
        assert_eq!(code(text("name", "张\u{0}伟", 50, false)), Code::ControlCharacter);
        assert_eq!(code(text("name", "张\n伟", 50, false)), Code::ControlCharacter);
        assert!(text("notes", "line\nline", 50, true).is_ok());
    }

    #[test]
    fn locations() {
        let ok = Location {
            latitude: 37.46,
            longitude: 118.49,
            accuracy_m: Some(8.0),
            crs: CoordinateSystem::Wgs84,
        };
        assert!(ok.validate("location").is_ok());
        for (lat, lon, acc, field) in [
            (91.0, 118.0, None, "location.latitude"),
            (f64::NAN, 118.0, None, "location.latitude"),
            (37.0, -180.5, None, "location.longitude"),
            (37.0, f64::INFINITY, None, "location.longitude"),
            (37.0, 118.0, Some(-1.0), "location.accuracy_m"),
        ] {
            let e = Location {
                latitude: lat,
                longitude: lon,
                accuracy_m: acc,
                crs: CoordinateSystem::Gcj02,
            }
            .validate("location")
            .unwrap_err();
            assert_eq!(e.field, field);
        }
    }

    #[test]
    fn photo_types_by_magic() {
        assert_eq!(photo_mime(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(photo_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(photo_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        for brand in ["heic", "heix", "hevc", "heif", "mif1", "msf1"] {
            let header = format!("\0\0\0\x18ftyp{brand}\0\0");
            assert_eq!(photo_mime(header.as_bytes()), Some("image/heic"), "{brand}");
        }
        assert_eq!(photo_mime(b"\0\0\0\x18ftypisom\0\0"), None, "an MP4 video");
        assert_eq!(photo_mime(b"%PDF-1.7"), None);
        assert_eq!(photo_mime(b""), None);
    }
}
