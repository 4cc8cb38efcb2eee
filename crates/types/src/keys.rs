//! Ed25519 keys and signatures under one validity rule, and account addresses.
//!
//! Cachet verifies every signature under the ZIP-215 rules as implemented by
//! `ed25519-zebra`: single and batch verification accept exactly the same signatures, so
//! nodes that batch and nodes that do not can never disagree (`specs/encoding.md`).
//!
//! Keys are stricter than ZIP-215: a key that is or acts as an account (signer, cosigner,
//! receiver, claim key, approved account, issuer, validator) must be the canonical encoding of
//! a point in the prime-order subgroup ([`PublicKey::check_account`]). ZIP-215 accepts a key
//! plus a torsion point and non-canonical encodings of a point; accounts are keyed by their
//! bytes, so without this rule one secret would control several distinct accounts.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};

use bech32::{Bech32m, Hrp};
use bincode::{Decode, Encode};
use curve25519_dalek::edwards::CompressedEdwardsY;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Human-readable prefix of account addresses.
pub const ADDRESS_HRP: &str = "cachet";

/// An ed25519 public key (32 bytes, as transmitted; validity is checked when used).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (R || s).
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Signature(pub [u8; 64]);

/// Why a signature or key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The key bytes are not a point on the curve.
    #[error("public key is not a valid curve point")]
    InvalidKey,
    /// The key is of small order: anyone could sign for it.
    #[error("public key is a weak (small-order) key")]
    WeakKey,
    /// The bytes decode to a point but are not its one canonical encoding.
    #[error("public key is not the canonical encoding of its point")]
    NonCanonicalKey,
    /// The point has a torsion component: it is not in the prime-order subgroup.
    #[error("public key has a torsion component (mixed order)")]
    MixedOrderKey,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// Keys that passed [`PublicKey::check_account`], remembered (the check is a function of
/// the bytes alone): its torsion test is a scalar multiplication, as dear as half a
/// signature check, and signers and receivers recur. Emptied when full.
static ACCOUNT_KEYS: LazyLock<RwLock<HashSet<[u8; 32]>>> =
    LazyLock::new(|| RwLock::new(HashSet::new()));

/// Most keys [`ACCOUNT_KEYS`] holds (2 MiB of keys).
pub const MAX_REMEMBERED_ACCOUNT_KEYS: usize = 1 << 16;

impl PublicKey {
    /// Checks that the key may be an account: the canonical encoding of a point of the
    /// prime-order subgroup. The checks run in this order, each with its own reason: a curve
    /// point (`InvalidKey`), not of small order (`WeakKey`), re-encodes to the same bytes
    /// (`NonCanonicalKey`), no torsion component (`MixedOrderKey`). A key that passed once
    /// is remembered (bounded), so checking it again costs a lookup.
    pub fn check_account(&self) -> Result<(), SignatureError> {
        let known = ACCOUNT_KEYS
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&self.0);
        if known {
            return Ok(());
        }
        self.check_account_uncached()?;
        let mut keys = ACCOUNT_KEYS.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_REMEMBERED_ACCOUNT_KEYS {
            keys.clear();
        }
        keys.insert(self.0);
        Ok(())
    }

    fn check_account_uncached(&self) -> Result<(), SignatureError> {
        let point = CompressedEdwardsY(self.0)
            .decompress()
            .ok_or(SignatureError::InvalidKey)?;
        if point.is_small_order() {
            return Err(SignatureError::WeakKey);
        }
        if point.compress().0 != self.0 {
            return Err(SignatureError::NonCanonicalKey);
        }
        if !point.is_torsion_free() {
            return Err(SignatureError::MixedOrderKey);
        }
        Ok(())
    }

    /// Verifies `signature` over `message` under ZIP-215, for a key that passes
    /// [`PublicKey::check_account`].
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        self.check_account()?;
        let key = ed25519_zebra::VerificationKey::try_from(self.0)
            .map_err(|_| SignatureError::InvalidKey)?;
        key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
            .map_err(|_| SignatureError::BadSignature)
    }

    /// The account address of this key.
    pub fn address(&self) -> Address {
        Address(*self)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Text that is not a key, signature or address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what}: {text:?}")]
pub struct KeyParseError {
    /// What was expected.
    pub what: &'static str,
    /// The text given.
    pub text: String,
}

fn parse_hex<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], KeyParseError> {
    let error = || KeyParseError {
        what,
        text: text.to_string(),
    };
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(error());
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| error())?;
    Ok(bytes)
}

