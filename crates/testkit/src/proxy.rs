//! A loopback TCP link a test can cut and heal: node A dials the link's address instead of
//! node B's, and the link forwards to wherever B listens now (read at each connection, so
//! B may restart on a new port). Cutting closes every open connection and refuses new ones,
//! which is a network partition as the nodes see it.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a link forwards to, asked at each new connection.
pub type Target = Arc<dyn Fn() -> Option<SocketAddr> + Send + Sync>;

/// One directed, cuttable link.
pub struct Link {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    /// Listens on a free loopback port and forwards to `target()`.
    pub fn start(target: Target) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let link = Link {
            addr,
            open: Arc::new(AtomicBool::new(true)),
            silent: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            streams: Arc::new(Mutex::new(Vec::new())),
        };
        let (open, stop, streams) = (link.open.clone(), link.stop.clone(), link.streams.clone());
        let silent = link.silent.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(inbound) = inbound else { continue };
                if !open.load(Ordering::SeqCst) {
                    continue;
                }
                let Some(to) = target() else { continue };
                let Ok(outbound) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (Ok(a), Ok(b)) = (inbound.try_clone(), outbound.try_clone()) else {
                    continue;
                };
                {
                    let mut list = streams.lock().unwrap_or_else(|p| p.into_inner());
                    list.retain(|s| s.peer_addr().is_ok());
                    if let (Ok(x), Ok(y)) = (inbound.try_clone(), outbound.try_clone()) {
                        list.push(x);
                        list.push(y);
                    }
                }
                pump(inbound, b, silent.clone());
                pump(outbound, a, silent.clone());
            }
        });
        link
    }

    /// The address to dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through the link and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        let mut list = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        for stream in list.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Silences the link: connections stay open but every byte is dropped, as when a
    /// partition cuts a network without either side seeing a reset.
    pub fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Lets connections through again (after a cut or a silence).
    pub fn heal(&self) {
        self.silent.store(false, Ordering::SeqCst);
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Copies `from` into `to` on a thread until either side closes; while `silent`, what is
/// read is dropped.
fn pump(mut from: TcpStream, mut to: TcpStream, silent: Arc<AtomicBool>) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        // Ends when either side closes or the link is cut; the error is of no interest.
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if !silent.load(Ordering::SeqCst) && to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// The TCP address in a libp2p multiaddr such as `/ip4/127.0.0.1/tcp/7700/p2p/...`.
pub fn multiaddr_socket(addr: &str) -> Option<SocketAddr> {
    let parts: Vec<&str> = addr.split('/').collect();
    let ip = parts
        .iter()
        .position(|p| *p == "ip4")
        .and_then(|i| parts.get(i + 1))?;
    let port = parts
        .iter()
        .position(|p| *p == "tcp")
        .and_then(|i| parts.get(i + 1))?;
    format!("{ip}:{port}").parse().ok()
}
