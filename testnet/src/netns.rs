//! Real links for a local testnet: every node in its own Linux network namespace, all on one
//! bridge in a hub namespace, with delay, loss and partitions on real TCP.
//!
//! Layout (addresses from a private test range, inside the namespaces only):
//! - node `i` lives in namespace `cn<tag>-<i>` with one interface, address `10.77.0.0 + i + 1`
//!   (API on port 7600, peer-to-peer on 7700), linked to the bridge of `cn<tag>-hub`;
//! - the hub holds, per node, a relay address (`10.77.64.0 + j + 1`, where others reach node
//!   `j`) and a source address (`10.77.128.0 + i + 1`, from which node `i`'s connections
//!   arrive). The relay ([`relay`], a process of this tool) listens on every relay address,
//!   knows the dialling node by its address, and connects to node `j` from the dialler's
//!   source address. Every peer thus has an address of its own, as on a real network (one
//!   shared address trips gossipsub's IP colocation penalty, and 16 nodes then stall). Nodes
//!   peer only through the relay (direct peer-to-peer traffic between namespaces is
//!   refused), and it delays each byte stream by the sending host's delay and jitter:
//!   netem's job, which this kernel lacks;
//! - loss is an iptables `statistic` rule on each node's incoming traffic (chain
//!   `CACHET-LOSS`; the API port is spared so that the controller's view stays clear);
//! - partitions are iptables rules in each node's namespace (chain `CACHET-CUT`) that drop
//!   the relay and source addresses of every peer on the other side: established
//!   connections stay open and go silent, as on a real network, until ping detects them;
//! - the controller (this tool, the tests) stays in the root namespace: the relay also
//!   listens there on each node's testnet API address (`127.0.0.1:<api port + i>`) and
//!   forwards to the node's API without delay.
//!
//! Needs root (namespaces, iptables) and the `ip` and `iptables` commands.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::Layout;

/// The plan of a namespaced testnet, in `<dir>/netns.json` while its namespaces exist.
pub const NETNS_FILE: &str = "netns.json";

/// Ports inside each node's namespace.
pub const NODE_API_PORT: u16 = 7600;
/// Peer-to-peer port inside each node's namespace.
pub const NODE_P2P_PORT: u16 = 7700;
/// The hub's own address on the bridge (the API forwarding connects from it).
pub const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 255, 254);
/// Most nodes a namespaced testnet holds (addresses and relay ports).
pub const MAX_NODES: usize = 1000;

/// Bytes in flight per direction of a relayed connection (chunks of up to 64 KiB): the
/// relay reads no more from a sender while this much waits for its delay.
const RELAY_CHUNKS: usize = 256;

/// One host's link to the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLink {
    /// One-way delay added to everything the host sends to a peer, in ms.
    pub delay_ms: u64,
    /// Up to this much more, uniformly at random (order is kept), in ms.
    pub jitter_ms: u64,
    /// Incoming packets dropped, per mille (iptables `statistic`).
    pub loss_per_mille: u32,
}

/// What [`up`] made: the namespaces' tag and every host's link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetPlan {
    /// Unique part of the namespace names.
    pub tag: String,
    /// Each node's link, in layout order.
    pub hosts: Vec<HostLink>,
}

fn offset(base: Ipv4Addr, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + i as u32 + 1)
}

impl NetPlan {
    /// The hub namespace.
    pub fn hub(&self) -> String {
        format!("cn{}-hub", self.tag)
    }

    /// Node `i`'s namespace.
    pub fn ns(&self, i: usize) -> String {
        format!("cn{}-{i}", self.tag)
    }

    /// Node `i`'s address.
    pub fn addr(i: usize) -> Ipv4Addr {
        offset(Ipv4Addr::new(10, 77, 0, 0), i)
    }

    /// The relay's source address for connections node `i` dials.
    pub fn source(i: usize) -> Ipv4Addr {
        offset(Ipv4Addr::new(10, 77, 128, 0), i)
    }

    /// The relay address where other nodes reach node `j` (port [`NODE_P2P_PORT`]).
    pub fn relay(j: usize) -> Ipv4Addr {
        offset(Ipv4Addr::new(10, 77, 64, 0), j)
    }