impl FromStr for PublicKey {
    type Err = KeyParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_hex(text, "public key (64 hex digits)").map(PublicKey)
    }
}

impl TryFrom<String> for PublicKey {
    type Error = KeyParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<PublicKey> for String {
    fn from(key: PublicKey) -> String {
        key.to_string()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl TryFrom<String> for Signature {
    type Error = KeyParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        parse_hex(&text, "signature (128 hex digits)").map(Signature)
    }
}

impl From<Signature> for String {
    fn from(signature: Signature) -> String {
        hex::encode(signature.0)
    }
}

/// An ed25519 signing key. Its bytes are wiped on drop (by `ed25519-zebra`).
#[derive(Clone)]
pub struct SigningKey(ed25519_zebra::SigningKey);

impl SigningKey {
    /// The key for a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_zebra::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, for encrypted storage.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verification_key().into())
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key())
    }
}

/// Verifies many signatures at once; accepts exactly what single verification accepts.
#[derive(Default)]
pub struct BatchVerifier {
    inner: ed25519_zebra::batch::Verifier,
    bad_key: Option<SignatureError>,
    len: usize,
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> BatchVerifier {
        BatchVerifier::default()
    }

    /// Adds one (key, message, signature) triple.
    pub fn queue(&mut self, key: &PublicKey, message: &[u8], signature: &Signature) {
        if let Err(error) = key.check_account() {
            self.bad_key.get_or_insert(error);
            return;
        }
        let key_bytes = ed25519_zebra::VerificationKeyBytes::from(key.0);
        let sig = ed25519_zebra::Signature::from_bytes(&signature.0);
        self.inner.queue((key_bytes, sig, message));
        self.len += 1;
    }

    /// Number of signatures queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.bad_key.is_none()
    }

    /// Verifies the whole batch: Ok only if every queued signature is valid.
    ///
    /// The random coefficients come from `rng`; the verdict does not depend on them
    /// (ZIP-215), only the chance of a false accept, which is negligible.
    pub fn verify<R: rand_core::CryptoRng>(self, rng: R) -> Result<(), SignatureError> {
        if let Some(error) = self.bad_key {
            return Err(error);
        }
        self.inner
            .verify(rng)
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// The operating system's random source, for batch verification and key generation.
pub fn os_rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// An account: an ed25519 public key, shown as a bech32m string (`cachet1...`) with a
/// checksum, so a mistyped address is caught before anything is signed.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Address(pub PublicKey);

impl Address {
    /// The public key behind the address.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(ADDRESS_HRP);
        match bech32::encode::<Bech32m>(hrp, &self.0.0) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = KeyParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || KeyParseError {
            what: "address (cachet1..., bech32m with checksum)",
            text: text.to_string(),
        };
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|_| error())?;
        if checked.hrp().as_str() != ADDRESS_HRP || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(error());
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let key: [u8; 32] = bytes.try_into().map_err(|_| error())?;
        let address = Address(PublicKey(key));
        // 52 characters carry 260 bits: the decoder drops the 4 after the key's 256, so 16
        // spellings would name one account. Only the canonical one (zero padding) is.
        if address.to_string() != text {
            return Err(error());
        }
        Ok(address)
    }
}

