//! The CLI's configuration file: the node URL, the wallet directory, the default wallet
//! and the passphrase file, so that they need not be typed each time.
//!
//! `--config FILE`, else `CACHET_CONFIG`, else `<config dir>/cachet/config.toml` if it
//! exists. Each key stands for an environment variable the CLI already reads; a key's value
//! is used only when neither its flag nor its variable is given, which gives flags >
//! environment > file > defaults. Unknown keys are refused with their line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The keys, and the environment variables they stand for.
pub const KEYS: [(&str, &str); 4] = [
    ("node", "CACHET_NODE"),
    ("wallet_dir", "CACHET_WALLET_DIR"),
    ("wallet", "CACHET_WALLET"),
    ("passphrase_file", "CACHET_PASSPHRASE_FILE"),
];

/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// The file to read, and whether it was asked for (a missing asked-for file is an error).
pub fn path(args: &[OsString]) -> Option<(PathBuf, bool)> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(|p| (PathBuf::from(p), true));
        }
        if let Some(value) = text.strip_prefix("--config=") {
            return Some((PathBuf::from(value), true));
        }
    }
    if let Some(path) = std::env::var_os("CACHET_CONFIG") {
        return Some((PathBuf::from(path), true));
    }
    let default = dirs::config_dir()?.join("cachet").join("config.toml");
    default.exists().then_some((default, false))
}

/// The environment variables the file sets: (variable, value), for those not set already.
pub fn read(path: &Path) -> Result<Vec<(&'static str, String)>> {
    let text = cachet_keystore::read_text_bounded(path, MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let line = text
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(0, |n| n + 1);
        let Some((_, variable)) = KEYS.iter().find(|(name, _)| name == key) else {
            let known: Vec<&str> = KEYS.iter().map(|(name, _)| *name).collect();
            bail!(
                "{} line {line}: unknown key `{key}` (known: {})",
                path.display(),
                known.join(", ")
            );
        };
        let Some(value) = value.as_str() else {
            bail!("{} line {line}: `{key}` must be a string", path.display());
        };
        if std::env::var_os(variable).is_none() {
            out.push((*variable, value.to_string()));
        }
    }
    Ok(out)
}
