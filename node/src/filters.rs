//! Log queries and polling filters (`eth_getLogs`, `eth_newFilter`, `eth_getFilterChanges`).
//!
//! Logs are found through each block header's bloom: a block whose bloom cannot match is
//! skipped without reading its receipts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, FilterBlockOption, Log};

use crate::chain::{Chain, ChainError};
use crate::storage::{StoredBlock, StoredReceipt};

/// Default of the most blocks one `eth_getLogs` call (or one filter poll) may scan
/// (`--max-log-range`).
pub const DEFAULT_MAX_LOG_RANGE: u64 = 100_000;

/// A polling filter.
#[derive(Debug)]
pub enum PollFilter {
    /// New block hashes after `next - 1`.
    Blocks {
        /// The first block number not yet reported.
        next: u64,
    },
    /// Hashes of transactions pooled since the last poll.
    PendingTransactions(tokio::sync::broadcast::Receiver<B256>),
    /// Matching logs of blocks from `next` on.
    Logs {
        /// The filter.
        filter: Box<Filter>,
        /// The first block not yet searched.
        next: u64,
    },
}

/// Default of how long a polling filter lives without a poll (`--filter-timeout`), as geth's.
pub const DEFAULT_FILTER_TIMEOUT: Duration = Duration::from_secs(300);

/// Most polling filters installed at once; installing one more drops the one polled longest ago.
pub const MAX_FILTERS: usize = 10_000;

/// Installed polling filters by id. A filter not polled (or read) for the timeout is dropped,
/// and at most [`MAX_FILTERS`] are kept, so clients that never uninstall cannot grow the node.
#[derive(Debug)]
pub struct Filters {
    next_id: u64,
    timeout: Duration,
    filters: HashMap<U256, Installed>,
}

/// A filter and when it was last installed or polled.
#[derive(Debug)]
struct Installed {
    filter: PollFilter,
    polled: Instant,
}

impl Installed {
    fn expired(&self, now: Instant, timeout: Duration) -> bool {
        now.duration_since(self.polled) >= timeout
    }
}

impl Filters {
    /// No filters; each lives `timeout` without a poll.
    pub fn new(timeout: Duration) -> Self {
        Self {
            next_id: 0,
            timeout,
            filters: HashMap::new(),
        }
    }

    /// Install a filter; returns its id.
    pub fn install(&mut self, filter: PollFilter) -> U256 {
        let now = Instant::now();
        let timeout = self.timeout;
        self.filters.retain(|_, f| !f.expired(now, timeout));
        if self.filters.len() >= MAX_FILTERS {
            let stalest = self
                .filters
                .iter()
                .min_by_key(|(_, f)| f.polled)
                .map(|(id, _)| *id);
            if let Some(id) = stalest {
                self.filters.remove(&id);
            }
        }
        self.next_id += 1;
        let id = U256::from(self.next_id);
        self.filters.insert(
            id,
            Installed {
                filter,
                polled: now,
            },
        );
        id
    }

    /// A live filter by id (which counts as a poll); none if unknown or expired.
    pub fn get_mut(&mut self, id: &U256) -> Option<&mut PollFilter> {
        use std::collections::hash_map::Entry;
        let now = Instant::now();
        match self.filters.entry(*id) {
            Entry::Occupied(entry) if entry.get().expired(now, self.timeout) => {
                entry.remove();
                None
            }
            Entry::Occupied(entry) => {
                let installed = entry.into_mut();
                installed.polled = now;
                Some(&mut installed.filter)
            }
            Entry::Vacant(_) => None,
        }
    }

    /// Remove a filter; false if there was none (or it had expired).
    pub fn remove(&mut self, id: &U256) -> bool {
        let timeout = self.timeout;
        self.filters
            .remove(id)
            .is_some_and(|f| !f.expired(Instant::now(), timeout))
    }
}

/// The RPC logs of one block that match `filter`.
pub fn block_logs(
    chain: &Chain,
    block: &StoredBlock,
    filter: &Filter,
) -> Result<Vec<Log>, ChainError> {
    let mut out = Vec::new();
    if !filter.matches_bloom(block.header.logs_bloom) {
        return Ok(out);
    }
    for (index, hash) in block.transactions.iter().enumerate() {
        let Some(receipt) = chain.storage().receipt(hash)? else {
            continue;
        };
        out.extend(receipt_logs(block, index, *hash, &receipt, filter));
    }
    Ok(out)
}

