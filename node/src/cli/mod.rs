//! The `verinfer` binary's subcommands, one module each (the binary's own code, not part of
//! the `verinfer_node` library).

pub(crate) mod infer;
pub(crate) mod model;
pub(crate) mod node;
pub(crate) mod relay;
pub(crate) mod testnet;
pub(crate) mod verify;
pub(crate) mod zk;
