//! `verinfer testnet`: N validators on loopback, each its own process, data dir and RPC.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use verinfer_node::consensus::{Genesis, GenesisValidator, ValidatorKey};

#[derive(clap::Args)]
pub(crate) struct TestnetArgs {
    /// Number of validators (4 tolerates one faulty validator; 3f+1 tolerate f).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Where each validator keeps its key, threshold share, chain and log (DIR/validator-<i>/), and where the
    /// genesis file goes (DIR/genesis.json). An existing testnet there is restarted as it was.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// RPC port of the first validator; the others take the next ports.
    #[arg(short, long, default_value_t = 8545)]
    port: u16,
    /// p2p port of the first validator; the others take the next ports.
    #[arg(long, default_value_t = 30303)]
    p2p_port: u16,
    /// Least time between blocks while transactions wait, in milliseconds.
    #[arg(long, default_value_t = 100)]
    block_time_ms: u64,
    /// Time between empty blocks while no transaction waits, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    idle_block_time_ms: u64,
    /// Admit every .onnx file in DIR on every validator (repeatable).
    #[arg(long = "models", value_name = "DIR")]
    models: Vec<PathBuf>,
    /// Chain id.
    #[arg(long, default_value_t = 31337)]
    chain_id: u64,
}

/// Write (or reuse) the keys and genesis, start every validator, print the endpoints, and
/// stop them all on Ctrl-C or when one exits.
pub(crate) fn testnet(args: &TestnetArgs) -> Result<()> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let genesis_path = args.data_dir.join("genesis.json");
    let genesis = if genesis_path.exists() {
        let genesis = Genesis::read(&genesis_path)?;
        if genesis.validators.len() != args.validators {
            bail!(
                "{} lists {} validators, not {}: use another --data-dir",
                genesis_path.display(),
                genesis.validators.len(),
                args.validators
            );
        }
        genesis
    } else {
        let genesis = new_genesis(args)?;
        genesis.write(&genesis_path)?;
        genesis
    };
    let program = std::env::current_exe().context("locating the verinfer binary")?;
    let mut children = Vec::new();
    for (i, validator) in genesis.validators.iter().enumerate() {
        let dir = validator_dir(&args.data_dir, i);
        let port = args.port + i as u16;
        let log = std::fs::File::create(dir.join("node.log"))
            .with_context(|| format!("cannot create {}", dir.join("node.log").display()))?;
        let mut command = Command::new(&program);
        command
            .args(["node", "--validator", "--port", &port.to_string()])
            .arg("--key")
            .arg(dir.join("key"))
            .arg("--share")
            .arg(dir.join("share"))
            .arg("--genesis")
            .arg(&genesis_path)
            .arg("--data-dir")
            .arg(dir.join("chain"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for models in &args.models {
            command.arg("--models").arg(models);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start validator {i}"))?;
        println!(
            "validator {i}: RPC {}  p2p {}  log {}",
            validator.rpc.as_deref().unwrap_or("-"),
            validator.p2p,
            dir.join("node.log").display()
        );
        children.push(child);
    }
    println!(
        "\n{} validators (a quorum is {}); genesis {}. Ctrl-C stops them all.",
        genesis.validators.len(),
        quorum(genesis.validators.len()),
        genesis_path.display()
    );
    let stopped = wait_for_ctrl_c_or_exit(&mut children);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    stopped
}

fn new_genesis(args: &TestnetArgs) -> Result<Genesis> {
    let mut validators = Vec::new();
    let mut keys = Vec::new();
    for i in 0..args.validators {
        let dir = validator_dir(&args.data_dir, i);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let key_path = dir.join("key");
        let key = if key_path.exists() {
            ValidatorKey::read(&key_path)?
        } else {
            let key = ValidatorKey::random();
            key.write(&key_path)?;
            key
        };
        validators.push(GenesisValidator {
            public_key: key.public_key_hex(),
            p2p: ([127, 0, 0, 1], args.p2p_port + i as u16).into(),
            rpc: Some(format!("http://127.0.0.1:{}", args.port + i as u16)),
        });
        keys.push(key);
    }
    let mut genesis = Genesis {
        chain_id: args.chain_id,
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        block_time_ms: args.block_time_ms,
        idle_block_time_ms: args.idle_block_time_ms.max(args.block_time_ms),
        validators,
        threshold: None,
    };
    // commonware's DKG, its rounds run here: see docs/validators.md ("The threshold key").
    let shares = genesis.generate_threshold_key(&keys)?;
    for (i, share) in shares.iter().enumerate() {
        share.write(&validator_dir(&args.data_dir, i).join("share"))?;
    }
    Ok(genesis)
}

fn validator_dir(data_dir: &Path, i: usize) -> PathBuf {
    data_dir.join(format!("validator-{i}"))
}

/// Votes needed to finalize among `n` validators (2f+1 with n = 3f+1).
fn quorum(n: usize) -> usize {
    n - (n - 1) / 3
}

fn wait_for_ctrl_c_or_exit(children: &mut [Child]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    println!("\nStopping the validators");
                    return Ok(());
                }
                _ = terminate.recv() => {
                    println!("\nStopping the validators");
                    return Ok(());
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    for (i, child) in children.iter_mut().enumerate() {
                        if let Ok(Some(status)) = child.try_wait() {
                            bail!("validator {i} exited ({status}); stopping the others");
                        }
                    }
                }
            }
        }
    })
}
