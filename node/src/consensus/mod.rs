//! The validator network: a leader proposes each block, every other validator re-executes it
//! (models re-run in verify mode) before voting, and a block is applied only once a quorum
//! finalizes it.
//!
//! The node side is engine-agnostic ([`validator`]: propose, check, finalize); the engine is
//! commonware's simplex behind [`simplex`], the one module that names it. See
//! `docs/validators.md` for the flow, the trust model and the fault behaviour.

mod genesis;
mod simplex;
mod threshold;
mod validator;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use commonware_cryptography::Signer as _;
use tokio::sync::mpsc;
use verinfer_precompile::{Attester, InferencePrecompile, Mode};

pub use genesis::{parse_public_key, Genesis, GenesisThreshold, GenesisValidator, ValidatorKey};
pub use simplex::{decode_certificate, Certificate};
pub use threshold::{g1_eip2537, g2_eip2537, ValidatorShare, HASH_TO_G1_DST};

use crate::node::Node;

/// How a validator runs.
pub struct ValidatorOptions {
    /// Its key (p2p identity).
    pub key: ValidatorKey,
    /// Its share of the threshold key (finalization certificates).
    pub share: ValidatorShare,
    /// The network's genesis.
    pub genesis: Genesis,
    /// Where the engine keeps its journal (beside the chain's database).
    pub dir: PathBuf,
    /// Where to listen for the other validators; default: its genesis address.
    pub listen: Option<SocketAddr>,
    /// The attester key inference records are signed with.
    pub attester_key: alloy_primitives::B256,
    /// Test-only: forge one output of every inference this validator proposes (a byzantine
    /// proposer for the fault tests).
    pub forge_outputs: bool,
}

/// Check block `number`'s finalization (as [`crate::storage::Storage::finalization`] or
/// `verinfer_getFinalization` give it) against the network's genesis: a threshold signature
/// by its validators' group key over the block it names, whose hash is `certified`.
pub fn check_finalization(
    genesis: &Genesis,
    certified: alloy_primitives::B256,
    finalization: &crate::storage::StoredFinalization,
) -> Result<(), String> {
    let polynomial = genesis.polynomial().map_err(|e| e.to_string())?;
    simplex::check_finalization(polynomial.public(), certified, finalization)
}

/// Start this node's validator: the consensus engine on a thread of its own. Transactions the
/// node's RPC accepts are shared with the other validators from now on.
pub fn start(node: Arc<Node>, options: ValidatorOptions) -> anyhow::Result<()> {
    let peers: Vec<_> = options
        .genesis
        .public_keys()?
        .into_iter()
        .zip(options.genesis.validators.iter().map(|v| v.p2p))
        .collect();
    let me = options.key.0.public_key();
    let Some((_, address)) = peers.iter().find(|(key, _)| *key == me) else {
        bail!(
            "this validator's key ({}) is not in the genesis validator set",
            options.key.public_key_hex()
        );
    };
    let attester = Attester::from_bytes(&options.attester_key).context("invalid attester key")?;
    let attester_address = attester.address();
    let mode = if options.forge_outputs {
        Mode::Forge(attester)
    } else {
        Mode::Sign(attester)
    };
    let sign = Arc::new(InferencePrecompile::new(node.models.clone(), mode));
    let block_time = Duration::from_millis(options.genesis.block_time_ms);
    let idle_block_time = Duration::from_millis(options.genesis.idle_block_time_ms);
    let timing = validator::Timing {
        block_time,
        idle_block_time,
    };
    let validator = validator::Validator::new(node.clone(), sign, attester_address, timing);
    let listen = options.listen.unwrap_or(*address);
    // The p2p layer panics on its own thread if it cannot listen: find out here instead.
    std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen for the other validators on {listen}"))?;
    let config = simplex::EngineConfig {
        key: options.key.0.clone(),
        share: options.share.0.clone(),
        polynomial: options.genesis.polynomial()?,
        listen,
        peers,
        dir: options.dir,
        leader_timeout: (idle_block_time * 4).max(Duration::from_secs(1)),
    };
    let (gossip, shared) = mpsc::unbounded_channel();
    node.share_transactions(gossip);
    std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || simplex::run(config, validator, shared))
        .context("cannot start the consensus thread")?;
    Ok(())
}
