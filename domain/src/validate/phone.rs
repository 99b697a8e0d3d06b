//! Mainland China telephone numbers: mobiles and landlines.
//!
//! Mobile: 11 digits starting `13`–`19`, optionally written with `+86`, `0086`
//! or `86` in front, spaces or hyphens anywhere. Landline: a trunk `0`, an area
//! code (3 digits for `010` and `02x`, 4 otherwise, e.g. Dongying `0546`) and a
//! 7- or 8-digit local number. Stored normalised: `13812345678`, `0546-8123456`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Code;

/// Whether a number is a mobile or a fixed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhoneKind {
    /// An 11-digit mobile number.
    Mobile,
    /// An area code and local number.
    Landline,
}

/// A valid, normalised mainland phone number. `Debug` prints it masked.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses and normalises `input`.
    pub fn parse(input: &str) -> Result<Phone, Code> {
        let mut digits = String::with_capacity(input.len());
        for (i, c) in input.trim().chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                '+' if i == 0 => {}
                _ => return Err(Code::BadFormat),
            }
        }
        let national = digits
            .strip_prefix("0086")
            .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
            .unwrap_or(&digits);
        let b = national.as_bytes();
        if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
            return Ok(Phone(national.to_owned()));
        }
        if b.first() == Some(&b'0') && b.get(1).is_some_and(|d| *d != b'0') {
            let area_len = if b[1] == b'1' || b[1] == b'2' { 3 } else { 4 };
            let local = b.len().saturating_sub(area_len);
            if (7..=8).contains(&local) && b[area_len] != b'0' {
                return Ok(Phone(format!("{}-{}", &national[..area_len], &national[area_len..])));
            }
        }
        Err(Code::BadFormat)
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Mobile or landline.
    pub fn kind(&self) -> PhoneKind {
        if self.0.contains('-') {
            PhoneKind::Landline
        } else {
            PhoneKind::Mobile
        }
    }

    /// The digits only, for suffix search.
    pub fn digits(&self) -> String {
        self.0.chars().filter(char::is_ascii_digit).collect()
    }

    /// `138****5678` or `0546-****3456`.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }

    /// What the worker should look at again before saving, though the
    /// number is well formed: a mobile number in a segment not allocated
    /// today. A warning, never a refusal: segments are added every few years
    /// and a phone's copy of the list can be older than the SIM card.
    pub fn warning(&self) -> Option<PhoneWarning> {
        (self.kind() == PhoneKind::Mobile && !mobile_segment_allocated(&self.0))
            .then_some(PhoneWarning::UnallocatedSegment)
    }
}

/// Something to check about a well-formed number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhoneWarning {
    /// A mobile number whose first digits no operator has been given.
    UnallocatedSegment,
}

impl PhoneWarning {
    /// The stable machine code.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneWarning::UnallocatedSegment => "unallocated_segment",
        }
    }
}

/// Whether an 11-digit mobile number (`1` then ten digits) is in an
/// allocated segment. The allocation is libphonenumber's (version 9.0.43,
/// its CN mobile pattern
/// `1(?:610\d|740[0-5])\d{6}|1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}`),
/// written out as a match on the leading digits rather than with a regular
/// expression engine: update both together.
fn mobile_segment_allocated(number: &str) -> bool {
    let d = number.as_bytes();
    if d.len() != 11 || d[0] != b'1' {
        return false;
    }
    match (d[1], d[2]) {
        (b'3' | b'8', _) => true,
        (b'4', c) => matches!(c, b'5' | b'7'),
        (b'5' | b'9', c) => c != b'4',
        (b'6', b'1') => d[3] == b'0',
        (b'6', c) => matches!(c, b'2' | b'5'..=b'7'),
        (b'7', b'4') => d[3] == b'0' && (b'0'..=b'5').contains(&d[4]),
        (b'7', c) => matches!(c, b'0'..=b'3' | b'5'..=b'8'),
        _ => false,
    }
}

