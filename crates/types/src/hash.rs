//! SHA-256 digests with domain separation, shown as lower-case hex.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 digest.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Encode,
    Decode,
    Serialize,
    Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash: "nothing before" (genesis parent, first event of a stamp).
    pub const ZERO: Hash = Hash([0; 32]);

    /// Hashes `parts` under a domain tag: `sha256(len(tag) || tag || parts...)`.
    ///
    /// Every hash in Cachet names its domain (`specs/encoding.md#hashes`), so bytes of one kind can
    /// never be passed off as another.
    pub fn tagged(tag: &str, parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        // Tags are short ASCII constants; the length prefix keeps tag and data apart.
        hasher.update([tag.len() as u8]);
        hasher.update(tag.as_bytes());
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// Plain SHA-256 of bytes, as used for the digest of a stamp's artwork.
    pub fn sha256(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// A hash in text did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits, got {0:?}")]
pub struct HashParseError(pub String);

impl FromStr for Hash {
    type Err = HashParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| HashParseError(text.to_string()))?;
        // Only lower-case is canonical, so a hash has one text form too.
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(HashParseError(text.to_string()));
        }
        Ok(Hash(bytes))
    }
}

impl TryFrom<String> for Hash {
    type Error = HashParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Hash> for String {
    fn from(hash: Hash) -> String {
        hash.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_separate_domains() {
        assert_ne!(Hash::tagged("a", &[b"bc"]), Hash::tagged("ab", &[b"c"]));
        assert_eq!(
            Hash::tagged("x", &[b"a", b"b"]),
            Hash::tagged("x", &[b"ab"])
        );
    }

    #[test]
    fn hex_round_trip_is_strict() {
        let h = Hash::sha256(b"stamp");
        assert_eq!(h.to_hex().parse::<Hash>().unwrap(), h);
        assert!(h.to_hex().to_uppercase().parse::<Hash>().is_err());
        assert!("abcd".parse::<Hash>().is_err());
    }
}
