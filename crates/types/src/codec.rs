//! Canonical binary encoding: the one byte form of every value that is signed, hashed or stored.
//!
//! bincode 2.0.1 with fixed-width big-endian integers, behind a format version byte. Decoding
//! is strict (see `specs/encoding.md`): the version byte must match, trailing bytes are
//! rejected, declared lengths are bounded, and the input must re-encode to exactly itself, so
//! no value has two encodings.

use bincode::config::{self, BigEndian, Configuration, Fixint, Limit};
use thiserror::Error;

/// Version of the binary format; the first byte of every encoding.
pub const FORMAT_VERSION: u8 = 1;

/// Largest encoding the decoder accepts at all; callers apply tighter limits per kind.
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

type Config = Configuration<BigEndian, Fixint, Limit<MAX_DECODE_BYTES>>;

const CONFIG: Config = config::standard()
    .with_big_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// Why bytes were not accepted as a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input was empty.
    #[error("empty input")]
    Empty,
    /// The first byte names a format this build does not read.
    #[error("unsupported format version {found} (expected {FORMAT_VERSION})")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// The input is longer than allowed for this kind of value.
    #[error("input of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Allowed length.
        limit: usize,
    },
    /// bincode rejected the bytes (bad tag, bad length, invalid field, short input).
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the value's one canonical form.
    #[error("non-canonical encoding")]
    NonCanonical,
}

/// Encodes a value in its canonical form (version byte first).
pub fn encode<T: bincode::Encode>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    encode_into(value, &mut out);
    out
}

/// Appends the canonical form of a value without the version byte.
pub fn encode_into<T: bincode::Encode>(value: &T, out: &mut Vec<u8>) {
    // Encoding into memory fails only if the value exceeds the decode limit, which no
    // value this crate builds can: a broken invariant, so halt rather than sign garbage.
    if let Err(error) = bincode::encode_into_std_write(value, out, CONFIG) {
        unreachable!("canonical encoding failed: {error}");
    }
}

/// Decodes a value, accepting only its canonical form and at most `limit` bytes.
pub fn decode<T: bincode::Decode<()> + bincode::Encode>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version { found: version });
    }
    let (value, consumed): (T, usize) = bincode::decode_from_slice(body, CONFIG)
        .map_err(|error| CodecError::Malformed(error.to_string()))?;
    if consumed != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - consumed));
    }
    if encode(&value) != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version() {
        let bytes = encode(&(7u32, true, String::from("AT")));
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: (u32, bool, String) = decode(&bytes, 1024).unwrap();
        assert_eq!(back, (7, true, "AT".to_string()));
    }

    #[test]
    fn rejects_wrong_version_trailing_and_bad_bool() {
        let mut bytes = encode(&5u32);
        bytes[0] = 9;
        assert_eq!(
            decode::<u32>(&bytes, 64),
            Err(CodecError::Version { found: 9 })
        );
        let mut bytes = encode(&5u32);
        bytes.push(0);
        assert_eq!(decode::<u32>(&bytes, 64), Err(CodecError::TrailingBytes(1)));
        assert!(matches!(
            decode::<bool>(&[FORMAT_VERSION, 2], 64),
            Err(CodecError::Malformed(_))
        ));
        assert_eq!(decode::<u32>(&[], 64), Err(CodecError::Empty));
    }

    #[test]
    fn integers_are_fixed_width_big_endian() {
        assert_eq!(encode(&5u32), vec![FORMAT_VERSION, 0, 0, 0, 5]);
        assert_eq!(encode(&1u64).len(), 9);
    }

    #[test]
    fn rejects_oversized_inputs_and_huge_length_claims() {
        assert!(matches!(
            decode::<u32>(&[1u8; 10], 4),
            Err(CodecError::TooLarge { .. })
        ));
        // A vector claiming 2^63 elements must fail cleanly, not allocate.
        let mut bytes = vec![FORMAT_VERSION];
        bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(matches!(
            decode::<Vec<u64>>(&bytes, 1024),
            Err(CodecError::Malformed(_))
        ));
    }
}
