//! A validator network on loopback for tests: `verinfer node --validator` child processes
//! that can be killed and restarted one by one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use verinfer_node::consensus::{Genesis, GenesisValidator, ValidatorKey};

use crate::node::{free_port, rpc_response, verinfer_bin};

/// Block time of test networks: short, so fault tests take seconds.
pub const BLOCK_TIME_MS: u64 = 20;
/// Idle block time of test networks.
pub const IDLE_BLOCK_TIME_MS: u64 = 200;

/// One network at a time: four validators each are a lot for a small machine, and the tests
/// measure liveness.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Wait for the turn to run a network (see [`Network::start`], which waits too).
pub fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A network of validator processes.
pub struct Network {
    _turn: MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    genesis: PathBuf,
    forge: Vec<usize>,
    validators: Vec<Option<Child>>,
    ports: Vec<u16>,
}

impl Network {
    /// Write keys and a genesis for `n` validators and start them all; the validators in
    /// `forge` are byzantine proposers (`--forge-outputs`). Every validator admits the test
    /// models.
    pub fn start(n: usize, forge: &[usize]) -> Self {
        let turn = exclusive();
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut validators = Vec::new();
        let mut keys = Vec::new();
        for i in 0..n {
            let vdir = dir.path().join(format!("validator-{i}"));
            std::fs::create_dir_all(&vdir).expect("validator dir");
            let key = ValidatorKey::random();
            key.write(&vdir.join("key")).expect("key file");
            validators.push(GenesisValidator {
                public_key: key.public_key_hex(),
                p2p: SocketAddr::from(([127, 0, 0, 1], free_port())),
                rpc: None,
            });
            keys.push(key);
        }
        let mut genesis = Genesis {
            chain_id: 31337,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            block_time_ms: BLOCK_TIME_MS,
            idle_block_time_ms: IDLE_BLOCK_TIME_MS,
            validators,
            threshold: None,
        };
        let shares = genesis
            .generate_threshold_key(&keys)
            .expect("a threshold key");
        for (i, share) in shares.iter().enumerate() {
            let share_path = dir.path().join(format!("validator-{i}")).join("share");
            share.write(&share_path).expect("share file");
        }
        // Only the model the tests run: admitting every test model at start, four processes at
        // once, would take seconds on a small machine.
        let models = dir.path().join("models");
        std::fs::create_dir_all(&models).expect("models dir");
        std::fs::copy(
            crate::models().join("linear.onnx"),
            models.join("linear.onnx"),
        )
        .expect("linear.onnx");
        let genesis_path = dir.path().join("genesis.json");
        genesis.write(&genesis_path).expect("genesis file");
        let mut network = Self {
            _turn: turn,
            dir,
            genesis: genesis_path,
            forge: forge.to_vec(),
            validators: (0..n).map(|_| None).collect(),
            ports: (0..n).map(|_| free_port()).collect(),
        };
        for i in 0..n {
            network.start_validator(i);
        }
        for i in 0..n {
            network.wait_for_rpc(i);
        }
        network
    }

    /// Start (or restart) validator `i` on its data dir.
    pub fn start_validator(&mut self, i: usize) {
        let vdir = self.dir.path().join(format!("validator-{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(vdir.join("node.log"))
            .expect("log file");
        let mut command = Command::new(verinfer_bin());
        command
            .args(["node", "--validator", "--port", &self.ports[i].to_string()])
            .arg("--key")
            .arg(vdir.join("key"))
            .arg("--genesis")
            .arg(&self.genesis)
            .arg("--data-dir")
            .arg(vdir.join("chain"))
            .arg("--models")
            .arg(self.dir.path().join("models"))
            .env("RUST_LOG", "info,jsonrpsee=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        if self.forge.contains(&i) {
            command.arg("--forge-outputs");
        }
        self.validators[i] = Some(command.spawn().expect("verinfer starts"));
    }

    /// Wait until validator `i` answers RPC.
    pub fn wait_for_rpc(&self, i: usize) {
        crate::node::wait_for_rpc(self.addr(i), Duration::from_secs(60));
    }

    /// `kill -9` validator `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.validators[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Validator `i`'s RPC address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[i]))
    }

    /// Validator `i`'s RPC URL.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.addr(i))
    }

    /// Validator `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("validator-{i}/node.log")))
            .unwrap_or_default()
    }

    /// The network's `genesis.json`.
    pub fn genesis(&self) -> &Path {
        &self.genesis
    }

    /// The data directory of the whole network.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Validator `i`'s head: number, hash and state root.
    pub fn head(&self, i: usize) -> (u64, String, String) {
        let block = self.block(i, "latest");
        let number = block["number"]
            .as_str()
            .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok())
            .expect("a block number");
        (
            number,
            block["hash"].as_str().unwrap_or_default().to_string(),
            block["stateRoot"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Block `tag` (a tag or `0x` number) of validator `i`, `null` if it has none.
    pub fn block(&self, i: usize, tag: &str) -> Value {
        let response = rpc_response(self.addr(i), "eth_getBlockByNumber", json!([tag, false]));
        response["result"].clone()
    }

    /// Wait until validator `i` has the receipt of `hash`, and return it.
    pub fn receipt(&self, i: usize, hash: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let response = rpc_response(self.addr(i), "eth_getTransactionReceipt", json!([hash]));
            if !response["result"].is_null() {
                return Some(response["result"].clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Wait until every validator in `which` has block `number`, and assert they hold the
    /// same block there (hash and state root).
    pub fn assert_same_block(&self, which: &[usize], number: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let tag = format!("0x{number:x}");
        let mut seen = Vec::new();
        for &i in which {
            loop {
                let block = self.block(i, &tag);
                if !block.is_null() {
                    seen.push((i, block["hash"].clone(), block["stateRoot"].clone()));
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "validator {i} did not reach block {number}; its log:\n{}",
                    tail(&self.log(i))
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for (i, hash, root) in &seen {
            assert_eq!(
                (hash, root),
                (&seen[0].1, &seen[0].2),
                "validator {i} holds another block {number} than validator {}",
                seen[0].0
            );
        }
    }
}

/// The last lines of a log, for assertion messages.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 0..self.validators.len() {
            self.kill(i);
        }
    }
}
