//! The verinfer devnet node: a local Ethereum chain on revm + alloy-evm with the inference
//! precompile installed, served over JSON-RPC (HTTP and WebSocket on one port).
//!
//! Map of the crate:
//! - [`node`]: configuration, start-up, the state RPC handlers share;
//! - [`chain`]: head, mempool, block production, calls;
//! - [`cids`]: OpenGradient-style CID aliases of models;
//! - [`execute`]: running a block's transactions, for mining and for replay;
//! - [`ffi`]: `verinfer ffi`, the precompile for the shim at 0xA00 in forge;
//! - [`pool`]: the mempool;
//! - [`replay`]: replaying a chain from genesis to verify it (`verinfer verify`);
//! - [`sandbox`]: admitting uploaded models in a child process within a budget;
//! - [`proof`]: checking one recorded inference (`verinfer verify-inference`);
//! - [`state`]: the world state and the per-block overlay the EVM runs on;
//! - [`trie`]: state and storage roots kept up to date incrementally;
//! - [`storage`]: the redb database, one write transaction per block;
//! - [`witness`]: the inference witnesses a block keeps;
//! - [`filters`]: log queries and polling filters;
//! - [`rpc`]: the JSON-RPC methods;
//! - [`client`]: a small blocking JSON-RPC client for the command-line tools;
//! - [`wire`]: the JSON of the `verinfer_*` methods, for the server and its clients;
//! - [`tensor`]: fixed-point tensors in JSON and decimal notation.

pub mod chain;
pub mod cids;
pub mod client;
pub mod execute;
pub mod ffi;
pub mod filters;
pub mod node;
pub mod pool;
pub mod proof;
pub mod replay;
pub mod rpc;
pub mod sandbox;
pub mod state;
pub mod storage;
pub mod tensor;
pub mod trie;
pub mod wire;
pub mod witness;

pub use node::{start, NodeConfig, NodeHandle};
