//! An in-memory ledger: state, tree and blocks in maps, committed through the same pure
//! block functions as the RocksDB ledger (`cachet_state::build_block` / `execute_block`).

use std::collections::BTreeMap;

use cachet_state::smt::{Node, NodeKey, NodeSource};
use cachet_state::{
    AccountState, ExecutedBlock, StateError, StateKey, StateValue, StateView, Tip, build_block,
    execute_block,
};
use cachet_types::{
    Block, CertifiedBlock, CommitCertificate, Genesis, PublicKey, SignedTx, VerifiedTx,
};

/// A ledger held in memory.
#[derive(Debug, Clone)]
pub struct MemLedger {
    genesis: Genesis,
    values: BTreeMap<StateKey, StateValue>,
    nodes: BTreeMap<NodeKey, Node>,
    tip: Tip,
    blocks: Vec<CertifiedBlock>,
}

impl StateView for MemLedger {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        Ok(self.values.get(key).cloned())
    }
}

impl NodeSource for MemLedger {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StateError> {
        Ok(self.nodes.get(key).copied())
    }
}

impl MemLedger {
    /// A ledger holding only `genesis`.
    pub fn new(genesis: &Genesis) -> MemLedger {
        MemLedger {
            tip: Tip::genesis(genesis),
            genesis: genesis.clone(),
            values: BTreeMap::new(),
            nodes: BTreeMap::new(),
            blocks: Vec::new(),
        }
    }

    /// The tip.
    pub fn tip(&self) -> Tip {
        self.tip
    }

    /// Committed blocks, from height 1.
    pub fn blocks(&self) -> &[CertifiedBlock] {
        &self.blocks
    }

    /// The validator keys of the block at `height` (up to two past the tip).
    pub fn validators_at(&self, height: u64) -> Vec<PublicKey> {
        cachet_state::operators_at(self, &self.genesis, height)
            .expect("memory state cannot fail")
            .iter()
            .map(|op| op.validator_key)
            .collect()
    }

    /// A signer's last final nonce.
    pub fn nonce(&self, signer: &PublicKey) -> u64 {
        match self.values.get(&StateKey::Account(*signer)) {
            Some(StateValue::Account(AccountState { nonce, .. })) => *nonce,
            _ => 0,
        }
    }

    /// Builds the next block from `candidates`.
    pub fn build(
        &self,
        candidates: Vec<VerifiedTx>,
        time_ms: u64,
        proposer: u16,
    ) -> Result<ExecutedBlock, StateError> {
        build_block(
            self,
            &self.genesis,
            &self.tip,
            candidates,
            time_ms,
            proposer,
        )
    }

    /// Checks a block (every signature, one by one) and executes it on the tip.
    pub fn prepare(&self, block: Block) -> Result<ExecutedBlock, String> {
        let chain_id = self.genesis.chain_id();
        let verified = block
            .txs
            .iter()
            .cloned()
            .map(|tx: SignedTx| tx.verify(&chain_id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        execute_block(self, &self.genesis, &self.tip, block, verified).map_err(|e| e.to_string())
    }

    /// Commits a certified block from anywhere: certificate, links, rules, state root.
    pub fn commit_certified(&mut self, certified: &CertifiedBlock) -> Result<(), String> {
        let executed = self.prepare(certified.block.clone())?;
        self.commit(executed, certified.certificate.clone())
    }

    fn commit(
        &mut self,
        executed: ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), String> {
        certificate
            .verify(
                &executed.block.header,
                &self.validators_at(executed.block.header.height),
            )
            .map_err(|e| e.to_string())?;
        if executed.parent != self.tip.block_hash {
            return Err("block does not extend the tip".into());
        }
        for (key, node) in executed.tree_writes {
            match node {
                Some(node) => self.nodes.insert(key, node),
                None => self.nodes.remove(&key),
            };
        }
        self.values.extend(executed.changes.writes);
        self.tip = Tip::after(&executed.block.header, executed.root);
        self.blocks.push(CertifiedBlock {
            block: executed.block,
            certificate,
        });
        Ok(())
    }
}
