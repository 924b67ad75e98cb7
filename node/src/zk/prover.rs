//! The prover inside the node (`verinfer node --zk-prover`): a background loop that proves every
//! record of a model with a setup in its cache and submits the proofs.
//!
//! It talks to its own node over JSON-RPC, like `verinfer zk prove`, and keeps no queue of its
//! own: the chain is the queue. Each pass reads `verinfer_inferenceCount` and walks the records
//! from its cursor; a record is due when its model has a registered verifier that the cache's
//! setup matches, and the registry does not hold it as proven. A restart starts again from
//! record 1, so nothing recorded while the node was down, or while a proof was in flight, is
//! lost; what is already proven is skipped with one `eth_call`. A record whose proof fails is
//! logged and retried on the next pass, at most [`MAX_ATTEMPTS`] times. The cursor passes a
//! record whose model has no setup yet: such records are picked up after a restart, or proven
//! by hand with `verinfer zk prove`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use serde_json::json;

use super::send::Sender;
use super::setup::SetupRecord;
use super::{is_proven, model_dir, prove, registered_setup, ProveOptions, ZkError};
use crate::client::Client;
use crate::wire::InferenceJson;

/// Proof attempts per record before the prover gives up on it (until a restart).
pub const MAX_ATTEMPTS: u32 = 3;

/// What the prover is told.
#[derive(Clone, Debug)]
pub struct ProverConfig {
    /// The node's own JSON-RPC URL.
    pub rpc: String,
    /// Where setups are cached (as `verinfer zk setup --cache`).
    pub cache: PathBuf,
    /// The key submissions are sent with.
    pub private_key: B256,
    /// Records proven at once (each proof uses both cores for seconds to minutes).
    pub concurrency: usize,
    /// Pause between passes when nothing is due.
    pub poll: Duration,
}

/// Run the prover until `stop` is set. Blocking: run it on its own thread.
pub fn run(config: ProverConfig, stop: Arc<AtomicBool>) {
    let mut cursor = U256::from(1u8);
    let mut attempts: HashMap<U256, u32> = HashMap::new();
    // Models known to have a usable setup.
    let mut setups: HashSet<B256> = HashSet::new();
    tracing::info!(cache = %config.cache.display(), "zk prover: started");
    while !stop.load(Ordering::Relaxed) {
        match pass(&config, &mut cursor, &mut attempts, &mut setups, &stop) {
            Ok(0) => sleep(&config, &stop),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("zk prover: {e}");
                sleep(&config, &stop);
            }
        }
    }
}

fn sleep(config: &ProverConfig, stop: &AtomicBool) {
    let mut left = config.poll;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let step = left.min(Duration::from_millis(100));
        std::thread::sleep(step);
        left -= step;
    }
}

/// One pass over the records from `cursor`: prove what is due, in batches of the configured
/// concurrency. Returns how many records it proved.
fn pass(
    config: &ProverConfig,
    cursor: &mut U256,
    attempts: &mut HashMap<U256, u32>,
    setups: &mut HashSet<B256>,
    stop: &AtomicBool,
) -> Result<usize, ZkError> {
    let client = Client::new(&config.rpc).map_err(ZkError::Rpc)?;
    let sender = Sender::new(&client, config.private_key)?;
    let count: U256 = client
        .call("verinfer_inferenceCount", json!([]))
        .map_err(ZkError::Rpc)?;
    let mut due = Vec::new();
    let mut id = *cursor;
    while id <= count && due.len() < config.concurrency.max(1) {
        let tries = attempts.get(&id).copied().unwrap_or(0);
        if tries < MAX_ATTEMPTS
            && !is_proven(&sender, id)?
            && has_setup(config, &client, &sender, id, setups)?
        {
            due.push(id);
        }
        // Advance past records that need nothing; stay on the first due one until it is done.
        if due.is_empty() {
            *cursor = id + U256::from(1u8);
        }
        id += U256::from(1u8);
    }
    if due.is_empty() || stop.load(Ordering::Relaxed) {
        return Ok(0);
    }
    let results: Vec<(U256, Result<super::ProveReport, ZkError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = due
            .iter()
            .map(|&id| {
                let opts = ProveOptions {
                    rpc: config.rpc.clone(),
                    id,
                    private_key: config.private_key,
                    cache: config.cache.clone(),
                    out: None,
                    no_submit: false,
                    python: None,
                };
                tracing::info!(record = %id, "zk prover: proving");
                (id, s.spawn(move || prove(&opts)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(id, h)| {
                let result = h
                    .join()
                    .unwrap_or_else(|_| Err(ZkError::Ezkl("the proving thread panicked".into())));
                (id, result)
            })
            .collect()
    });
    let mut proven = 0;
    for (id, result) in results {
        match result {
            Ok(report) => {
                proven += 1;
                let tx = report.receipt.map(|r| r.transaction_hash);
                tracing::info!(
                    record = %id,
                    seconds = format!("{:.1}", report.prove_seconds),
                    tx = ?tx,
                    "zk prover: proven"
                );
            }
            Err(e) => {
                let tries = attempts.entry(id).or_insert(0);
                *tries += 1;
                tracing::warn!(record = %id, attempt = *tries, "zk prover: {e}");
            }
        }
    }
    Ok(proven)
}

/// Whether record `id`'s model has a registered verifier that a cached setup matches.
fn has_setup(
    config: &ProverConfig,
    client: &Client,
    sender: &Sender<'_>,
    id: U256,
    setups: &mut HashSet<B256>,
) -> Result<bool, ZkError> {
    let record: Option<InferenceJson> = client
        .call("verinfer_getInference", json!([id]))
        .map_err(ZkError::Rpc)?;
    let Some(record) = record else {
        return Ok(false);
    };
    if setups.contains(&record.model_id) {
        return Ok(true);
    }
    let registered = registered_setup(sender, record.model_id)?;
    let local: Option<SetupRecord> =
        std::fs::read(model_dir(&config.cache, record.model_id).join("setup.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
    let usable = registered.verifier != Address::ZERO
        && local.is_some_and(|l| {
            l.verifier == registered.verifier && l.settings_hash == registered.settingsHash
        });
    if usable {
        setups.insert(record.model_id);
    }
    Ok(usable)
}
