//! The genesis: chain name, operators, parameters. Its hash is the chain id.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec;
use crate::hash::Hash;
use crate::ids::{CountryCode, IdError, OperatorId, check_text};
use crate::keys::{Address, PublicKey};
use crate::tx::{TxCheckError, limits};

/// Hash tag of the genesis (the chain id).
pub const GENESIS_TAG: &str = "cachet/genesis";

/// Most operators a chain may have (validator indices are u16; votes scale with the square).
pub const MAX_OPERATORS: usize = 256;

/// A member postal operator.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Operator {
    /// Short id, e.g. `AT-POST`.
    pub id: OperatorId,
    /// Country.
    pub country: CountryCode,
    /// Display name.
    pub name: String,
    /// Key that signs the operator's consensus votes (held by its node).
    pub validator_key: PublicKey,
    /// Public key of its node's peer-to-peer identity (the ed25519 key behind its libp2p
    /// peer id): peers give the operators' nodes their reserved connections and count only
    /// them as validators' nodes; any other peer is an observer.
    pub node_key: PublicKey,
    /// Account that signs the operator's transactions (issue, mint, redeem, freeze).
    pub issuer: Address,
}

impl Operator {
    /// Checks the fields alone: name length, canonical prime-order keys.
    pub fn check(&self) -> Result<(), TxCheckError> {
        check_text("operator name", &self.name, 1, limits::OPERATOR_NAME_MAX)?;
        self.validator_key.check_account()?;
        self.node_key.check_account()?;
        self.issuer.public_key().check_account()?;
        Ok(())
    }

    /// True if `other` has the same id, validator key, node key or issuer account: two
    /// members of one set never may.
    pub fn clashes(&self, other: &Operator) -> bool {
        self.id == other.id
            || self.validator_key == other.validator_key
            || self.node_key == other.node_key
            || self.issuer == other.issuer
    }
}

/// Consensus-wide limits, fixed in the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct ChainParams {
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Most bytes of transactions in one block.
    pub max_block_bytes: u32,
    /// Largest encoded transaction.
    pub max_tx_bytes: u32,
    /// Most serials one mint transaction may create.
    pub max_mint_per_tx: u32,
    /// Largest print run of an issue.
    pub max_print_run: u32,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            max_block_txs: 10_000,
            max_block_bytes: 8 * 1024 * 1024,
            max_tx_bytes: 4096,
            max_mint_per_tx: 10_000,
            max_print_run: 100_000_000,
        }
    }
}

/// The founding document of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Genesis {
    /// Human name, e.g. `cachet-dev`.
    pub chain_name: String,
    /// Genesis time, milliseconds since the Unix epoch; block times start after it.
    pub genesis_time_ms: u64,
    /// The operators, in validator-index order.
    pub operators: Vec<Operator>,
    /// Limits.
    pub params: ChainParams,
}

/// Why a genesis is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GenesisError {
    /// No operators, or too many.
    #[error("a genesis needs 1 to {MAX_OPERATORS} operators, this one has {0}")]
    OperatorCount(usize),
    /// Two operators share an id or a key.
    #[error("operator {0} appears twice (same id, validator key or issuer account)")]
    Duplicate(OperatorId),
    /// A key is weak or invalid.
    #[error("operator {0} has a weak or invalid key")]
    WeakKey(OperatorId),
    /// A field is out of bounds.
    #[error("{0}")]
    Field(#[from] IdError),
    /// A parameter is zero or inconsistent.
    #[error("invalid chain parameter: {0}")]
    Param(&'static str),
}

impl Genesis {
    /// The chain id: tagged hash of the canonical genesis encoding.
    pub fn chain_id(&self) -> Hash {
        Hash::tagged(GENESIS_TAG, &[&codec::encode(self)])
    }

    /// Checks the genesis is well formed.
    pub fn validate(&self) -> Result<(), GenesisError> {
        check_text("chain name", &self.chain_name, 1, 64)?;
        let count = self.operators.len();
        if count == 0 || count > MAX_OPERATORS {
            return Err(GenesisError::OperatorCount(count));
        }
        for (i, op) in self.operators.iter().enumerate() {
            match op.check() {
                Ok(()) => {}
                Err(TxCheckError::InvalidField(error)) => return Err(error.into()),
                Err(_) => return Err(GenesisError::WeakKey(op.id.clone())),
            }
            if self.operators[..i].iter().any(|other| other.clashes(op)) {
                return Err(GenesisError::Duplicate(op.id.clone()));
            }
        }
        let p = &self.params;
        if p.max_block_txs == 0
            || p.max_tx_bytes < 256
            || p.max_block_bytes < p.max_tx_bytes
            || p.max_mint_per_tx == 0
            || p.max_print_run == 0
        {
            return Err(GenesisError::Param(
                "limits must be positive, max_tx_bytes >= 256 and max_block_bytes >= max_tx_bytes",
            ));
        }
        Ok(())
    }

    /// The genesis validator keys, by index (the set until the first membership change).
    pub fn validator_keys(&self) -> Vec<PublicKey> {
        self.operators.iter().map(|op| op.validator_key).collect()
    }

    /// The operator with this id.
    pub fn operator(&self, id: &OperatorId) -> Option<&Operator> {
        self.operators.iter().find(|op| op.id == *id)
    }
}
