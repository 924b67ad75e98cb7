//! What a validator does for the consensus engine, whatever the engine: propose a block,
//! check another's, apply the finalized ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use verinfer_precompile::{InferencePrecompile, Mode, Verifier};

use crate::chain::{Candidate, CandidateError, Proposal};
use crate::node::Node;
use crate::storage::StoredFinalization;

/// A validator's verdict on a proposed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It re-executed to the same block: vote for it.
    Valid,
    /// It is wrong (the reasons): never vote for it.
    Invalid(String),
    /// Its bytes or its parent are not here yet: ask again later.
    NotYet,
    /// It uses models this validator does not have (uploaded while it was away, or their
    /// announcement lost): fetch them from the peers, then ask again.
    NeedModels(Vec<B256>),
}

/// What finalizing a block did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finalized {
    /// The block (and any ancestors finalized with it) is now on the chain.
    Applied,
    /// The chain already held it.
    Known,
    /// This block's bytes are missing: fetch it from a peer, then try again.
    Missing(B256),
    /// A block to apply uses models this validator lacks: fetch them, then try again.
    NeedModels(Vec<B256>),
}

/// Block timing of a network.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// Least time between a block and the next when transactions wait.
    pub(crate) block_time: Duration,
    /// Time between empty blocks while no transaction waits.
    pub(crate) idle_block_time: Duration,
}

/// A block built here or received from its leader, and when.
struct Seen {
    proposal: Proposal,
    at: Instant,
}

/// A validator: the node, the precompiles it builds and checks blocks with, and the blocks it
/// has seen but not applied.
pub(crate) struct Validator {
    node: Arc<Node>,
    sign: Arc<InferencePrecompile>,
    /// The address attestations must recover to.
    attester: Address,
    timing: Timing,
    /// Blocks built or received, by hash, not yet on the chain.
    proposals: HashMap<B256, Seen>,
    /// Blocks built or checked on the current head, ready to apply.
    checked: HashMap<B256, Candidate>,
    /// Blocks found wrong, with why.
    rejected: HashMap<B256, String>,
    /// When the head last changed.
    head_since: Instant,
    /// When the head was proposed (built here or first received), or applied if neither was
    /// seen: the next block is due a block time after it.
    head_proposed: Instant,
    /// When each other validator was last heard from (blocks, models, transactions).
    heard: HashMap<String, Instant>,
}

/// A peer heard from within this long counts as one of the validator's peers in the metrics.
const PEER_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

impl Validator {
    /// A validator over `node`, building blocks with `sign` (sign mode, or forge mode for the
    /// fault tests) and checking them against `attester`.
    pub(crate) fn new(
        node: Arc<Node>,
        sign: Arc<InferencePrecompile>,
        attester: Address,
        timing: Timing,
    ) -> Self {
        Self {
            node,
            sign,
            attester,
            timing,
            proposals: HashMap::new(),
            checked: HashMap::new(),
            rejected: HashMap::new(),
            head_since: Instant::now(),
            head_proposed: Instant::now(),
            heard: HashMap::new(),
        }
    }

    /// Note a message from `peer` (none: just let old ones expire) and count the peers heard
    /// from lately into the metrics.
    pub(crate) fn heard_from(&mut self, peer: Option<String>) {
        if let Some(peer) = peer {
            self.heard.insert(peer, Instant::now());
        }
        self.heard.retain(|_, at| at.elapsed() < PEER_WINDOW);
        self.node.telemetry.peers(self.heard.len());
    }

    /// The genesis block's hash: the engine's starting point.
    pub(crate) fn genesis_hash(&self) -> B256 {
        self.node.chain().block_hash(0).unwrap_or_default()
    }

