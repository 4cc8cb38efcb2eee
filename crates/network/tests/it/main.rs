//! Two real network tasks on loopback: gossip reaches the other node only after the node
//! accepts it, and block sync and state sync answer requests.

use std::time::Duration;

use cachet_network::{
    Command, Keypair, NetEvent, NetworkConfig, NetworkHandle, SyncRequest, Topic, Verdict, spawn,
};
use cachet_types::Hash;
use tokio::sync::mpsc::Receiver;

fn config(bootstrap: Vec<cachet_network::Address>) -> NetworkConfig {
    NetworkConfig {
        chain_id: Hash::tagged("test/chain", &[]),
        keypair: Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        max_tx_batch_bytes: 64 * 1024,
        max_block_bytes: 1024 * 1024,
        bound: Vec::new(),
        max_observer_peers: 64,
        peer_exchange_interval: Some(Duration::from_millis(500)),
    }
}

async fn address_of(node: &NetworkHandle) -> cachet_network::Address {
    let mut listening = node.listening();
    listening.wait_for(|l| !l.is_empty()).await.unwrap()[0].clone()
}

/// Waits (20 s at most) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_beyond_their_slots_are_refused_and_operators_nodes_always_get_one() {
    let operator = Keypair::generate_ed25519();
    let hub_config = NetworkConfig {
        bound: vec![operator.public().to_peer_id()],
        max_observer_peers: 1,
        ..config(Vec::new())
    };
    let (hub, _hub_events) = spawn(hub_config).unwrap();
    let at = address_of(&hub).await;
    let (first, _e1) = spawn(config(vec![at.clone()])).unwrap();
    eventually("the first observer connected", || {
        hub.peers() == 1 && first.peers() == 1
    })
    .await;
    assert_eq!(
        hub.bound_peer_counter()
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // A second observer is refused (and keeps being refused as it redials).
    let (second, _e2) = spawn(config(vec![at.clone()])).unwrap();
    // The operator's node is admitted although the observer slots are full.
    let (node, _e3) = spawn(NetworkConfig {
        keypair: operator,
        ..config(vec![at.clone()])
    })
    .unwrap();
    eventually("the operator's node connected", || node.peers() == 1).await;
    let bound = hub.bound_peer_counter();
    eventually("the hub counts one operator's node", || {
        bound.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    // Over a few of the second observer's redials (every 2 s), the hub never holds it.
    for _ in 0..60 {
        assert_eq!(hub.peers(), 2, "the hub admitted a second observer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_exchange_connects_operators_nodes_that_were_not_configured() {
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let bound: Vec<_> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let with = |key: &Keypair, bootstrap| NetworkConfig {
        keypair: key.clone(),
        bound: bound.clone(),
        ..config(bootstrap)
    };
    let (middle, _m) = spawn(with(&keys[0], Vec::new())).unwrap();
    let at = address_of(&middle).await;
    // Both know only the middle node; an observer knows it too.
    let (left, _l) = spawn(with(&keys[1], vec![at.clone()])).unwrap();
    let (right, _r) = spawn(with(&keys[2], vec![at.clone()])).unwrap();
    let (observer, _o) = spawn(config(vec![at.clone()])).unwrap();
    eventually(
        "left and right found each other through the middle node",
        || left.peers() >= 2 && right.peers() >= 2,
    )
    .await;
    // The observer is not handed out as an operator's node, and is not dialled.
    let left_bound = left.bound_peer_counter();
    assert_eq!(left_bound.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(observer.peers(), 1, "someone dialled the observer");
}

/// With peer exchange off (`--no-peer-exchange`), nodes keep to their configured peers:
/// over several exchange intervals, left and right never learn of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_peer_exchange_only_configured_peers_are_dialled() {
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let bound: Vec<_> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let with = |key: &Keypair, bootstrap| NetworkConfig {
        keypair: key.clone(),
        bound: bound.clone(),
        peer_exchange_interval: None,
        ..config(bootstrap)
    };
    let (middle, _m) = spawn(with(&keys[0], Vec::new())).unwrap();
    let at = address_of(&middle).await;
    let (left, _l) = spawn(with(&keys[1], vec![at.clone()])).unwrap();
    let (right, _r) = spawn(with(&keys[2], vec![at.clone()])).unwrap();
    eventually("both connected to the middle node", || {
        left.peers() == 1 && right.peers() == 1 && middle.peers() == 2
    })
    .await;
    // Six of the test config's exchange intervals (500 ms): none asks, none dials.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        (left.peers(), right.peers()),
        (1, 1),
        "a node dialled a peer it was not given"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_asking_for_blocks_beyond_its_budget_is_not_answered() {
    let ((_a, mut a_events), (b, _b_events)) = pair().await;
    let b_id = b.local_peer_id();
    // b asks 200 times at once: a hears at most its burst (40) and what refills meanwhile.
    for _ in 0..200 {
        b.send(Command::RequestBlocks {
            peer: None,
            request: SyncRequest {
                from_height: 1,
                max: 1,
            },
        });
    }
    let mut heard = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, a_events.recv()).await {
        if let NetEvent::SyncRequest { from, .. } = event
            && from == b_id
        {
            heard += 1;
        }
    }
    assert!(heard >= 40, "the burst was not served: {heard}");
    assert!(
        heard <= 40 + 3 * 20 + 5,
        "a peer got past its budget: {heard} requests"
    );
}

async fn next_gossip(
    events: &mut Receiver<NetEvent>,
) -> (Vec<u8>, cachet_network::MessageId, cachet_network::Peer) {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Some(NetEvent::Gossip { data, id, from, .. })) => return (data, id, from),
            Ok(Some(_)) => continue,
            other => panic!("no gossip within 20 s: {other:?}"),
        }
    }
}

async fn pair() -> (
    (NetworkHandle, Receiver<NetEvent>),
    (NetworkHandle, Receiver<NetEvent>),
) {
    let (a, a_events) = spawn(config(Vec::new())).unwrap();
    let addr = {
        let mut listening = a.listening();
        listening.wait_for(|l| !l.is_empty()).await.unwrap()[0].clone()
    };
    let (b, b_events) = spawn(config(vec![addr])).unwrap();
    for _ in 0..200 {
        if a.peers() > 0 && b.peers() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.peers() > 0 && b.peers() > 0, "the nodes did not connect");
    ((a, a_events), (b, b_events))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_delivered_and_validated() {
    let ((a, _a_events), (b, mut b_events)) = pair().await;
    // Publish until b's subscription is known to a (bounded by next_gossip's timeout).
    let sender = tokio::spawn({
        let a = a.clone();
        async move {
            for i in 0u32..100 {
                a.send(Command::Publish(
                    Topic::Txs,
                    format!("tx batch {i}").into_bytes(),
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let (data, id, from) = next_gossip(&mut b_events).await;
    sender.abort();
    assert!(data.starts_with(b"tx batch"));
    assert_eq!(from, a.local_peer_id());
    assert!(b.send(Command::Validated {
        id,
        from,
        verdict: Verdict::Accept
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_served_on_request() {
    let ((a, mut a_events), (b, mut b_events)) = pair().await;
    b.send(Command::RequestBlocks {
        peer: Some(a.local_peer_id()),
        request: SyncRequest {
            from_height: 5,
            max: 1_000,
        },
    });
    let (request, token) = loop {
        match tokio::time::timeout(Duration::from_secs(20), a_events.recv()).await {
            Ok(Some(NetEvent::SyncRequest { request, token, .. })) => break (request, token),
            Ok(Some(_)) => continue,
            other => panic!("no sync request within 20 s: {other:?}"),
        }
    };
    assert_eq!(request.from_height, 5);
    assert_eq!(
        request.max,
        cachet_network::MAX_SYNC_BLOCKS,
        "the request was not capped"
    );
    a.send(Command::Respond {
        token,
        blocks: vec![b"block 5".to_vec(), b"block 6".to_vec()],
    });
    loop {
        match tokio::time::timeout(Duration::from_secs(20), b_events.recv()).await {
            Ok(Some(NetEvent::SyncResponse { blocks, from })) => {
                assert_eq!(from, a.local_peer_id());
                assert_eq!(blocks, vec![b"block 5".to_vec(), b"block 6".to_vec()]);
                return;
            }
            Ok(Some(_)) => continue,
            other => panic!("no sync response within 20 s: {other:?}"),
        }
    }
}

/// The next event `pick` accepts, within 20 s.
async fn next_event<T>(
    events: &mut Receiver<NetEvent>,
    what: &str,
    mut pick: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
            other => panic!("no {what} within 20 s: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_sync_requests_are_answered_and_one_for_a_gone_peer_fails_at_once() {
    let ((a, mut a_events), (b, mut b_events)) = pair().await;
    b.send(Command::RequestSnapshot {
        peer: Some(a.local_peer_id()),
        request: b"offer?".to_vec(),
    });
    let (request, token) = next_event(&mut a_events, "state-sync request", |e| match e {
        NetEvent::SnapshotRequest { request, token, .. } => Some((request, token)),
        _ => None,
    })
    .await;
    assert_eq!(request, b"offer?");
    a.send(Command::RespondSnapshot {
        token,
        response: b"an offer".to_vec(),
    });
    let (from, response) = next_event(&mut b_events, "state-sync answer", |e| match e {
        NetEvent::SnapshotResponse { from, response } => Some((from, response)),
        _ => None,
    })
    .await;
    assert_eq!(
        (from, response.as_slice()),
        (a.local_peer_id(), &b"an offer"[..])
    );

    // A chunk request for a peer that is not connected fails at once, naming it, and is
    // not sent to the connected peer (which may serve another snapshot).
    let gone = Keypair::generate_ed25519().public().to_peer_id();
    b.send(Command::RequestSnapshot {
        peer: Some(gone),
        request: b"chunk 3".to_vec(),
    });
    let failed = next_event(&mut b_events, "state-sync failure", |e| match e {
        NetEvent::SnapshotFailed { from } => Some(from),
        _ => None,
    })
    .await;
    assert_eq!(failed, gone);
    // The connected peer got nothing: an offer asked after it is the next request it sees.
    b.send(Command::RequestSnapshot {
        peer: Some(a.local_peer_id()),
        request: b"offer again?".to_vec(),
    });
    let request = next_event(&mut a_events, "state-sync request", |e| match e {
        NetEvent::SnapshotRequest { request, .. } => Some(request),
        _ => None,
    })
    .await;
    assert_eq!(
        request, b"offer again?",
        "the request for the gone peer was rerouted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_connection_is_closed_by_pings_and_redialled_after_healing() {
    use cachet_testkit::proxy::{Link, multiaddr_socket};
    let (a, _a_events) = spawn(config(Vec::new())).unwrap();
    let a_addr = {
        let mut listening = a.listening();
        listening.wait_for(|l| !l.is_empty()).await.unwrap()[0].clone()
    };
    let target = multiaddr_socket(&a_addr.to_string()).expect("a TCP address");
    let link = Link::start(std::sync::Arc::new(move || Some(target)));
    let via_link = format!("/ip4/127.0.0.1/tcp/{}", link.addr().port());
    let (b, _b_events) = spawn(config(vec![via_link.parse().unwrap()])).unwrap();
    let wait = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what} within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let b2 = b.clone();
    wait("connected", Box::new(move || b2.peers() > 0)).await;
    // The partition drops every byte but resets nothing: TCP alone would keep the
    // connection for minutes; the pings close it.
    link.silence();
    let b2 = b.clone();
    wait(
        "the silenced peer is dropped",
        Box::new(move || b2.peers() == 0),
    )
    .await;
    link.heal();
    let b2 = b.clone();
    wait(
        "reconnected after healing",
        Box::new(move || b2.peers() > 0),
    )
    .await;
}
