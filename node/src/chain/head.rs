//! The head as readers see it: a [`HeadView`] the chain hands out after every change, which
//! answers reads of the head (`eth_call`, balances, code, storage) without the chain's lock
//! while the next block is being written.

use std::sync::Arc;

use alloy_consensus::Header;
use alloy_primitives::B256;
use verinfer_precompile::InferencePrecompile;

use crate::execute;
use crate::state::StateView;

use super::call::CallContext;
use super::{BlockParams, Chain, ChainError};

/// Block hashes `BLOCKHASH` can reach from a call on top of the head.
const BLOCKHASH_WINDOW: usize = 256;

/// A consistent snapshot of the head: its header and state (dev edits since included), the
/// recent block hashes and what calls run with. Cloning its state is cheap (see
/// [`StateView`]), so one is taken after every change and shared as an `Arc`.
pub struct HeadView {
    /// The head block's header.
    pub header: Header,
    /// The head block's hash.
    pub hash: B256,
    /// The state at the head.
    pub world: StateView,
    /// The hashes of the last blocks, the head's last (what `BLOCKHASH` reaches).
    recent_hashes: Arc<[B256]>,
    precompile: Arc<InferencePrecompile>,
    chain_id: u64,
    block_params: BlockParams,
    next_base_fee: u64,
}

impl HeadView {
    /// The head block's number.
    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// The base fee the next block will have.
    pub fn next_base_fee(&self) -> u64 {
        self.next_base_fee
    }

    /// Run `work` with the [`CallContext`] of a call on top of the head.
    pub fn with_call_context<T, E: From<ChainError>>(
        &self,
        work: impl FnOnce(&CallContext<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let first = (self.header.number + 1).saturating_sub(self.recent_hashes.len() as u64);
        let lookup = execute::hash_lookup(first, &self.recent_hashes);
        work(&CallContext {
            world: &self.world,
            header: &self.header,
            block_hashes: &lookup,
            precompile: &self.precompile,
            chain_id: self.chain_id,
            block_params: &self.block_params,
        })
    }
}

impl Chain {
    /// A snapshot of the head as it is now. `previous`, the last one taken, lends its recent
    /// hashes when the head has not moved since.
    pub fn head_view(&self, previous: Option<&HeadView>) -> HeadView {
        let recent_hashes = match previous {
            Some(p) if p.hash == self.head.hash => p.recent_hashes.clone(),
            _ => {
                let from = self.hashes.len().saturating_sub(BLOCKHASH_WINDOW);
                self.hashes[from..].into()
            }
        };
        HeadView {
            header: self.head.header.clone(),
            hash: self.head.hash,
            world: self.world.view().clone(),
            recent_hashes,
            precompile: self.precompile.clone(),
            chain_id: self.config.chain_id,
            block_params: self.block_params.clone(),
            next_base_fee: self.next_base_fee(),
        }
    }
}
