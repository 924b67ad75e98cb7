//! The end-to-end tests of verinfer, one module per concern, linked into one test binary (one
//! link instead of one per file). Run one module with a filter: `scripts/test -p verinfer-tests
//! --test it -- forge::`.

mod anvil_parity;
mod cli;
mod cli_node;
mod contracts;
mod explorer;
mod forge;
mod fork;
mod fuzz_rpc;
mod hardening;
mod hardhat;
mod harness_example;
mod light_client;
mod metrics;
mod network;
mod node_process;
mod node_rpc;
mod opengradient;
mod precompile;
mod real_models;
mod shim;
mod torch_models;
mod verify;
mod zk;
