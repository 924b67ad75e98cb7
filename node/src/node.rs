//! The state every RPC handler shares: the chain, the models, the mining mode, the
//! subscriptions' channels, and the operations on them that more than one handler needs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use alloy_primitives::{keccak256, Address, B256};
use alloy_signer_local::PrivateKeySigner;
use tokio::sync::{broadcast, watch};
use verinfer_precompile::{ModelInfo, ModelStore};

use crate::chain::{Chain, ChainError, HeadView, MinedBlock};
use crate::cids::{self, CidError};
use crate::config::NodeConfig;
use crate::filters::Filters;
use crate::group_commit::GroupCommit;
use crate::models::persist_model;
use crate::sandbox::{Sandbox, SandboxError};

/// What a validator shares with the others beside blocks and votes.
#[derive(Clone, Debug)]
pub enum Shared {
    /// A transaction accepted into the pool (EIP-2718 bytes).
    Transaction(Vec<u8>),
    /// An uploaded model admitted (ONNX bytes).
    Model(Vec<u8>),
}

/// How blocks get mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiningMode {
    /// A block as soon as a transaction arrives.
    Auto,
    /// A block every interval, with whatever is pending.
    Interval(Duration),
    /// Only on `evm_mine` / `anvil_mine`.
    Manual,
    /// Blocks come from the validator network (see [`crate::consensus`]); transactions are
    /// pooled and shared with the other validators.
    Network,
}

/// The state shared by every RPC handler.
pub struct Node {
    chain: Mutex<Chain>,
    /// The head as readers see it, taken after every change of the chain (see
    /// [`Node::head`]).
    head: RwLock<Arc<HeadView>>,
    /// What the node was started with.
    pub config: NodeConfig,
    /// Dev accounts, in mnemonic order.
    pub signers: Vec<PrivateKeySigner>,
    /// The admitted models.
    pub models: Arc<ModelStore>,
    /// The address inference attestations recover to.
    pub attester: Address,
    /// Where uploaded models are kept, when the node has a data dir.
    pub model_dir: Option<PathBuf>,
    /// Where uploads are admitted first, when the node has an admission budget.
    sandbox: Option<Sandbox>,
    /// Every CID bound on this node, with its model (the strings behind the bindings in
    /// state; see [`crate::cids`]).
    cids: Mutex<BTreeMap<String, B256>>,
    /// Every mined block, for subscriptions.
    pub blocks: broadcast::Sender<Arc<MinedBlock>>,
    /// The hash of every transaction accepted into the pool, for pending-transaction
    /// subscriptions and filters.
    pub pending_transactions: broadcast::Sender<B256>,
    /// Installed polling filters (`eth_newFilter` and kin).
    pub filters: Mutex<Filters>,
    /// Identifies this run of the node (`anvil_metadata`).
    pub instance_id: B256,
    /// `debug_trace*` calls running now.
    pub traces: std::sync::atomic::AtomicUsize,
    mining: watch::Sender<MiningMode>,
    /// Transactions waiting to be mined together under automine.
    group_commit: GroupCommit,
    /// Where transactions and uploaded models go to reach the other validators, in network
    /// mode.
    network: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Shared>>,
    /// The figures `/metrics` counts as events happen.
    pub telemetry: crate::metrics::Telemetry,
}

impl Node {
    /// The shared state around an opened `chain`; `mining` carries the mining mode to the
    /// miner task.
    pub fn new(
        config: NodeConfig,
        chain: Chain,
        signers: Vec<PrivateKeySigner>,
        models: Arc<ModelStore>,
        attester: Address,
        model_dir: Option<PathBuf>,
        mining: watch::Sender<MiningMode>,
    ) -> Self {
        let (blocks, _) = broadcast::channel(1024);
        let (pending_transactions, _) = broadcast::channel(4096);
        let filters = Mutex::new(Filters::new(config.filter_timeout));
        Self {
            head: RwLock::new(Arc::new(chain.head_view(None))),
            chain: Mutex::new(chain),
            sandbox: config.admission_budget.clone().map(Sandbox::new),
            config,
            signers,
            models,
            attester,
            model_dir,
            cids: Mutex::default(),
            blocks,
            pending_transactions,
            filters,
            instance_id: keccak256(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default()
                    .to_be_bytes(),
            ),
            traces: Default::default(),
            mining,
            group_commit: GroupCommit::default(),
            network: std::sync::OnceLock::new(),
            telemetry: Default::default(),
        }
    }
}

