//! The validator network row: `verinfer testnet` with 4 validators on loopback, transfers and
//! inferences sent to one validator and timed until their receipts (receipts exist only for
//! finalized blocks), beside the single node's figures.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Bytes, TxKind, U256};
use anyhow::{bail, Context};
use serde::Serialize;
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::{ModelInfo, ADDRESS};

use crate::peer::{Binaries, Kind, Peer};
use crate::workload::{self, Client, Sender, Stats};

/// Validators of the measured network.
pub(crate) const VALIDATORS: usize = 4;
/// Least time between blocks while transactions wait, in milliseconds.
pub(crate) const BLOCK_TIME_MS: u64 = 20;
/// Time between empty blocks while idle, in milliseconds.
pub(crate) const IDLE_BLOCK_TIME_MS: u64 = 200;
/// Transfers of the light-load measurement (one sender, each after the previous one's receipt).
pub(crate) const LIGHT_TRANSFERS: u64 = 100;

/// What the network row measured.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct NetworkRow {
    pub validators: usize,
    pub block_time_ms: u64,
    pub idle_block_time_ms: u64,
    /// Transfers from `senders` senders at once, send to finalized.
    pub transfers: Stats,
    /// Light load: [`LIGHT_TRANSFERS`] transfers from one sender, send to finalized.
    pub light: Stats,
    /// A burst of transfers from `senders` senders, sent at once, until the last is finalized.
    pub burst: Stats,
    /// `infer` transactions (the linear model) from `senders` senders at once.
    pub inferences: Stats,
    pub senders: usize,
    /// The light client's gas on anvil for one of this network's records, when the measured
    /// build has threshold certificates (`verinfer relay`).
    pub light_client: Option<LightClientGas>,
}

/// Gas of `InferenceLightClient` on anvil 1.7.1, as `verinfer relay` reports it.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct LightClientGas {
    /// `submitHeader`: the transaction's gas used (certificate check, header decode, store).
    pub header: u64,
    /// `verifyInference` for a record of the linear model (one 1×1 output): `eth_estimateGas`
    /// of the call as a transaction (account proof, every slot's storage proof, decoding).
    pub record: u64,
    /// How `record` divides (intrinsic, calldata, execution), as `verinfer relay` says it.
    pub record_split: String,
}