    /// Reads `<dir>/netns.json`, if the testnet runs in namespaces.
    pub fn read(dir: &Path) -> Result<Option<NetPlan>> {
        match std::fs::read_to_string(dir.join(NETNS_FILE)) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is damaged", dir.join(NETNS_FILE).display())
            })?)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The `cachetd` arguments of node `index` inside its namespace: its own addresses
    /// and every other validator through the relay (the data directory is added by the
    /// caller).
    pub fn node_args(&self, layout: &Layout, dir: &Path, index: usize) -> Vec<String> {
        let mut args = layout.base_args(dir, index);
        let addr = NetPlan::addr(index);
        args.extend([
            "--api-addr".into(),
            format!("{addr}:{NODE_API_PORT}"),
            "--p2p-listen".into(),
            format!("/ip4/{addr}/tcp/{NODE_P2P_PORT}"),
        ]);
        for (j, other) in layout.nodes.iter().enumerate() {
            if j != index && other.validator_key.is_some() {
                args.extend([
                    "--peer".into(),
                    format!("/ip4/{}/tcp/{NODE_P2P_PORT}", NetPlan::relay(j)),
                ]);
            }
        }
        args
    }

    /// The command that runs `program` in node `i`'s namespace.
    pub fn exec_in(&self, i: usize, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns(i)]).arg(program);
        command
    }
}

/// Runs a command; its stderr names the failure.
fn run(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

/// Loads iptables rules into namespace `ns` without touching other chains.
fn iptables_restore(ns: &str, rules: &str) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "iptables-restore", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run iptables-restore (install iptables)")?;
    child
        .stdin
        .take()
        .context("iptables-restore has no stdin")?
        .write_all(rules.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "iptables-restore in {ns} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Checks that this process may create namespaces and has the tools.
pub fn check_prerequisites() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("network namespaces need root: run as root (or drop --netns)");
    }
    for tool in ["ip", "iptables-restore"] {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        if !found {
            bail!(
                "`{tool}` not found: install iproute2 and iptables (apt-get install iproute2 iptables)"
            );
        }
    }
    Ok(())
}

/// Creates the namespaces, the bridge, every node's link and its iptables chains for the
/// testnet in `dir`, and writes `<dir>/netns.json`.
pub fn up(dir: &Path, layout: &Layout, hosts: Vec<HostLink>) -> Result<NetPlan> {
    check_prerequisites()?;
    let count = layout.nodes.len();
    if count > MAX_NODES {
        bail!("a namespaced testnet holds at most {MAX_NODES} nodes");
    }
    if hosts.len() != count {
        bail!("{} host links for {count} nodes", hosts.len());
    }
    if NetPlan::read(dir)?.is_some() {
        bail!(
            "{} already has namespaces; `cachet-testnet stop` removes them",
            dir.display()
        );
    }
    let tag = format!("{:04x}", getrandom::u32()? & 0xffff);
    let plan = NetPlan { tag, hosts };
    // Written first: `down` then finds whatever part was made.
    std::fs::write(
        dir.join(NETNS_FILE),
        serde_json::to_string_pretty(&plan)? + "\n",
    )?;
    let made = (|| -> Result<()> {
        let hub = plan.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_ADDR}/16"),
            "dev",
            "br0",
        ])?;
        for i in 0..count {
            let ns = plan.ns(i);
            let (inner, outer) = (format!("c{}{i}a", plan.tag), format!("c{}{i}b", plan.tag));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "netns", &hub])?;
            ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"])?;
            let addr = format!("{}/16", NetPlan::addr(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &outer, "up"])?;
            for hub_addr in [NetPlan::source(i), NetPlan::relay(i)] {
                let hub_addr = format!("{hub_addr}/16");
                ip(&["-n", &hub, "addr", "add", &hub_addr, "dev", "br0"])?;
            }
            let rules = format!(
                "*filter\n:CACHET-CUT - [0:0]\n:CACHET-LOSS - [0:0]\n\
                 -A INPUT -j CACHET-CUT\n-A OUTPUT -j CACHET-CUT\n-A INPUT -j CACHET-LOSS\n\
                 -A OUTPUT -p tcp -d 10.77.0.0/18 --dport {NODE_P2P_PORT} -j REJECT\n\
                 {}COMMIT\n",
                loss_rules(plan.hosts[i].loss_per_mille)
            );
            iptables_restore(&ns, &rules)?;
        }
        Ok(())
    })();
    if let Err(error) = made {
        let _ = down(dir);
        return Err(error.context("cannot set up the network namespaces"));
    }
    Ok(plan)
}

