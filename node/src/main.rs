//! `verinfer`: the devnet node and the tools around it.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy_primitives::B256;
use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use verinfer_node::config::{default_attester_key, DEFAULT_MNEMONIC};

/// `println!` that ends the program quietly (exit 0) once stdout is closed, as `| head` does,
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod cli;

use cli::infer::{infer, InferArgs};
use cli::model::{add_models, check, list_models, show_model, ModelCommand};
use cli::node::{run_node, NodeArgs};
use cli::relay::{relay, RelayArgs};
use cli::testnet::{testnet, TestnetArgs};
use cli::verify::{verify, verify_inference, VerifyArgs, VerifyInferenceArgs};
use cli::zk::ZkCommand;

#[derive(Parser)]
#[command(
    name = "verinfer",
    about = "verifiable ONNX inference for EVM smart contracts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a devnet node (JSON-RPC over HTTP and WebSocket, anvil's defaults).
    Node(Box<NodeArgs>),
    /// Start a network of N validators on loopback (each its own process, data dir and RPC):
    /// blocks finalize once a quorum has re-executed them.
    Testnet(TestnetArgs),
    /// Check models, or add, list and show the models of a running node.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a model on a node through `predict` (an eth_call) and print its outputs.
    Infer(InferArgs),
    /// Replay a chain from genesis and check every block, inference and attestation in it.
    Verify(VerifyArgs),
    /// Check one recorded inference: re-run its model on the transaction's inputs, check the
    /// hashes, the outputs and the attester's signature, and print the proof.
    VerifyInference(VerifyInferenceArgs),
    /// Answer one call of the code at 0xA00 in an EVM without the precompile (forge's
    /// vm.tryFfi, set up by contracts/test/Verinfer.sol): run the precompile on the request and
    /// print the response, both ABI-encoded hex.
    Ffi(FfiArgs),
    /// Zero-knowledge proofs of recorded inferences (ezkl, halo2-KZG): set up a model's
    /// verifier, prove a record, check that a verifier belongs to a model.
    #[command(subcommand)]
    Zk(ZkCommand),
    /// Prove a validator network's record on another EVM chain through its light client
    /// (InferenceLightClient: BLS threshold certificates and storage proofs checked in
    /// Solidity), or deploy that light client there.
    Relay(Box<RelayArgs>),
}

#[derive(clap::Args)]
struct FfiArgs {
    /// Models: .onnx files or folders of them (repeatable).
    #[arg(
        long = "models",
        value_name = "PATH",
        env = "VERINFER_MODELS",
        default_value = "models"
    )]
    models: Vec<PathBuf>,
    /// The attester's private key [default: the node's default, derived from the dev mnemonic].
    #[arg(long, value_name = "KEY", env = "VERINFER_ATTESTER_KEY")]
    attester_key: Option<B256>,
    /// abi.encode(FfiRequest) as 0x-hex, split over any number of arguments.
    #[arg(required = true, value_name = "REQUEST")]
    request: Vec<String>,
}

fn ffi(args: &FfiArgs) -> Result<()> {
    let key = args
        .attester_key
        .unwrap_or_else(|| default_attester_key(DEFAULT_MNEMONIC));
    out!(
        "{}",
        verinfer_node::ffi::answer(&args.request, &args.models, &key)?
    );
    Ok(())
}

fn main() -> ExitCode {
    let version = format!(
        "{} (tract kernels: {})",
        env!("CARGO_PKG_VERSION"),
        verinfer_precompile::engine::active_isa()
    );
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Node(args) => run_node(*args).map(|_| true),
        Command::Testnet(args) => testnet(&args).map(|_| true),
        Command::Model(ModelCommand::Check { paths, bounds }) => check(&paths, &bounds),
        Command::Model(ModelCommand::Add {
            paths,
            cids,
            rpc,
            bounds,
        }) => add_models(&rpc, &paths, &cids, &bounds),
        Command::Model(ModelCommand::List { rpc }) => list_models(&rpc).map(|_| true),
        Command::Model(ModelCommand::Show { id, rpc, out }) => {
            show_model(&rpc, &id, out.as_deref()).map(|_| true)
        }
        Command::Infer(args) => infer(&args).map(|_| true),
        Command::Verify(args) => verify(&args),
        Command::VerifyInference(args) => verify_inference(&args),
        Command::Ffi(args) => ffi(&args).map(|_| true),
        Command::Zk(command) => cli::zk::run(command).map(|_| true),
        Command::Relay(args) => relay(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
