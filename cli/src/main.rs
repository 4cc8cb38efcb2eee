//! cachet: the Cachet command-line client.
//!
//! Operators create issues, mint, redeem and freeze; collectors keep wallets and transfer;
//! auditors look up stamps, histories and holdings. Every command takes `--json`.

mod config;
mod progress;
mod wallet;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cachet_api::{Client, ClientError, HistoryEntry, TxInfo, TxStatus};
use cachet_state::EventKind;
use cachet_types::{
    Address, CoIssuer, CountryCode, CurrencyCode, Deadline, FaceValue, FreezeReason, Hash, IssueId,
    IssueRecord, MembershipChange, Operator, OperatorId, PublicKey, SignedTx, StampId, SwapLeg,
    TxBody, Variant,
};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::wallet::{Passphrase, Wallets};

/// Default node: the development node's API.
const DEFAULT_NODE: &str = "http://127.0.0.1:7600";

/// cachet: issue, trade and audit digital postage stamps on a Cachet ledger.
///
/// Start a development node with `cachetd --dev`, import its operator key with
/// `cachet wallet import operator <path it prints>`, then create an issue and mint.
#[derive(Debug, Parser)]
#[command(name = "cachet", version, about, long_about = None)]
struct Cli {
    /// Node API to talk to.
    #[arg(long, global = true, env = "CACHET_NODE", default_value = DEFAULT_NODE)]
    node: String,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Directory of wallet files [default: <user data dir>/cachet/wallets].
    #[arg(long, global = true, env = "CACHET_WALLET_DIR")]
    wallet_dir: Option<PathBuf>,

    /// File holding the wallet passphrase (else CACHET_PASSPHRASE, else a prompt).
    #[arg(long, global = true, env = "CACHET_PASSPHRASE_FILE")]
    passphrase_file: Option<PathBuf>,