impl TryFrom<String> for Address {
    type Error = KeyParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Address> for String {
    fn from(address: Address) -> String {
        address.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed([n; 32])
    }

    #[test]
    fn sign_verify_and_tamper() {
        let k = key(1);
        let sig = k.sign(b"mint");
        assert_eq!(k.public_key().verify(b"mint", &sig), Ok(()));
        assert_eq!(
            k.public_key().verify(b"mint!", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            key(2).public_key().verify(b"mint", &sig),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn identity_point_is_weak_and_refused() {
        // The identity point (y = 1) has order 1: with it, (R = identity, s = 0) would
        // verify under cofactored rules for any message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey(identity);
        assert_eq!(weak.check_account(), Err(SignatureError::WeakKey));
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert_eq!(
            weak.verify(b"anything", &Signature(forged)),
            Err(SignatureError::WeakKey)
        );
        let mut batch = BatchVerifier::new();
        batch.queue(&weak, b"anything", &Signature(forged));
        assert_eq!(batch.verify(os_rng()), Err(SignatureError::WeakKey));
        assert_eq!(key(3).public_key().check_account(), Ok(()));
    }

    /// A point of order 8, from the curve's torsion subgroup.
    fn torsion_point() -> curve25519_dalek::EdwardsPoint {
        curve25519_dalek::constants::EIGHT_TORSION[1]
    }

    #[test]
    fn a_key_plus_a_torsion_point_is_refused() {
        let k = key(4);
        let point = CompressedEdwardsY(k.public_key().0).decompress().unwrap();
        let mixed = PublicKey((point + torsion_point()).compress().0);
        assert_ne!(mixed, k.public_key());
        assert_eq!(mixed.check_account(), Err(SignatureError::MixedOrderKey));
        let signature = k.sign(b"m");
        assert_eq!(
            mixed.verify(b"m", &signature),
            Err(SignatureError::MixedOrderKey)
        );
        let mut batch = BatchVerifier::new();
        batch.queue(&k.public_key(), b"m", &signature);
        batch.queue(&mixed, b"m", &signature);
        assert_eq!(batch.verify(os_rng()), Err(SignatureError::MixedOrderKey));
        // Only keys that pass are remembered: a refused one is refused every time, and a
        // good one checked again is a lookup with the same answer.
        assert_eq!(mixed.check_account(), Err(SignatureError::MixedOrderKey));
        assert!(!ACCOUNT_KEYS.read().unwrap().contains(&mixed.0));
        assert!(ACCOUNT_KEYS.read().unwrap().contains(&k.public_key().0));
        assert_eq!(k.public_key().check_account(), Ok(()));
    }

    #[test]
    fn a_non_canonical_encoding_of_a_valid_point_is_refused() {
        // y = p + 3 is the same field element as y = 3 when reduced; find a y < 19 that is
        // on the curve and of large order, then encode it as y + p (still below 2^255).
        let p_minus_19 = {
            // p = 2^255 - 19, little-endian: ed ff .. ff 7f
            let mut p = [0xffu8; 32];
            p[0] = 0xed;
            p[31] = 0x7f;
            p
        };
        let canonical = (2u8..19)
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                bytes
            })
            .find(|bytes| {
                CompressedEdwardsY(*bytes)
                    .decompress()
                    .is_some_and(|point| !point.is_small_order())
            })
            .expect("some small y is on the curve with large order");
        let mut non_canonical = p_minus_19;
        non_canonical[0] = p_minus_19[0] + canonical[0];
        let key = PublicKey(non_canonical);
        assert_eq!(
            CompressedEdwardsY(non_canonical)
                .decompress()
                .map(|p| p.compress().0),
            Some(canonical),
            "y + p decodes to the point of y"
        );
        assert_eq!(key.check_account(), Err(SignatureError::NonCanonicalKey));
    }

    #[test]
    fn batch_agrees_with_single() {
        let mut batch = BatchVerifier::new();
        let messages: Vec<Vec<u8>> = (0..16u8).map(|i| vec![i; 10]).collect();
        for (i, m) in messages.iter().enumerate() {
            let k = key(i as u8 + 10);
            batch.queue(&k.public_key(), m, &k.sign(m));
        }
        assert_eq!(batch.len(), 16);
        assert_eq!(batch.verify(os_rng()), Ok(()));

        let mut batch = BatchVerifier::new();
        for (i, m) in messages.iter().enumerate() {
            let k = key(i as u8 + 10);
            let sig = if i == 7 { k.sign(b"other") } else { k.sign(m) };
            batch.queue(&k.public_key(), m, &sig);
        }
        assert_eq!(batch.verify(os_rng()), Err(SignatureError::BadSignature));
    }

    #[test]
    fn address_round_trip_and_checksum() {
        let address = key(5).public_key().address();
        let text = address.to_string();
        assert!(text.starts_with("cachet1"));
        assert_eq!(text.parse::<Address>().unwrap(), address);
        // Change one character: the checksum catches it.
        let mut chars: Vec<char> = text.chars().collect();
        let i = 12;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(typo.parse::<Address>().is_err());
        assert!(text.to_uppercase().parse::<Address>().is_err());
    }

    #[test]
    fn an_address_has_one_spelling() {
        // The same 32 bytes with the last padding bit set, under a valid checksum (made
        // with @scure/base's bech32m): refused, so one account has one address.
        let canonical = "cachet1c0ukxuhwfhpqduaffnjpyxlkaxhmdrs9dey427vxjq7ccme2u9qs74uqhn";
        let padded = "cachet1c0ukxuhwfhpqduaffnjpyxlkaxhmdrs9dey427vxjq7ccme2u9q3rrg42p";
        assert!(canonical.parse::<Address>().is_ok());
        assert!(padded.parse::<Address>().is_err());
        assert!(
            bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(padded).is_ok(),
            "the padded spelling's checksum is valid: only the padding rule refuses it"
        );
    }
}
