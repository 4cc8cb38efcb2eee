//! Builds provenance bundles from the store: the stamp's history with inclusion proofs, the
//! headers and certificates, and the current record's state proof at the tip.
//!
//! The tree is stored by position, so a commit running at the same time could mix two
//! roots: callers must not commit while a bundle is built (the node holds its commit lock).

use std::collections::BTreeMap;

use cachet_provenance::{
    BUNDLE_FORMAT, BUNDLE_VERSION, CertifiedHeader, ChangeProof, CurrentRecord, IncludedTx,
    MembershipProof, ProvenanceBundle, SUPPLY_FORMAT, SupplyProof,
};
use cachet_state::{StateKey, StateValue};
use cachet_types::merkle::inclusion_proof;
use cachet_types::{Hash, IssueId, StampId, TxBody};

use crate::{Store, StoreError};

/// Loads blocks once each and hands out included transactions and certified headers.
struct Blocks<'s> {
    store: &'s Store,
    headers: BTreeMap<u64, CertifiedHeader>,
}

impl Blocks<'_> {
    /// The transaction at `height`/`index` with its inclusion proof; loads the block.
    fn included(
        &mut self,
        height: u64,
        index: Option<u32>,
        find: impl Fn(&TxBody) -> bool,
    ) -> Result<IncludedTx, StoreError> {
        let block = self
            .store
            .block(height)?
            .ok_or_else(|| StoreError::Corrupt(format!("block {height} is missing")))?;
        let position = match index {
            Some(index) => index as usize,
            None => block
                .block
                .txs
                .iter()
                .position(|tx| find(&tx.body))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("block {height} lacks the expected transaction"))
                })?,
        };
        let leaves: Vec<Hash> = block
            .block
            .txs
            .iter()
            .map(cachet_types::SignedTx::witness_hash)
            .collect();
        let proof = inclusion_proof(&leaves, position).ok_or_else(|| {
            StoreError::Corrupt(format!("block {height} has no transaction {position}"))
        })?;
        let tx = block.block.txs[position].clone();
        self.headers.entry(height).or_insert(CertifiedHeader {
            header: block.block.header,
            certificate: block.certificate,
        });
        Ok(IncludedTx { tx, height, proof })
    }
}

impl Store {
    /// Proofs read blocks from the genesis on: a state-synced store has them only once its
    /// backfill ends.
    fn refuse_while_backfilling(&self) -> Result<(), StoreError> {
        match self.base()? {
            Some(base) => Err(StoreError::Backfilling { base }),
            None => Ok(()),
        }
    }

    /// The proof of every membership change active at `height`: each proposal and its
    /// approvals with their blocks' headers.
    pub fn membership_proof(&self, height: u64) -> Result<MembershipProof, StoreError> {
        self.refuse_while_backfilling()?;
        let mut blocks = Blocks {
            store: self,
            headers: BTreeMap::new(),
        };
        let mut changes = Vec::new();
        for change in self.membership()?.changes {
            if change.activation_height > height {
                break;
            }
            let mut included = |id: &Hash| -> Result<IncludedTx, StoreError> {
                let at = self.tx_location(id)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("membership transaction {id} is not indexed"))
                })?;
                blocks.included(at.height, Some(at.index), |_| false)
            };
            let proposal = included(&change.proposal)?;
            let approvals = change
                .approval_txs
                .iter()
                .map(&mut included)
                .collect::<Result<_, _>>()?;
            changes.push(ChangeProof {
                proposal,
                approvals,
            });
        }
        Ok(MembershipProof {
            changes,
            headers: blocks.headers.into_values().collect(),
        })
    }

    /// The provenance bundle of `stamp`, or None if it was never minted.
    pub fn provenance(&self, stamp: &StampId) -> Result<Option<ProvenanceBundle>, StoreError> {
        self.refuse_while_backfilling()?;
        let key = StateKey::Stamp(stamp.clone());
        let Some(StateValue::Stamp(record)) = self.state(&key)? else {
            return Ok(None);
        };
        let Some(StateValue::Issue(issue)) = self.state(&StateKey::Issue(stamp.issue.clone()))?
        else {
            return Err(StoreError::Corrupt(format!("issue of {stamp} is missing")));
        };
        let mut blocks = Blocks {
            store: self,
            headers: BTreeMap::new(),
        };
        let issue_tx = blocks.included(
            issue.created_height,
            None,
            |body| matches!(body, TxBody::CreateIssue { record } if record.id == stamp.issue),
        )?;
        let history = self.history(stamp, None, record.event_count as usize)?;
        if history.len() != record.event_count as usize {
            return Err(StoreError::Corrupt(format!(
                "history of {stamp} is incomplete"
            )));
        }
        let mut events = Vec::with_capacity(history.len());
        for event in &history {
            events.push(blocks.included(event.height, Some(event.tx_index), |_| false)?);
        }
        let (tip, proof) = self.prove(&key)?;
        let tip_block = self
            .block(tip.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("tip block {} is missing", tip.height)))?;
        blocks.headers.insert(
            tip.height,
            CertifiedHeader {
                header: tip_block.block.header,
                certificate: tip_block.certificate,
            },
        );
        Ok(Some(ProvenanceBundle {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            chain_id: self.chain_id(),
            stamp: stamp.clone(),
            issue: issue_tx,
            events,
            headers: blocks.headers.into_values().collect(),
            current: CurrentRecord {
                height: tip.height,
                record,
                proof,
            },
            membership: self.membership_proof(tip.height)?,
        }))
    }

    /// The supply proof of `issue` at the tip, or None if there is no such issue.
    pub fn supply_proof(&self, issue: &IssueId) -> Result<Option<SupplyProof>, StoreError> {
        self.refuse_while_backfilling()?;
        let key = StateKey::Issue(issue.clone());
        let Some(StateValue::Issue(state)) = self.state(&key)? else {
            return Ok(None);
        };
        let (tip, proof) = self.prove(&key)?;
        let block = self
            .block(tip.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("tip block {} is missing", tip.height)))?;
        Ok(Some(SupplyProof {
            format: SUPPLY_FORMAT.into(),
            version: BUNDLE_VERSION,
            chain_id: self.chain_id(),
            issue: state,
            header: CertifiedHeader {
                header: block.block.header,
                certificate: block.certificate,
            },
            proof,
            membership: self.membership_proof(tip.height)?,
        }))
    }
}