    /// Configuration file (TOML: node, wallet_dir, wallet, passphrase_file) [default:
    /// CACHET_CONFIG, else <config dir>/cachet/config.toml if it exists]. Flags and
    /// environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// No progress and no notes on standard error: results and errors only.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, show and import wallets (encrypted key files).
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Create, show and close stamp issues (operators).
    #[command(subcommand)]
    Issue(IssueCommand),
    /// Mint a range of serials of an issue to an owner (the issuing operator).
    Mint {
        /// Issue id, e.g. AT-2026-001.
        issue: IssueId,
        /// Serials: one number (42) or an inclusive range (1-100).
        #[arg(long)]
        serials: String,
        /// Receiver: an address (cachet1...) or a wallet name. Not used with --twins-out.
        #[arg(long, required_unless_present = "twins_out")]
        to: Option<String>,
        /// The variant minted (required when the issue has variants).
        #[arg(long)]
        variant: Option<String>,
        /// Mint physical twins: generate one claim key per serial, write the claim codes to
        /// this new file (for printing under each stamp's scratch field; keep it secret) and
        /// mint the stamps to nobody until claimed with `cachet claim`.
        #[arg(long, value_name = "FILE", conflicts_with = "to")]
        twins_out: Option<PathBuf>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Claim a physical twin with the code from under its scratch field.
    Claim {
        /// Stamp.
        stamp: StampId,
        /// Claim code (64 hex digits), or "-" to read it from standard input.
        #[arg(long)]
        code: String,
        /// Account that receives the stamp: an address or a wallet name.
        #[arg(long)]
        to: String,
        /// Return once accepted instead of waiting for finality.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for finality.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Offer a swap: your stamps for the counterparty's, in one transaction that moves all of
    /// them or none. Prints the signed offer (hex); the counterparty completes it with
    /// `cachet tx cosign FILE -w WALLET --submit`. The offer uses your next nonce: sending
    /// another transaction first voids it.
    Swap {
        /// A stamp you give (repeat for several).
        #[arg(long, required = true)]
        give: Vec<StampId>,
        /// A stamp of the counterparty's you take (repeat for several).
        #[arg(long, required = true)]
        take: Vec<StampId>,
        /// The counterparty: an address or a wallet name.
        #[arg(long = "with")]
        counterparty: String,
        /// Write the offer to this new file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Wallet that signs.
        #[arg(long, short = 'w', env = "CACHET_WALLET")]
        wallet: String,
        /// Nonce to use [default: the node's next nonce for the wallet].
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Give a stamp you own to another account.
    Transfer {
        /// Stamp, e.g. AT-2026-001#42.
        stamp: StampId,
        /// Receiver: an address (cachet1...) or a wallet name.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Mark a stamp used as postage (the issuing operator).
    Redeem {
        /// Stamp.
        stamp: StampId,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Freeze a stamp, e.g. reported stolen (the issuing operator).
    Freeze {
        /// Stamp.
        stamp: StampId,
        /// Why.
        #[arg(long, value_enum)]
        reason: Reason,
        /// Case reference (police report, court file).
        #[arg(long = "case")]
        case_ref: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Lift a freeze (the issuing operator).
    Unfreeze {
        /// Stamp.
        stamp: StampId,
        /// Case reference of the decision.
        #[arg(long = "case")]
        case_ref: String,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Let another account transfer a stamp you own, once, until a height or a time.
    Approve {
        /// Stamp.
        stamp: StampId,
        /// Account allowed to transfer it: an address or a wallet name.
        #[arg(long)]
        operator: String,
        /// Last block height at which the approval holds.
        #[arg(
            long,
            conflicts_with = "until_time",
            required_unless_present = "until_time"
        )]
        until_height: Option<u64>,
        /// Last block time at which it holds (RFC 3339, e.g. 2026-12-31T23:59:59Z).
        #[arg(long)]
        until_time: Option<String>,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Withdraw the approval on a stamp you own.
    Revoke {
        /// Stamp.
        stamp: StampId,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Destroy a stamp you own (it stays in its history and counts in the issue's supply).
    Burn {
        /// Stamp.
        stamp: StampId,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Look up stamps.
    #[command(subcommand)]
    Stamp(StampCommand),
    /// A stamp's provenance: every event from mint to now.
    History {
        /// Stamp.
        stamp: StampId,
        /// Events per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this event number (from a previous page's `next`).
        #[arg(long)]
        after: Option<u32>,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
        /// Instead, write the stamp's provenance bundle (history with proofs) to this file,
        /// for `cachet verify`.
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
        /// Print CSV (one row per event) for spreadsheets and audit tools.
        #[arg(long, conflicts_with = "proof")]
        csv: bool,
    },
    /// Verify a provenance bundle offline against a genesis file: AUTHENTIC or FAILED.
    Verify {
        /// Bundle file (from `cachet history STAMP --proof FILE`).
        bundle: PathBuf,
        /// Genesis file of the chain, obtained from a source you trust.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Follow the chain as it becomes final: one line per final block and transaction
    /// (JSON lines with --json), optionally only those touching a stamp, an issue or an
    /// account. Reconnects after a lost connection and resumes where it stopped.
    Watch {
        /// Only transactions touching this stamp.
        #[arg(long)]
        stamp: Option<StampId>,
        /// Only transactions of this issue.
        #[arg(long)]
        issue: Option<IssueId>,
        /// Only transactions this account signed or that name it (address or wallet).
        #[arg(long)]
        account: Option<String>,
        /// Start at this height (past blocks first) [default: the next block].
        #[arg(long)]
        from_height: Option<u64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print a shell completion script, e.g. `cachet completions bash >
    /// /etc/bash_completion.d/cachet` or `cachet completions zsh > ~/.zfunc/_cachet`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (cachet.1 and one per subcommand, e.g. cachet-transfer.1) into a
    /// directory, e.g. `cachet man /usr/local/share/man/man1`.
    Man {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Re-verify a whole ledger directory from its genesis, trusting nothing in it.
    Audit {
        /// Ledger directory: a node's data directory (with `db/`) or the `db` directory.
        /// Audit a copy, or a stopped node's directory.
        dir: PathBuf,
        /// Genesis file of the chain, obtained from a source you trust.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Stamps held by an account.
    Holdings {
        /// Account: an address or a wallet name.
        account: String,
        /// Stamps per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this stamp (from a previous page's `next`).
        #[arg(long)]
        after: Option<StampId>,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
        /// Print CSV (one row per stamp, with owner and status).
        #[arg(long)]
        csv: bool,
    },
    /// The operator set: show it and its history; propose and approve changes (operators).
    ///
    /// A change (a post joining or leaving, a validator key rotation) is proposed by one
    /// current operator and decided once more than two thirds of the current operators
    /// have approved it (the proposal counts as the proposer's approval), at least two blocks
    /// before its activation height; from that height the new set signs blocks.
    #[command(subcommand)]
    Membership(MembershipCommand),
    /// Chain information.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Raw transactions: submit signed bytes, look up status.
    #[command(subcommand)]
    Tx(TxCommand),
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Create a wallet with a new key.
    New {
        /// Wallet name.
        name: String,
    },
    /// List wallets and their addresses.
    List,
    /// Show a wallet's address.
    Address {
        /// Wallet name.
        name: String,
    },
    /// Import a key file (e.g. the dev operator key printed by `cachetd --dev`).
    Import {
        /// Name to give it.
        name: String,
        /// Key file to import.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum IssueCommand {
    /// Register a new stamp issue.
    Create(Box<CreateIssue>),
    /// Show an issue and its supply.
    Show {
        /// Issue id.
        id: IssueId,
    },
    /// An issue's supply (minted, redeemed, frozen, burned against the print run), proven
    /// against the latest certified header and checked against a genesis.
    Supply {
        /// Issue id.
        id: IssueId,
        /// Genesis file to check against [default: the node's genesis, which means trusting
        /// the node for it].
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Also write the proof to this file.
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
    },
    /// Close an issue: its print run is fixed forever.
    Close {
        /// Issue id.
        id: IssueId,
        #[command(flatten)]
        tx: TxOptions,
    },
}

#[derive(Debug, Args)]
struct CreateIssue {
    /// Issue id, e.g. AT-2026-001.
    id: IssueId,
    /// Title.
    #[arg(long)]
    title: String,
    /// ISO 3166 country code [default: the operator's].
    #[arg(long)]
    country: Option<CountryCode>,
    /// Year of issue.
    #[arg(long)]
    year: u16,
    /// WNS number, if registered.
    #[arg(long)]
    wns: Option<String>,
    /// Face value in minor units (cents).
    #[arg(long)]
    face_value: u64,
    /// ISO 4217 currency.
    #[arg(long)]
    currency: CurrencyCode,
    /// Artwork file (its SHA-256 is recorded).
    #[arg(long, conflicts_with = "design_sha256")]
    design_file: Option<PathBuf>,
    /// SHA-256 of the artwork, hex, if the file is not at hand.
    #[arg(long)]
    design_sha256: Option<Hash>,
    /// Where the artwork is published.
    #[arg(long)]
    design_uri: String,
    /// Print run: serials 1..=N.
    #[arg(long)]
    print_run: u32,
    /// Issuing operator [default: the operator the wallet belongs to].
    #[arg(long)]
    operator: Option<OperatorId>,
    /// A variant and its count, NAME=COUNT (repeat; in serial order; counts add up to the
    /// print run). Mints then name their variant.
    #[arg(long = "variant", value_name = "NAME=COUNT")]
    variants: Vec<String>,
    /// A co-issuing operator and how many stamps it may mint, OPERATOR=SHARE (repeat). A
    /// joint issue needs every co-issuer's cosignature: this prints the signed creation for
    /// them to run `cachet tx cosign`, then anyone submits it with `cachet tx submit`.
    #[arg(long = "co-issuer", value_name = "OPERATOR=SHARE")]
    co_issuers: Vec<String>,
    #[command(flatten)]
    tx: TxOptions,
}

#[derive(Debug, Subcommand)]
enum StampCommand {
    /// A stamp's owner and status.
    Show {
        /// Stamp.
        stamp: StampId,
    },
    /// Fetch a stamp's provenance bundle from the node and verify it.
    Verify {
        /// Stamp.
        stamp: StampId,
        /// Genesis file to verify against [default: the node's genesis, which means trusting
        /// the node for it].
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MembershipCommand {
    /// The current operators, a decided change waiting for its height, and every change so
    /// far with its approvals.
    Show,
    /// A proposal and who has approved it.
    Proposal {
        /// Proposal id (the id of the transaction that proposed it).
        id: Hash,
    },
    /// Propose that a new member post joins.
    Add {
        /// The new operator's id, e.g. IT-POST.
        #[arg(long)]
        id: OperatorId,
        /// Its country (ISO 3166 alpha-2).
        #[arg(long)]
        country: CountryCode,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// Public key of its node's validator key (64 hex digits, as `cachet wallet
        /// address --json` prints for the key file the node will use).
        #[arg(long)]
        validator_key: PublicKey,
        /// Public key of its node's peer-to-peer identity (64 hex digits): the node creates
        /// `p2p.key.json` in its data directory on first start (`cachet-testnet init` before),
        /// and `cachet wallet address --json` prints its public key. Peers count only the
        /// operators' bound identities as validators' nodes.
        #[arg(long)]
        node_key: PublicKey,
        /// Its issuer account: an address or a wallet name.
        #[arg(long)]
        issuer: String,
        #[command(flatten)]
        activation: Activation,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Propose that a member post leaves.
    Remove {
        /// The operator, e.g. CH-POST.
        operator: OperatorId,
        #[command(flatten)]
        activation: Activation,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Propose a new validator key for an operator's node (restart the node with the new key
    /// once the change is decided; it validates from the activation height).
    RotateKey {
        /// The operator, e.g. DE-POST.
        operator: OperatorId,
        /// The new validator public key (64 hex digits).
        #[arg(long)]
        validator_key: PublicKey,
        #[command(flatten)]
        activation: Activation,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Propose a new peer-to-peer identity for an operator's node (replace the node's
    /// `p2p.key.json` and restart it once the change applies: from the activation height
    /// peers bind the new identity to the operator).
    RotateNodeKey {
        /// The operator, e.g. DE-POST.
        operator: OperatorId,
        /// The new identity's public key (64 hex digits).
        #[arg(long)]
        node_key: PublicKey,
        #[command(flatten)]
        activation: Activation,
        #[command(flatten)]
        tx: TxOptions,
    },
    /// Approve a proposal (as a current operator).
    Approve {
        /// Proposal id.
        proposal: Hash,
        #[command(flatten)]
        tx: TxOptions,
    },
}

/// When a proposed membership change applies.
#[derive(Debug, Args)]
struct Activation {
    /// Height from which the new set signs blocks: at least two past the block that decides
    /// the change [default: the tip + 100, time for the other operators to approve].
    #[arg(long)]
    at_height: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// Height, tip, state root, operators and node counters.
    Info,
    /// Print the chain's genesis (JSON), e.g. to keep for offline verification.
    Genesis,
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// Submit signed transactions (hex, as written by --sign-only) and wait for them.
    ///
    /// A file with one transaction per line (hex, or the JSON of --sign-only --json) is a
    /// bulk submission: sent 1000 per request, checked by the node in one batch and
    /// admitted in file order (one signer's consecutive nonces may follow each other). One
    /// line per transaction is printed; any refusal makes the command fail after the rest.
    Submit {
        /// File with the hex transaction(s) ("-" for standard input).
        file: PathBuf,
        /// Return once accepted instead of waiting for finality.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for finality.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// A transaction's status.
    Status {
        /// Transaction id.
        id: Hash,
    },
    /// Add your cosignature to a transaction that needs it (a swap offered to you, a joint
    /// issue you co-issue). Shows what you agree to, then prints the cosigned transaction
    /// (hex) or submits it.
    Cosign {
        /// File with the hex transaction ("-" for standard input).
        file: PathBuf,
        /// Wallet that cosigns.
        #[arg(long, short = 'w', env = "CACHET_WALLET")]
        wallet: String,
        /// Submit the cosigned transaction and wait for it.
        #[arg(long)]
        submit: bool,
        /// With --submit: return once accepted instead of waiting for finality.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for finality.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Reason {
    Stolen,
    Lost,
    Disputed,
    Fraud,
    LegalOrder,
}

impl From<Reason> for FreezeReason {
    fn from(reason: Reason) -> FreezeReason {
        match reason {
            Reason::Stolen => FreezeReason::Stolen,
            Reason::Lost => FreezeReason::Lost,
            Reason::Disputed => FreezeReason::Disputed,
            Reason::Fraud => FreezeReason::Fraud,
            Reason::LegalOrder => FreezeReason::LegalOrder,
        }
    }
}

/// Options of every command that signs a transaction.
#[derive(Debug, Args)]
struct TxOptions {
    /// Wallet that signs.
    #[arg(long, short = 'w', env = "CACHET_WALLET")]
    wallet: String,
    /// Nonce to use [default: the node's next nonce for the wallet].
    #[arg(long)]
    nonce: Option<u64>,
    /// Chain id to sign for [default: the node's].
    #[arg(long)]
    chain_id: Option<Hash>,
    /// Print the signed transaction as hex and do not submit it.
    #[arg(long)]
    sign_only: bool,
    /// Return once accepted instead of waiting for finality.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for finality.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

struct Context_ {
    client: Client,
    json: bool,
    quiet: bool,
    wallets: Wallets,
    passphrase: Passphrase,
}

/// Exit codes (also in `cachet --help`): what kind of failure ended a command.
mod exit {
    /// A failure of no kind below (e.g. a local file could not be written).
    pub const FAILURE: i32 = 1;
    /// The command line is wrong (clap's own code).
    pub const USAGE: i32 = 2;
    /// The node could not be reached, or answered something the API does not promise.
    pub const UNREACHABLE: i32 = 3;
    /// The ledger refused the transaction (a named rejection, HTTP 422).
    pub const REJECTED: i32 = 4;
    /// The node refused the request otherwise: not found, bad request, busy, rate limited.
    pub const REFUSED: i32 = 5;
    /// Bad input: a file or value given to the command is not what it must be.
    pub const BAD_INPUT: i32 = 6;
}

/// An error of the command with its exit code and a stable code for `--json`.
fn classify(error: &anyhow::Error) -> (i32, String) {
    if let Some(client) = error.downcast_ref::<ClientError>() {
        return match client {
            ClientError::Unreachable { .. } => (exit::UNREACHABLE, "unreachable".into()),
            ClientError::Decode(_) => (exit::UNREACHABLE, "bad_answer".into()),
            ClientError::InvalidUrl { .. } => (exit::USAGE, "invalid_url".into()),
            ClientError::Api { code, .. } => match client.api_kind() {
                Some(cachet_api::ApiErrorKind::Rejected) => (exit::REJECTED, code.clone()),
                _ => (exit::REFUSED, code.clone()),
            },
        };
    }
    if let Some(rejected) = error.downcast_ref::<TxRejected>() {
        return (exit::REJECTED, rejected.code.clone());
    }
    if error.chain().any(|cause| {
        cause.is::<std::io::Error>()
            || cause.is::<serde_json::Error>()
            || cause.is::<cachet_keystore::KeystoreError>()
            || cause.is::<InputError>()
    }) {
        return (exit::BAD_INPUT, "bad_input".into());
    }
    (exit::FAILURE, "failed".into())
}

/// A transaction the ledger refused, at submission or while the command waited for it.
#[derive(Debug, thiserror::Error)]
#[error("rejected: {code}: {message}{}", .tx_id.map(|id| format!(" (tx {id})")).unwrap_or_default())]
struct TxRejected {
    tx_id: Option<Hash>,
    code: String,
    message: String,
}

/// Input that is not what the command needs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InputError(String);

fn main() {
    reset_sigpipe();
    let json = std::env::args_os().any(|arg| arg == "--json");
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((path, asked)) = config::path(&args)
        && (asked || path.exists())
    {
        match config::read(&path) {
            Ok(settings) => apply_settings(settings),
            Err(error) => {
                if json {
                    print_error_json("bad_input", &format!("{error:#}"));
                } else {
                    eprintln!("error: {error:#}");
                }
                std::process::exit(exit::BAD_INPUT);
            }
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if json && error.use_stderr() => {
            let message = error.kind().to_string();
            let detail = error.to_string();
            print_error_json("usage", detail.trim().lines().next().unwrap_or(&message));
            std::process::exit(exit::USAGE);
        }
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            std::process::exit(exit::FAILURE);
        }
    };
    if let Err(error) = runtime.block_on(run(cli)) {
        // A closed pipe (`cachet holdings ... | head`) ends the command quietly.
        if error.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                || cause
                    .downcast_ref::<csv::Error>()
                    .is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe))
        }) {
            std::process::exit(0);
        }
        let (code, name) = classify(&error);
        if json {
            print_error_json(&name, &format!("{error:#}"));
        } else {
            eprintln!("error: {error:#}");
        }
        std::process::exit(code);
    }
}

/// Prints `{"error": {"code", "message"}}` on standard output, the API's error form.
fn print_error_json(code: &str, message: &str) {
    let body = json!({"error": {"code": code, "message": message}});
    println!("{body}");
}

/// Sets the environment variables the configuration file stands for (those not set: the
/// file comes after the environment), before clap reads them.
#[allow(unsafe_code)]
fn apply_settings(settings: Vec<(&'static str, String)>) {
    for (variable, value) in settings {
        // SAFETY: called first thing in main, before any thread exists, so nothing reads
        // the environment concurrently.
        unsafe { std::env::set_var(variable, value) };
    }
}

/// Restores the default action of SIGPIPE, which Rust's runtime ignores: a command whose
/// output pipe closes (`| head`) then ends at once and quietly, as command-line tools do,
/// instead of failing on its next write.
#[allow(unsafe_code)]
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Generated from the command definitions; no node or wallet needed.
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "cachet", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            eprintln!("man pages written to {}", dir.display());
            return Ok(());
        }
        _ => {}
    }
    let ctx = Context_ {
        client: Client::new(&cli.node)?,
        json: cli.json,
        quiet: cli.quiet,
        wallets: Wallets::new(cli.wallet_dir)?,
        passphrase: Passphrase {
            file: cli.passphrase_file,
        },
    };
    match cli.command {
        Command::Wallet(command) => wallet(&ctx, command),
        Command::Issue(IssueCommand::Create(args)) => create_issue(&ctx, *args).await,
        Command::Issue(IssueCommand::Show { id }) => {
            let info = ctx.client.issue(&id).await?;
            if ctx.json {
                return print_json(&info);
            }
            let i = &info.issue;
            let r = &i.record;
            println!("{}  {}", r.id, r.title);
            println!("  operator     {} ({})", r.operator, r.country);
            println!("  year         {}", r.year);
            if let Some(wns) = &r.wns_number {
                println!("  WNS          {wns}");
            }
            println!(
                "  face value   {} {}",
                r.face_value.amount_minor, r.face_value.currency
            );
            println!("  design       {} {}", r.design_sha256, r.design_uri);
            println!("  print run    {}", r.print_run);
            println!(
                "  supply       minted {}, redeemed {}, frozen {}, burned {}",
                i.minted, i.redeemed, i.frozen, i.burned
            );
            let mut first = 1u64;
            for (variant, minted) in r.variants.iter().zip(&i.variant_minted) {
                let last = first + u64::from(variant.count) - 1;
                println!(
                    "  variant      {}: serials {first}-{last}, minted {minted} of {}",
                    variant.name, variant.count
                );
                first = last + 1;
            }
            if !r.co_issuers.is_empty() {
                let others: u32 = i.co_issuer_minted.iter().sum();
                println!(
                    "  lead         {}: minted {} of its share {}",
                    r.operator,
                    i.minted.saturating_sub(others),
                    r.lead_share()
                );
                for (co, minted) in r.co_issuers.iter().zip(&i.co_issuer_minted) {
                    println!(
                        "  co-issuer    {}: minted {minted} of its share {}",
                        co.operator, co.share
                    );
                }
            }
            println!(
                "  status       {}",
                if i.closed { "closed" } else { "open" }
            );
            Ok(())
        }
        Command::Issue(IssueCommand::Supply { id, genesis, proof }) => {
            let genesis = genesis_for(&ctx, genesis).await?;
            let supply = ctx.client.supply(&id).await?;
            if let Some(path) = &proof {
                write_new_file(path, &serde_json::to_string_pretty(&supply)?)?;
            }
            match cachet_provenance::verify_supply(&supply, &genesis) {
                Ok(issue) => {
                    if ctx.json {
                        return print_json(
                            &json!({"verdict": "PROVEN", "height": supply.header.header.height, "issue": issue}),
                        );
                    }
                    println!(
                        "PROVEN {}: minted {} of {}, redeemed {}, frozen {}, burned {} (as of height {})",
                        issue.record.id,
                        issue.minted,
                        issue.record.print_run,
                        issue.redeemed,
                        issue.frozen,
                        issue.burned,
                        supply.header.header.height
                    );
                    Ok(())
                }
                Err(failure) => {
                    if ctx.json {
                        print_json(
                            &json!({"verdict": "FAILED", "check": failure.code(), "message": failure.to_string()}),
                        )?;
                    } else {
                        println!("FAILED {id}: {}: {failure}", failure.code());
                    }
                    bail!("supply proof failed: {}: {failure}", failure.code())
                }
            }
        }
        Command::Issue(IssueCommand::Close { id, tx }) => {
            send(&ctx, &tx, TxBody::CloseIssue { issue: id }).await
        }
        Command::Mint {
            issue,
            serials,
            to,
            variant,
            twins_out,
            tx,
        } => {
            let (first_serial, last_serial) = parse_serials(&serials)?;
            let (owner, claim_keys) = match (&to, &twins_out) {
                (Some(to), _) => (ctx.wallets.resolve(to)?, Vec::new()),
                (None, Some(path)) => {
                    // Refuse before writing codes that could never go on chain: one
                    // transaction carries every claim key (32 bytes each).
                    let limit = ctx.client.chain().await?.params.max_tx_bytes as u64;
                    let count = u64::from(last_serial.saturating_sub(first_serial)) + 1;
                    let fits = limit.saturating_sub(TX_OVERHEAD_BYTES) / 32;
                    if count > fits {
                        bail!(
                            "{count} twins do not fit in one transaction on this chain \
                             (max_tx_bytes {limit}): mint at most {fits} per command"
                        );
                    }
                    let keys = write_twins(path, &issue, first_serial, last_serial)?;
                    eprintln!(
                        "wrote {} claim codes to {} (keep it secret: each code claims its stamp)",
                        keys.len(),
                        path.display()
                    );
                    // Unused for twins; the issuer's own address keeps the field valid.
                    let wallet = ctx.wallets.read(&tx.wallet)?;
                    (wallet.address, keys)
                }
                (None, None) => bail!("give --to or --twins-out"),
            };
            let body = TxBody::Mint {
                issue,
                first_serial,
                last_serial,
                owner,
                variant,
                claim_keys,
            };
            send(&ctx, &tx, body).await
        }
        Command::Claim {
            stamp,
            code,
            to,
            no_wait,
            timeout,
        } => {
            let code = if code == "-" { read_stdin(1024)? } else { code };
            let seed: [u8; 32] = hex::decode(code.trim())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .context("the claim code must be 64 hex digits")?;
            let claim_key = cachet_types::SigningKey::from_seed(seed);
            let to = ctx.wallets.resolve(&to)?;
            let body = TxBody::Claim { stamp, to };
            let tx = sign(&ctx, &claim_key, None, None, body).await?;
            let submitted = ctx.client.submit(&tx).await;
            finish_tx(&ctx, submitted, no_wait, timeout, Some("claim")).await
        }
        Command::Swap {
            give,
            take,
            counterparty,
            out,
            wallet,
            nonce,
        } => {
            let counterparty = ctx.wallets.resolve(&counterparty)?;
            let key = ctx.wallets.unlock(&wallet, &ctx.passphrase)?;
            let legs = |stamps: Vec<StampId>| async {
                let mut out = Vec::new();
                for stamp in stamps {
                    let current = ctx.client.stamp(&stamp).await?;
                    out.push(SwapLeg {
                        stamp,
                        last_event: current.last_event,
                    });
                }
                Ok::<_, anyhow::Error>(out)
            };
            let give = legs(give).await?;
            let take = legs(take).await?;
            let body = TxBody::Swap {
                give,
                take,
                counterparty,
            };
            let tx = sign(&ctx, &key, nonce, None, body).await?;
            let hex = hex::encode(tx.to_bytes());
            match &out {
                Some(path) => write_new_file(path, &hex)?,
                None => println!("{hex}"),
            }
            let file = out
                .as_ref()
                .map_or("FILE".to_string(), |p| p.display().to_string());
            eprintln!(
                "swap offer {} signed; the counterparty {counterparty} completes it with: cachet tx cosign {file} -w WALLET --submit",
                tx.id()
            );
            Ok(())
        }
        Command::Transfer { stamp, to, tx } => {
            let to = ctx.wallets.resolve(&to)?;
            let current = ctx.client.stamp(&stamp).await?;
            let body = TxBody::Transfer {
                stamp,
                last_event: current.last_event,
                to,
            };
            send(&ctx, &tx, body).await
        }
        Command::Redeem { stamp, tx } => send(&ctx, &tx, TxBody::Redeem { stamp }).await,
        Command::Approve {
            stamp,
            operator,
            until_height,
            until_time,
            tx,
        } => {
            let operator = ctx.wallets.resolve(&operator)?;
            let until = match (until_height, until_time) {
                (Some(height), _) => Deadline::Height(height),
                (None, Some(text)) => {
                    let time = humantime::parse_rfc3339(&text).with_context(|| {
                        format!(
                            "--until-time must be RFC 3339 like 2026-12-31T23:59:59Z, got {text:?}"
                        )
                    })?;
                    let ms = time
                        .duration_since(std::time::UNIX_EPOCH)
                        .context("--until-time is before 1970")?
                        .as_millis();
                    Deadline::TimeMs(u64::try_from(ms).context("--until-time is too far")?)
                }
                (None, None) => bail!("give --until-height or --until-time"),
            };
            let body = TxBody::Approve {
                stamp,
                operator,
                until,
            };
            send(&ctx, &tx, body).await
        }
        Command::Revoke { stamp, tx } => send(&ctx, &tx, TxBody::Revoke { stamp }).await,
        Command::Burn { stamp, tx } => {
            let current = ctx.client.stamp(&stamp).await?;
            let body = TxBody::Burn {
                stamp,
                last_event: current.last_event,
            };
            send(&ctx, &tx, body).await
        }
        Command::Freeze {
            stamp,
            reason,
            case_ref,
            tx,
        } => {
            let body = TxBody::Freeze {
                stamp,
                reason: reason.into(),
                case_ref,
            };
            send(&ctx, &tx, body).await
        }
        Command::Unfreeze {
            stamp,
            case_ref,
            tx,
        } => send(&ctx, &tx, TxBody::Unfreeze { stamp, case_ref }).await,
        Command::Stamp(StampCommand::Show { stamp }) => {
            let info = ctx.client.stamp(&stamp).await?;
            if ctx.json {
                return print_json(&info);
            }
            println!("{}", info.stamp);
            println!("  owner        {}", owner_text(info.owner.as_ref()));
            println!("  status       {}", status_text(&info.status));
            println!("  events       {}", info.event_count);
            println!("  last event   {}", info.last_event);
            Ok(())
        }
        Command::History {
            stamp,
            proof: Some(path),
            ..
        } => {
            let bundle = ctx.client.bundle(&stamp).await?;
            write_new_file(&path, &serde_json::to_string_pretty(&bundle)?)?;
            if ctx.json {
                return print_json(
                    &json!({"stamp": stamp, "file": path, "events": bundle.events.len(), "height": bundle.current.height}),
                );
            }
            println!(
                "wrote the provenance bundle of {stamp} to {} ({} events, as of height {})",
                path.display(),
                bundle.events.len(),
                bundle.current.height
            );
            Ok(())
        }
        Command::History {
            stamp,
            limit,
            after,
            all,
            proof: None,
            csv,
        } => history(&ctx, stamp, limit, after, all, csv).await,
        Command::Verify { bundle, genesis } => {
            let bundle: cachet_provenance::ProvenanceBundle =
                read_json(&bundle, "provenance bundle")?;
            let genesis: cachet_types::Genesis = read_json(&genesis, "genesis")?;
            report_verification(&ctx, &bundle, &genesis)
        }
        Command::Stamp(StampCommand::Verify { stamp, genesis }) => {
            let genesis = genesis_for(&ctx, genesis).await?;
            let bundle = ctx.client.bundle(&stamp).await?;
            report_verification(&ctx, &bundle, &genesis)
        }
        Command::Chain(ChainCommand::Genesis) => print_json(&ctx.client.genesis().await?),
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
        Command::Watch {
            stamp,
            issue,
            account,
            from_height,
            count,
        } => {
            let mut query = Vec::new();
            if let Some(stamp) = stamp {
                query.push(("stamp", stamp.to_string()));
            }
            if let Some(issue) = issue {
                query.push(("issue", issue.to_string()));
            }
            if let Some(account) = account {
                query.push(("account", ctx.wallets.resolve(&account)?.to_string()));
            }
            if let Some(height) = from_height {
                query.push(("from_height", height.to_string()));
            }
            watch(&ctx, &query, count).await
        }
        Command::Audit { dir, genesis } => {
            let genesis: cachet_types::Genesis = read_json(&genesis, "genesis")?;
            audit_ledger(&ctx, &dir, &genesis)
        }
        Command::Holdings {
            account,
            limit,
            after,
            all,
            csv,
        } => holdings(&ctx, &account, limit, after, all, csv).await,
        Command::Membership(command) => membership(&ctx, command).await,
        Command::Chain(ChainCommand::Info) => {
            let info = ctx.client.chain().await?;
            if ctx.json {
                return print_json(&info);
            }
            println!("chain        {} ({})", info.chain_name, info.chain_id);
            println!("height       {}", info.height);
            println!("tip          {}", info.tip_hash);
            println!("state root   {}", info.state_root);
            println!("operators    {}", info.operators.len());
            for op in &info.operators {
                println!(
                    "  {} ({}) {}  issuer {}",
                    op.id, op.country, op.name, op.issuer
                );
            }
            let m = &info.metrics;
            println!(
                "node         {}, deciding height {} round {}, peers {}",
                m.role,
                info.height + 1,
                m.consensus_round,
                m.peers
            );
            println!(
                "since start  mempool {}, final {}, rejected {}, blocks {}",
                m.mempool_size, m.txs_final, m.txs_rejected, m.blocks_committed
            );
            Ok(())
        }
        Command::Tx(TxCommand::Submit {
            file,
            no_wait,
            timeout,
        }) => {
            // The node decodes and judges the bytes, so a bad transaction gets its reason.
            let mut txs = read_txs(&file)?;
            if txs.len() > 1 {
                return submit_bulk(&ctx, &txs, no_wait, timeout).await;
            }
            let bytes = txs.pop().expect("read_txs returns at least one");
            let info = ctx.client.submit_bytes(&bytes).await;
            finish_tx(&ctx, info, no_wait, timeout, None).await
        }
        Command::Tx(TxCommand::Cosign {
            file,
            wallet,
            submit,
            no_wait,
            timeout,
        }) => {
            let mut tx = read_tx_hex(&file)?;
            let key = ctx.wallets.unlock(&wallet, &ctx.passphrase)?;
            let me = key.public_key().address();
            let needed: Vec<Address> = match &tx.body {
                TxBody::Swap { counterparty, .. } => vec![*counterparty],
                TxBody::CreateIssue { record } => {
                    let operators = current_operators(&ctx).await?;
                    record
                        .co_issuers
                        .iter()
                        .filter_map(|co| find_operator(&operators, &co.operator))
                        .map(|op| op.issuer)
                        .collect()
                }
                _ => Vec::new(),
            };
            if !needed.contains(&me) {
                bail!(
                    "this {} does not need the cosignature of wallet {wallet} ({me})",
                    tx.body.kind()
                );
            }
            eprintln!(
                "cosigning {} by {} (nonce {}):\n{}",
                tx.body.kind(),
                tx.signer.address(),
                tx.nonce,
                serde_json::to_string_pretty(&tx.body)?
            );
            tx.cosign(&key);
            if !submit {
                return print_signed(&ctx, &tx);
            }
            let kind = tx.body.kind();
            let submitted = ctx.client.submit(&tx).await;
            finish_tx(&ctx, submitted, no_wait, timeout, Some(kind)).await
        }
        Command::Tx(TxCommand::Status { id }) => {
            let info = ctx.client.tx(&id).await?;
            if ctx.json {
                return print_json(&info);
            }
            println!("tx {}: {}", info.tx_id, tx_status_text(&info.status));
            Ok(())
        }
    }
}

/// The genesis from a file, or else the node's (saying that this trusts the node for it).
async fn genesis_for(ctx: &Context_, path: Option<PathBuf>) -> Result<cachet_types::Genesis> {
    match path {
        Some(path) => read_json(&path, "genesis"),
        None => {
            let genesis = ctx.client.genesis().await?;
            eprintln!(
                "note: checking against the node's own genesis (chain {}); pass --genesis to use one you trust",
                genesis.chain_id()
            );
            Ok(genesis)
        }
    }
}

/// Most reconnections of `watch` in a row without an event in between.
const WATCH_MAX_RECONNECTS: u32 = 10;

/// `cachet watch`: prints events until `count` (or forever), reconnecting with the last
/// event's id so nothing is missed or repeated.
async fn watch(ctx: &Context_, query: &[(&str, String)], count: Option<u64>) -> Result<()> {
    let mut last: Option<String> = None;
    let mut printed = 0u64;
    let mut failures = 0u32;
    loop {
        let mut stream = match ctx.client.events(query, last.as_deref()).await {
            Ok(stream) => stream,
            Err(error @ ClientError::Api { .. }) => return Err(error.into()),
            Err(error) if failures < WATCH_MAX_RECONNECTS => {
                failures += 1;
                eprintln!("watch: {error}; reconnecting ({failures} of {WATCH_MAX_RECONNECTS})");
                tokio::time::sleep(Duration::from_secs(u64::from(failures).min(5))).await;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        // Events until the stream ends or breaks; then reconnect after the last one.
        while let Ok(Some(event)) = stream.next().await {
            failures = 0;
            if event.event == "dropped" {
                bail!("the node dropped the stream: {}", event.data);
            }
            if ctx.json {
                println!(
                    r#"{{"event":"{}","id":"{}","data":{}}}"#,
                    event.event, event.id, event.data
                );
            } else {
                println!("{}", event_line(&event.event, &event.data));
            }
            last = Some(event.id);
            printed += 1;
            if count.is_some_and(|count| printed >= count) {
                return Ok(());
            }
        }
    }
}

/// One line for a person: `block 12 (3 transactions)`, `tx <id> transfer by <address> at 12`.
fn event_line(kind: &str, data: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    match kind {
        "block" => format!(
            "block {} ({} transactions) {}",
            value["height"],
            value["txs"],
            value["hash"].as_str().unwrap_or("")
        ),
        "tx" => format!(
            "tx {} {} by {} at height {}",
            value["tx_id"].as_str().unwrap_or(""),
            value["kind"].as_str().unwrap_or(""),
            value["signer"].as_str().unwrap_or(""),
            value["height"]
        ),
        other => format!("{other} {data}"),
    }
}

/// Largest JSON file the CLI reads (bundles of very long histories stay well below).
const MAX_JSON_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Largest artwork file hashed for `--design-file`.
const MAX_DESIGN_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Largest signed-transaction file (hex or JSON, one or many) read by `tx submit` and
/// `tx cosign`: some 80,000 transfers.
const MAX_TX_TEXT_BYTES: u64 = 64 * 1024 * 1024;

/// Reads at most `max_bytes` of standard input as text.
fn read_stdin(max_bytes: u64) -> Result<String> {
    let bytes = cachet_keystore::read_to_limit(std::io::stdin(), max_bytes)
        .context("cannot read standard input")?;
    String::from_utf8(bytes)
        .map_err(|_| InputError("standard input is not UTF-8 text".into()).into())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path, what: &str) -> Result<T> {
    let text = cachet_keystore::read_text_bounded(path, MAX_JSON_FILE_BYTES)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", path.display()))
}

fn write_new_file(path: &std::path::Path, text: &str) -> Result<()> {
    create_new_file(path, text, false)
}

/// Writes `text` and a newline to a file that must not exist yet, synced; `private` makes it
/// readable by its owner only (secrets such as claim codes).
fn create_new_file(path: &std::path::Path, text: &str, private: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

/// Replays a ledger directory from genesis with progress on standard error.
fn audit_ledger(
    ctx: &Context_,
    dir: &std::path::Path,
    genesis: &cachet_types::Genesis,
) -> Result<()> {
    let db = if dir.join("db").is_dir() {
        dir.join("db")
    } else {
        dir.to_path_buf()
    };
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let started = Instant::now();
    let mut bar = progress::Progress::new("audit", "blocks", ctx.quiet);
    let mut progress = |height: u64, tip: u64, txs: u64| {
        let rate = txs as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.update(height, tip, &format!("{txs} transactions, {rate:.0} tx/s"));
    };
    let outcome = cachet_storage::audit::audit(&db, genesis, scratch.path(), &mut progress);
    bar.finish();
    match outcome {
        Ok(report) => {
            let rate = report.txs as f64 / report.elapsed.as_secs_f64().max(1e-9);
            if ctx.json {
                return print_json(&json!({
                    "verdict": "PASSED", "blocks": report.blocks, "txs": report.txs,
                    "tip_hash": report.tip_hash, "state_root": report.state_root,
                    "seconds": report.elapsed.as_secs_f64(), "tx_per_s": rate,
                }));
            }
            println!(
                "PASSED: {} blocks, {} transactions re-verified from genesis ({rate:.0} tx/s); tip {}, state root {}",
                report.blocks, report.txs, report.tip_hash, report.state_root
            );
            Ok(())
        }
        Err(cachet_storage::audit::AuditError::BadBlock { height, reason }) => {
            if ctx.json {
                print_json(
                    &json!({"verdict": "FAILED", "height": height, "reason": reason.to_string()}),
                )?;
            } else {
                println!("FAILED at height {height}: {reason}");
            }
            bail!("ledger audit failed at height {height}: {reason}")
        }
        Err(other) => Err(other.into()),
    }
}

/// Prints AUTHENTIC or FAILED; FAILED is an error exit.
fn report_verification(
    ctx: &Context_,
    bundle: &cachet_provenance::ProvenanceBundle,
    genesis: &cachet_types::Genesis,
) -> Result<()> {
    match cachet_provenance::verify(bundle, genesis) {
        Ok(ok) => {
            if ctx.json {
                return print_json(&json!({"verdict": "AUTHENTIC", "result": ok}));
            }
            println!(
                "AUTHENTIC {}: owner {}, status {}, {} events, issue {} \"{}\" by {}, as of height {}",
                ok.stamp,
                owner_text(ok.owner.as_ref()),
                status_text(&ok.status),
                ok.events,
                ok.issue.id,
                ok.issue.title,
                ok.issue.operator,
                ok.as_of_height
            );
            Ok(())
        }
        Err(failure) => {
            if ctx.json {
                print_json(
                    &json!({"verdict": "FAILED", "check": failure.code(), "message": failure.to_string()}),
                )?;
            } else {
                println!("FAILED {}: {}: {failure}", bundle.stamp, failure.code());
            }
            bail!("verification failed: {}: {failure}", failure.code())
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn parse_serials(text: &str) -> Result<(u32, u32)> {
    let parse = |s: &str| -> Result<u32> {
        s.trim().parse().with_context(|| {
            format!("serials must be a number or a range like 1-100, got {text:?}")
        })
    };
    match text.split_once('-') {
        Some((a, b)) => Ok((parse(a)?, parse(b)?)),
        None => {
            let n = parse(text)?;
            Ok((n, n))
        }
    }
}

fn wallet(ctx: &Context_, command: WalletCommand) -> Result<()> {
    match command {
        WalletCommand::New { name } => {
            let passphrase = ctx.passphrase.get_new()?;
            let (path, address) = ctx.wallets.create(&name, &passphrase)?;
            if ctx.json {
                return print_json(&json!({"name": name, "address": address, "file": path}));
            }
            println!("created wallet {name}: {address}");
            println!("key file {} (encrypted; keep a backup)", path.display());
        }
        WalletCommand::List => {
            let list = ctx.wallets.list()?;
            if ctx.json {
                let items: Vec<_> = list
                    .iter()
                    .map(|(name, address)| match address {
                        Ok(address) => json!({"name": name, "address": address}),
                        Err(error) => json!({"name": name, "damaged": error}),
                    })
                    .collect();
                return print_json(&items);
            }
            if list.is_empty() {
                println!("no wallets yet: create one with `cachet wallet new NAME`");
            }
            for (name, address) in list {
                match address {
                    Ok(address) => println!("{name:20} {address}"),
                    Err(error) => println!("{name:20} DAMAGED: {error}"),
                }
            }
        }
        WalletCommand::Address { name } => {
            let file = ctx.wallets.read(&name)?;
            if ctx.json {
                return print_json(
                    &json!({"name": name, "address": file.address, "public_key": file.public_key}),
                );
            }
            println!("{}", file.address);
        }
        WalletCommand::Import { name, file } => {
            let passphrase = ctx
                .passphrase
                .get(&format!("Passphrase of {}: ", file.display()))?;
            let address = ctx.wallets.import(&name, &file, &passphrase)?;
            if ctx.json {
                return print_json(&json!({"name": name, "address": address}));
            }
            println!("imported wallet {name}: {address}");
        }
    }
    Ok(())
}

/// The operators of the next block (the genesis set, then as membership changes apply).
async fn current_operators(ctx: &Context_) -> Result<Vec<Operator>> {
    Ok(ctx.client.membership().await?.operators)
}

fn find_operator<'a>(operators: &'a [Operator], id: &OperatorId) -> Option<&'a Operator> {
    operators.iter().find(|op| op.id == *id)
}

async fn create_issue(ctx: &Context_, args: CreateIssue) -> Result<()> {
    let operators = current_operators(ctx).await?;
    let wallet = ctx.wallets.read(&args.tx.wallet)?;
    let operator = match args.operator {
        Some(id) => find_operator(&operators, &id)
            .with_context(|| format!("{id} is not a current operator of this chain"))?
            .clone(),
        None => operators
            .iter()
            .find(|op| op.issuer == wallet.address)
            .with_context(|| {
                format!(
                    "wallet {} is not a current operator's issuer; name the operator with --operator",
                    args.tx.wallet
                )
            })?
            .clone(),
    };
    let design_sha256 = match (&args.design_file, args.design_sha256) {
        (Some(path), _) => Hash::sha256(
            &cachet_keystore::read_bounded(path, MAX_DESIGN_FILE_BYTES)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (None, Some(hash)) => hash,
        (None, None) => bail!("give --design-file or --design-sha256"),
    };
    let record = IssueRecord {
        id: args.id,
        operator: operator.id.clone(),
        title: args.title,
        country: args.country.unwrap_or(operator.country),
        year: args.year,
        wns_number: args.wns,
        face_value: FaceValue {
            amount_minor: args.face_value,
            currency: args.currency,
        },
        design_sha256,
        design_uri: args.design_uri,
        print_run: args.print_run,
        variants: args
            .variants
            .iter()
            .map(|text| {
                let (name, count) = split_pair(text, "--variant", "NAME=COUNT")?;
                Ok(Variant { name, count })
            })
            .collect::<Result<_>>()?,
        co_issuers: args
            .co_issuers
            .iter()
            .map(|text| {
                let (operator, share) = split_pair(text, "--co-issuer", "OPERATOR=SHARE")?;
                let operator = OperatorId::parse(&operator)?;
                if find_operator(&operators, &operator).is_none() {
                    bail!("co-issuer {operator} is not a current operator of this chain");
                }
                Ok(CoIssuer { operator, share })
            })
            .collect::<Result<_>>()?,
    };
    record.check_fields()?;
    let mut options = args.tx;
    if !record.co_issuers.is_empty() && !options.sign_only {
        eprintln!(
            "a joint issue needs every co-issuer's cosignature: save the transaction below to a \
             file, have each co-issuer run `cachet tx cosign FILE -w WALLET`, then submit it \
             with `cachet tx submit FILE`"
        );
        options.sign_only = true;
    }
    send(ctx, &options, TxBody::CreateIssue { record }).await
}

/// Splits `NAME=NUMBER`.
fn split_pair(text: &str, option: &str, shape: &str) -> Result<(String, u32)> {
    let (name, number) = text
        .split_once('=')
        .with_context(|| format!("{option} takes {shape}, got {text:?}"))?;
    let number = number
        .trim()
        .parse()
        .with_context(|| format!("{option} takes {shape} with a whole number, got {text:?}"))?;
    Ok((name.trim().to_string(), number))
}

/// Generates one claim key per serial and writes the claim codes to a new, private file.
fn write_twins(
    path: &std::path::Path,
    issue: &IssueId,
    first: u32,
    last: u32,
) -> Result<Vec<cachet_types::PublicKey>> {
    let mut codes = Vec::new();
    let mut keys = Vec::new();
    for serial in first..=last {
        let key = cachet_keystore::generate_key()?;
        keys.push(key.public_key());
        codes.push(json!({
            "stamp": StampId::new(issue.clone(), serial),
            "claim_code": hex::encode(key.seed()),
            "claim_key": key.public_key().address(),
        }));
    }
    create_new_file(path, &serde_json::to_string_pretty(&codes)?, true)?;
    Ok(keys)
}

/// Reads a transaction's bytes from a file or standard input ("-"): the hex printed by
/// --sign-only, or the JSON those commands print with --json.
fn read_tx_bytes(file: &std::path::Path) -> Result<Vec<u8>> {
    let mut txs = read_txs(file)?;
    if txs.len() > 1 {
        return Err(InputError(format!(
            "{} holds {} transactions; this command takes one",
            file.display(),
            txs.len()
        ))
        .into());
    }
    Ok(txs.pop().expect("read_txs returns at least one"))
}

/// Reads signed transactions: one hex or JSON document (`{"tx": hex, ...}`, possibly
/// spread over lines), or one per line (hex or JSON). At least one.
fn read_txs(file: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let text = if file.as_os_str() == "-" {
        read_stdin(MAX_TX_TEXT_BYTES)?
    } else {
        cachet_keystore::read_text_bounded(file, MAX_TX_TEXT_BYTES)
            .with_context(|| format!("cannot read {}", file.display()))?
    };
    let text = text.trim();
    let one = |entry: &str, line: Option<usize>| -> Result<Vec<u8>> {
        let at = line.map(|n| format!(" (line {n})")).unwrap_or_default();
        let hex_text = if entry.starts_with('{') {
            let value: serde_json::Value = serde_json::from_str(entry)
                .map_err(|e| InputError(format!("the transaction{at} is not valid JSON: {e}")))?;
            value["tx"]
                .as_str()
                .ok_or_else(|| {
                    InputError(format!(
                        "the JSON{at} has no \"tx\" field with the transaction's hex"
                    ))
                })?
                .to_string()
        } else {
            entry.to_string()
        };
        Ok(hex::decode(hex_text.trim())
            .map_err(|_| InputError(format!("the transaction{at} must be hex")))?)
    };
    if text.is_empty() {
        return Err(InputError(format!("{} holds no transaction", file.display())).into());
    }
    // A whole JSON document (as printed pretty by --sign-only --json) is one transaction.
    if text.starts_with('{') && serde_json::from_str::<serde_json::Value>(text).is_ok() {
        return Ok(vec![one(text, None)?]);
    }
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    if let [(_, only)] = lines.as_slice() {
        return Ok(vec![one(only, None)?]);
    }
    lines
        .into_iter()
        .map(|(n, line)| one(line, Some(n)))
        .collect()
}

/// `tx submit` of many transactions: batches, one line per transaction, then a wait for
/// the admitted ones unless `no_wait`. Fails (exit 4) if any was refused.
async fn submit_bulk(ctx: &Context_, txs: &[Vec<u8>], no_wait: bool, timeout_s: u64) -> Result<()> {
    use cachet_api::SubmitOutcome;
    if !ctx.quiet {
        eprintln!("submitting {} transactions", txs.len());
    }
    let outcomes = ctx.client.submit_batch(txs).await?;
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    let mut report = Vec::with_capacity(outcomes.len());
    let (mut refused, mut pending) = (0usize, 0usize);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let (id, status) = match outcome {
            SubmitOutcome::Admitted(info) => (Some(info.tx_id), info.status),
            SubmitOutcome::Refused(refusal) => (
                refusal.tx_id,
                TxStatus::Rejected {
                    reason: refusal.error.code,
                    message: refusal.error.message,
                },
            ),
        };
        report.push((index, id, status));
    }
    let mut bar = progress::Progress::when_slow("finality", "transactions", ctx.quiet || no_wait);
    let total = report.len() as u64;
    for (done, (_, id, status)) in report.iter_mut().enumerate() {
        bar.update(done as u64, total, "waited for");
        while let (Some(id), TxStatus::Pending, false) = (id.as_ref(), &*status, no_wait) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let wait_ms = left.as_millis().min(10_000) as u64;
            *status = ctx.client.tx_wait(id, wait_ms).await?.status;
        }
        match status {
            TxStatus::Rejected { .. } => refused += 1,
            TxStatus::Pending | TxStatus::Unknown => pending += 1,
            TxStatus::Final { .. } => {}
        }
    }
    bar.update(total, total, "waited for");
    bar.finish();
    if ctx.json {
        let items: Vec<_> = report
            .iter()
            .map(|(index, id, status)| json!({"index": index, "tx_id": id, "outcome": status}))
            .collect();
        print_json(&items)?;
    } else {
        for (index, id, status) in &report {
            let id = id.map_or_else(|| "(undecodable)".to_string(), |id| id.to_string());
            println!("{}\ttx {id}: {}", index + 1, tx_status_text(status));
        }
    }
    let total = report.len();
    if !ctx.quiet {
        eprintln!(
            "{} final, {pending} pending, {refused} refused of {total}",
            total - pending - refused
        );
    }
    if refused > 0 {
        return Err(TxRejected {
            tx_id: None,
            code: "refused".into(),
            message: format!("{refused} of {total} transactions refused (see each line)"),
        }
        .into());
    }
    if pending > 0 && !no_wait {
        bail!(
            "{pending} of {total} transactions still pending after {timeout_s} s; check later with `cachet tx status ID`"
        );
    }
    Ok(())
}

/// Reads and decodes a transaction (see [`read_tx_bytes`]).
fn read_tx_hex(file: &std::path::Path) -> Result<SignedTx> {
    let bytes = read_tx_bytes(file)?;
    SignedTx::from_bytes(&bytes, MAX_TX_FILE_BYTES).context("the file is not a Cachet transaction")
}

/// Bytes of a twins mint besides its claim keys (ids, fields, signature), rounded up.
const TX_OVERHEAD_BYTES: u64 = 512;

/// Largest transaction the CLI reads from a file.
const MAX_TX_FILE_BYTES: usize = 1024 * 1024;

/// Signs `body` with the wallet, submits it, and waits for finality unless told not to.
async fn send(ctx: &Context_, options: &TxOptions, body: TxBody) -> Result<()> {
    let key = ctx.wallets.unlock(&options.wallet, &ctx.passphrase)?;
    let kind = body.kind();
    let tx = sign(ctx, &key, options.nonce, options.chain_id, body).await?;
    if options.sign_only {
        return print_signed(ctx, &tx);
    }
    let submitted = ctx.client.submit(&tx).await;
    finish_tx(ctx, submitted, options.no_wait, options.timeout, Some(kind)).await
}

/// Blocks between the tip and a proposed change's default activation height.
const DEFAULT_ACTIVATION_DELAY: u64 = 100;

async fn membership(ctx: &Context_, command: MembershipCommand) -> Result<()> {
    let (change, activation, tx) = match command {
        MembershipCommand::Show => return membership_show(ctx).await,
        MembershipCommand::Proposal { id } => {
            let info = ctx.client.proposal(&id).await?;
            if ctx.json {
                return print_json(&info);
            }
            let p = &info.proposal;
            println!("proposal     {}", info.id);
            println!("change       {}", change_text(&p.change));
            println!(
                "proposed by  {} at height {}",
                p.proposer, p.proposed_height
            );
            println!("activation   height {}", p.activation_height);
            let approvals: Vec<String> = p.approvals.iter().map(|a| a.to_string()).collect();
            println!(
                "approvals    {} ({})",
                approvals.len(),
                approvals.join(", ")
            );
            match p.decided_height {
                Some(height) => println!("decided      at height {height}"),
                None => println!("decided      not yet"),
            }
            return Ok(());
        }
        MembershipCommand::Approve { proposal, tx } => {
            return send(ctx, &tx, TxBody::ApproveMembership { proposal }).await;
        }
        MembershipCommand::Add {
            id,
            country,
            name,
            validator_key,
            node_key,
            issuer,
            activation,
            tx,
        } => {
            let operator = Operator {
                id,
                country,
                name,
                validator_key,
                node_key,
                issuer: ctx.wallets.resolve(&issuer)?,
            };
            (MembershipChange::AddOperator { operator }, activation, tx)
        }
        MembershipCommand::Remove {
            operator,
            activation,
            tx,
        } => (
            MembershipChange::RemoveOperator { operator },
            activation,
            tx,
        ),
        MembershipCommand::RotateKey {
            operator,
            validator_key,
            activation,
            tx,
        } => (
            MembershipChange::RotateValidatorKey {
                operator,
                validator_key,
            },
            activation,
            tx,
        ),
        MembershipCommand::RotateNodeKey {
            operator,
            node_key,
            activation,
            tx,
        } => (
            MembershipChange::RotateNodeKey { operator, node_key },
            activation,
            tx,
        ),
    };
    let activation_height = match activation.at_height {
        Some(height) => height,
        None => ctx.client.chain().await?.height + DEFAULT_ACTIVATION_DELAY,
    };
    if !ctx.json && !tx.sign_only {
        println!(
            "proposing: {} from height {activation_height}",
            change_text(&change)
        );
        println!(
            "the proposal id is the transaction id below; other operators approve it with\n  cachet membership approve <id> -w <their wallet>"
        );
    }
    let body = TxBody::ProposeMembership {
        change,
        activation_height,
    };
    send(ctx, &tx, body).await
}

fn change_text(change: &MembershipChange) -> String {
    match change {
        MembershipChange::AddOperator { operator } => format!(
            "add {} ({}, {}) validator key {} node key {} issuer {}",
            operator.id,
            operator.country,
            operator.name,
            operator.validator_key,
            operator.node_key,
            operator.issuer
        ),
        MembershipChange::RemoveOperator { operator } => format!("remove {operator}"),
        MembershipChange::RotateValidatorKey {
            operator,
            validator_key,
        } => format!("rotate {operator}'s validator key to {validator_key}"),
        MembershipChange::RotateNodeKey { operator, node_key } => {
            format!("rotate {operator}'s node key to {node_key}")
        }
    }
}

async fn membership_show(ctx: &Context_) -> Result<()> {
    let info = ctx.client.membership().await?;
    if ctx.json {
        return print_json(&info);
    }
    println!(
        "operators at height {} ({}):",
        info.height + 1,
        info.operators.len()
    );
    for (index, op) in info.operators.iter().enumerate() {
        println!(
            "  {index}  {} ({}) {}  validator {}  node {}  issuer {}",
            op.id, op.country, op.name, op.validator_key, op.node_key, op.issuer
        );
    }
    match &info.scheduled {
        Some(next) => println!(
            "scheduled    {} from height {} (decided at {})",
            change_text(&next.change),
            next.activation_height,
            next.decided_height
        ),
        None => println!("scheduled    nothing"),
    }
    println!("changes      {}", info.changes.len());
    for change in &info.changes {
        let approvals: Vec<String> = change.approvals.iter().map(|a| a.to_string()).collect();
        println!(
            "  from height {}: {} (proposal {} by {}, decided at {}, approved by {})",
            change.activation_height,
            change_text(&change.change),
            change.proposal,
            change.proposer,
            change.decided_height,
            approvals.join(", ")
        );
    }
    Ok(())
}

/// Signs `body` with `key`; the chain id and the nonce default to the node's.
async fn sign(
    ctx: &Context_,
    key: &cachet_types::SigningKey,
    nonce: Option<u64>,
    chain_id: Option<Hash>,
    body: TxBody,
) -> Result<SignedTx> {
    let chain_id = match chain_id {
        Some(id) => id,
        None => ctx.client.chain().await?.chain_id,
    };
    let nonce = match nonce {
        Some(nonce) => nonce,
        None => {
            ctx.client
                .account(&key.public_key().address())
                .await?
                .next_nonce
        }
    };
    Ok(SignedTx::sign(chain_id, key, nonce, body))
}

/// Prints a signed transaction for another machine or party: hex, or with --json its id too.
fn print_signed(ctx: &Context_, tx: &SignedTx) -> Result<()> {
    if ctx.json {
        return print_json(&json!({"tx_id": tx.id(), "tx": hex::encode(tx.to_bytes())}));
    }
    println!("{}", hex::encode(tx.to_bytes()));
    Ok(())
}

/// Reports a submission, waiting for finality unless `no_wait`.
async fn finish_tx(
    ctx: &Context_,
    submitted: Result<TxInfo, ClientError>,
    no_wait: bool,
    timeout_s: u64,
    kind: Option<&str>,
) -> Result<()> {
    let info = match submitted {
        Ok(info) => info,
        Err(ClientError::Api {
            status: 422,
            code,
            message,
        }) => {
            return Err(TxRejected {
                tx_id: None,
                code,
                message,
            }
            .into());
        }
        Err(other) => return Err(other.into()),
    };
    let id = info.tx_id;
    let mut status = info.status;
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    while status == TxStatus::Pending && !no_wait {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "tx {id} is still pending after {timeout_s} s; check later with `cachet tx status {id}`"
            );
        }
        // The node holds the request until the transaction settles or the wait ends.
        let wait_ms = left.as_millis().min(10_000) as u64;
        status = ctx.client.tx_wait(&id, wait_ms).await?.status;
    }
    if let TxStatus::Rejected { reason, message } = status {
        // With --json the error object says it (printed once, by `main`).
        return Err(TxRejected {
            tx_id: Some(id),
            code: reason,
            message,
        }
        .into());
    }
    if ctx.json {
        print_json(&json!({"tx_id": id, "kind": kind, "outcome": status}))?;
    }
    match status {
        TxStatus::Unknown => bail!("the node no longer knows tx {id}"),
        status => {
            if !ctx.json {
                println!("tx {id}: {}", tx_status_text(&status));
            }
            Ok(())
        }
    }
}

fn tx_status_text(status: &TxStatus) -> String {
    match status {
        TxStatus::Pending => "pending".into(),
        TxStatus::Final { height, index } => format!("final at height {height} (index {index})"),
        TxStatus::Rejected { reason, message } => format!("rejected: {reason}: {message}"),
        TxStatus::Unknown => "unknown".into(),
    }
}

fn reason_text(reason: &FreezeReason) -> &'static str {
    match reason {
        FreezeReason::Stolen => "stolen",
        FreezeReason::Lost => "lost",
        FreezeReason::Disputed => "disputed",
        FreezeReason::Fraud => "fraud",
        FreezeReason::LegalOrder => "legal order",
    }
}

fn owner_text(owner: Option<&Address>) -> String {
    match owner {
        Some(owner) => owner.to_string(),
        None => "nobody (unclaimed physical twin)".into(),
    }
}

fn status_text(status: &cachet_state::StampStatus) -> String {
    match status {
        cachet_state::StampStatus::Unclaimed { claim_key } => {
            format!("unclaimed (claim key {})", claim_key.address())
        }
        cachet_state::StampStatus::Frozen { reason, case_ref } => {
            format!("frozen ({}, case {case_ref})", reason_text(reason))
        }
        other => other.name().into(),
    }
}

fn deadline_text(until: &Deadline) -> String {
    match until {
        Deadline::Height(height) => format!("height {height}"),
        Deadline::TimeMs(time_ms) => time_text(*time_ms),
    }
}

fn time_text(time_ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(time_ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn event_text(entry: &HistoryEntry) -> String {
    match &entry.kind {
        EventKind::Minted { owner } => format!("minted to {owner}"),
        EventKind::MintedForClaim { claim_key } => format!(
            "minted as a physical twin, claimable with claim key {}",
            claim_key.address()
        ),
        EventKind::Claimed { claim_key, to } => {
            format!("claimed by {to} with claim key {}", claim_key.address())
        }
        EventKind::Swapped { from, to } => format!("swapped {from} -> {to}"),
        EventKind::Transferred { from, to, operator } => match operator {
            Some(operator) => format!("transferred {from} -> {to} by approved {operator}"),
            None => format!("transferred {from} -> {to}"),
        },
        EventKind::Approved { operator, until } => {
            format!(
                "approved {operator} to transfer until {}",
                deadline_text(until)
            )
        }
        EventKind::Revoked { operator } => format!("approval of {operator} revoked"),
        EventKind::Redeemed => "redeemed".into(),
        EventKind::Frozen { reason, case_ref } => {
            format!("frozen: {}, case {case_ref}", reason_text(reason))
        }
        EventKind::Unfrozen { case_ref } => format!("unfrozen, case {case_ref}"),
        EventKind::Burned => "burned by its owner".into(),
    }
}

async fn history(
    ctx: &Context_,
    stamp: StampId,
    limit: usize,
    after: Option<u32>,
    all: bool,
    csv: bool,
) -> Result<()> {
    let mut after = after;
    let mut events = Vec::new();
    // A whole history (--all) may be long: progress against the stamp's event count.
    let total = if all {
        Some(u64::from(ctx.client.stamp(&stamp).await?.event_count))
    } else {
        None
    };
    let mut bar = progress::Progress::when_slow("history", "events", ctx.quiet || total.is_none());
    let next = loop {
        let page = ctx.client.history(&stamp, after, limit).await?;
        events.extend(page.events);
        if let Some(total) = total {
            let done = events.len() as u64;
            bar.update(done, total.max(done), "read");
        }
        match page.next {
            Some(next) if all => after = Some(next),
            other => break other,
        }
    };
    bar.finish();
    if ctx.json {
        return print_json(&json!({"stamp": stamp, "events": events, "next": next}));
    }
    if csv {
        let mut out = csv::Writer::from_writer(std::io::stdout());
        out.write_record([
            "stamp",
            "seq",
            "event",
            "height",
            "time",
            "from",
            "to",
            "detail",
            "signer",
            "tx_id",
            "event_hash",
        ])?;
        for e in &events {
            let (kind, from, to, detail) = match &e.kind {
                EventKind::Minted { owner } => {
                    ("minted", String::new(), owner.to_string(), String::new())
                }
                EventKind::MintedForClaim { claim_key } => (
                    "minted_for_claim",
                    String::new(),
                    String::new(),
                    format!("claim key {}", claim_key.address()),
                ),
                EventKind::Claimed { claim_key, to } => (
                    "claimed",
                    String::new(),
                    to.to_string(),
                    format!("claim key {}", claim_key.address()),
                ),
                EventKind::Swapped { from, to } => {
                    ("swapped", from.to_string(), to.to_string(), String::new())
                }
                EventKind::Transferred { from, to, operator } => (
                    "transferred",
                    from.to_string(),
                    to.to_string(),
                    operator
                        .map(|o| format!("by approved {o}"))
                        .unwrap_or_default(),
                ),
                EventKind::Approved { operator, until } => (
                    "approved",
                    String::new(),
                    String::new(),
                    format!("{operator} until {}", deadline_text(until)),
                ),
                EventKind::Revoked { operator } => (
                    "revoked",
                    String::new(),
                    String::new(),
                    operator.to_string(),
                ),
                EventKind::Redeemed => ("redeemed", String::new(), String::new(), String::new()),
                EventKind::Frozen { reason, case_ref } => (
                    "frozen",
                    String::new(),
                    String::new(),
                    format!("{}; case {case_ref}", reason_text(reason)),
                ),
                EventKind::Unfrozen { case_ref } => (
                    "unfrozen",
                    String::new(),
                    String::new(),
                    format!("case {case_ref}"),
                ),
                EventKind::Burned => ("burned", String::new(), String::new(), String::new()),
            };
            out.write_record([
                stamp.to_string(),
                e.seq.to_string(),
                kind.to_string(),
                e.height.to_string(),
                time_text(e.time_ms),
                from,
                to,
                detail,
                e.signer.to_string(),
                e.tx_id.to_string(),
                e.event_hash.to_string(),
            ])?;
        }
        out.flush()?;
        return Ok(());
    }
    println!("{stamp}: {} events shown", events.len());
    for e in &events {
        println!(
            "  #{:<3} height {:<6} {}  {}\n        signer {}  tx {}",
            e.seq,
            e.height,
            time_text(e.time_ms),
            event_text(e),
            e.signer,
            e.tx_id
        );
    }
    if let Some(next) = next {
        println!("more: cachet history {stamp} --after {next}");
    }
    Ok(())
}

async fn holdings(
    ctx: &Context_,
    account: &str,
    limit: usize,
    after: Option<StampId>,
    all: bool,
    csv: bool,
) -> Result<()> {
    let owner = ctx.wallets.resolve(account)?;
    let mut after = after;
    let mut stamps = Vec::new();
    let next = loop {
        let page = ctx.client.holdings(&owner, after.as_ref(), limit).await?;
        stamps.extend(page.stamps);
        match page.next {
            Some(next) if all => after = Some(next),
            other => break other,
        }
    };
    if ctx.json {
        return print_json(&json!({"owner": owner, "stamps": stamps, "next": next}));
    }
    if csv {
        let mut out = csv::Writer::from_writer(std::io::stdout());
        out.write_record([
            "stamp",
            "issue",
            "serial",
            "owner",
            "status",
            "events",
            "last_event",
        ])?;
        // One request per stamp: progress on a long export.
        let mut bar = progress::Progress::when_slow("export", "stamps", ctx.quiet);
        let total = stamps.len() as u64;
        for (done, stamp) in stamps.iter().enumerate() {
            let info = ctx.client.stamp(stamp).await?;
            bar.update(done as u64 + 1, total, "written");
            out.write_record([
                stamp.to_string(),
                stamp.issue.to_string(),
                stamp.serial.to_string(),
                info.owner.map(|o| o.to_string()).unwrap_or_default(),
                status_text(&info.status),
                info.event_count.to_string(),
                info.last_event.to_string(),
            ])?;
        }
        bar.finish();
        out.flush()?;
        if let Some(next) = next {
            eprintln!("more: cachet holdings {account} --csv --after '{next}'");
        }
        return Ok(());
    }
    println!("{owner} holds {} stamps (this page)", stamps.len());
    for stamp in &stamps {
        println!("  {stamp}");
    }
    if let Some(next) = next {
        println!("more: cachet holdings {account} --after '{next}'");
    }
    Ok(())
}