    /// Build the next block on `parent`, if `parent` is the head and it is time: a block
    /// interval after the head's proposal when transactions wait, an idle interval when none
    /// does. (Counted from the proposal, not from when the head was applied, so the time the
    /// network took to finalize the head counts towards the interval.)
    pub(crate) fn try_propose(&mut self, parent: B256) -> Option<Proposal> {
        // Asked on every arriving transaction: too early whatever waits, without the chain's lock.
        let waited = self.head_proposed.elapsed();
        if waited < self.timing.block_time {
            return None;
        }
        let mut chain = self.node.chain();
        if chain.head().hash != parent {
            return None;
        }
        let due = if chain.has_ready() {
            self.timing.block_time
        } else {
            self.timing.idle_block_time
        };
        if waited < due {
            return None;
        }
        match chain.build_candidate(unix_now(), &self.sign) {
            Ok(candidate) => {
                let proposal = candidate.proposal().clone();
                let hash = proposal.hash();
                tracing::info!(
                    number = proposal.block.header.number,
                    %hash,
                    transactions = proposal.transactions.len(),
                    "proposing"
                );
                self.proposals.insert(
                    hash,
                    Seen {
                        proposal: proposal.clone(),
                        at: Instant::now(),
                    },
                );
                self.checked.insert(hash, candidate);
                Some(proposal)
            }
            Err(e) => {
                tracing::error!("could not build a block on {parent}: {e}");
                None
            }
        }
    }

    /// Keep a block a peer sent, to check or apply when asked.
    pub(crate) fn add_proposal(&mut self, proposal: Proposal) {
        let hash = proposal.hash();
        if proposal.block.header.number > self.node.chain().head().header.number {
            self.proposals.entry(hash).or_insert_with(|| Seen {
                proposal,
                at: Instant::now(),
            });
        }
    }

    fn on_chain(&self, hash: &B256) -> bool {
        matches!(self.node.chain().storage().block_number(hash), Ok(Some(_)))
    }

