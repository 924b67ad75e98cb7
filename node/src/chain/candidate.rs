//! Blocks of a validator network: built or re-executed on the head, applied only once final.
//!
//! The leader [builds](Chain::build_candidate) a block from its pool with the precompile in sign
//! mode; every other validator [checks](Chain::check_candidate) it by re-executing it with the
//! precompile in verify mode (each model re-run on the recorded inputs, outputs compared bit for
//! bit with the block's witnesses) and sealing its own header, which must be the proposer's.
//! Neither changes what the chain serves: the world state is put back after sealing, and the
//! block is applied and written only when the network finalizes it
//! ([`Chain::commit_candidate`]).

use std::sync::Arc;

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Bytes, B256};
use serde::{Deserialize, Serialize};
use verinfer_precompile::{InferencePrecompile, Verifier};

use super::mine::SealedBlock;
use super::{Chain, ChainError, MinedBlock};
use crate::execute::{self, HeaderInputs, Included, OnInvalid};
use crate::storage::{StoredBlock, StoredFinalization};
use crate::witness::BlockWitness;

/// A block as validators exchange it: the sealed block, its transactions' bytes and its
/// inference witnesses (what re-executing it in verify mode needs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    /// The block, sealed by its proposer.
    pub block: StoredBlock,
    /// EIP-2718 bytes of each transaction, in block order.
    pub transactions: Vec<Bytes>,
    /// The inference witnesses the block's transactions recorded.
    pub witnesses: Vec<BlockWitness>,
}

impl Proposal {
    /// The block hash: what the network votes on.
    pub fn hash(&self) -> B256 {
        self.block.hash
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode the wire encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// A block built or checked on the head, not applied yet.
pub struct Candidate {
    proposal: Proposal,
    sealed: SealedBlock,
}

impl Candidate {
    /// The block as validators exchange it.
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }
}

/// Why a proposed block is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    /// The block does not build on the head (yet): not a verdict on the block.
    #[error("block builds on {parent}, the head is {head}")]
    NotOnHead {
        /// The block's parent.
        parent: B256,
        /// This chain's head.
        head: B256,
    },
    /// The block is wrong; every reason found, naming the transaction and inference.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// How far ahead of this node's clock a proposed block's timestamp may be, in seconds.
const MAX_FUTURE_SECONDS: u64 = 15;

impl Chain {
    /// Execute the ready transactions into the next block, as mining does, with
    /// `precompile` (sign mode), leaving the chain as it was. `timestamp` is the block's.
    pub fn build_candidate(
        &mut self,
        timestamp: u64,
        precompile: &Arc<InferencePrecompile>,
    ) -> Result<Candidate, ChainError> {
        let timestamp = timestamp.max(self.head.header.timestamp);
        let base_fee = self.next_base_fee();
        let (inputs, executed) = self.execute_ready(timestamp, base_fee, usize::MAX, precompile)?;
        let transactions = encoded(&executed.included);
        let revert = self.world.undo_of(&executed.diff)?.to_diff();
        let sealed = self.seal(&inputs, executed)?;
        self.world.apply(&revert);
        for (hash, _) in &sealed.mined.dropped {
            self.pool.remove(hash);
        }
        Ok(Candidate {
            proposal: Proposal {
                block: sealed.mined.block.clone(),
                transactions,
                witnesses: sealed.witnesses.clone(),
            },
            sealed,
        })
    }

