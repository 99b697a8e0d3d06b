//! Resident identity card numbers (居民身份证号码, GB 11643-1999).
//!
//! An 18-character number: a 6-digit administrative region code, the birth date
//! as `YYYYMMDD`, a 3-digit sequence whose last digit is odd for men and even
//! for women, and a check character computed with ISO 7064 MOD 11-2.
//!
//! **Legacy 15-digit numbers** (first-generation cards, invalid since 2013) are
//! refused with [`Code::Legacy15Digit`], so the app can say exactly why.
//! [`upgrade_legacy`] computes the 18-digit number such a card corresponds to;
//! the app may offer it as a suggestion, but the worker must confirm it against
//! the resident's current card: it is never filled in silently.
//!
//! Region codes are checked at province level (the first two digits). County
//! codes change every year and a stale table would refuse real residents.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::Code;
use crate::model::Sex;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Province-level codes: the first two digits of every valid number.
/// 71 Taiwan, 81 Hong Kong, 82 Macao and 83 (Taiwan residents' mainland
/// residence permits) are included because those residents live in grids too.
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82, 83,
];

/// A valid 18-character resident ID number, upper-case.
///
/// `Debug` prints the masked form only; use [`IdNumber::as_str`] where the full
/// number is genuinely needed (storage, the wire).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

impl IdNumber {
    /// Checks `input` (surrounding spaces ignored, `x` accepted for `X`) against
    /// the standard. `today` bounds the birth date.
    pub fn parse(input: &str, today: NaiveDate) -> Result<IdNumber, Code> {
        let s = input.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() == 15 && b.iter().all(u8::is_ascii_digit) {
            return Err(Code::Legacy15Digit);
        }
        if b.len() != 18 {
            return Err(Code::BadFormat);
        }
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(Code::BadFormat);
        }
        let province = u8::try_from(digits(&b[0..2])).map_err(|_| Code::BadRegion)?;
        if !PROVINCES.contains(&province) {
            return Err(Code::BadRegion);
        }
        let date = NaiveDate::from_ymd_opt(digits(&b[6..10]) as i32, digits(&b[10..12]), digits(&b[12..14]))
            .filter(|d| d.year() >= 1900)
            .ok_or(Code::BadDate)?;
        if date > today {
            return Err(Code::InFuture);
        }
        if check_character(&b[..17]) != b[17] {
            return Err(Code::BadCheckCharacter);
        }
        Ok(IdNumber(s))
    }

    /// The number as stored and sent: 18 characters, upper-case `X`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Birth date encoded in the number.
    pub fn birth_date(&self) -> NaiveDate {
        let b = self.0.as_bytes();
        NaiveDate::from_ymd_opt(digits(&b[6..10]) as i32, digits(&b[10..12]), digits(&b[12..14])).unwrap_or_default() // parse() checked the date; unreachable
    }

    /// Sex encoded in the 17th digit: odd for male, even for female.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The 6-digit administrative region code of registration.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    /// `370***********123X`: the first three and last four characters.
    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl TryFrom<String> for IdNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        // Values read back from our own storage or the wire were validated when
        // written; only the shape is re-checked here (a date check against
        // "today" would make old data unreadable on a phone with a wrong clock).
        let b = s.as_bytes();
        if b.len() == 18
            && b[..17].iter().all(u8::is_ascii_digit)
            && (b[17].is_ascii_digit() || b[17] == b'X')
            && check_character(&b[..17]) == b[17]
        {
            Ok(IdNumber(s))
        } else {
            Err("malformed ID number".to_owned())
        }
    }
}

impl From<IdNumber> for String {
    fn from(id: IdNumber) -> String {
        id.0
    }
}

/// Masks any ID-number-like string for display: first three and last four kept.
pub fn mask_id_number(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 3 || i >= n - 4 { *c } else { '*' })
        .collect()
}

/// The ISO 7064 MOD 11-2 check character for the first 17 digits.
pub fn check_character(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// The 18-digit number corresponding to a first-generation 15-digit one: the
/// century `19` inserted before the two-digit year, and the check character
/// appended. A suggestion for the worker to confirm, never applied silently.
pub fn upgrade_legacy(id15: &str, today: NaiveDate) -> Result<IdNumber, Code> {
    let s = id15.trim();
    if s.len() != 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Code::BadFormat);
    }
    let mut first17 = String::with_capacity(18);
    first17.push_str(&s[..6]);
    first17.push_str("19");
    first17.push_str(&s[6..]);
    let check = check_character(first17.as_bytes()) as char;
    first17.push(check);
    IdNumber::parse(&first17, today)
}

