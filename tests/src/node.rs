//! Running nodes for end-to-end tests: in-process on a free port, or as a child process of the
//! `verinfer` binary (for restarts and `kill -9`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Bytes, TxKind, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use verinfer_node::client::Client;
use verinfer_node::config::{dev_accounts, DEFAULT_MNEMONIC};
use verinfer_node::{NodeConfig, NodeHandle};

/// Start an in-memory node on a free loopback port, after `configure` edits its config.
pub async fn spawn(configure: impl FnOnce(&mut NodeConfig)) -> NodeHandle {
    let mut config = NodeConfig {
        port: 0,
        ..Default::default()
    };
    configure(&mut config);
    verinfer_node::start(config).await.expect("node starts")
}

/// The dev account keys (anvil's).
pub fn dev_keys() -> Vec<PrivateKeySigner> {
    dev_accounts(DEFAULT_MNEMONIC, 10).expect("mnemonic derives")
}

/// An HTTP provider that signs with dev account `index`.
pub fn provider(url: &str, index: usize) -> impl Provider + Clone {
    let wallet = EthereumWallet::from(dev_keys().swap_remove(index));
    ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(url.parse().expect("valid url"))
}

/// Send `tx` through `provider` and wait for its receipt (panics if either fails: for tests).
pub async fn mined(
    provider: &impl Provider,
    tx: alloy::rpc::types::TransactionRequest,
) -> alloy::rpc::types::TransactionReceipt {
    provider
        .send_transaction(tx)
        .await
        .expect("the node accepts the transaction")
        .get_receipt()
        .await
        .expect("the transaction is mined")
}

/// Init code of a tiny storage contract: a call with 32 bytes of calldata stores them in slot
/// 0; a call without calldata returns slot 0.
pub fn storage_contract() -> Vec<u8> {
    let runtime = [
        0x36, 0x15, 0x60, 0x0c, 0x57, // if calldatasize == 0 goto get
        0x60, 0x00, 0x35, 0x60, 0x00, 0x55, 0x00, // sstore(0, calldataload(0)); stop
        0x5b, 0x60, 0x00, 0x54, 0x60, 0x00, 0x52, // get: mstore(0, sload(0))
        0x60, 0x20, 0x60, 0x00, 0xf3, // return(0, 32)
    ];
    crate::evm::deployer(&runtime)
}

/// The `verinfer` binary cargo built beside the test executables (or `$VERINFER_BIN`).
pub fn verinfer_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("VERINFER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let bin = dir.join("verinfer");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p verinfer-node` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A signed EIP-1559 transaction from dev account 0 on chain 31337, RLP-encoded for
/// `eth_sendRawTransaction` (2 gwei tip under a 20 gwei cap).
pub fn signed_tx(nonce: u64, to: TxKind, input: Vec<u8>, value: u64, gas_limit: u64) -> Bytes {
    use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy::eips::eip2718::Encodable2718;
    use alloy::network::TxSignerSync;
    let mut tx = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::from(value),
        input: input.into(),
        ..Default::default()
    };
    let signature = dev_keys()[0]
        .sign_transaction_sync(&mut tx)
        .expect("a dev key signs");
    TxEnvelope::from(tx.into_signed(signature))
        .encoded_2718()
        .into()
}

/// Run `verinfer ARGS...`; its exit code and its stdout and stderr together.
pub fn run_verinfer(args: &[&str]) -> (i32, String) {
    let out = Command::new(verinfer_bin())
        .args(args)
        .output()
        .expect("verinfer runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The first of `n` consecutive free loopback ports not in `taken` (for `verinfer testnet`,
/// which binds `--port` + i and `--p2p-port` + i).
pub fn free_ports(n: u16, taken: &[u16]) -> u16 {
    loop {
        let first = free_port();
        let Some(last) = first.checked_add(n) else {
            continue;
        };
        let clear = (first..last).all(|p| {
            !taken.contains(&p) && (p == first || TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if clear {
            return first;
        }
    }
}

/// Wait until a node at `addr` answers JSON-RPC; panics after `timeout`.
pub fn wait_for_rpc(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while post(
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#,
    )
    .is_err()
    {
        assert!(Instant::now() < deadline, "no node came up at {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `verinfer node` child process.
pub struct ChildNode {
    child: Child,
    /// The RPC port (HTTP and WebSocket).
    pub port: u16,
}

impl ChildNode {
    /// Start `verinfer node --data-dir DIR --port P ARGS...` and wait until it answers RPC.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(verinfer_bin())
            .arg("node")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("verinfer starts");
        let node = Self { child, port };
        wait_for_rpc(node.addr(), Duration::from_secs(60));
        node
    }

    /// The RPC address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The HTTP URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST a raw body to a JSON-RPC server; returns the HTTP status and the body.
pub fn post(addr: SocketAddr, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    // Head and body in one write: two small writes meet Nagle and delayed ACKs.
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// One JSON-RPC request to the node at `addr` (a fresh HTTP connection, see [`post`]): the
/// response object, `result` or `error`. Panics if the node does not answer JSON.
pub fn rpc_response(
    addr: SocketAddr,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (_, reply) = post(addr, &body.to_string()).expect("the node answers");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{method}: {e}: {reply}"))
}

/// Like [`rpc_response`], but the `result`; panics with the error if there is one.
pub fn rpc_result(addr: SocketAddr, method: &str, params: serde_json::Value) -> serde_json::Value {
    let response = rpc_response(addr, method, params);
    response
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method}: {response}"))
}

/// A chunked request of `size` bytes; the HTTP status.
pub fn post_chunked(addr: SocketAddr, size: usize) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("the node accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("the node accepts connections");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .expect("the node accepts connections");
    let chunk = vec![b' '; 16 * 1024];
    let mut sent = 0;
    while sent < size {
        if write!(stream, "{:x}\r\n", chunk.len()).is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break; // the server answered and closed early
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A WebSocket handshake on a new connection; the HTTP status and the open stream.
pub fn open_ws(addr: SocketAddr) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(addr).expect("the node accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("the node accepts connections");
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("the node accepts connections");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, stream)
}

/// anvil 1.7.1 (from scripts/install-peers) on a free loopback port, killed on drop.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC address.
    pub addr: SocketAddr,
}

impl Anvil {
    /// Its JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start anvil with its defaults (chain 31337, Prague, the dev accounts) and wait for its RPC.
pub fn start_anvil() -> Anvil {
    start_anvil_with(&[])
}

/// Start anvil with `args` besides its port (e.g. `--fork-url URL`) and wait for its RPC.
pub fn start_anvil_with(args: &[&str]) -> Anvil {
    let peers = std::env::var_os("VERINFER_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/peers"));
    let bin = peers.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        bin.exists(),
        "no anvil at {}: run scripts/install-peers (scripts/test does)",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("anvil starts");
    let anvil = Anvil {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    wait_for_rpc(anvil.addr, Duration::from_secs(30));
    anvil
}

/// The receipt of transaction `hash` once the node behind `client` has mined it (30 s at most).
pub fn receipt_once_mined(client: &Client, hash: alloy::primitives::B256) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let receipt: serde_json::Value = client
            .call("eth_getTransactionReceipt", serde_json::json!([hash]))
            .expect("eth_getTransactionReceipt");
        if !receipt.is_null() {
            return receipt;
        }
        assert!(Instant::now() < deadline, "{hash} was not mined");
        std::thread::sleep(Duration::from_millis(20));
    }
}
