//! The node's configuration: flags > environment > TOML file (`--config`) > defaults.
//!
//! The file holds the node's flags as keys (`api_addr = "127.0.0.1:7600"` for
//! `--api-addr`; `peer = [...]` for a repeated flag; `dev = true` for a switch), flat, no
//! tables. A key that is no flag is refused with its line; so is a value its flag refuses.
//! clap applies flags over environment variables over defaults; the file's entries are
//! handed to clap as flags placed before the real ones, each only where neither a real
//! flag nor its environment variable is set, which puts the file between the two.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::setup::Options;

/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Options that are not configuration (the file cannot set them).
const NOT_IN_FILE: [&str; 4] = ["config", "help", "version", "command"];

/// Where an option's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A flag on the command line.
    Flag,
    /// Its environment variable.
    Env,
    /// The configuration file.
    File,
    /// Its default.
    Default,
}

/// Each configurable option's id with where its value came from.
pub type Sources = Vec<(String, Source)>;

/// The options from `args` (the program name first) and the file `--config` names.
pub fn parse(args: Vec<OsString>) -> Result<(Options, ArgMatches, Sources)> {
    let command = Options::command();
    let first = command
        .clone()
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| e.exit());
    let Some(path) = first.get_one::<PathBuf>("config").cloned() else {
        let sources = sources(&first, &[]);
        let options = Options::from_arg_matches(&first).unwrap_or_else(|e| e.exit());
        return Ok((options, first, sources));
    };
    let entries = read_file(&path)?;
    let mut file_args: Vec<OsString> = Vec::new();
    let mut from_file = Vec::new();
    for entry in &entries {
        let source = first.value_source(&entry.id);
        if matches!(
            source,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        file_args.extend(entry.args.iter().cloned());
        from_file.push(entry.id.clone());
    }
    let mut all = vec![args[0].clone()];
    all.extend(file_args);
    all.extend(args[1..].iter().cloned());
    let matches = command
        .try_get_matches_from(&all)
        .with_context(|| format!("with the configuration file {}", path.display()))?;
    let sources = sources(&matches, &from_file);
    let options = Options::from_arg_matches(&matches)?;
    Ok((options, matches, sources))
}

/// One key of the file, as the flags it stands for.
struct Entry {
    id: String,
    args: Vec<OsString>,
}

fn read_file(path: &Path) -> Result<Vec<Entry>> {
    let text = cachet_keystore::read_text_bounded(path, MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let command = Options::command();
    let mut entries = Vec::new();
    for (key, value) in &table {
        let line = line_of(&text, key);
        let at = format!("{} line {line}", path.display());
        let flag = key.replace('_', "-");
        let Some(arg) = command.get_arguments().find(|a| {
            a.get_long() == Some(flag.as_str()) && !NOT_IN_FILE.contains(&a.get_id().as_str())
        }) else {
            bail!(
                "{at}: unknown key `{key}` (the keys are the node's flags, e.g. api_addr for --api-addr; see cachetd.example.toml)"
            );
        };
        let id = arg.get_id().to_string();
        let long = format!("--{flag}");
        let scalar = |value: &toml::Value| -> Result<String> {
            match value {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => bail!(
                    "{at}: `{key}` must be a string or a number, not {}",
                    other.type_str()
                ),
            }
        };
        let args: Vec<OsString> = match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => vec![long.into()],
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => Vec::new(),
            (ArgAction::SetTrue, _) => bail!("{at}: `{key}` is a switch: true or false"),
            (ArgAction::Append, toml::Value::Array(items)) => {
                let mut args = Vec::new();
                for item in items {
                    args.push(OsString::from(&long));
                    args.push(scalar(item)?.into());
                }
                args
            }
            (ArgAction::Append, other) => vec![long.into(), scalar(other)?.into()],
            (_, other) => vec![long.into(), scalar(other)?.into()],
        };
        // Each entry checked alone, so a bad value is named with its line.
        if !args.is_empty() {
            let mut alone = vec![OsString::from("cachetd")];
            alone.extend(args.iter().cloned());
            if let Err(error) = command.clone().try_get_matches_from(alone) {
                let message = error.to_string();
                let first = message.lines().next().unwrap_or("invalid value");
                bail!("{at}: `{key}`: {}", first.trim_start_matches("error: "));
            }
        }
        entries.push(Entry { id, args });
    }
    Ok(entries)
}

/// The line (from 1) where `key` is set in `text`.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let bare = line.strip_prefix(key).map(str::trim_start);
            let quoted = line
                .strip_prefix(&format!("\"{key}\""))
                .map(str::trim_start);
            bare.or(quoted).is_some_and(|rest| rest.starts_with('='))
        })
        .map_or(0, |n| n + 1)
}

/// Every configurable option with where its value came from.
fn sources(matches: &ArgMatches, from_file: &[String]) -> Sources {
    Options::command()
        .get_arguments()
        .filter(|a| !NOT_IN_FILE.contains(&a.get_id().as_str()))
        .map(|arg| {
            let id = arg.get_id().to_string();
            let source = if from_file.contains(&id) {
                Source::File
            } else {
                match matches.value_source(&id) {
                    Some(ValueSource::CommandLine) => Source::Flag,
                    Some(ValueSource::EnvVariable) => Source::Env,
                    _ => Source::Default,
                }
            };
            (id, source)
        })
        .collect()
}

/// The effective configuration as TOML, each key with its source; secrets redacted.
pub fn show(matches: &ArgMatches, sources: &[(String, Source)]) -> String {
    let command = Options::command();
    let mut out = String::from(
        "# cachetd's effective configuration (flags > environment > file > defaults)\n",
    );
    for (id, source) in sources {
        let Some(arg) = command.get_arguments().find(|a| a.get_id() == id.as_str()) else {
            continue;
        };
        let key = arg.get_long().unwrap_or(id).replace('-', "_");
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match arg.get_action() {
            ArgAction::SetTrue => values.first().cloned().unwrap_or_else(|| "false".into()),
            ArgAction::Append => format!(
                "[{}]",
                values
                    .iter()
                    .map(|v| toml_string(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => match values.first() {
                None => {
                    out.push_str(&format!("# {key} is not set\n"));
                    continue;
                }
                Some(v) if v.parse::<i64>().is_ok() => v.clone(),
                Some(v) => toml_string(v),
            },
        };
        let from = match source {
            Source::Flag => "flag",
            Source::Env => "environment",
            Source::File => "file",
            Source::Default => "default",
        };
        out.push_str(&format!("{key} = {value}  # {from}\n"));
    }
    if std::env::var_os("CACHET_KEY_PASSPHRASE").is_some() {
        out.push_str("# key passphrase: set in CACHET_KEY_PASSPHRASE (redacted)\n");
    }
    out
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
