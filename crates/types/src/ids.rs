//! Identifiers and bounded text: operator ids, issue ids, stamp ids, country and currency codes.
//!
//! Each type can only hold a valid value: parsing checks the syntax (`specs/ledger.md`), and
//! decoding from bytes or JSON goes through the same parser, so an invalid id never exists.

use std::fmt;
use std::str::FromStr;

use bincode::de::{BorrowDecoder, Decoder};
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Text that is not a valid identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {text:?}: {rule}")]
pub struct IdError {
    /// Kind of identifier.
    pub what: &'static str,
    /// The text given.
    pub text: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

fn id_error(what: &'static str, text: &str, rule: &'static str) -> IdError {
    IdError {
        what,
        text: text.chars().take(80).collect(),
        rule,
    }
}

/// Checks `[A-Z0-9][A-Z0-9-]*` with a length in `min..=max` and no `--` or trailing `-`.
fn check_code(
    what: &'static str,
    text: &str,
    min: usize,
    max: usize,
    rule: &'static str,
) -> Result<(), IdError> {
    let bytes = text.as_bytes();
    let ok_len = (min..=max).contains(&bytes.len());
    let ok_chars = bytes
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-');
    let ok_shape = bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
        && !text.contains("--");
    if ok_len && ok_chars && ok_shape {
        Ok(())
    } else {
        Err(id_error(what, text, rule))
    }
}

/// Implements Display, FromStr, serde (as a string) and bincode (as a string, re-validated on
/// decode) for a newtype over `String` with a `parse` function.
macro_rules! string_id {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                $name::parse(text)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                $name::parse(&text)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl $name {
            /// The text form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl Encode for $name {
            fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
                self.0.encode(encoder)
            }
        }
        impl<Context> Decode<Context> for $name {
            fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
                let text = String::decode(decoder)?;
                $name::parse(&text).map_err(|error| DecodeError::OtherString(error.to_string()))
            }
        }
        impl<'de, Context> BorrowDecode<'de, Context> for $name {
            fn borrow_decode<D: BorrowDecoder<'de, Context = Context>>(
                decoder: &mut D,
            ) -> Result<Self, DecodeError> {
                let text = String::borrow_decode(decoder)?;
                $name::parse(&text).map_err(|error| DecodeError::OtherString(error.to_string()))
            }
        }
    };
}

/// A postal operator's short id, e.g. `AT-POST`: 2-16 of `A-Z 0-9 -`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OperatorId(String);

impl OperatorId {
    /// Parses and validates an operator id.
    pub fn parse(text: &str) -> Result<OperatorId, IdError> {
        check_code(
            "operator id",
            text,
            2,
            16,
            "2-16 of A-Z, 0-9 and single inner '-'",
        )?;
        Ok(OperatorId(text.to_string()))
    }
}
string_id!(OperatorId);

/// A stamp issue's id, e.g. `AT-2026-001`: 3-32 of `A-Z 0-9 -`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssueId(String);

/// Longest issue id, in bytes.
pub const ISSUE_ID_MAX_LEN: usize = 32;

impl IssueId {
    /// Parses and validates an issue id.
    pub fn parse(text: &str) -> Result<IssueId, IdError> {
        check_code(
            "issue id",
            text,
            3,
            ISSUE_ID_MAX_LEN,
            "3-32 of A-Z, 0-9 and single inner '-'",
        )?;
        Ok(IssueId(text.to_string()))
    }
}
string_id!(IssueId);

/// An ISO 3166-1 alpha-2 country code (two upper-case letters), e.g. `AT`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    /// Parses a country code.
    pub fn parse(text: &str) -> Result<CountryCode, IdError> {
        if text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(CountryCode(text.to_string()))
        } else {
            Err(id_error(
                "country code",
                text,
                "two upper-case letters (ISO 3166-1 alpha-2)",
            ))
        }
    }
}
string_id!(CountryCode);

/// An ISO 4217 currency code (three upper-case letters), e.g. `EUR`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode(String);

impl CurrencyCode {
    /// Parses a currency code.
    pub fn parse(text: &str) -> Result<CurrencyCode, IdError> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(CurrencyCode(text.to_string()))
        } else {
            Err(id_error(
                "currency code",
                text,
                "three upper-case letters (ISO 4217)",
            ))
        }
    }
}
string_id!(CurrencyCode);

/// One stamp: its issue and serial number, written `ISSUE#SERIAL` (`AT-2026-001#42`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StampId {
    /// The issue.
    pub issue: IssueId,
    /// Serial number, from 1.
    pub serial: u32,
}

