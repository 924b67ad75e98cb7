//! The contract test harness: what a contract developer needs for an end-to-end test in a few
//! lines — an ephemeral node on a free port, funded signers, `contracts/` compiled once per
//! test binary, deploy by contract name, models added from files.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use alloy::primitives::U256;
//! use verinfer_tests::harness::Devnet;
//!
//! let devnet = Devnet::start().await?;
//! let model = devnet.add_model("models/credit.onnx").await?;
//! let pool = devnet.deploy("CreditLending", (model,)).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use alloy::json_abi::JsonAbi;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::abi::TokenSeq;
use alloy::sol_types::{SolType, SolValue};
use anyhow::{anyhow, bail, Context};
use foundry_compilers::artifacts::{Settings, SolcInput, Source, Sources};
use foundry_compilers::solc::Solc;
use verinfer_node::{NodeConfig, NodeHandle};
use verinfer_precompile::abi::IInference::IInferenceErrors;
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::store::ShapeKey;
use verinfer_precompile::{engine, ModelStore};

/// The repository's `contracts/` directory.
pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

/// A compiled contract: its ABI and creation bytecode.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The contract's ABI.
    pub abi: JsonAbi,
    /// Creation bytecode (constructor arguments are appended to it).
    pub bytecode: Bytes,
}

/// Every contract under `contracts/`, by name.
#[derive(Debug)]
pub struct Contracts {
    by_name: BTreeMap<String, Compiled>,
}

