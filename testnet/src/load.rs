//! The testnet workload: every operator creates an issue and mints stamps to its collectors;
//! then collectors transfer their stamps, submitting to different validators, while a
//! watcher follows the final blocks of one node. Reports finalized transfers per second and
//! submit-to-final latency percentiles, then checks that every node holds the same ledger.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cachet_api::{Client, ClientError, SubmitOutcome, TxStatus};
use cachet_state::event_hash;
use cachet_types::{
    CurrencyCode, FaceValue, Hash, IssueId, IssueRecord, SignedTx, SigningKey, StampId, TxBody,
};

use crate::Layout;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Transfers to submit.
    pub transfers: usize,
    /// Collectors (signers) sharing them; each signs its transfers in nonce order.
    pub collectors: usize,
    /// Submissions in flight at once.
    pub concurrency: usize,
    /// Transactions per request: 1 posts each to `/v1/tx`, more go to `/v1/txs` together.
    pub batch: usize,
    /// Target submission rate (transfers/s); none submits as fast as the nodes accept.
    pub rate: Option<u64>,
    /// Longest wait for everything to become final.
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Transfers final.
    pub transfers: usize,
    /// From the first submission to the last transfer final.
    pub elapsed: Duration,
    /// Final transfers per second over `elapsed`.
    pub per_second: f64,
    /// Transfers submitted per second, from the first submission to the last: what a paced
    /// run reached of its pace (the load and the nodes share the machine's cores).
    pub submitted_per_second: f64,
    /// Submit-to-final latency percentiles (p50, p90, p99, max).
    pub latency: [Duration; 4],
    /// Height and state root every node agreed on at the end.
    pub height: u64,
    /// State root.
    pub state_root: Hash,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "{} transfers final in {:.2} s: {:.0} transfers/s\n\
             submit-to-final latency: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms\n\
             every node at height {} with state root {}",
            self.transfers,
            self.elapsed.as_secs_f64(),
            self.per_second,
            ms(self.latency[0]),
            ms(self.latency[1]),
            ms(self.latency[2]),
            ms(self.latency[3]),
            self.height,
            self.state_root.short()
        )
    }
}

/// The throughput targets of a 4-validator testnet on one machine.
const SATURATING_TARGET_PER_S: f64 = 10_000.0;
const PACED_TARGET_P99: Duration = Duration::from_secs(1);
const PACED_TARGET_RATE: u64 = 5_000;

impl LoadReport {
    /// The report as one row of the benchmark summary: the figure, the target, the fraction
    /// of it reached and the verdict (`run` paced at `rate`, or saturating).
    pub fn bench_row(&self, rate: Option<u64>) -> String {
        let p99 = self.latency[2];
        let (figure, measured, target, achieved) = match rate {
            None => (
                "4-validator testnet, saturating".to_string(),
                format!(
                    "{:.0} finalized transfers/s, p99 {} ms",
                    self.per_second,
                    p99.as_millis()
                ),
                format!("{SATURATING_TARGET_PER_S:.0} finalized transfers/s"),
                self.per_second / SATURATING_TARGET_PER_S,
            ),
            Some(rate) => (
                format!("4-validator testnet, paced at {rate}/s"),
                format!(
                    "submitted at {:.0}/s, {:.0}/s final, p99 {} ms",
                    self.submitted_per_second,
                    self.per_second,
                    p99.as_millis()
                ),
                format!("p99 <= 1 s at {PACED_TARGET_RATE}/s"),
                // Met only at the target's rate or above, as asked and as reached (a load
                // that could not keep its pace did not test it), with the latency bound held:
                // the lesser of the two ratios, so that a low latency at a lower pace (which
                // is easier) does not make up for the pace.
                (PACED_TARGET_P99.as_secs_f64() / p99.as_secs_f64().max(1e-3))
                    .min((rate as f64).min(self.submitted_per_second) / PACED_TARGET_RATE as f64),
            ),
        };
        let verdict = if achieved >= 1.0 { "met" } else { "missed" };
        format!(
            "row: | {figure} | {measured} | {target} | {:.0}% | {verdict} |",
            100.0 * achieved
        )
    }
}

