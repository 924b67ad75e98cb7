//! `verinfer zk`: zero-knowledge proofs of recorded inferences (ezkl, halo2-KZG), checked on
//! chain by the registry at 0xA02.

use std::path::PathBuf;

use alloy_primitives::{B256, U256};
use anyhow::{bail, Result};
use verinfer_node::config::{first_dev_key, DEFAULT_MNEMONIC};
use verinfer_node::zk::{self, CheckOptions, ProveOptions, SetupOptions};

/// Options every `zk` command shares.
#[derive(clap::Args)]
pub(crate) struct ZkCommon {
    /// The node's JSON-RPC URL.
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Folder of cached setups (circuit, keys, verifier, one folder per model)
    /// [default: $VERINFER_ZK_DIR, else ~/.cache/verinfer/zk].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// The Python that has ezkl [default: $VERINFER_EZKL_PYTHON, else .tools/ezkl/bin/python
    /// in this folder or a parent, where scripts/install-ezkl puts it].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
}

impl ZkCommon {
    fn cache(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(zk::default_cache_dir)
    }
}

#[derive(clap::Subcommand)]
pub(crate) enum ZkCommand {
    /// Make a model's circuit (inputs and outputs public, weights fixed in the circuit), its
    /// keys and its Solidity verifier; deploy the verifier and register it at 0xA02.
    Setup {
        /// Model id the node serves, or an .onnx file (uploaded when the node lacks it).
        model: String,
        #[command(flatten)]
        common: ZkCommon,
        /// Sender's private key [default: the devnet's first dev account].
        #[arg(long, env = "ETH_PRIVATE_KEY", value_name = "KEY")]
        private_key: Option<B256>,
        /// ezkl calibration data ({"input_data": [[...], ...]}) [default: samples in [-1, 1]].
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// SRS file from a ceremony [default: generate one here: devnet only].
        #[arg(long, value_name = "FILE")]
        srs: Option<PathBuf>,
        /// Largest accepted |proof output - recorded output| [default: 4x the deviation
        /// measured on calibration samples, at least 4 steps of the output scale].
        #[arg(long, value_name = "ABS")]
        tolerance: Option<f64>,
        /// solc for the verifier [default: $SOLC, solc on PATH, or .tools/bin/solc].
        #[arg(long, value_name = "PATH")]
        solc: Option<PathBuf>,
        /// Refuse a circuit of more than 2^N rows (keys, proving time and memory double with
        /// each row doubling; 2^18 here: 80 s to set up, 30 s to prove, a 1.1 GB proving key).
        #[arg(long, value_name = "N", default_value_t = zk::DEFAULT_MAX_LOGROWS)]
        max_logrows: u32,
    },
    /// Prove a recorded inference and submit the proof to the registry (any account may).
    Prove {
        /// The record id.
        id: U256,
        #[command(flatten)]
        common: ZkCommon,
        /// Sender's private key [default: the devnet's first dev account].
        #[arg(long, env = "ETH_PRIVATE_KEY", value_name = "KEY")]
        private_key: Option<B256>,
        /// Also write the proof, instances and inputs to this JSON file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Make the proof only; send nothing.
        #[arg(long)]
        no_submit: bool,
    },
    /// Re-derive a model's verifier from its ONNX bytes, settings and SRS and compare it with
    /// the registered verifier's code: does the verifier belong to these weights?
    Check {
        /// The model id.
        model: B256,
        #[command(flatten)]
        common: ZkCommon,
        /// ezkl settings file of the setup [default: the cached setup's].
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// SRS of the setup [default: the cached setup's].
        #[arg(long, value_name = "FILE")]
        srs: Option<PathBuf>,
        /// solc [default: $SOLC, solc on PATH, or .tools/bin/solc].
        #[arg(long, value_name = "PATH")]
        solc: Option<PathBuf>,
    },
}

/// The key to send with: the given one, or the devnet's first dev account.
fn key(given: Option<B256>) -> Result<B256> {
    if let Some(k) = given {
        return Ok(k);
    }
    first_dev_key(DEFAULT_MNEMONIC)
}

pub(crate) fn run(command: ZkCommand) -> Result<()> {
    match command {
        ZkCommand::Setup {
            model,
            common,
            private_key,
            calibration,
            srs,
            tolerance,
            solc,
            max_logrows,
        } => {
            let setup = zk::setup(&SetupOptions {
                rpc: common.rpc.clone(),
                model,
                private_key: key(private_key)?,
                cache: common.cache(),
                calibration,
                srs,
                tolerance,
                python: common.python.clone(),
                solc,
                max_logrows,
            })?;
            out!("model        {}", setup.model_id);
            out!("verifier     {}", setup.verifier);
            out!("registry     {}", zk::REGISTRY_ADDRESS);
            out!("settings     {}", setup.settings_hash);
            out!(
                "scales       inputs 2^{}, outputs 2^{}",
                setup.input_scale,
                setup.output_scale
            );
            out!("tolerance    {}", zk::format_tolerance(setup.tolerance));
            out!(
                "circuit      2^{} rows, setup {:.1} s, verifier {} bytes",
                setup.logrows,
                setup.setup_seconds,
                setup.verifier_code_size
            );
            let srs_note = if setup.srs_kind == "local" {
                " (generated here: devnet only)"
            } else {
                ""
            };
            out!("srs          {}{srs_note}", setup.srs.display());
        }
        ZkCommand::Prove {
            id,
            common,
            private_key,
            out,
            no_submit,
        } => {
            let report = zk::prove(&ProveOptions {
                rpc: common.rpc.clone(),
                id,
                private_key: key(private_key)?,
                cache: common.cache(),
                out,
                no_submit,
                python: common.python.clone(),
            })?;
            out!("record       {}", report.proof.id);
            out!("model        {}", report.proof.model_id);
            out!(
                "proof        {} bytes, {} instances, {:.1} s",
                report.proof.proof.len(),
                report.proof.instances.len(),
                report.prove_seconds
            );
            match report.receipt {
                Some(r) => out!(
                    "proven       tx {} in block {} ({} gas)",
                    r.transaction_hash,
                    r.block_number,
                    r.gas_used
                ),
                None => out!("not submitted (--no-submit)"),
            }
        }
        ZkCommand::Check {
            model,
            common,
            settings,
            srs,
            solc,
        } => {
            let report = zk::check(&CheckOptions {
                rpc: common.rpc.clone(),
                model,
                settings,
                srs,
                cache: common.cache(),
                python: common.python.clone(),
                solc,
            })?;
            out!("verifier     {}", report.verifier);
            out!("on chain     {}", report.registered_code_hash);
            out!("re-derived   {}", report.derived_code_hash);
            out!(
                "settings     {}",
                if report.settings_match {
                    "match the registered hash"
                } else {
                    "DIFFER from the registered hash"
                }
            );
            if !report.matches() {
                bail!("the registered verifier is not the one model {model} gives with these settings and SRS");
            }
            out!("ok: the registered verifier belongs to model {model}");
        }
    }
    Ok(())
}