fn loss_rules(per_mille: u32) -> String {
    if per_mille == 0 {
        return String::new();
    }
    format!(
        "-A CACHET-LOSS -p tcp ! --dport {NODE_API_PORT} -m statistic --mode random \
         --probability {} -j DROP\n",
        f64::from(per_mille) / 1000.0
    )
}

/// Removes the namespaces of the testnet in `dir` (their links and rules go with them).
pub fn down(dir: &Path) -> Result<()> {
    let Some(plan) = NetPlan::read(dir)? else {
        return Ok(());
    };
    let mut failed = Vec::new();
    let names = (0..plan.hosts.len())
        .map(|i| plan.ns(i))
        .chain([plan.hub()]);
    for ns in names {
        if Path::new("/run/netns").join(&ns).exists()
            && let Err(error) = ip(&["netns", "del", &ns])
        {
            failed.push(error.to_string());
        }
    }
    if !failed.is_empty() {
        bail!("cannot remove every namespace: {}", failed.join("; "));
    }
    std::fs::remove_file(dir.join(NETNS_FILE))?;
    Ok(())
}

/// Sets node `i`'s incoming loss.
pub fn set_loss(plan: &NetPlan, i: usize, per_mille: u32) -> Result<()> {
    let rules = format!(
        "*filter\n:CACHET-LOSS - [0:0]\n{}COMMIT\n",
        loss_rules(per_mille)
    );
    iptables_restore(&plan.ns(i), &rules)
}

/// Makes exactly the pairs in `cuts` unreachable from each other (both ways), every other
/// pair reachable: `set_cuts(plan, &BTreeSet::new())` heals every partition.
pub fn set_cuts(plan: &NetPlan, cuts: &BTreeSet<(usize, usize)>) -> Result<()> {
    for a in 0..plan.hosts.len() {
        let mut rules = String::from("*filter\n:CACHET-CUT - [0:0]\n");
        let peers = cuts
            .iter()
            .filter_map(|&(x, y)| match (x == a, y == a) {
                (true, false) => Some(y),
                (false, true) => Some(x),
                _ => None,
            })
            .collect::<BTreeSet<usize>>();
        for b in peers {
            for addr in [NetPlan::relay(b), NetPlan::source(b)] {
                rules +=
                    &format!("-A CACHET-CUT -s {addr} -j DROP\n-A CACHET-CUT -d {addr} -j DROP\n");
            }
        }
        rules += "COMMIT\n";
        iptables_restore(&plan.ns(a), &rules)?;
    }
    Ok(())
}

/// The pairs cut by splitting nodes into `sides` (every node on exactly one side).
pub fn partition_cuts(count: usize, sides: &[Vec<usize>]) -> Result<BTreeSet<(usize, usize)>> {
    let mut side_of = vec![None; count];
    for (s, side) in sides.iter().enumerate() {
        for &node in side {
            match side_of.get_mut(node) {
                None => bail!("no node {node} (the testnet has {count})"),
                Some(Some(_)) => bail!("node {node} is on two sides"),
                Some(slot) => *slot = Some(s),
            }
        }
    }
    if let Some(missing) = side_of.iter().position(Option::is_none) {
        bail!("node {missing} is on no side: name every node");
    }
    let mut cuts = BTreeSet::new();
    for a in 0..count {
        for b in a + 1..count {
            if side_of[a] != side_of[b] {
                cuts.insert((a, b));
            }
        }
    }
    Ok(cuts)
}

/// Parses sides written `0,1/2,3`.
pub fn parse_sides(text: &str) -> Result<Vec<Vec<usize>>> {
    text.split('/')
        .map(|side| {
            side.split(',')
                .map(|n| {
                    n.trim()
                        .parse::<usize>()
                        .with_context(|| format!("`{n}` is not a node number (sides: 0,1/2,3)"))
                })
                .collect()
        })
        .collect()
}

