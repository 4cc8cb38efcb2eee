//! Wallets: named key files in the wallet directory, and passphrases from a file, the
//! environment or a prompt.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cachet_keystore::{KdfParams, KeyFile};
use cachet_types::{Address, SigningKey};

/// Where passphrases come from.
#[derive(Debug, Clone)]
pub struct Passphrase {
    /// `--passphrase-file`.
    pub file: Option<PathBuf>,
}

impl Passphrase {
    /// The passphrase: from the file, else CACHET_PASSPHRASE, else a prompt on a terminal.
    pub fn get(&self, prompt: &str) -> Result<String> {
        if let Some(path) = &self.file {
            let text = cachet_keystore::read_text_bounded(
                path,
                cachet_keystore::MAX_PASSPHRASE_FILE_BYTES,
            )
            .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
            return Ok(text.trim_end_matches(['\n', '\r']).to_string());
        }
        if let Ok(text) = std::env::var("CACHET_PASSPHRASE") {
            return Ok(text);
        }
        if !std::io::stdin().is_terminal() {
            bail!("no passphrase: use --passphrase-file or set CACHET_PASSPHRASE");
        }
        rpassword::prompt_password(prompt).context("cannot read the passphrase")
    }

    /// A new passphrase, asked twice when prompting.
    pub fn get_new(&self) -> Result<String> {
        if self.file.is_some() || std::env::var("CACHET_PASSPHRASE").is_ok() {
            return self.get("");
        }
        let first = self.get("New passphrase: ")?;
        let second = self.get("Repeat passphrase: ")?;
        if first != second {
            bail!("the passphrases differ");
        }
        Ok(first)
    }
}

/// The wallet directory.
#[derive(Debug, Clone)]
pub struct Wallets {
    dir: PathBuf,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        bail!("wallet names are 1-64 of letters, digits, '-' and '_' (got {name:?})");
    }
    Ok(())
}

impl Wallets {
    /// Wallets in `dir`, or the default `<user data dir>/cachet/wallets`.
    pub fn new(dir: Option<PathBuf>) -> Result<Wallets> {
        let dir = match dir {
            Some(dir) => dir,
            None => dirs::data_dir()
                .context("no user data directory; pass --wallet-dir or set CACHET_WALLET_DIR")?
                .join("cachet")
                .join("wallets"),
        };
        Ok(Wallets { dir })
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Creates a wallet with a fresh key.
    pub fn create(&self, name: &str, passphrase: &str) -> Result<(PathBuf, Address)> {
        let path = self.path(name)?;
        if path.exists() {
            bail!("wallet {name:?} already exists at {}", path.display());
        }
        let key = cachet_keystore::generate_key()?;
        let file = cachet_keystore::seal(&key, passphrase, KdfParams::DEFAULT)?;
        cachet_keystore::write(&path, &file)?;
        Ok((path, key.public_key().address()))
    }

    /// Imports an existing key file under `name` after checking the passphrase opens it.
    pub fn import(&self, name: &str, source: &Path, passphrase: &str) -> Result<Address> {
        let path = self.path(name)?;
        if path.exists() {
            bail!("wallet {name:?} already exists at {}", path.display());
        }
        let file = cachet_keystore::read(source)?;
        cachet_keystore::open(&file, passphrase, &source.display().to_string())?;
        cachet_keystore::write(&path, &file)?;
        Ok(file.address)
    }

    /// Reads a wallet's public part.
    pub fn read(&self, name: &str) -> Result<KeyFile> {
        let path = self.path(name)?;
        if !path.exists() {
            bail!(
                "no wallet named {name:?} in {} (see `cachet wallet list`)",
                self.dir.display()
            );
        }
        Ok(cachet_keystore::read(&path)?)
    }

    /// Opens a wallet's signing key.
    pub fn unlock(&self, name: &str, passphrase: &Passphrase) -> Result<SigningKey> {
        let file = self.read(name)?;
        let secret = passphrase.get(&format!("Passphrase for wallet {name}: "))?;
        Ok(cachet_keystore::open(
            &file,
            &secret,
            &self.path(name)?.display().to_string(),
        )?)
    }

    /// Every wallet: (name, address), sorted by name.
    pub fn list(&self) -> Result<Vec<(String, Result<Address, String>)>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", self.dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            // A damaged file is listed with what is wrong, not hidden.
            let address = cachet_keystore::read(&path)
                .map(|file| file.address)
                .map_err(|error| error.to_string());
            out.push((name.to_string(), address));
        }
        out.sort();
        Ok(out)
    }

    /// An address given as `cachet1...` or as a wallet name.
    pub fn resolve(&self, text: &str) -> Result<Address> {
        if let Ok(address) = text.parse::<Address>() {
            return Ok(address);
        }
        if text.starts_with("cachet1") {
            bail!("{text:?} is not a valid address (bad checksum or length)");
        }
        Ok(self
            .read(text)
            .with_context(|| format!("{text:?} is neither an address nor a wallet name"))?
            .address)
    }
}
