//! Canonical binary encoding: the one byte form of every value that is signed, hashed or stored.
//!
//! bincode 2.0.1 with fixed-width big-endian integers, behind a format version byte. Decoding
//! is strict (see `specs/encoding.md`): the version byte must match, trailing bytes are
//! rejected, declared lengths are bounded, and the input must re-encode to exactly itself, so
//! no value has two encodings.

use bincode::config::{self, BigEndian, Configuration, Fixint, Limit};
use bincode::error::DecodeError;
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

/// How many bytes of memory a decode may claim per byte of input. bincode refuses a length
/// prefix whose claim (elements times their in-memory size) passes its limit before it
/// allocates; that limit is a type parameter, so the decoder picks the smallest of a few
/// tiers that allows this many bytes per input byte. A legitimate value claims at most a
/// few times its encoded size (the largest in-memory to encoded ratio of any of our
/// collection items is under 16); a hostile length prefix of a few bytes can then make the
/// node allocate at most this factor times its size, not `MAX_DECODE_BYTES`.
pub const DECODE_CLAIM_FACTOR: usize = 64;

fn config_with<const N: usize>() -> Configuration<BigEndian, Fixint, Limit<N>> {
    config::standard()
        .with_big_endian()
        .with_fixed_int_encoding()
        .with_limit::<N>()
}

fn decode_body<T: bincode::Decode<()>>(body: &[u8]) -> Result<(T, usize), DecodeError> {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    let claims = body.len().saturating_mul(DECODE_CLAIM_FACTOR);
    if claims <= 64 * KIB {
        bincode::decode_from_slice(body, config_with::<{ 64 * KIB }>())
    } else if claims <= MIB {
        bincode::decode_from_slice(body, config_with::<MIB>())
    } else if claims <= 16 * MIB {
        bincode::decode_from_slice(body, config_with::<{ 16 * MIB }>())
    } else {
        bincode::decode_from_slice(body, CONFIG)
    }
}

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
    let (value, consumed): (T, usize) =
        decode_body(body).map_err(|error| CodecError::Malformed(error.to_string()))?;
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

    #[test]
    fn a_small_input_cannot_claim_a_large_allocation() {
        // 17 bytes claiming a 60 MiB byte vector: refused by the claim limit of a small
        // input before anything is allocated, not after zeroing 60 MiB.
        let mut bytes = vec![FORMAT_VERSION];
        bytes.extend_from_slice(&(60u64 << 20).to_be_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        match decode::<Vec<u8>>(&bytes, 1024) {
            Err(CodecError::Malformed(message)) => {
                assert!(message.to_lowercase().contains("limit"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // A legitimate value of every tier still decodes.
        for len in [10usize, 20_000, 300_000, 2_000_000] {
            let value = vec![7u8; len];
            let bytes = encode(&value);
            assert_eq!(decode::<Vec<u8>>(&bytes, MAX_DECODE_BYTES).unwrap(), value);
        }
        let strings: Vec<String> = (0..5_000).map(|i| i.to_string()).collect();
        assert_eq!(
            decode::<Vec<String>>(&encode(&strings), MAX_DECODE_BYTES).unwrap(),
            strings
        );
    }
}
