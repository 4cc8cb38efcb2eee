//! Keys and signatures a hostile client can make, for tests of the edge: ZIP-215 accepts
//! them, and Cachet's rules (canonical prime-order account keys, ids fixed by the content)
//! must still hold.

use cachet_types::{PublicKey, Signature, SigningKey};
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// `key`'s public point plus a point of order 8: another 32-byte key that ZIP-215 accepts
/// for one in eight of `key`'s signatures.
pub fn mixed_order_key(key: &PublicKey) -> PublicKey {
    let point = CompressedEdwardsY(key.0)
        .decompress()
        .expect("a public key of a signing key is a point");
    PublicKey((point + EIGHT_TORSION[1]).compress().0)
}

/// A second 32-byte encoding of a valid point of large order: `y + p` for a small `y` on
/// the curve (still below 2^255), which decodes to the point of `y`.
pub fn non_canonical_key() -> PublicKey {
    let y = (2u8..19)
        .find(|&y| {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            CompressedEdwardsY(bytes)
                .decompress()
                .is_some_and(|point| !point.is_small_order())
        })
        .expect("some y below 19 is on the curve with large order");
    // p = 2^255 - 19, little-endian.
    let mut bytes = [0xffu8; 32];
    bytes[0] = 0xed + y;
    bytes[31] = 0x7f;
    PublicKey(bytes)
}

/// Another valid ZIP-215 signature by `key` over `message`: the nonce point `R` carries a
/// torsion component (`R = rB + T`), so the bytes differ from the deterministic signature.
/// Any signer can make as many of these as it likes.
pub fn torsion_signature(key: &SigningKey, message: &[u8], nonce_seed: u8) -> Signature {
    sign_raw(key, &key.public_key(), message, nonce_seed, true)
}

/// A signature by `key`'s secret that ZIP-215 accepts for `as_key`, which may be `key`'s
/// public key plus a torsion point ([`mixed_order_key`]): the cofactored equation cannot
/// tell them apart, so without the account-key rule one secret would sign for eight
/// accounts.
pub fn sign_as(key: &SigningKey, as_key: &PublicKey, message: &[u8]) -> Signature {
    sign_raw(key, as_key, message, 7, false)
}

fn sign_raw(
    key: &SigningKey,
    as_key: &PublicKey,
    message: &[u8],
    nonce_seed: u8,
    torsion_in_r: bool,
) -> Signature {
    let expanded: [u8; 64] = Sha512::digest(key.seed()).into();
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&expanded[..32]);
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    let a = Scalar::from_bytes_mod_order(secret);
    let r = Scalar::from_bytes_mod_order([nonce_seed.max(1); 32]);
    let mut big_r: EdwardsPoint = EdwardsPoint::mul_base(&r);
    if torsion_in_r {
        big_r += EIGHT_TORSION[1];
    }
    let big_r = big_r.compress().0;
    let k: [u8; 64] = Sha512::new()
        .chain_update(big_r)
        .chain_update(as_key.0)
        .chain_update(message)
        .finalize()
        .into();
    let s = r + Scalar::from_bytes_mod_order_wide(&k) * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&big_r);
    signature[32..].copy_from_slice(s.as_bytes());
    Signature(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_torsion_signature_verifies_and_differs() {
        let key = SigningKey::from_seed([9; 32]);
        let signature = torsion_signature(&key, b"message", 3);
        assert_ne!(signature, key.sign(b"message"));
        assert_eq!(key.public_key().verify(b"message", &signature), Ok(()));
        assert!(key.public_key().verify(b"other", &signature).is_err());
    }

    #[test]
    fn one_secret_signs_for_the_mixed_key_under_zip215_but_cachet_refuses_it() {
        let key = SigningKey::from_seed([9; 32]);
        let mixed = mixed_order_key(&key.public_key());
        let signature = sign_as(&key, &mixed, b"message");
        let zebra = ed25519_zebra::VerificationKey::try_from(mixed.0).unwrap();
        assert!(
            zebra
                .verify(
                    &ed25519_zebra::Signature::from_bytes(&signature.0),
                    b"message"
                )
                .is_ok(),
            "ZIP-215 alone accepts the mixed-order key's signature"
        );
        assert_eq!(
            mixed.verify(b"message", &signature),
            Err(cachet_types::SignatureError::MixedOrderKey)
        );
    }

    #[test]
    fn the_hostile_keys_are_refused_by_name() {
        use cachet_types::SignatureError;
        let key = SigningKey::from_seed([9; 32]).public_key();
        assert_eq!(
            mixed_order_key(&key).check_account(),
            Err(SignatureError::MixedOrderKey)
        );
        assert_eq!(
            non_canonical_key().check_account(),
            Err(SignatureError::NonCanonicalKey)
        );
    }
}
