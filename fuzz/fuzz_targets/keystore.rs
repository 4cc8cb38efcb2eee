#![no_main]
//! Fuzzes key files as `cachet_keystore::read` parses them (at most 64 KiB of UTF-8,
//! `serde_json` into `KeyFile`), then `cachet_keystore::open` with a fixed passphrase, which
//! must not panic; what opens is the file's own key. A key file's JSON is stable.
//!
//! Argon2 costs come from the input, so to stay fast the fuzzer opens only files whose KDF
//! settings are tiny. Files over the keystore's own bounds are still opened: they must be
//! refused before any key derivation runs.

mod common;

use cachet_keystore::{KeyFile, open};
use libfuzzer_sys::fuzz_target;

/// The passphrase the seed corpus's key file is sealed with (`make-corpus.py`).
const PASSPHRASE: &str = "cachet-fuzz-passphrase";

/// `cachet_keystore`'s `MAX_FILE_BYTES` (private there): larger files are refused unread.
const MAX_FILE_BYTES: usize = 64 * 1024;

/// `KdfParams::MAX_*` (private there): settings over any of these are refused before the KDF.
const REFUSED_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const REFUSED_ITERATIONS: u32 = 64;
const REFUSED_PARALLELISM: u32 = 16;

/// What the fuzzer lets argon2id cost: well under a millisecond.
const CHEAP_MEMORY_KIB: u32 = 256;
const CHEAP_ITERATIONS: u32 = 2;
const CHEAP_PARALLELISM: u32 = 2;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_FILE_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = serde_json::from_str::<KeyFile>(text) else {
        return;
    };
    common::json_stable(&file);

    let kdf = file.kdf;
    let refused = kdf.memory_kib > REFUSED_MEMORY_KIB
        || kdf.iterations > REFUSED_ITERATIONS
        || kdf.parallelism > REFUSED_PARALLELISM;
    if refused {
        // Must fail without deriving a key (a hostile file must not cost gigabytes).
        assert!(open(&file, PASSPHRASE, "fuzz").is_err());
        return;
    }
    let cheap = kdf.memory_kib <= CHEAP_MEMORY_KIB
        && kdf.iterations <= CHEAP_ITERATIONS
        && kdf.parallelism <= CHEAP_PARALLELISM;
    if !cheap {
        return;
    }
    match open(&file, PASSPHRASE, "fuzz") {
        Ok(key) => {
            assert_eq!(key.public_key(), file.public_key);
            assert_eq!(file.address, key.public_key().address());
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