fn collector_key(index: usize) -> SigningKey {
    SigningKey::from_seed(Hash::tagged("cachet/testnet-collector", &[&index.to_be_bytes()]).0)
}

fn issue_record(
    operator: &cachet_types::Operator,
    nonce: u64,
    print_run: u32,
) -> Result<IssueRecord> {
    // One issue per run: the creating nonce makes the id unique.
    let id = format!("{}-LOAD-{nonce}", operator.country.as_str());
    Ok(IssueRecord {
        id: IssueId::parse(&id)?,
        operator: operator.id.clone(),
        title: "Testnet load".into(),
        country: operator.country.clone(),
        year: 2026,
        wns_number: None,
        face_value: FaceValue {
            amount_minor: 100,
            currency: CurrencyCode::parse("EUR")?,
        },
        design_sha256: Hash::sha256(id.as_bytes()),
        design_uri: format!("https://stamps.example/{id}.png"),
        print_run,
        variants: Vec::new(),
        co_issuers: Vec::new(),
    })
}

async fn submit(client: &Client, tx: &SignedTx) -> Result<()> {
    loop {
        match client.submit(tx).await {
            Ok(_) => return Ok(()),
            // Full pool: back off and try again.
            Err(ClientError::Api { status: 503, .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Submits `txs` in order, one request (`submit` alone for one transaction). A full pool
/// refuses from some transaction on: from the first refused with 503 the rest is sent
/// again after a pause (later nonces of its signer may have been refused for the gap).
async fn submit_many(client: &Client, txs: &[&SignedTx]) -> Result<()> {
    if let [tx] = txs {
        return submit(client, tx).await;
    }
    let mut rest: Vec<Vec<u8>> = txs.iter().map(|tx| tx.to_bytes()).collect();
    while !rest.is_empty() {
        let outcomes = match client.submit_batch(&rest).await {
            Ok(outcomes) => outcomes,
            Err(ClientError::Api { status: 503, .. }) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        let full = outcomes.iter().position(
            |o| matches!(o, SubmitOutcome::Refused(refusal) if refusal.http_status == 503),
        );
        for outcome in &outcomes[..full.unwrap_or(outcomes.len())] {
            if let SubmitOutcome::Refused(refusal) = outcome {
                bail!(
                    "transfer {} refused: {}: {}",
                    refusal.tx_id.map(|id| id.to_string()).unwrap_or_default(),
                    refusal.error.code,
                    refusal.error.message
                );
            }
        }
        match full {
            None if !outcomes.is_empty() => return Ok(()),
            None => {}
            Some(first) => {
                rest.drain(..first);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn wait_final(client: &Client, id: &Hash, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match client.tx_wait(id, 5_000).await?.status {
            TxStatus::Final { height, .. } => return Ok(height),
            TxStatus::Rejected { reason, message } => bail!("{id} rejected: {reason}: {message}"),
            _ => {}
        }
    }
    bail!("{id} not final within {timeout:?}")
}

/// Runs the workload against the testnet in `dir` (its nodes must be running).
pub async fn load(dir: &Path, options: &LoadOptions) -> Result<LoadReport> {
    let layout = Layout::read(dir)?;
    let genesis = layout.read_genesis(dir)?;
    let chain_id = genesis.chain_id();
    let passphrase = crate::passphrase(dir)?;
    let clients: Vec<Client> = (0..layout.nodes.len())
        .map(|i| {
            let url = layout
                .api_url(dir, i)?
                .with_context(|| format!("node {} is not running", layout.nodes[i].name))?;
            Ok(Client::new(&url)?)
        })
        .collect::<Result<_>>()?;
    let validators = genesis.operators.len();
    let collectors = options.collectors.clamp(1, options.transfers.max(1));
    let per_collector = options.transfers.div_ceil(collectors) as u32;

    // Set-up: each operator issues and mints one range per collector of its own.
    eprintln!(
        "set-up: {validators} issues, {collectors} collectors with {per_collector} stamps each"
    );
    let mut stamps: Vec<Vec<(StampId, Hash)>> = vec![Vec::new(); collectors];
    let mut last_setup = Vec::new();
    for (k, operator) in genesis.operators.iter().enumerate() {
        let issuer = cachet_keystore::load(&dir.join(&layout.issuer_keys[k]), &passphrase)?;
        let mine: Vec<usize> = (0..collectors).filter(|c| c % validators == k).collect();
        let print_run = per_collector * mine.len().max(1) as u32;
        let client = &clients[k];
        let account = client.account(&issuer.public_key().address()).await?;
        let mut nonce = account.next_nonce;
        let record = issue_record(operator, nonce, print_run)?;
        let issue = record.id.clone();
        let create = SignedTx::sign(chain_id, &issuer, nonce, TxBody::CreateIssue { record });
        submit(client, &create).await?;
        let mut last = create.id();
        for (slot, c) in mine.iter().enumerate() {
            nonce += 1;
            let first = slot as u32 * per_collector + 1;
            let mint = SignedTx::sign(
                chain_id,
                &issuer,
                nonce,
                TxBody::Mint {
                    issue: issue.clone(),
                    first_serial: first,
                    last_serial: first + per_collector - 1,
                    owner: collector_key(*c).public_key().address(),
                    variant: None,
                    claim_keys: Vec::new(),
                },
            );
            submit(client, &mint).await?;
            for serial in first..first + per_collector {
                let stamp = StampId {
                    issue: issue.clone(),
                    serial,
                };
                let event = event_hash(&stamp, &Hash::ZERO, &mint.id());
                stamps[*c].push((stamp, event));
            }
            last = mint.id();
        }
        last_setup.push((k, last));
    }
    for (k, id) in &last_setup {
        wait_final(&clients[*k], id, options.timeout).await?;
    }

    // Transfers, signed ahead so signing does not slow submission.
    let sink = collector_key(usize::MAX).public_key().address();
    let mut queues: Vec<Vec<SignedTx>> = Vec::with_capacity(collectors);
    for (c, owned) in stamps.iter().enumerate() {
        let key = collector_key(c);
        let client = &clients[c % validators];
        let mut nonce = client
            .account(&key.public_key().address())
            .await?
            .next_nonce;
        let mut txs = Vec::new();
        for (stamp, last_event) in owned {
            let body = TxBody::Transfer {
                stamp: stamp.clone(),
                last_event: *last_event,
                to: sink,
            };
            txs.push(SignedTx::sign(chain_id, &key, nonce, body));
            nonce += 1;
        }
        queues.push(txs);
    }
    let total: usize = queues.iter().map(Vec::len).sum();
    eprintln!("submitting {total} transfers to {validators} validators");

    // The watcher: final blocks of the last node (an observer, if there is one).
    let watched = clients[clients.len() - 1].clone();
    let start_height = watched.chain().await?.height;
    let finals: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let submitted: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let watcher = {
        let finals = finals.clone();
        tokio::spawn(async move {
            let mut height = start_height;
            loop {
                let tip = match watched.chain().await {
                    Ok(info) => info.height,
                    Err(_) => height,
                };
                while height < tip {
                    let Ok(block) = watched.block(height + 1).await else {
                        break;
                    };
                    let now = Instant::now();
                    let mut map = finals.lock().unwrap_or_else(|p| p.into_inner());
                    for id in block.tx_ids {
                        map.insert(id, now);
                    }
                    height += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Submitters: worker w owns collectors c with c % concurrency == w and submits their
    // transfers round by round (one per collector per round), so each collector's nonces
    // arrive in order; up to `batch` of that sequence travel in one request.
    let started = Instant::now();
    let workers = options.concurrency.clamp(1, collectors);
    let batch = options.batch.clamp(1, cachet_api::MAX_SUBMIT_BATCH);
    let pace = options
        .rate
        .map(|rate| Duration::from_secs_f64(workers as f64 / rate.max(1) as f64));
    let queues = Arc::new(queues);
    let mut handles = Vec::new();
    for w in 0..workers {
        let (queues, clients, submitted) = (queues.clone(), clients.clone(), submitted.clone());
        handles.push(tokio::spawn(async move {
            let mine: Vec<usize> = (0..queues.len()).filter(|c| c % workers == w).collect();
            let rounds = mine.iter().map(|c| queues[*c].len()).max().unwrap_or(0);
            // This worker's transfers in sending order, each with the node it goes to.
            let sequence: Vec<(&SignedTx, usize, usize)> = (0..rounds)
                .flat_map(|round| mine.iter().map(move |c| (round, *c)))
                .filter_map(|(round, c)| queues[c].get(round).map(|tx| (tx, c % validators, round)))
                .collect();
            // A request goes to one node and holds one round: distinct collectors, never
            // two nonces of one signer (the other nodes get them by gossip, whose batches
            // may arrive out of order or be dropped when a node is overloaded, and a gap
            // waits for the regossip).
            let requests: Vec<&[(&SignedTx, usize, usize)]> = sequence
                .chunk_by(|a, b| a.1 == b.1 && a.2 == b.2)
                .flat_map(|group| group.chunks(batch))
                .collect();
            // Paced workers start spread over one request's interval, not all at once.
            let mut next = Instant::now()
                + pace.map_or(Duration::ZERO, |pace| {
                    stagger(pace, sequence.len(), requests.len(), w, workers)
                });
            for chunk in requests {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next.into()).await;
                    next += pace * chunk.len() as u32;
                }
                let at = Instant::now();
                let txs: Vec<&SignedTx> = chunk.iter().map(|(tx, _, _)| *tx).collect();
                submit_many(&clients[chunk[0].1], &txs).await?;
                let mut map = submitted.lock().unwrap_or_else(|p| p.into_inner());
                for tx in txs {
                    map.insert(tx.id(), at);
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for handle in handles {
        handle.await.context("submitter panicked")??;
    }
    let submitted_in = started.elapsed();
    eprintln!(
        "all submitted after {:.2} s; waiting for finality",
        submitted_in.as_secs_f64()
    );

    let ids: Vec<Hash> = queues.iter().flatten().map(SignedTx::id).collect();
    let deadline = Instant::now() + options.timeout;
    loop {
        let done = {
            let map = finals.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter().filter(|id| map.contains_key(id)).count()
        };
        if done == ids.len() {
            break;
        }
        if Instant::now() > deadline {
            watcher.abort();
            bail!(
                "only {done} of {} transfers final within {:?}",
                ids.len(),
                options.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();

    let finals = finals.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let submitted = submitted.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<Duration> = ids
        .iter()
        .map(|id| finals[id].saturating_duration_since(submitted[id]))
        .collect();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let last_final = ids.iter().map(|id| finals[id]).max().unwrap_or(started);
    let elapsed = last_final.saturating_duration_since(started);

    // Every node must hold the same ledger.
    let (height, state_root) = agree(&clients, options.timeout).await?;
    Ok(LoadReport {
        transfers: ids.len(),
        elapsed,
        per_second: ids.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        submitted_per_second: ids.len() as f64 / submitted_in.as_secs_f64().max(1e-9),
        latency: [
            pick(0.50),
            pick(0.90),
            pick(0.99),
            latencies[latencies.len() - 1],
        ],
        height,
        state_root,
    })
}

/// When paced worker `w` of `workers` sends its first request: the workers spread over the
/// interval of one of their requests (`transfers` in `requests`, each worker sending one
/// transfer per `pace`), so the load is even from the start. Requests hold fewer transfers
/// than the batch allows when a worker has few collectors per node, so the spread follows
/// the requests' real size: spread over a full batch's interval, a run of a few seconds
/// would spend most of it starting.
fn stagger(
    pace: Duration,
    transfers: usize,
    requests: usize,
    w: usize,
    workers: usize,
) -> Duration {
    let per_request = transfers.div_ceil(requests.max(1)) as u32;
    pace * per_request * w as u32 / workers.max(1) as u32
}

/// Waits (bounded) until every node reports the same height and state root.
pub async fn agree(clients: &[Client], timeout: Duration) -> Result<(u64, Hash)> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut seen = Vec::new();
        for client in clients {
            let info = client.chain().await?;
            seen.push((info.height, info.state_root));
        }
        if seen.windows(2).all(|w| w[0] == w[1]) {
            return Ok(seen[0]);
        }
        if Instant::now() > deadline {
            bail!("nodes disagree after {timeout:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(per_second: f64, p99_ms: u64) -> LoadReport {
        LoadReport {
            transfers: 20_000,
            elapsed: Duration::from_secs(10),
            per_second,
            submitted_per_second: per_second,
            latency: [Duration::from_millis(p99_ms); 4],
            height: 1,
            state_root: Hash::ZERO,
        }
    }

    #[test]
    fn a_bench_row_puts_the_figure_beside_its_target_with_the_verdict() {
        let saturating = report(2_500.0, 7_000).bench_row(None);
        assert_eq!(
            saturating,
            "row: | 4-validator testnet, saturating | 2500 finalized transfers/s, p99 7000 ms | 10000 finalized transfers/s | 25% | missed |"
        );
        assert!(
            report(12_000.0, 900)
                .bench_row(None)
                .ends_with("| 120% | met |")
        );
        // Paced: met only at the target's rate or above with p99 within 1 s; the figure is
        // the lesser of the two ratios.
        assert!(
            report(6_000.0, 800)
                .bench_row(Some(6_000))
                .ends_with("| 120% | met |")
        );
        let slow_pace = report(2_000.0, 500).bench_row(Some(2_000));
        assert!(slow_pace.ends_with("| 40% | missed |"), "{slow_pace}");
        let late = report(5_000.0, 2_000).bench_row(Some(5_000));
        assert!(late.ends_with("| 50% | missed |"), "{late}");
        // A load that could not submit at its pace did not test it: 3,080/s reached of
        // 5,000/s asked is 62% of the target, however low its p99 (this row once said
        // "met" for p99 0.4 s, the two ratios multiplied).
        let behind = LoadReport {
            submitted_per_second: 3_080.0,
            ..report(3_063.0, 418)
        }
        .bench_row(Some(5_000));
        assert!(behind.ends_with("| 62% | missed |"), "{behind}");
    }

    #[test]
    fn paced_workers_start_within_one_request_interval() {
        // 256 workers at 5,000/s: one transfer per worker every 51.2 ms. A worker's ~8
        // collectors all send to one of 4 nodes (256 is a multiple of 4), 10 rounds of one
        // request of ~8 transfers, so the last worker starts ~408 ms in (spread over a
        // 64-transfer batch it started 3.3 s in, and a 4 s run reached only ~3,000/s of
        // its pace).
        let pace = Duration::from_secs_f64(256.0 / 5_000.0);
        assert_eq!(stagger(pace, 78, 10, 0, 256), Duration::ZERO);
        let last = stagger(pace, 78, 10, 255, 256);
        assert!(last < pace * 8 && last > pace * 7, "{last:?}");
        // Full batches spread over a full batch's interval; nothing to send spreads nothing.
        assert_eq!(stagger(pace, 640, 10, 128, 256), pace * 32);
        assert_eq!(stagger(pace, 0, 0, 5, 256), Duration::ZERO);
    }
}