/// Serial 0 names no stamp: the binary form refuses it as the text form does.
fn checked_serial(issue: IssueId, serial: u32) -> Result<StampId, DecodeError> {
    if serial == 0 {
        return Err(DecodeError::OtherString(
            "stamp serial must be from 1".into(),
        ));
    }
    Ok(StampId { issue, serial })
}

impl<Context> Decode<Context> for StampId {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let issue = IssueId::decode(decoder)?;
        checked_serial(issue, u32::decode(decoder)?)
    }
}

impl<'de, Context> BorrowDecode<'de, Context> for StampId {
    fn borrow_decode<D: BorrowDecoder<'de, Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        let issue = IssueId::borrow_decode(decoder)?;
        checked_serial(issue, u32::borrow_decode(decoder)?)
    }
}

impl StampId {
    /// A stamp id from its parts.
    pub fn new(issue: IssueId, serial: u32) -> StampId {
        StampId { issue, serial }
    }
}

impl fmt::Display for StampId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.issue, self.serial)
    }
}

impl fmt::Debug for StampId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StampId({self})")
    }
}

impl FromStr for StampId {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, IdError> {
        let rule = "ISSUE#SERIAL with a serial from 1, e.g. AT-2026-001#42";
        let (issue, serial) = text
            .split_once('#')
            .ok_or_else(|| id_error("stamp id", text, rule))?;
        let issue = IssueId::parse(issue)?;
        let canonical = !serial.starts_with('0') && serial.bytes().all(|b| b.is_ascii_digit());
        let serial: u32 = serial
            .parse()
            .ok()
            .filter(|n| *n >= 1 && canonical)
            .ok_or_else(|| id_error("stamp id", text, rule))?;
        Ok(StampId { issue, serial })
    }
}

impl TryFrom<String> for StampId {
    type Error = IdError;
    fn try_from(text: String) -> Result<Self, IdError> {
        text.parse()
    }
}

impl From<StampId> for String {
    fn from(id: StampId) -> String {
        id.to_string()
    }
}

/// Checks free text: length in bytes within `min..=max` and no control characters.
pub fn check_text(what: &'static str, text: &str, min: usize, max: usize) -> Result<(), IdError> {
    if !(min..=max).contains(&text.len()) {
        return Err(id_error(what, text, "length out of bounds"));
    }
    if text.chars().any(char::is_control) {
        return Err(id_error(what, text, "control characters are not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_issue(text: &str, ok: bool) {
        assert_eq!(IssueId::parse(text).is_ok(), ok, "{text}");
    }

    #[test]
    fn issue_ids() {
        check_issue("AT-2026-001", true);
        check_issue("ZZ1", true);
        check_issue("at-2026-001", false);
        check_issue("-AT", false);
        check_issue("AT-", false);
        check_issue("AT--1", false);
        check_issue("AT", false);
        check_issue(&"A".repeat(33), false);
        check_issue("AT 1", false);
    }

    #[test]
    fn stamp_ids() {
        let id: StampId = "AT-2026-001#42".parse().unwrap();
        assert_eq!(id.serial, 42);
        assert_eq!(id.to_string(), "AT-2026-001#42");
        for bad in [
            "AT-2026-001#0",
            "AT-2026-001#042",
            "AT-2026-001",
            "AT#1",
            "AT-1#x",
            "AT-1#+1",
        ] {
            assert!(bad.parse::<StampId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn codes() {
        assert!(CountryCode::parse("AT").is_ok());
        assert!(CountryCode::parse("at").is_err());
        assert!(CurrencyCode::parse("EUR").is_ok());
        assert!(CurrencyCode::parse("EU").is_err());
        assert!(OperatorId::parse("AT-POST").is_ok());
        assert!(OperatorId::parse("A").is_err());
    }

    #[test]
    fn invalid_ids_do_not_decode() {
        let bytes = crate::codec::encode(&String::from("not valid"));
        assert!(crate::codec::decode::<IssueId>(&bytes, 100).is_err());
        let bytes = crate::codec::encode(&String::from("AT-2026-001"));
        assert!(crate::codec::decode::<IssueId>(&bytes, 100).is_ok());
        // Serial 0 is refused in binary as in text.
        let issue = IssueId::parse("AT-2026-001").unwrap();
        let zero = crate::codec::encode(&(issue.clone(), 0u32));
        assert!(crate::codec::decode::<StampId>(&zero, 100).is_err());
        let one = crate::codec::encode(&(issue, 1u32));
        assert!(crate::codec::decode::<StampId>(&one, 100).is_ok());
    }

    #[test]
    fn text_rules() {
        assert!(check_text("title", "Alpine Flowers", 1, 200).is_ok());
        assert!(check_text("title", "", 1, 200).is_err());
        assert!(check_text("title", "a\nb", 1, 200).is_err());
    }
}
