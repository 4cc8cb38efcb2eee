//! Clients' submissions, checked together: every `POST /v1/tx` and `POST /v1/txs` joins one
//! queue, and the requests that queued while the last were checked go to the chain as one
//! group (`Chain::submit_batches`), so their signatures are checked in one batch verification
//! across cores. Under load that is hundreds of signatures at about half the cost per
//! signature of a request's few; an idle node checks a request as soon as it comes.

use std::sync::Arc;

use cachet_api::TxStatus;
use cachet_host::SubmitError;
use cachet_types::Hash;
use tokio::sync::{mpsc, oneshot};

use crate::node::Node;

/// Most transactions of queued requests checked together (at least one request).
pub const SUBMISSIONS_CHECKED_TOGETHER: usize = 4096;

/// One answer per transaction of a request, in order.
pub type Answers = Vec<Result<(Hash, TxStatus), SubmitError>>;

/// A request's transactions and where its answers go.
type Request = (Vec<Vec<u8>>, oneshot::Sender<Answers>);

/// The queue's sending side, one per API server (cheap to clone).
#[derive(Clone)]
pub struct Submissions {
    queue: mpsc::Sender<Request>,
}

/// The checker failed before answering (a bug: it panicked): the request's transactions
/// may or may not have been admitted.
#[derive(Debug)]
pub struct Unanswered;

impl Submissions {
    /// Starts the task that checks the queue's requests; it ends when every sender is gone.
    /// `capacity` is the server's bound on requests in flight (`--api-max-concurrent`):
    /// each holds at most one place, so a request never waits for one.
    pub fn start(node: Arc<Node>, capacity: usize) -> Submissions {
        let (submissions, requests) = Submissions::queue(capacity);
        tokio::spawn(check(node, requests));
        submissions
    }

    /// The queue of `capacity` places (at least one), and its receiving side for the checker.
    fn queue(capacity: usize) -> (Submissions, mpsc::Receiver<Request>) {
        let (queue, requests) = mpsc::channel(capacity.max(1));
        (Submissions { queue }, requests)
    }

    /// Checks and admits one client's transactions (see [`Node::submit_batches`]).
    pub async fn submit(&self, txs: Vec<Vec<u8>>) -> Result<Answers, Unanswered> {
        self.enqueue(txs).await?.await.map_err(|_| Unanswered)
    }

    /// Puts a request in the queue (a place is free: see [`Submissions::start`]); its
    /// answers come on the receiver.
    async fn enqueue(&self, txs: Vec<Vec<u8>>) -> Result<oneshot::Receiver<Answers>, Unanswered> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((txs, answer))
            .await
            .map_err(|_| Unanswered)?;
        Ok(answered)
    }
}