    /// Re-execute a block another validator proposed, with `precompile` in verify mode over
    /// `verifier` (a fresh one: it re-runs each model and checks each signature, and keeps the
    /// block's witnesses), leaving the chain as it was. `now` is this node's clock, in seconds.
    pub fn check_candidate(
        &mut self,
        proposal: Proposal,
        precompile: &Arc<InferencePrecompile>,
        verifier: &Verifier,
        now: u64,
    ) -> Result<Candidate, CandidateError> {
        let header = &proposal.block.header;
        if header.parent_hash != self.head.hash {
            return Err(CandidateError::NotOnHead {
                parent: header.parent_hash,
                head: self.head.hash,
            });
        }
        let mut wrong = self.check_inputs(&proposal, now);
        let mut transactions = Vec::new();
        for (i, raw) in proposal.transactions.iter().enumerate() {
            match execute::decode_transaction(raw) {
                Ok(tx) if proposal.block.transactions.get(i) == Some(&tx.hash) => {
                    transactions.push(tx)
                }
                Ok(tx) => wrong.push(format!("transaction {}: not the block's {i}th", tx.hash)),
                Err(e) => wrong.push(format!("transaction {i}: {e}")),
            }
        }
        if transactions.len() != proposal.block.transactions.len() {
            wrong.push("the block's transaction list and bytes differ".into());
        }
        if !wrong.is_empty() {
            return Err(CandidateError::Invalid(wrong));
        }
        let witnesses: Option<Vec<_>> = proposal
            .witnesses
            .iter()
            .map(BlockWitness::to_precompile)
            .collect();
        let Some(witnesses) = witnesses else {
            return Err(CandidateError::Invalid(vec![
                "witness outputs are not an ABI-encoded Tensor[]".into(),
            ]));
        };
        verifier.add_witnesses(witnesses);
        let env = execute::header_env(self.config.chain_id, header);
        let executed = execute::execute(
            &self.world,
            &execute::hash_lookup(self.first_hash, &self.hashes),
            env,
            precompile,
            transactions,
            OnInvalid::Fail,
        );
        let findings = verifier.take_findings();
        let executed = executed.map_err(|invalid| {
            CandidateError::Invalid(vec![format!(
                "transaction {}: cannot execute: {}",
                invalid.hash, invalid.reason
            )])
        })?;
        let mut wrong: Vec<String> = findings
            .iter()
            .map(|finding| {
                let id = finding.inference_id();
                match proposal.witnesses.iter().find(|w| w.id == id) {
                    Some(w) => format!("transaction {}: {finding}", w.transaction_hash),
                    None => finding.to_string(),
                }
            })
            .collect();
        if executed.witnesses != proposal.witnesses {
            wrong.push(format!(
                "the block carries {} witnesses, re-execution recorded {}",
                proposal.witnesses.len(),
                executed.witnesses.len()
            ));
        }
        let revert = self
            .world
            .undo_of(&executed.diff)
            .map_err(ChainError::from)?
            .to_diff();
        let sealed = self.seal(&HeaderInputs::of(header), executed)?;
        self.world.apply(&revert);
        wrong.extend(execute::header_differences(
            header,
            &sealed.mined.block.header,
        ));
        if sealed.mined.block.hash != proposal.block.hash && wrong.is_empty() {
            wrong.push(format!(
                "block hash: proposed {}, re-executed {}",
                proposal.block.hash, sealed.mined.block.hash
            ));
        }
        if !wrong.is_empty() {
            return Err(CandidateError::Invalid(wrong));
        }
        Ok(Candidate { proposal, sealed })
    }

    /// What a proposer chooses that every validator can check before executing: the number,
    /// the base fee, the gas limit, the randomness and a timestamp neither before the parent's
    /// nor far in the future.
    fn check_inputs(&self, proposal: &Proposal, now: u64) -> Vec<String> {
        let header = &proposal.block.header;
        let mut wrong = Vec::new();
        let mut expect = |what: &str, got: String, want: String| {
            if got != want {
                wrong.push(format!("{what}: proposed {got}, expected {want}"));
            }
        };
        expect(
            "number",
            header.number.to_string(),
            (self.head.header.number + 1).to_string(),
        );
        expect(
            "base fee",
            header.base_fee_per_gas.unwrap_or_default().to_string(),
            self.next_base_fee().to_string(),
        );
        expect(
            "gas limit",
            header.gas_limit.to_string(),
            self.block_params.gas_limit.to_string(),
        );
        expect(
            "prevrandao",
            header.mix_hash.to_string(),
            keccak256(self.head.hash).to_string(),
        );
        if header.timestamp < self.head.header.timestamp {
            wrong.push(format!(
                "timestamp {} is before the parent's, {}",
                header.timestamp, self.head.header.timestamp
            ));
        }
        if header.timestamp > now.saturating_add(MAX_FUTURE_SECONDS) {
            wrong.push(format!(
                "timestamp {} is more than {MAX_FUTURE_SECONDS} s ahead of this node's clock ({now})",
                header.timestamp
            ));
        }
        wrong
    }

    /// Apply a finalized candidate and write it, with how it was finalized, in one durable
    /// transaction. The candidate must still build on the head.
    pub fn commit_candidate(
        &mut self,
        candidate: Candidate,
        finalization: &StoredFinalization,
    ) -> Result<MinedBlock, CandidateError> {
        let sealed = candidate.sealed;
        if sealed.mined.block.header.parent_hash != self.head.hash {
            return Err(CandidateError::NotOnHead {
                parent: sealed.mined.block.header.parent_hash,
                head: self.head.hash,
            });
        }
        self.world.apply(&sealed.diff);
        self.advance(&sealed);
        let mut write = sealed.write();
        write.finalization = Some(finalization);
        if let Err(e) = self.storage.write_block(&write) {
            self.reload()?;
            return Err(ChainError::from(e).into());
        }
        Ok(sealed.mined)
    }
}

fn encoded(included: &[Included]) -> Vec<Bytes> {
    included
        .iter()
        .map(|i| Bytes::from(i.tx.inner().encoded_2718()))
        .collect()
}