fn digits(b: &[u8]) -> u32 {
    b.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "11010519491231002X";

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    #[test]
    fn accepts_the_published_example() {
        let id = IdNumber::parse(EXAMPLE, today()).unwrap();
        assert_eq!(id.as_str(), EXAMPLE);
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.region_code(), "110105");
        // lower-case x and surrounding spaces are the same number
        assert_eq!(IdNumber::parse(" 11010519491231002x ", today()).unwrap(), id);
    }

    #[test]
    fn rejects_every_single_character_change_of_the_example() {
        let alphabet: Vec<char> = "0123456789XAx -".chars().collect();
        let original: Vec<char> = EXAMPLE.chars().collect();
        let mut tried = 0;
        for pos in 0..original.len() {
            for &c in &alphabet {
                if c == original[pos] || (pos == 17 && c == 'x') {
                    continue; // the same number
                }
                let mut changed = original.clone();
                changed[pos] = c;
                let s: String = changed.iter().collect();
                assert!(
                    IdNumber::parse(&s, today()).is_err(),
                    "accepted a change at position {pos}"
                );
                tried += 1;
            }
        }
        assert!(tried > 200);
    }

    #[test]
    fn check_character_detects_errors_with_its_own_code() {
        assert_eq!(
            IdNumber::parse("110105194912310021", today()),
            Err(Code::BadCheckCharacter)
        );
        // a transposition of two neighbouring digits
        assert_eq!(
            IdNumber::parse("11010519491231020X", today()),
            Err(Code::BadCheckCharacter)
        );
    }

    #[test]
    fn dates_are_checked() {
        let with_date = |date: &str| {
            let mut s = format!("370502{date}123");
            let c = check_character(s.as_bytes()) as char;
            s.push(c);
            IdNumber::parse(&s, today())
        };
        assert!(with_date("19840229").is_ok()); // leap day
        assert_eq!(with_date("19830229"), Err(Code::BadDate)); // not a leap year
        assert_eq!(with_date("19001301"), Err(Code::BadDate)); // month 13
        assert_eq!(with_date("19990431"), Err(Code::BadDate)); // April 31
        assert_eq!(with_date("18991231"), Err(Code::BadDate)); // before 1900
        assert_eq!(with_date("20261127"), Err(Code::InFuture)); // tomorrow
        assert!(with_date("20261126").is_ok()); // born today
    }

    #[test]
    fn sex_digit_is_read() {
        let make = |seq: &str| {
            let mut s = format!("37050219900101{seq}");
            let c = check_character(s.as_bytes()) as char;
            s.push(c);
            IdNumber::parse(&s, today()).unwrap()
        };
        assert_eq!(make("001").sex(), Sex::Male);
        assert_eq!(make("002").sex(), Sex::Female);
        assert_eq!(make("159").sex(), Sex::Male);
    }

    #[test]
    fn region_and_format() {
        assert_eq!(IdNumber::parse("", today()), Err(Code::BadFormat));
        assert_eq!(IdNumber::parse("1101051949123100", today()), Err(Code::BadFormat));
        assert_eq!(IdNumber::parse("11010519491231002X1", today()), Err(Code::BadFormat));
        let mut s = "990105194912310020".to_owned();
        s.pop();
        let c = check_character(s.as_bytes()) as char;
        s.push(c);
        assert_eq!(IdNumber::parse(&s, today()), Err(Code::BadRegion));
    }

    #[test]
    fn legacy_numbers_are_refused_with_their_own_code_and_can_be_upgraded() {
        let legacy = "110105491231002";
        assert_eq!(IdNumber::parse(legacy, today()), Err(Code::Legacy15Digit));
        let upgraded = upgrade_legacy(legacy, today()).unwrap();
        assert_eq!(upgraded.as_str(), EXAMPLE);
    }

    #[test]
    fn debug_and_mask_hide_the_number() {
        let id = IdNumber::parse(EXAMPLE, today()).unwrap();
        assert_eq!(id.masked(), "110***********002X");
        let debug = format!("{id:?}");
        assert!(!debug.contains(EXAMPLE));
        assert!(!debug.contains("19491231"));
    }

    #[test]
    fn serde_round_trip_and_refuses_garbage() {
        let id = IdNumber::parse(EXAMPLE, today()).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{EXAMPLE}\""));
        let back: IdNumber = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<IdNumber>("\"110105194912310021\"").is_err());
    }
}