    /// Check the block `hash` proposed on `parent` by re-executing it.
    pub(crate) fn verify(&mut self, parent: B256, hash: B256) -> Verdict {
        if let Some(why) = self.rejected.get(&hash) {
            return Verdict::Invalid(why.clone());
        }
        if self.checked.contains_key(&hash) {
            return Verdict::Valid;
        }
        let Some(proposal) = self.proposals.get(&hash).map(|s| s.proposal.clone()) else {
            return Verdict::NotYet;
        };
        if proposal.block.header.parent_hash != parent {
            return self.reject(
                hash,
                format!(
                    "the block builds on {}, the proposal names {parent}",
                    proposal.block.header.parent_hash
                ),
            );
        }
        let mut missing: Vec<B256> = proposal
            .witnesses
            .iter()
            .map(|w| w.model_id)
            .filter(|id| self.node.models.get(id).is_none())
            .collect();
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Verdict::NeedModels(missing);
        }
        let number = proposal.block.header.number;
        let started = Instant::now();
        // A verifier of its own per block: it holds the block's witnesses and findings only.
        let verifier = Arc::new(Verifier::new(self.attester));
        let precompile = Arc::new(InferencePrecompile::new(
            self.node.models.clone(),
            Mode::Verify(verifier.clone()),
        ));
        let checked =
            self.node
                .chain()
                .check_candidate(proposal, &precompile, &verifier, unix_now());
        match checked {
            Ok(candidate) => {
                tracing::debug!(number, %hash, micros = started.elapsed().as_micros() as u64, "checked");
                self.checked.insert(hash, candidate);
                Verdict::Valid
            }
            Err(CandidateError::NotOnHead { .. }) => Verdict::NotYet,
            Err(e) => self.reject(hash, format!("block {number} ({hash}): {e}")),
        }
    }

    fn reject(&mut self, hash: B256, why: String) -> Verdict {
        tracing::warn!("refusing to vote: {why}");
        self.rejected.insert(hash, why.clone());
        Verdict::Invalid(why)
    }

    /// Apply the block `hash` the network finalized, with its ancestors not applied yet.
    pub(crate) fn finalize(&mut self, hash: B256, view: u64, certificate: &[u8]) -> Finalized {
        if self.on_chain(&hash) {
            return Finalized::Known;
        }
        // The block and its unapplied ancestors, newest first.
        let head = self.node.chain().head().hash;
        let mut line = Vec::new();
        let mut at = hash;
        while at != head {
            let Some(seen) = self.proposals.get(&at) else {
                if self.on_chain(&at) {
                    tracing::error!("finalized block {hash} does not descend from the head");
                    return Finalized::Known;
                }
                return Finalized::Missing(at);
            };
            line.push(at);
            at = seen.proposal.block.header.parent_hash;
        }
        let certified_block = self
            .proposals
            .get(&hash)
            .map_or(0, |s| s.proposal.block.header.number);
        let finalization = StoredFinalization {
            view,
            certified_block,
            certificate: certificate.to_vec().into(),
        };
        for block in line.into_iter().rev() {
            match self.apply(block, &finalization) {
                Ok(true) => {}
                Ok(false) => break,
                Err(models) => return Finalized::NeedModels(models),
            }
        }
        Finalized::Applied
    }

    /// Apply one finalized block on the head (checking it first if it was not checked yet);
    /// false if it could not be, the models to fetch if it needs some.
    fn apply(&mut self, hash: B256, finalization: &StoredFinalization) -> Result<bool, Vec<B256>> {
        let head = self.node.chain().head().hash;
        if let Some(seen) = self.proposals.get(&hash) {
            if seen.proposal.block.header.parent_hash == head && !self.checked.contains_key(&hash) {
                match self.verify(head, hash) {
                    Verdict::Invalid(why) => {
                        tracing::error!(
                            "the network finalized block {hash}, which this validator finds wrong: {why}"
                        );
                        return Ok(false);
                    }
                    Verdict::NeedModels(models) => return Err(models),
                    Verdict::Valid | Verdict::NotYet => {}
                }
            }
        }
        let Some(candidate) = self.checked.remove(&hash) else {
            tracing::error!("finalized block {hash} could not be checked on the head");
            return Ok(false);
        };
        let started = Instant::now();
        let mut chain = self.node.chain();
        match chain.commit_candidate(candidate, finalization) {
            Ok(mined) => {
                tracing::info!(
                    number = mined.block.header.number,
                    %hash,
                    transactions = mined.block.transactions.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "finalized"
                );
                self.node
                    .telemetry
                    .finalized(finalization.view, self.head_since.elapsed());
                self.node.announce(&mut chain, Arc::new(mined));
                drop(chain);
                self.head_since = Instant::now();
                self.head_proposed = self.proposals.get(&hash).map_or(self.head_since, |s| s.at);
                // Whatever was built or checked on the old head is stale now.
                self.checked.clear();
                let number = self.node.chain().head().header.number;
                self.proposals
                    .retain(|_, s| s.proposal.block.header.number > number);
                Ok(true)
            }
            Err(e) => {
                tracing::error!("could not write finalized block {hash}: {e}");
                Ok(false)
            }
        }
    }

    /// The bytes of block `hash`, for a peer that asks: from memory, or rebuilt from storage.
    pub(crate) fn proposal(&self, hash: &B256) -> Option<Proposal> {
        if let Some(seen) = self.proposals.get(hash) {
            return Some(seen.proposal.clone());
        }
        let chain = self.node.chain();
        let storage = chain.storage();
        let number = storage.block_number(hash).ok()??;
        let block = storage.block(number).ok()??;
        let mut transactions = Vec::with_capacity(block.transactions.len());
        for tx in &block.transactions {
            transactions.push(storage.transaction(tx).ok()??.raw);
        }
        let witnesses = storage.witnesses(number).ok()?;
        Some(Proposal {
            block,
            transactions,
            witnesses,
        })
    }

    /// The bytes of model `id`, for a peer that asks.
    pub(crate) fn model_bytes(&self, id: &B256) -> Option<Vec<u8>> {
        self.node.models.get(id).map(|m| m.bytes.to_vec())
    }

    /// Admit a model another validator's node was sent (on a thread of its own: admission
    /// may take seconds), so this validator can re-run the blocks that use it.
    pub(crate) fn admit_shared_model(&self, peer: String, bytes: Vec<u8>) {
        let node = self.node.clone();
        std::thread::spawn(move || match node.admit_model(&bytes) {
            Ok(info) => {
                tracing::info!(model = %info.id, %peer, "admitted a model uploaded to a peer")
            }
            Err(e) => tracing::warn!("refused a model uploaded to {peer}: {e}"),
        });
    }

    /// Pool a transaction another validator shared (refusals are expected: it may be known
    /// or mined already).
    pub(crate) fn add_shared_transaction(&self, raw: &[u8]) {
        let raw = alloy_primitives::Bytes::copy_from_slice(raw);
        if let Ok(included) = crate::execute::decode_transaction(&raw) {
            let mut chain = self.node.chain();
            if let Ok(hash) = chain.submit(included.tx) {
                let _ = self.node.pending_transactions.send(hash);
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
