//! Encrypted key files: a signing key at rest, sealed with a passphrase.
//!
//! The passphrase is stretched with argon2id; the 32-byte key seed is sealed with
//! ChaCha20-Poly1305 under that key, with the public key as associated data so a file whose
//! public key was swapped fails to open. Files are JSON, written with mode 0600
//! (`specs/keystore.md`).

use std::fs;
use std::io::Write;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use cachet_types::{Address, PublicKey, SigningKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

/// Format version of key files.
pub const KEYSTORE_VERSION: u32 = 1;

/// Shortest passphrase accepted when creating a key file.
pub const MIN_PASSPHRASE_LEN: usize = 8;

/// Argon2id cost settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// Interactive default: 64 MiB, 3 passes (about half a second on one core).
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    // Upper bounds keep a hostile file from making us allocate or spin without end.
    const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    const MAX_ITERATIONS: u32 = 64;
    const MAX_PARALLELISM: u32 = 16;
}

/// The JSON form of a key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Always "cachet-keystore".
    pub kind: String,
    /// Format version.
    pub version: u32,
    /// Public key, hex.
    pub public_key: PublicKey,
    /// The account address (for people; checked against the public key).
    pub address: Address,
    /// Argon2id settings.
    pub kdf: KdfParams,
    /// Argon2 salt, hex.
    pub salt: String,
    /// AEAD nonce, hex.
    pub nonce: String,
    /// Sealed seed, hex.
    pub ciphertext: String,
}

/// Why a key file could not be written or opened.
#[derive(Debug, Error)]
pub enum KeystoreError {
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a key file we can read.
    #[error("{path} is not a valid Cachet key file: {reason}")]
    Format {
        /// File.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Wrong passphrase (or a tampered file).
    #[error("wrong passphrase for {0} (or the file was altered)")]
    WrongPassphrase(String),
    /// Passphrase too short.
    #[error("passphrase must be at least {MIN_PASSPHRASE_LEN} characters")]
    WeakPassphrase,
    /// Refusing to overwrite.
    #[error("{0} already exists; choose another name or remove it first")]
    Exists(String),
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

fn random<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeystoreError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Creates a fresh random signing key.
pub fn generate_key() -> Result<SigningKey, KeystoreError> {
    let seed = Zeroizing::new(random::<32>()?);
    Ok(SigningKey::from_seed(*seed))
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, String> {
    if kdf.memory_kib > KdfParams::MAX_MEMORY_KIB
        || kdf.iterations > KdfParams::MAX_ITERATIONS
        || kdf.parallelism > KdfParams::MAX_PARALLELISM
    {
        return Err("key derivation settings are out of bounds".into());
    }
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| e.to_string())?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Seals `key` under `passphrase`.
pub fn seal(key: &SigningKey, passphrase: &str, kdf: KdfParams) -> Result<KeyFile, KeystoreError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(KeystoreError::WeakPassphrase);
    }
    let salt = random::<16>()?;
    let nonce = random::<12>()?;
    let public_key = key.public_key();
    let derived = derive_key(passphrase, &salt, kdf).map_err(|reason| KeystoreError::Format {
        path: String::new(),
        reason,
    })?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(derived.as_ref()));
    let seed = Zeroizing::new(key.seed());
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &public_key.0,
            },
        )
        .map_err(|_| KeystoreError::Random("encryption failed".into()))?;
    Ok(KeyFile {
        kind: "cachet-keystore".into(),
        version: KEYSTORE_VERSION,
        public_key,
        address: public_key.address(),
        kdf,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

/// Opens a key file's contents with `passphrase`.
pub fn open(file: &KeyFile, passphrase: &str, path: &str) -> Result<SigningKey, KeystoreError> {
    let format = |reason: &str| KeystoreError::Format {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if file.kind != "cachet-keystore" || file.version != KEYSTORE_VERSION {
        return Err(format("unknown kind or version"));
    }
    if file.address != file.public_key.address() {
        return Err(format("address does not match the public key"));
    }
    let salt = hex::decode(&file.salt).map_err(|_| format("salt is not hex"))?;
    let nonce: [u8; 12] = hex::decode(&file.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| format("nonce must be 12 bytes of hex"))?;
    let ciphertext = hex::decode(&file.ciphertext).map_err(|_| format("ciphertext is not hex"))?;
    let derived = derive_key(passphrase, &salt, file.kdf).map_err(|reason| format(&reason))?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(derived.as_ref()));
    let seed = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &file.public_key.0,
                },
            )
            .map_err(|_| KeystoreError::WrongPassphrase(path.to_string()))?,
    );
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| format("sealed seed is not 32 bytes"))?;
    let key = SigningKey::from_seed(seed);
    if key.public_key() != file.public_key {
        return Err(format("sealed key does not match the public key"));
    }
    Ok(key)
}

