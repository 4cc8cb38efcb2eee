//! Real `cachetd` processes for tests: start on a free loopback port, wait (bounded) until the
//! API is up, kill with SIGKILL or stop with SIGTERM, and always reap on drop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Passphrase of the development chain's key files (as `cachetd --dev` writes them).
pub const DEV_PASSPHRASE: &str = "cachet-dev-passphrase";

/// A running `cachetd`.
pub struct NodeProcess {
    binary: PathBuf,
    data_dir: PathBuf,
    args: Vec<OsString>,
    child: Option<Child>,
    api: String,
}

/// A node started with `--dev`.
pub type DevNode = NodeProcess;

/// The `cachetd` binary next to the test's own binaries (`target/<profile>/cachetd`).
///
/// `cargo test --workspace` builds it; a test run of a single package may not, so the error
/// says what to do.
pub fn cachetd_binary(sibling: &Path) -> PathBuf {
    binary_beside(sibling, "cachetd")
}

/// The workspace binary `name` next to `sibling` (a test's own binary or the one Cargo
/// names for it), as `cargo test --workspace` builds them all.
pub fn binary_beside(sibling: &Path, name: &str) -> PathBuf {
    let dir = sibling.parent().unwrap_or_else(|| Path::new("."));
    let candidates = [dir.join(name), dir.join("..").join(name)];
    for path in &candidates {
        if path.exists() {
            return path.clone();
        }
    }
    panic!(
        "{name} is not built next to {}: run `cargo build --workspace` or `cargo test --workspace`",
        sibling.display()
    );
}

impl NodeProcess {
    /// Starts `cachetd --dev` on `data_dir` with the API on a free loopback port.
    pub fn start(binary: &Path, data_dir: &Path) -> NodeProcess {
        NodeProcess::start_with(binary, data_dir, ["--dev"])
    }

    /// Starts `cachetd` with `args` on `data_dir`, API and peer-to-peer listener on free
    /// loopback ports.
    pub fn start_with<I, S>(binary: &Path, data_dir: &Path, args: I) -> NodeProcess
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut node = NodeProcess {
            binary: binary.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
            child: None,
            api: String::new(),
        };
        node.spawn();
        node
    }

    /// The node's peer-to-peer addresses (with its peer id), once started.
    pub fn p2p_addrs(&self) -> Vec<String> {
        std::fs::read_to_string(self.data_dir.join("p2p.addr"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn spawn(&mut self) {
        let addr_file = self.data_dir.join("api.addr");
        let _ = std::fs::remove_file(&addr_file);
        std::fs::create_dir_all(&self.data_dir).unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("node.log"))
            .unwrap_or_else(|e| panic!("cannot open node log: {e}"));
        let child = Command::new(&self.binary)
            .args(&self.args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--api-addr")
            .arg("127.0.0.1:0")
            .arg("--p2p-listen")
            .arg("/ip4/127.0.0.1/tcp/0")
            .env("CACHET_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file) {
                self.api = text.trim().to_string();
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "cachetd exited during start-up ({status}); log:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "cachetd did not start within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The API base URL.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("node.log")).unwrap_or_default()
    }

    /// Kills the node with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("node is not running"));
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to {pid}"
        );
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "cachetd did not stop within {timeout:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again on the same data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts the node again on the same data directory with other arguments.
    pub fn restart_with<I, S>(&mut self, args: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.kill9();
        self.args = args.into_iter().map(Into::into).collect();
        self.spawn();
    }

    /// The arguments it runs with.
    pub fn args(&self) -> &[OsString] {
        &self.args
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