/// Masks a phone-like string: keeps the first three (or the area code) and the
/// last four characters. Safe on any text.
pub fn mask_phone(s: &str) -> String {
    let (prefix, rest): (String, Vec<char>) = match s.split_once('-') {
        Some((area, local)) => (format!("{area}-"), local.chars().collect()),
        None => {
            let chars: Vec<char> = s.chars().collect();
            if chars.len() > 7 {
                (chars[..3].iter().collect(), chars[3..].to_vec())
            } else {
                (String::new(), chars)
            }
        }
    };
    let keep = rest.len().min(4);
    let hidden = rest.len() - keep;
    let tail: String = rest[hidden..].iter().collect();
    format!("{prefix}{}{tail}", "*".repeat(hidden))
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl TryFrom<String> for Phone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s).map_err(|_| "malformed phone number".to_owned())
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers from libphonenumber 9.0.43 (Python `phonenumbers`,
    /// `number_type` of `<segment>12345678` is MOBILE): the allocated
    /// three-digit segments, and the four- and five-digit ones inside 161
    /// and 174.
    #[test]
    fn unallocated_segments_are_a_warning_not_an_error() {
        const ALLOCATED: &str = "130 131 132 133 134 135 136 137 138 139 145 147 150 151 152 153 155 156 157 158 \
            159 162 165 166 167 170 171 172 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 190 191 192 \
            193 195 196 197 198 199";
        let allocated: Vec<&str> = ALLOCATED.split_whitespace().collect();
        for segment in 130..200 {
            let number = Phone::parse(&format!("{segment}12345678")).unwrap();
            let expected =
                (!allocated.contains(&segment.to_string().as_str())).then_some(PhoneWarning::UnallocatedSegment);
            assert_eq!(number.warning(), expected, "{segment}");
        }
        for (number, fine) in [
            ("16101234567", true),
            ("16111234567", false),
            ("17400123456", true),
            ("17405123456", true),
            ("17406123456", false),
            ("17412345678", false),
        ] {
            assert_eq!(Phone::parse(number).unwrap().warning().is_none(), fine, "{number}");
        }
        assert_eq!(
            Phone::parse("0546-8123456").unwrap().warning(),
            None,
            "landlines have no segments"
        );
    }

    #[test]
    fn mobiles() {
        for ok in [
            "13812345678",
            "+86 138 1234 5678",
            "0086-13812345678",
            "8613812345678",
            "19912345678",
        ] {
            let p = Phone::parse(ok).unwrap();
            assert_eq!(p.kind(), PhoneKind::Mobile, "{ok}");
            assert!(p.as_str().len() == 11);
        }
        for bad in [
            "12812345678",
            "1381234567",
            "138123456789",
            "1381234567a",
            "10086",
            "",
            "++8613812345678",
        ] {
            assert_eq!(Phone::parse(bad), Err(Code::BadFormat), "{bad}");
        }
    }

    #[test]
    fn landlines() {
        assert_eq!(Phone::parse("0546-8123456").unwrap().as_str(), "0546-8123456");
        assert_eq!(Phone::parse("054612345678").unwrap().as_str(), "0546-12345678");
        assert_eq!(Phone::parse("010 12345678").unwrap().as_str(), "010-12345678");
        assert_eq!(Phone::parse("021-1234567").unwrap().as_str(), "021-1234567");
        assert_eq!(Phone::parse("0546-8123456").unwrap().kind(), PhoneKind::Landline);
        for bad in [
            "0546-123456",
            "0546-123456789",
            "0046-8123456",
            "0546-0123456",
            "546-8123456",
        ] {
            assert_eq!(Phone::parse(bad), Err(Code::BadFormat), "{bad}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(Phone::parse("13812345678").unwrap().masked(), "138****5678");
        assert_eq!(Phone::parse("0546-8123456").unwrap().masked(), "0546-***3456");
        let debug = format!("{:?}", Phone::parse("13812345678").unwrap());
        assert!(!debug.contains("13812345678"));
    }
}