impl Node {
    /// Lock the chain. A panic while holding the lock cannot leave the database half written
    /// (blocks commit in one transaction), so a poisoned lock is taken over. Once the guard
    /// goes, readers see what was changed through it (see [`Node::head`]).
    pub fn chain(&self) -> ChainGuard<'_> {
        ChainGuard {
            chain: self.chain.lock().unwrap_or_else(|p| p.into_inner()),
            node: self,
            changed: false,
        }
    }

    /// The head as it was after the last change of the chain: reads of the head take it
    /// instead of the chain's lock, so they run beside the writer of the next block (and
    /// see that block only once it is durable and announced).
    pub fn head(&self) -> Arc<HeadView> {
        self.head.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Hand readers the head of `chain` as it is now. Only the chain's holder publishes, so
    /// the view is built outside the readers' lock and swapped in.
    fn publish(&self, chain: &Chain) {
        let view = Arc::new(chain.head_view(Some(&self.head())));
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = view;
    }

    /// The mining mode.
    pub fn mining(&self) -> MiningMode {
        *self.mining.borrow()
    }

    /// Share every transaction the node accepts from now on with the other validators (through
    /// `sender`), and mine only what the network finalizes.
    pub fn share_transactions(&self, sender: tokio::sync::mpsc::UnboundedSender<Shared>) {
        let _ = self.network.set(sender);
        self.set_mining(MiningMode::Network);
    }

    /// Whether blocks come from a validator network.
    pub fn in_network(&self) -> bool {
        self.network.get().is_some()
    }

    /// Change the mining mode.
    pub fn set_mining(&self, mode: MiningMode) {
        self.mining.send_replace(mode);
    }

    /// Mine one block and announce it. The announcement goes out under the chain lock, so
    /// subscribers see blocks in order even when several callers mine at once.
    pub fn mine(&self, timestamp: Option<u64>) -> Result<Arc<MinedBlock>, ChainError> {
        let mut chain = self.chain();
        let _block =
            tracing::info_span!("block", number = chain.head().header.number + 1).entered();
        let mined = Arc::new(chain.mine(timestamp)?);
        self.announce(&mut chain, mined.clone());
        Ok(mined)
    }

    /// Tell subscribers (and the metrics) about a block just added to the chain.
    pub fn announce(&self, chain: &mut ChainGuard<'_>, mined: Arc<MinedBlock>) {
        // Whoever hears of the block can read its state at once.
        chain.publish();
        let _block = tracing::info_span!("block", number = mined.block.header.number).entered();
        tracing::debug!(
            hash = %mined.block.hash,
            transactions = mined.block.transactions.len(),
            gas_used = mined.block.header.gas_used,
            "announced"
        );
        self.telemetry.block(&mined);
        let _ = self.blocks.send(mined);
    }

    /// Admit uploaded model bytes (within the admission budget, when the node has one), keep
    /// them in the data dir, and return the model's metadata. On a validator network the
    /// bytes go to every other validator too, which admit them the same way.
    pub fn add_model(&self, bytes: &[u8]) -> Result<ModelInfo, UploadError> {
        let info = self.admit_model(bytes)?;
        if let Some(network) = self.network.get() {
            let _ = network.send(Shared::Model(bytes.to_vec()));
        }
        Ok(info)
    }

    /// Admit model bytes as [`Self::add_model`] does, without sharing them (another
    /// validator's upload).
    pub fn admit_model(&self, bytes: &[u8]) -> Result<ModelInfo, UploadError> {
        let known = self.models.get(&keccak256(bytes)).is_some();
        if let (Some(sandbox), false) = (&self.sandbox, known) {
            if let Err(e) = sandbox.check(bytes) {
                self.telemetry.admission("sandbox_refused");
                return Err(e.into());
            }
        }
        let info = match self.models.add_bytes(bytes) {
            Ok(info) => info,
            Err(e) => {
                self.telemetry.admission("refused");
                return Err(e.into());
            }
        };
        self.telemetry
            .admission(if known { "known" } else { "admitted" });
        if let Some(dir) = &self.model_dir {
            if let Err(e) = persist_model(dir, &info.id, bytes) {
                tracing::error!(
                    "could not keep model {} in {}: {e:#}",
                    info.id,
                    dir.display()
                );
            }
        }
        Ok(info)
    }

    /// Bind an OpenGradient-style CID to an admitted model (in chain state, and in the data
    /// dir's `cids.json`); returns false when it was bound to that model already.
    pub fn bind_cid(&self, cid: &str, model: B256) -> Result<bool, CidError> {
        if self.config.validator.is_some() {
            return Err(CidError::Network { cid: cid.into() });
        }
        if self.models.get(&model).is_none() {
            return Err(CidError::UnknownModel {
                cid: cid.into(),
                model,
            });
        }
        let mut chain = self.chain();
        let added = cids::bind(&mut chain, cid, model)?;
        let mut book = self.cids.lock().unwrap_or_else(|p| p.into_inner());
        if book.insert(cid.into(), model).is_none() {
            if let Some(dir) = &self.model_dir {
                if let Err(e) = cids::write_file(dir, &book) {
                    tracing::error!("could not keep the CIDs in {}: {e:#}", dir.display());
                }
            }
        }
        Ok(added)
    }

    /// The CIDs bound to each model in the current state, by model id.
    pub fn cids_by_model(&self) -> BTreeMap<B256, Vec<String>> {
        let chain = self.chain();
        let book = self.cids.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_model: BTreeMap<B256, Vec<String>> = BTreeMap::new();
        for (cid, model) in book.iter() {
            // A snapshot revert or a reset may have undone the binding since.
            if cids::bound_model(&chain, cid) == Some(*model) {
                by_model.entry(*model).or_default().push(cid.clone());
            }
        }
        by_model
    }

    /// The model a `modelCID` names: a hex id or a CID bound in the current state.
    pub fn resolve_cid(&self, cid: &str) -> Option<B256> {
        cids::resolve(&self.chain(), cid)
    }
}