/// A running `verinfer testnet`, stopped (SIGINT, then kill) when dropped.
struct Testnet {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Testnet {
    fn start(verinfer: &Path, model: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let models = dir.path().join("models");
        std::fs::create_dir_all(&models)?;
        std::fs::copy(model, models.join("linear.onnx"))
            .with_context(|| format!("copying {}", model.display()))?;
        let port = free_port()?;
        let p2p = free_port()?;
        let child = Command::new(verinfer)
            .args(["testnet", "--validators", &VALIDATORS.to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("net"))
            .args(["--port", &port.to_string(), "--p2p-port", &p2p.to_string()])
            .args(["--block-time-ms", &BLOCK_TIME_MS.to_string()])
            .args(["--idle-block-time-ms", &IDLE_BLOCK_TIME_MS.to_string()])
            .arg("--models")
            .arg(&models)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting verinfer testnet")?;
        let mut testnet = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        testnet.wait_ready(port)?;
        Ok(testnet)
    }

    /// Every validator answers, and the network has finalized a block.
    fn wait_ready(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
        for i in 0..VALIDATORS as u16 {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port + i));
            loop {
                if let Some(status) = self.child.try_wait()? {
                    bail!("verinfer testnet exited at start ({status})");
                }
                let answer = verinfer_tests::node::post(addr, body);
                if answer.is_ok_and(|(_, r)| r.contains("result") && !r.contains("\"0x0\"")) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the network did not finalize a block within 120 s");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        // SIGINT lets testnet stop its validators; kill in case it does not.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Start a 4-validator network of `verinfer` (this build's, or a baseline's) and time
/// [`LIGHT_TRANSFERS`] transfers from one sender, then the sizes' transfers and as many
/// inferences from the concurrent senders at once (each waits for its receipt before its
/// next), then the sizes' burst; with `light_client`, then prove the first
/// record on anvil with `verinfer relay` and keep its gas.
pub(crate) async fn measure(
    bins: &Binaries,
    verinfer: &Path,
    model: (&ModelInfo, &[Tensor]),
    sizes: &crate::Sizes,
    light_client: bool,
) -> anyhow::Result<NetworkRow> {
    let senders = sizes.concurrent_senders as usize;
    let per_sender = sizes.transfers / sizes.concurrent_senders;
    let linear = bins.models.join("linear.onnx");
    let testnet = tokio::task::block_in_place(|| Testnet::start(verinfer, &linear))?;
    let client = Client::network(&testnet.url)?;
    let mut keys = Vec::new();
    for i in 0..senders {
        keys.push(Sender::new(&client, crate::dev_key(i)).await?);
    }
    let light = keys[0].transfers(LIGHT_TRANSFERS, 6_999)?;
    let light = workload::send_sequential(&client, light).await?;
    let transfers: Vec<Vec<Bytes>> = keys
        .iter_mut()
        .enumerate()
        .map(|(i, s)| s.transfers(per_sender, 7_000 + i as u64))
        .collect::<anyhow::Result<_>>()?;
    let transfers = workload::send_concurrent(&client, transfers).await?;
    let (info, inputs) = model;
    let calldata = verinfer_tests::workload::infer_calldata(info.id, inputs.to_vec(), 4);
    let inferences: Vec<Vec<Bytes>> = keys
        .iter_mut()
        .map(|s| {
            (0..per_sender)
                .map(|_| {
                    s.sign(
                        TxKind::Call(ADDRESS),
                        U256::ZERO,
                        calldata.clone(),
                        2_000_000,
                    )
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<_>>()?;
    let inferences = workload::send_concurrent(&client, inferences).await?;
    let burst = crate::burst(&client, sizes).await?;
    let burst = workload::send_burst(&client, burst).await?;
    let light_client = if light_client {
        Some(tokio::task::block_in_place(|| {
            relay_gas(bins, verinfer, &testnet)
        })?)
    } else {
        None
    };
    drop(testnet);
    Ok(NetworkRow {
        validators: VALIDATORS,
        block_time_ms: BLOCK_TIME_MS,
        idle_block_time_ms: IDLE_BLOCK_TIME_MS,
        transfers,
        light,
        burst,
        inferences,
        senders,
        light_client,
    })
}

/// Deploy the light client on a fresh anvil with `verinfer relay deploy`, prove record 1 with
/// `verinfer relay`, and read the gas it reports.
fn relay_gas(
    bins: &Binaries,
    verinfer: &Path,
    testnet: &Testnet,
) -> anyhow::Result<LightClientGas> {
    let anvil = Peer::start(Kind::Anvil, bins)?;
    let key = format!("0x{}", alloy::hex::encode(crate::dev_key(0).to_bytes()));
    let genesis = testnet.dir.path().join("net/genesis.json");
    let run = |args: &[&str]| -> anyhow::Result<(String, String)> {
        let out = Command::new(verinfer)
            .args(args)
            .output()
            .context("running verinfer relay")?;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        if !out.status.success() {
            bail!("verinfer {} failed: {stdout}{stderr}", args.join(" "));
        }
        Ok((stdout, stderr))
    };
    let genesis = genesis.to_string_lossy();
    let (address, _) = run(&[
        "relay",
        "deploy",
        "--genesis",
        &genesis,
        "--from",
        &testnet.url,
        "--to",
        &anvil.url,
        "--private-key",
        &key,
    ])?;
    let (stdout, stderr) = run(&[
        "relay",
        "--from",
        &testnet.url,
        "--to",
        &anvil.url,
        "--light-client",
        address.trim(),
        "--record",
        "1",
        "--private-key",
        &key,
    ])?;
    let number_after = |text: &str, marker: &str| -> anyhow::Result<u64> {
        let at = text
            .find(marker)
            .with_context(|| format!("no \"{marker}\" in verinfer relay's output: {text}"))?;
        let digits: String = text[at + marker.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .with_context(|| format!("no gas after \"{marker}\" in: {text}"))
    };
    Ok(LightClientGas {
        header: number_after(&stderr, "header submitted (gas ")?,
        record: number_after(&stdout, "verifyInference gas: ")?,
        record_split: stdout
            .lines()
            .find_map(|line| line.split_once(" as a transaction (")?.1.strip_suffix(')'))
            .unwrap_or_default()
            .to_string(),
    })
}
