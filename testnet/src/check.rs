//! The checker run at the end of every scenario: every node holds one chain (the same
//! height and state root, the same block at every height) and every transaction a node
//! reported final is in that block on every node.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cachet_api::{Client, TxStatus};
use cachet_types::Hash;

use crate::Layout;
use crate::load::agree;

/// A client for every node of the testnet in `dir` (each must be running).
pub fn clients(layout: &Layout, dir: &Path) -> Result<Vec<Client>> {
    (0..layout.nodes.len())
        .map(|i| {
            let url = layout
                .api_url(dir, i)?
                .with_context(|| format!("{} is not running", layout.nodes[i].name))?;
            Ok(Client::new(&url)?)
        })
        .collect()
}

/// Reads `<tx id> <height>` lines.
pub fn read_finals(path: &Path) -> Result<Vec<(Hash, u64)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let mut parts = line.split_whitespace();
            let parsed = (|| {
                let id: Hash = parts.next()?.parse().ok()?;
                let height = parts.next()?.parse().ok()?;
                parts.next().is_none().then_some((id, height))
            })();
            parsed.with_context(|| {
                format!(
                    "{} line {}: expected `<tx id> <height>`",
                    path.display(),
                    n + 1
                )
            })
        })
        .collect()
}

/// Checks one chain on every node (waiting up to `timeout` for one height and root), and
/// that each of `finals` is final at its height everywhere; returns a summary line.
pub async fn one_chain(
    clients: &[Client],
    finals: &[(Hash, u64)],
    timeout: Duration,
) -> Result<String> {
    let (height, root) = agree(clients, timeout).await?;
    let mut blocks = Vec::with_capacity(height as usize);
    for h in 1..=height {
        let mut first = None;
        for (node, client) in clients.iter().enumerate() {
            let block = client
                .block(h)
                .await
                .with_context(|| format!("node {node} has no block {h}"))?;
            match &first {
                None => first = Some(block),
                Some(seen) if seen.hash != block.hash => bail!(
                    "two blocks at height {h}: node 0 has {}, node {node} has {}",
                    seen.hash,
                    block.hash
                ),
                Some(_) => {}
            }
        }
        blocks.extend(first);
    }
    for (id, at) in finals {
        let in_block = at
            .checked_sub(1)
            .and_then(|i| blocks.get(i as usize))
            .is_some_and(|block| block.tx_ids.contains(id));
        if !in_block {
            bail!("{id} was reported final at height {at}, but block {at} does not hold it");
        }
        for (node, client) in clients.iter().enumerate() {
            match client.tx(id).await?.status {
                TxStatus::Final { height, .. } if height == *at => {}
                other => bail!("{id} (final at {at}) is {other:?} on node {node}"),
            }
        }
    }
    Ok(format!(
        "one chain on {} nodes: height {height}, state root {}, every block identical; {} \
         transactions reported final are final at their height on every node",
        clients.len(),
        root.short(),
        finals.len()
    ))
}
