//! The nodes under test, each a child process on its own loopback port: verinfer (with its
//! default data directory, and `--ephemeral`), anvil and hardhat. All use anvil's mnemonic and
//! chain id 31337, so the same signed transactions work on each.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

/// A kind of node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// `verinfer node` with a data directory (its default).
    Verinfer,
    /// `verinfer node --ephemeral` (memory only, as anvil and hardhat are).
    VerinferEphemeral,
    /// anvil 1.7.1 (npm `@foundry-rs/anvil`).
    Anvil,
    /// hardhat 2.x node (npm `hardhat`).
    Hardhat,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Verinfer => "verinfer",
            Self::VerinferEphemeral => "verinfer --ephemeral",
            Self::Anvil => "anvil",
            Self::Hardhat => "hardhat",
        })
    }
}

impl Kind {
    /// Whether this is a verinfer node (has the precompile).
    pub(crate) fn is_verinfer(self) -> bool {
        matches!(self, Self::Verinfer | Self::VerinferEphemeral)
    }
}

/// Where the binaries are.
#[derive(Clone, Debug)]
pub(crate) struct Binaries {
    pub verinfer: PathBuf,
    /// The project-local npm prefix holding `@foundry-rs/anvil` and `hardhat`.
    pub peers: PathBuf,
    /// Test models the verinfer nodes admit at start.
    pub models: PathBuf,
}

impl Binaries {
    fn anvil(&self) -> anyhow::Result<PathBuf> {
        let dir = self.peers.join("node_modules/@foundry-rs");
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let bin = entry?.path().join("bin/anvil");
            if bin.is_file() {
                return Ok(bin);
            }
        }
        bail!(
            "no anvil binary under {} (run scripts/bench, which installs it)",
            dir.display()
        )
    }
}

/// A running node.
pub(crate) struct Peer {
    pub kind: Kind,
    pub url: String,
    child: Child,
    _data: Option<tempfile::TempDir>,
}

impl Peer {
    /// Start a node of `kind` on a free port and wait until it answers `eth_chainId`.
    pub(crate) fn start(kind: Kind, bins: &Binaries) -> anyhow::Result<Self> {
        Self::start_with(kind, bins, &[])
    }

    /// [`Self::start`] with extra arguments for the node (e.g. `--fork-url URL`).
    pub(crate) fn start_with(kind: Kind, bins: &Binaries, args: &[&str]) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut data = None;
        let mut command = match kind {
            Kind::Verinfer | Kind::VerinferEphemeral => {
                let mut c = Command::new(&bins.verinfer);
                c.args(["node", "--port", &port.to_string(), "--models"])
                    .arg(&bins.models);
                if kind == Kind::Verinfer {
                    let dir = tempfile::tempdir()?;
                    c.arg("--data-dir").arg(dir.path());
                    data = Some(dir);
                } else {
                    c.arg("--ephemeral");
                }
                c
            }
            Kind::Anvil => {
                let mut c = Command::new(bins.anvil()?);
                c.args(["--port", &port.to_string(), "--silent"]);
                c
            }
            Kind::Hardhat => {
                let cli = bins.peers.join("node_modules/hardhat/internal/cli/cli.js");
                if !cli.is_file() {
                    bail!(
                        "{} is missing (run scripts/bench, which installs hardhat)",
                        cli.display()
                    );
                }
                let mut c = Command::new("node");
                c.arg(cli)
                    .args([
                        "node",
                        "--hostname",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                    ])
                    .current_dir(&bins.peers)
                    .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true");
                c
            }
        };
        let child = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {kind}"))?;
        let mut peer = Self {
            kind,
            url: format!("http://127.0.0.1:{port}"),
            child,
            _data: data,
        };
        peer.wait_ready()?;
        Ok(peer)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
        let addr: std::net::SocketAddr = self.url.trim_start_matches("http://").parse()?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited at start ({status})", self.kind);
            }
            if verinfer_tests::node::post(addr, body).is_ok_and(|(_, r)| r.contains("0x7a69")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer within 90 s", self.kind);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Peak resident memory of the node process so far (VmHWM), in bytes.
    pub(crate) fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository root (the bench crate's parent).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