/// Largest key file we read (they are well under 1 KiB).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Reads at most `max_bytes` of a file, whatever its type: a regular file, a pipe, a
/// device (`/dev/zero` is refused after `max_bytes`, not read until memory runs out).
/// The length in the metadata is not trusted; the read itself is bounded.
pub fn read_bounded(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    read_to_limit(fs::File::open(path)?, max_bytes)
}

/// Reads `reader` to its end, refusing (`InvalidData`) more than `max_bytes`: for files and
/// standard input alike.
pub fn read_to_limit(reader: impl std::io::Read, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("input is larger than the limit of {max_bytes} bytes"),
        ));
    }
    Ok(bytes)
}

/// Largest passphrase file read (node and CLI).
pub const MAX_PASSPHRASE_FILE_BYTES: u64 = 4 * 1024;

/// [`read_bounded`], as UTF-8 text.
pub fn read_text_bounded(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, max_bytes)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "file is not UTF-8 text"))
}

/// Reads a key file's JSON without opening it.
pub fn read(path: &Path) -> Result<KeyFile, KeystoreError> {
    let shown = path.display().to_string();
    let text = read_text_bounded(path, MAX_FILE_BYTES).map_err(|error| {
        if error.kind() == std::io::ErrorKind::InvalidData {
            KeystoreError::Format {
                path: shown.clone(),
                reason: error.to_string(),
            }
        } else {
            KeystoreError::Io {
                path: shown.clone(),
                source: error,
            }
        }
    })?;
    serde_json::from_str(&text).map_err(|e| KeystoreError::Format {
        path: shown,
        reason: e.to_string(),
    })
}

/// Reads and opens a key file.
pub fn load(path: &Path, passphrase: &str) -> Result<SigningKey, KeystoreError> {
    let file = read(path)?;
    open(&file, passphrase, &path.display().to_string())
}

/// Writes a key file with mode 0600, refusing to overwrite an existing file.
pub fn write(path: &Path, file: &KeyFile) -> Result<(), KeystoreError> {
    let shown = path.display().to_string();
    let io = |source| KeystoreError::Io {
        path: shown.clone(),
        source,
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        // Directories of keys are private: created 0700 (the files are 0600).
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(parent).map_err(io)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = match options.open(path) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeystoreError::Exists(shown));
        }
        Err(e) => return Err(io(e)),
    };
    let text = serde_json::to_string_pretty(file).map_err(|e| KeystoreError::Format {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    out.write_all(text.as_bytes()).map_err(io)?;
    out.write_all(b"\n").map_err(io)?;
    out.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn bounded_reads_stop_at_the_limit_whatever_the_file() {
        let refused = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidData);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small");
        fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        assert!(read_bounded(&path, 4).is_err());
        assert!(read(Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn seal_open_round_trip_and_wrong_passphrase() {
        let key = generate_key().unwrap();
        let file = seal(&key, "correct horse", FAST).unwrap();
        let opened = open(&file, "correct horse", "k").unwrap();
        assert_eq!(opened.public_key(), key.public_key());
        assert!(matches!(
            open(&file, "wrong horse!", "k"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        assert!(matches!(
            seal(&key, "short", FAST),
            Err(KeystoreError::WeakPassphrase)
        ));
    }

    #[test]
    fn swapped_public_key_is_refused() {
        let key = generate_key().unwrap();
        let other = generate_key().unwrap();
        let mut file = seal(&key, "correct horse", FAST).unwrap();
        file.public_key = other.public_key();
        file.address = other.public_key().address();
        assert!(matches!(
            open(&file, "correct horse", "k"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
    }

    #[test]
    fn files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w/alice.json");
        let key = generate_key().unwrap();
        let file = seal(&key, "correct horse", FAST).unwrap();
        write(&path, &file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(write(&path, &file), Err(KeystoreError::Exists(_))));
        let loaded = load(&path, "correct horse").unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(key.seed())));
    }

    #[test]
    fn hostile_kdf_settings_are_refused() {
        let key = generate_key().unwrap();
        let mut file = seal(&key, "correct horse", FAST).unwrap();
        file.kdf.memory_kib = u32::MAX;
        assert!(matches!(
            open(&file, "correct horse", "k"),
            Err(KeystoreError::Format { .. })
        ));
    }
}