impl Node {
    /// Pool a signed transaction and, under automine, mine it in a block of its own. Returns
    /// its hash once it is pooled (or mined and durably stored, under automine, where blocks of
    /// concurrent senders share one write: see [`crate::group_commit`]).
    pub fn submit(
        &self,
        tx: alloy_consensus::transaction::Recovered<alloy_consensus::TxEnvelope>,
    ) -> Result<B256, ChainError> {
        if self.mining() != MiningMode::Auto {
            // On a validator network the other validators get it too.
            let shared = self.network.get().map(|network| {
                use alloy_eips::eip2718::Encodable2718;
                (network, tx.inner().encoded_2718())
            });
            let hash = self.chain().submit(tx)?;
            let _ = self.pending_transactions.send(hash);
            if let Some((network, raw)) = shared {
                let _ = network.send(Shared::Transaction(raw));
            }
            return Ok(hash);
        }
        self.group_commit.submit(
            || self.chain(),
            tx,
            |hash| {
                let _ = self.pending_transactions.send(hash);
            },
            |chain, block| self.announce(chain, Arc::new(block)),
        )
    }
}

/// The chain, locked (see [`Node::chain`]). A change made through it reaches readers when it
/// goes.
pub struct ChainGuard<'a> {
    chain: MutexGuard<'a, Chain>,
    node: &'a Node,
    changed: bool,
}

impl std::ops::Deref for ChainGuard<'_> {
    type Target = Chain;

    fn deref(&self) -> &Chain {
        &self.chain
    }
}

impl std::ops::DerefMut for ChainGuard<'_> {
    fn deref_mut(&mut self) -> &mut Chain {
        self.changed = true;
        &mut self.chain
    }
}

impl ChainGuard<'_> {
    /// Hand readers what was changed through the guard so far, now rather than when it goes.
    pub fn publish(&mut self) {
        self.node.publish(&self.chain);
        self.changed = false;
    }
}

impl Drop for ChainGuard<'_> {
    fn drop(&mut self) {
        if self.changed {
            self.node.publish(&self.chain);
        }
    }
}

/// Why an upload was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Admission refused the model.
    #[error(transparent)]
    Refused(#[from] verinfer_precompile::AdmissionError),
    /// The sandboxed admission refused it, or it ran past its budget.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}