/// Takes the requests that queued, up to [`SUBMISSIONS_CHECKED_TOGETHER`] transactions,
/// checks them as one group off the async workers, and answers each.
async fn check(node: Arc<Node>, mut requests: mpsc::Receiver<Request>) {
    while let Some(group) =
        crate::group::next_group(&mut requests, SUBMISSIONS_CHECKED_TOGETHER, |(txs, _)| {
            txs.len()
        })
        .await
    {
        let (txs, answers): (Vec<Vec<Vec<u8>>>, Vec<oneshot::Sender<Answers>>) =
            group.into_iter().unzip();
        let worker = node.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let batches: Vec<&[Vec<u8>]> = txs.iter().map(Vec::as_slice).collect();
            worker.submit_batches(&batches)
        })
        .await;
        match checked {
            Ok(checked) => {
                for (answer, answers) in answers.into_iter().zip(checked) {
                    // The client may have gone; its transactions stay admitted.
                    let _ = answer.send(answers);
                }
            }
            // Dropping the answers' senders: each handler reports an internal error.
            Err(error) => tracing::error!(
                %error,
                requests = answers.len(),
                "the submission checker failed; its requests go unanswered"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use cachet_host::Mempool;
    use cachet_storage::{Ledger, Store};
    use cachet_testkit::{TestChain, TxFactory, issue_record};
    use cachet_types::TxBody;

    use super::*;
    use crate::node::Role;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_queued_together_each_get_their_own_answers() {
        let chain = TestChain::new(4);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), &chain.genesis).unwrap();
        let node = Arc::new(
            Node::new(
                Ledger::new(store),
                Mempool::new(10_000, 100),
                Role::Observer,
                Arc::new(AtomicUsize::new(0)),
                Arc::new(AtomicUsize::new(0)),
            )
            .unwrap(),
        );
        // Every request queued before the checker starts: one group. The queue has a place
        // for each (as the server's in-flight bound gives one to each request it lets in).
        let (submissions, queued) = Submissions::queue(41);
        let mut factory = TxFactory::new(chain.chain_id);
        // Forty clients at once, each with its own issuer-signed transactions: operator i's
        // issuer signs for its own issues, nonces 1.. in each request.
        let requests: Vec<Vec<cachet_types::SignedTx>> = (0..4)
            .flat_map(|operator| {
                let country = cachet_testkit::country_code(operator);
                let mut signed: Vec<_> = (1..=40)
                    .map(|n| {
                        let record = issue_record(
                            &format!("{}-2026-{n:03}", country.as_str()),
                            &format!("{}-POST", country.as_str()),
                            10,
                        );
                        factory.sign(chain.issuer(operator), TxBody::CreateIssue { record })
                    })
                    .collect();
                // Ten requests per operator, four consecutive nonces each.
                (0..10)
                    .map(|_| signed.drain(..4).collect())
                    .collect::<Vec<_>>()
            })
            .collect();
        // A request with a forged signature, among the others: its operator's next nonces.
        let mut forged: Vec<_> = (41..=43)
            .map(|n| {
                let record = issue_record(&format!("AT-2026-{n:03}"), "AT-POST", 10);
                factory.sign(chain.issuer(0), TxBody::CreateIssue { record })
            })
            .collect();
        forged[2].signature = forged[1].signature;
        // Queued in order (each operator's nonces in order), then answered.
        let bytes = |txs: &[cachet_types::SignedTx]| txs.iter().map(|tx| tx.to_bytes()).collect();
        let mut pending = Vec::new();
        for txs in requests.iter().chain([&forged]) {
            let placed =
                tokio::time::timeout(Duration::from_secs(10), submissions.enqueue(bytes(txs)));
            pending.push(
                placed
                    .await
                    .expect("each of the 41 requests finds a place without the checker running")
                    .unwrap(),
            );
        }
        let before = node.chain().counters().signature_checks;
        tokio::spawn(check(node.clone(), queued));
        let bad = pending.pop().unwrap().await.unwrap();
        assert!(matches!(bad[0], Ok((id, TxStatus::Pending)) if id == forged[0].id()));
        assert!(matches!(bad[1], Ok((id, TxStatus::Pending)) if id == forged[1].id()));
        assert!(
            matches!(&bad[2], Err(SubmitError::Rejected(reason)) if reason.code() == "bad_signature"),
            "{:?}",
            bad[2]
        );
        for (number, answered) in pending.into_iter().enumerate() {
            let answers = answered.await.unwrap();
            assert_eq!(answers.len(), 4);
            for (tx, answer) in requests[number].iter().zip(answers) {
                assert!(
                    matches!(answer, Ok((id, TxStatus::Pending)) if id == tx.id()),
                    "request {number}: {answer:?}"
                );
            }
        }
        // One verification of the group's 163 signatures failed; then each request's batch
        // (163), then the bad one's three one by one.
        assert_eq!(
            node.chain().counters().signature_checks - before,
            163 + 163 + 3
        );
        // And through `submit`: a request alone.
        let last = factory.sign(
            chain.issuer(1),
            TxBody::CreateIssue {
                record: issue_record("DE-2026-041", "DE-POST", 10),
            },
        );
        let answers = submissions
            .submit(bytes(std::slice::from_ref(&last)))
            .await
            .unwrap();
        assert!(matches!(answers[0], Ok((id, TxStatus::Pending)) if id == last.id()));
        assert_eq!(node.metrics().mempool_size, 160 + 2 + 1);
    }
}