impl Contracts {
    /// The contract called `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<&Compiled> {
        self.by_name.get(name).ok_or_else(|| {
            anyhow!(
                "no contract `{name}` under contracts/ (have: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Names of all compiled contracts.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The solc command to use: `$SOLC`, else `solc` on PATH, else the project-local shim that
/// `scripts/install-solc` puts in `.tools/bin/solc`.
pub fn solc_path() -> anyhow::Result<PathBuf> {
    if let Some(solc) = std::env::var_os("SOLC") {
        return Ok(PathBuf::from(solc));
    }
    let on_path = Command::new("solc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return Ok(PathBuf::from("solc"));
    }
    let shim = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/solc");
    if shim.exists() {
        return Ok(shim);
    }
    bail!("no solc found: run scripts/install-solc (installs the npm package `solc`), or set SOLC")
}

/// Compile every `.sol` file under `dir` with foundry-compilers (optimizer on, 200 runs).
pub fn compile(dir: &Path) -> anyhow::Result<Contracts> {
    let solc_path = solc_path()?;
    let solc = Solc::new(&solc_path)
        .with_context(|| format!("running {} --version", solc_path.display()))?;
    let sources = Source::read_sol_yul_from(dir)
        .with_context(|| format!("reading Solidity sources under {}", dir.display()))?;
    let mut settings = Settings::default();
    settings.optimizer.enabled = Some(true);
    settings.optimizer.runs = Some(200);
    // The OpenGradient example decodes OpenGradient's nested ModelOutput, which needs the IR
    // pipeline; it is compiled on its own, with what it imports.
    let (via_ir, plain): (Vec<_>, Vec<_>) = sources
        .into_iter()
        .partition(|(path, _)| path.components().any(|c| c.as_os_str() == "opengradient"));
    let (via_ir, plain) = (Sources::from_iter(via_ir), Sources::from_iter(plain));
    let mut ir_settings = settings.clone();
    ir_settings.via_ir = Some(true);
    let mut ir_sources = via_ir;
    if !ir_sources.is_empty() {
        ir_sources.extend(
            plain
                .iter()
                .filter(|(path, _)| path.ends_with("src/OGInference.sol"))
                .map(|(p, s)| (p.clone(), s.clone())),
        );
    }
    let inputs = SolcInput::resolve_and_build(plain, settings)
        .into_iter()
        .chain(if ir_sources.is_empty() {
            Vec::new()
        } else {
            SolcInput::resolve_and_build(ir_sources, ir_settings)
        });
    let mut by_name = BTreeMap::new();
    for input in inputs {
        let input = input.sanitized(&solc.version);
        let output = solc
            .compile(&input)
            .with_context(|| format!("compiling {} with {}", dir.display(), solc_path.display()))?;
        let errors: Vec<String> = output
            .errors
            .iter()
            .filter(|e| e.severity.is_error())
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            bail!("solc failed:\n{}", errors.join("\n"));
        }
        for (_, contracts) in output.contracts {
            for (name, contract) in contracts {
                let abi = contract.abi.unwrap_or_default();
                let bytecode = contract
                    .evm
                    .and_then(|evm| evm.bytecode)
                    .and_then(|b| b.object.into_bytes())
                    .unwrap_or_default();
                by_name.insert(name, Compiled { abi, bytecode });
            }
        }
    }
    Ok(Contracts { by_name })
}

/// `contracts/`, compiled once per test binary.
pub fn contracts() -> anyhow::Result<&'static Contracts> {
    static CONTRACTS: OnceLock<Result<Contracts, String>> = OnceLock::new();
    CONTRACTS
        .get_or_init(|| compile(&contracts_dir()).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Run the ONNX model at `path` directly on the engine (no EVM, no node), the reference a
/// test compares on-chain results with.
pub fn run_model(
    path: impl AsRef<Path>,
    inputs: &[Tensor],
    output_decimals: u8,
) -> anyhow::Result<Vec<Tensor>> {
    let path = repo_path(path);
    let store = ModelStore::default();
    let info = store
        .add_file(&path)
        .with_context(|| format!("admitting {}", path.display()))?;
    let model = store
        .get(&info.id)
        .ok_or_else(|| anyhow!("model {} vanished from the store", info.id))?;
    let key = ShapeKey::of_call(&info, inputs)?;
    let shaped = store.shaped(&model, &key)?;
    Ok(engine::run(
        &shaped.plan,
        &shaped.info,
        inputs,
        output_decimals,
    )?)
}

/// keccak256 of the file at `path`: a model's id.
pub fn model_id(path: impl AsRef<Path>) -> anyhow::Result<B256> {
    let path = repo_path(path);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(keccak256(bytes))
}

/// `path` relative to the repository root, unless absolute.
fn repo_path(path: impl AsRef<Path>) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// A custom error decoded from revert data: its name and its ABI-encoded arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedError {
    /// The error's name, e.g. `ShapeMismatch`.
    pub name: String,
    /// The arguments after the 4-byte selector.
    pub args: Bytes,
}

/// The revert data an RPC error carries (`eth_call`, `eth_estimateGas`), if any.
pub fn revert_data<E>(error: &alloy::transports::RpcError<E>) -> Option<Bytes> {
    error.as_error_resp().and_then(|e| e.as_revert_data())
}

/// An ephemeral in-process node with the dev accounts funded, and the compiled contracts.
pub struct Devnet {
    node: NodeHandle,
    contracts: &'static Contracts,
}

impl Devnet {
    /// Start a node on a free loopback port with the defaults (anvil's accounts, automine).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Start a node after `configure` edits its config.
    pub async fn start_with(configure: impl FnOnce(&mut NodeConfig)) -> anyhow::Result<Self> {
        let contracts = contracts()?;
        let mut config = NodeConfig {
            port: 0,
            ..Default::default()
        };
        configure(&mut config);
        let node = verinfer_node::start(config).await?;
        Ok(Self { node, contracts })
    }

    /// The node.
    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    /// The node's HTTP URL.
    pub fn url(&self) -> String {
        self.node.http_url()
    }

    /// The compiled contracts.
    pub fn contracts(&self) -> &'static Contracts {
        self.contracts
    }

    /// The key of dev account `index` (anvil's mnemonic).
    pub fn key(&self, index: usize) -> PrivateKeySigner {
        crate::node::dev_keys().swap_remove(index)
    }

    /// A provider that signs as dev account `index`.
    pub fn signer(&self, index: usize) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.key(index)))
            .connect_http(self.url().parse().expect("the node's URL parses"))
            .erased()
    }

    /// A provider that signs as dev account 0.
    pub fn provider(&self) -> DynProvider {
        self.signer(0)
    }

    /// Upload the ONNX model at `path` (relative to the repository root, or absolute) over
    /// `verinfer_uploadModel`; returns its id.
    pub async fn add_model(&self, path: impl AsRef<Path>) -> anyhow::Result<B256> {
        let path = repo_path(path);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let model: serde_json::Value = self
            .provider()
            .raw_request("verinfer_uploadModel".into(), (Bytes::from(bytes),))
            .await
            .with_context(|| format!("uploading {}", path.display()))?;
        let id = model
            .get("id")
            .and_then(|id| id.as_str())
            .ok_or_else(|| anyhow!("verinfer_uploadModel returned no id: {model}"))?;
        Ok(id.parse()?)
    }

    /// Deploy contract `name` from dev account 0 with ABI-encoded constructor `args`
    /// (a tuple: `()`, `(model,)`, `(model, U256::from(7))`...).
    pub async fn deploy<A: SolValue>(&self, name: &str, args: A) -> anyhow::Result<Address>
    where
        for<'a> <A::SolType as SolType>::Token<'a>: TokenSeq<'a>,
    {
        self.deploy_with_value(name, args, U256::ZERO).await
    }

    /// `deploy`, sending `value` wei to a payable constructor.
    pub async fn deploy_with_value<A: SolValue>(
        &self,
        name: &str,
        args: A,
        value: U256,
    ) -> anyhow::Result<Address>
    where
        for<'a> <A::SolType as SolType>::Token<'a>: TokenSeq<'a>,
    {
        let compiled = self.contracts.get(name)?;
        if compiled.bytecode.is_empty() {
            bail!("`{name}` is abstract or an interface: it has no bytecode");
        }
        let mut code = compiled.bytecode.to_vec();
        code.extend(args.abi_encode_params());
        let receipt = self
            .provider()
            .send_transaction(
                TransactionRequest::default()
                    .with_deploy_code(code)
                    .with_value(value),
            )
            .await
            .with_context(|| format!("deploying {name}"))?
            .get_receipt()
            .await?;
        if !receipt.status() {
            bail!(
                "deploying {name} reverted (transaction {})",
                receipt.transaction_hash
            );
        }
        receipt
            .contract_address
            .ok_or_else(|| anyhow!("deploying {name}: the receipt has no contract address"))
    }

    /// Name the custom error in `data`: one of the precompile's (`IInference`) or of any
    /// contract under `contracts/` (the `Inference` library's errors included).
    pub fn decode_error(&self, data: &[u8]) -> Option<DecodedError> {
        let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
        let args = Bytes::copy_from_slice(&data[4..]);
        if let Some(name) = IInferenceErrors::name_by_selector(selector) {
            return Some(DecodedError {
                name: name.to_string(),
                args,
            });
        }
        self.contracts
            .by_name
            .values()
            .flat_map(|c| c.abi.errors())
            .find(|e| e.selector() == selector)
            .map(|e| DecodedError {
                name: e.name.clone(),
                args,
            })
    }

    /// Stop the node.
    pub async fn stop(self) {
        self.node.stop().await;
    }
}
