//! The verinfer devnet node: a local Ethereum chain on revm + alloy-evm with the inference
//! precompile installed, served over JSON-RPC (HTTP and WebSocket on one port).
//!
//! Map of the crate, top layer first (each imports only from the layers below it):
//! - [`server`]: start-up, the JSON-RPC server and the miner task ([`start`], [`NodeHandle`]);
//! - [`rpc`]: the JSON-RPC methods, over [`node`];
//! - [`node`]: the state RPC handlers share ([`node::Node`]);
//! - [`models`]: models at start-up (folders, a replayed chain's, CIDs) and in the data dir;
//! - [`config`]: what `verinfer node` can be told, with its defaults;
//! - [`chain`]: head, mempool, block production, calls;
//! - [`execute`]: running and sealing a block, for mining and for replay;
//! - [`replay`]: replaying a chain from genesis to verify it (`verinfer verify`);
//! - [`pool`]: the mempool;
//! - [`schedule`]: the gas schedule a chain was created with, recorded beside its genesis;
//! - [`state`]: the world state and the per-block overlay the EVM runs on;
//! - [`trie`]: state and storage roots kept up to date incrementally;
//! - [`storage`]: the redb database, one write transaction per block;
//! - [`witness`]: the inference witnesses a block keeps;
//! - [`filters`]: log queries and polling filters;
//! - [`metrics`]: `GET /metrics`, the node's state in Prometheus' text format;
//! - [`cids`]: OpenGradient-style CID aliases of models;
//! - [`sandbox`]: admitting uploaded models in a child process within a budget;
//! - [`ffi`]: `verinfer ffi`, the precompile for the shim at 0xA00 in forge;
//! - [`proof`]: checking one recorded inference (`verinfer verify-inference`);
//! - [`client`]: a small blocking JSON-RPC client for the command-line tools;
//! - [`wire`]: the JSON of the `verinfer_*` methods, for the server and its clients;
//! - [`tensor`]: fixed-point tensors in JSON and decimal notation;
//! - [`zk`]: zero-knowledge proofs of records (`verinfer zk`, ezkl), registered at 0xA02.

pub mod chain;
pub mod cids;
pub mod client;
pub mod config;
pub mod consensus;
pub mod execute;
pub mod explorer;
pub mod ffi;
pub mod filters;
pub mod fork;
mod group_commit;
pub mod light_client;
pub mod metrics;
pub mod models;
pub mod node;
pub mod pool;
pub mod proof;
pub mod replay;
pub mod rpc;
pub mod sandbox;
pub mod schedule;
pub mod server;
pub mod state;
pub mod storage;
pub mod tensor;
pub mod trie;
pub mod wire;
pub mod witness;
pub mod zk;

pub use config::NodeConfig;
pub use server::{start, NodeHandle};