/// The logs of transaction `index` (hash `hash`) of `block` that match `filter`, as RPC logs.
pub fn receipt_logs<'a>(
    block: &'a StoredBlock,
    index: usize,
    hash: B256,
    receipt: &'a StoredReceipt,
    filter: &'a Filter,
) -> impl Iterator<Item = Log> + 'a {
    receipt
        .logs
        .iter()
        .enumerate()
        .filter(|(_, log)| filter.matches(log))
        .map(move |(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(block.hash),
            block_number: Some(block.header.number),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(hash),
            transaction_index: Some(index as u64),
            log_index: Some(receipt.first_log_index + i as u64),
            removed: false,
        })
}

/// Logs matching `filter` in blocks `from..=to` (clamped to the head), at most `max_range`
/// blocks.
pub fn logs_in_range(
    chain: &Chain,
    filter: &Filter,
    from: u64,
    to: u64,
    max_range: u64,
) -> Result<Vec<Log>, ChainError> {
    let to = to.min(chain.head().header.number);
    if from > to {
        return Ok(Vec::new());
    }
    if to - from >= max_range {
        return Err(ChainError::Invalid(format!(
            "block range too large: {} blocks, at most {max_range}",
            to - from + 1
        )));
    }
    let mut out = Vec::new();
    for number in from..=to {
        if let Some(block) = chain.storage().block(number)? {
            out.extend(block_logs(chain, &block, filter)?);
        }
    }
    Ok(out)
}

/// Logs matching `filter`, with its block range or block hash resolved against the chain.
pub fn logs(chain: &Chain, filter: &Filter, max_range: u64) -> Result<Vec<Log>, ChainError> {
    let head = chain.head().header.number;
    match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let block = block_by_hash(chain, hash)?;
            block_logs(chain, &block, filter)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => logs_in_range(
            chain,
            filter,
            range_bound(from_block, head),
            range_bound(to_block, head),
            max_range,
        ),
    }
}

/// A log filter's range bound as a block number: a number as given, `earliest` 0, anything
/// else (`latest`, `pending`, none) the head.
pub(crate) fn range_bound(tag: &Option<BlockNumberOrTag>, head: u64) -> u64 {
    match tag {
        Some(BlockNumberOrTag::Number(n)) => *n,
        Some(BlockNumberOrTag::Earliest) => 0,
        _ => head,
    }
}

fn block_by_hash(chain: &Chain, hash: &B256) -> Result<StoredBlock, ChainError> {
    let number = chain
        .storage()
        .block_number(hash)?
        .ok_or_else(|| ChainError::UnknownBlock(hash.to_string()))?;
    chain
        .storage()
        .block(number)?
        .ok_or_else(|| ChainError::UnknownBlock(hash.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpolled_filter_expires_and_a_polled_one_lives() {
        let mut filters = Filters::new(Duration::from_millis(200));
        let polled = filters.install(PollFilter::Blocks { next: 1 });
        let left = filters.install(PollFilter::Blocks { next: 1 });
        std::thread::sleep(Duration::from_millis(120));
        assert!(filters.get_mut(&polled).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(filters.get_mut(&polled).is_some(), "polled 120 ms ago");
        assert!(filters.get_mut(&left).is_none(), "never polled for 240 ms");
        // An install sweeps the expired ones out.
        std::thread::sleep(Duration::from_millis(250));
        filters.install(PollFilter::Blocks { next: 1 });
        assert_eq!(filters.filters.len(), 1);
    }

    #[test]
    fn installing_past_the_cap_drops_the_stalest() {
        let mut filters = Filters::new(DEFAULT_FILTER_TIMEOUT);
        let first = filters.install(PollFilter::Blocks { next: 1 });
        let second = filters.install(PollFilter::Blocks { next: 1 });
        for _ in 2..MAX_FILTERS {
            filters.install(PollFilter::Blocks { next: 1 });
        }
        assert!(
            filters.get_mut(&first).is_some(),
            "polled: now the freshest"
        );
        let newest = filters.install(PollFilter::Blocks { next: 1 });
        assert_eq!(filters.filters.len(), MAX_FILTERS);
        assert!(
            filters.get_mut(&second).is_none(),
            "the stalest was dropped"
        );
        assert!(filters.get_mut(&first).is_some());
        assert!(filters.get_mut(&newest).is_some());
    }
}