/// The relay: runs until killed. Binds each node's API address in this (the root)
/// namespace, then enters the hub namespace and relays peer-to-peer connections with each
/// sender's delay.
pub fn relay(dir: &Path) -> Result<()> {
    let layout = Layout::read(dir)?;
    let plan = NetPlan::read(dir)?.context("this testnet has no namespaces")?;
    let mut api = Vec::new();
    for (i, node) in layout.nodes.iter().enumerate() {
        let listener = std::net::TcpListener::bind(&node.api)
            .with_context(|| format!("cannot listen on {} for {}", node.api, node.name))?;
        listener.set_nonblocking(true)?;
        api.push((i, listener));
    }
    let hub = std::fs::File::open(Path::new("/run/netns").join(plan.hub()))
        .context("the hub namespace is gone")?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&hub),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .context("cannot enter the hub namespace")?;
    // One thread, created after the switch: every socket it opens is in the hub.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = dir.to_path_buf();
    runtime.block_on(async move {
        let plan = Arc::new(plan);
        let mut tasks = Vec::new();
        for (i, listener) in api {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let target = SocketAddrV4::new(NetPlan::addr(i), NODE_API_PORT);
            tasks.push(tokio::spawn(forward_api(listener, target)));
        }
        for j in 0..plan.hosts.len() {
            let at = SocketAddrV4::new(NetPlan::relay(j), NODE_P2P_PORT);
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at}"))?;
            tasks.push(tokio::spawn(relay_to(listener, j, plan.clone())));
        }
        // `start` waits for this.
        std::fs::write(dir.join("relay.ready"), "")?;
        for task in tasks {
            task.await?;
        }
        Ok(())
    })
}

async fn forward_api(listener: tokio::net::TcpListener, target: SocketAddrV4) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut node) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
            }
        });
    }
}

/// Relays connections to node `j`: the dialling node is known by its address.
async fn relay_to(listener: tokio::net::TcpListener, j: usize, plan: Arc<NetPlan>) {
    loop {
        let Ok((inbound, from)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let SocketAddr::V4(from) = from else { continue };
        let first = u32::from(NetPlan::addr(0));
        let Some(i) = u32::from(*from.ip())
            .checked_sub(first)
            .map(|i| i as usize)
            .filter(|i| *i < plan.hosts.len())
        else {
            continue;
        };
        let plan = plan.clone();
        tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::V4(SocketAddrV4::new(NetPlan::source(i), 0)))?;
            let target = SocketAddrV4::new(NetPlan::addr(j), NODE_P2P_PORT);
            let outbound = socket.connect(SocketAddr::V4(target)).await?;
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::join!(
                delayed(in_read, out_write, plan.hosts[i]),
                delayed(out_read, in_write, plan.hosts[j]),
            );
            std::io::Result::Ok(())
        });
    }
}

/// Copies `from` to `to`, each chunk released `delay + [0, jitter]` after it was read and
/// never before the chunk ahead of it.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: HostLink,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (queue, mut due) =
        tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(RELAY_CHUNKS);
    let reader = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut last = tokio::time::Instant::now();
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let jitter = match link.jitter_ms {
                0 => 0,
                j => getrandom::u64().unwrap_or(0) % (j + 1),
            };
            let at = (tokio::time::Instant::now() + Duration::from_millis(link.delay_ms + jitter))
                .max(last);
            last = at;
            if queue.send((at, buffer[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_make_the_cut_pairs_and_refuse_a_bad_split() {
        let cuts = partition_cuts(4, &parse_sides("0,1/2,3").unwrap()).unwrap();
        assert_eq!(cuts, BTreeSet::from([(0, 2), (0, 3), (1, 2), (1, 3)]));
        let isolated = partition_cuts(4, &parse_sides("3/0,1,2").unwrap()).unwrap();
        assert_eq!(isolated, BTreeSet::from([(0, 3), (1, 3), (2, 3)]));
        assert!(partition_cuts(4, &parse_sides("0,1/2").unwrap()).is_err());
        assert!(partition_cuts(4, &parse_sides("0,1/1,2,3").unwrap()).is_err());
        assert!(partition_cuts(4, &parse_sides("0,1/2,9").unwrap()).is_err());
        assert!(parse_sides("0,x/1").is_err());
    }

    #[test]
    fn addresses_stay_apart() {
        assert_eq!(NetPlan::addr(0), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(NetPlan::addr(299), Ipv4Addr::new(10, 77, 1, 44));
        assert_eq!(NetPlan::source(0), Ipv4Addr::new(10, 77, 128, 1));
        assert!(NetPlan::addr(MAX_NODES) < NetPlan::relay(0));
        assert!(NetPlan::relay(MAX_NODES) < NetPlan::source(0));
        assert!(NetPlan::source(MAX_NODES) < HUB_ADDR);
        assert_eq!(loss_rules(0), "");
        assert!(loss_rules(10).contains("--probability 0.01 "));
    }
}
