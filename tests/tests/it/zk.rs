//! Zero-knowledge proofs of inference end to end: `verinfer zk setup` (ezkl circuit, keys, a
//! Solidity verifier deployed and registered at 0xA02), a contract's `infer`, `verinfer zk
//! prove` (proof submitted to the registry), `isProven`, the example contract that acts only on
//! a proven result, `verinfer zk check`, and every bad submission reverting with its own error.
//!
//! Needs ezkl: `scripts/test` installs it (scripts/install-ezkl) and sets VERINFER_EZKL_PYTHON.

use std::path::Path;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, I256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use verinfer_node::zk::ProofFile;
use verinfer_precompile::abi::IInference::{self, InferenceRecorded};
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::opengradient::{
    ModelInferenceMode, ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number,
    OGInference, OG_ADDRESS,
};
use verinfer_precompile::zk_registry::IZkRegistry::{self, IZkRegistryErrors};
use verinfer_precompile::zk_registry::ADDRESS as REGISTRY;
use verinfer_tests::harness::{revert_data, Devnet};
use verinfer_tests::models;
use verinfer_tests::node::{dev_keys, provider, verinfer_bin, ChildNode};

sol! {
    #[sol(rpc)]
    interface ProvenSignal {
        function request(int256[] features, uint8 decimals) external returns (uint256 id);
        function settle(uint256 id) external returns (int256 result);
        function signal() external view returns (int256);
        function resultOf(uint256 id) external view returns (int256);
        event Requested(uint256 indexed id, address indexed requester, int256 result);
    }
}

/// One ZK test at a time: each runs ezkl on both cores for minutes.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Run `verinfer zk ARGS… --rpc URL --cache DIR` off the async runtime; exit code and output.
async fn zk(url: &str, cache: &Path, args: &[&str]) -> (i32, String) {
    let mut full: Vec<String> = std::iter::once("zk".to_string())
        .chain(args.iter().map(|s| s.to_string()))
        .collect();
    full.extend([
        "--rpc".into(),
        url.to_string(),
        "--cache".into(),
        cache.display().to_string(),
    ]);
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(verinfer_bin())
            .args(&full)
            .output()
            .expect("verinfer runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .expect("the command's thread")
}

/// The value after `label` on a line of `out`.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"))
}

/// `values / 10^decimals` as one `[1, n]` input through `ProvenSignal.request`; the record id.
async fn request(devnet: &Devnet, signal: Address, values: &[i64], decimals: u8) -> U256 {
    let contract = ProvenSignal::new(signal, devnet.provider());
    let features: Vec<I256> = values.iter().map(|&v| I256::try_from(v).unwrap()).collect();
    let receipt = contract
        .request(features, decimals)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "request reverted");
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| ProvenSignal::Requested::decode_log(&l.inner).ok())
        .expect("a Requested event")
        .id
}

/// The id of the record a successful transaction made (its `InferenceRecorded` event).
fn recorded_id(receipt: &alloy::rpc::types::TransactionReceipt) -> U256 {
    assert!(receipt.status(), "the transaction reverted");
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| InferenceRecorded::decode_log(&l.inner).ok())
        .expect("an InferenceRecorded event")
        .id
}

/// `eth_call` `data` on the registry: the revert, decoded by the registry's errors.
async fn registry_revert(p: &DynProvider, data: Vec<u8>) -> IZkRegistryErrors {
    let err = p
        .call(
            TransactionRequest::default()
                .with_to(REGISTRY)
                .with_input(Bytes::from(data)),
        )
        .await
        .expect_err("the call reverts");
    let data = revert_data(&err).unwrap_or_else(|| panic!("no revert data: {err}"));
    IZkRegistryErrors::abi_decode(&data).unwrap_or_else(|_| panic!("not a registry error: {data}"))
}

async fn is_proven(p: &DynProvider, id: U256) -> bool {
    let ret = p
        .call(
            TransactionRequest::default()
                .with_to(REGISTRY)
                .with_input(IZkRegistry::isProvenCall { id }.abi_encode()),
        )
        .await
        .unwrap();
    IZkRegistry::isProvenCall::abi_decode_returns(&ret).unwrap()
}

fn submit(p: &ProofFile) -> IZkRegistry::submitCall {
    p.submit_call()
}

fn read_proof(path: &Path) -> ProofFile {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_models_record_is_proven_on_chain_and_every_bad_submission_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let devnet = Devnet::start().await.unwrap();
    // Its own account: dev account 0 is the CLI's and deploys, and alloy caches nonces.
    let p = devnet.signer(3);
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();
    let model = devnet.add_model("models/linear.onnx").await.unwrap();
    let other_model = devnet.add_model("models/credit.onnx").await.unwrap();
    let signal = devnet.deploy("ProvenSignal", (model,)).await.unwrap();
    let id = request(&devnet, signal, &[5000, -2500, 1250, 9000], 4).await;

    // Before any setup: no verifier, so no proof.
    let (code, out) = zk(&devnet.url(), cache, &["prove", &id.to_string()]).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("NoSetup"), "{out}");

    let (code, out) = zk(&devnet.url(), cache, &["setup", &model.to_string()]).await;
    assert_eq!(code, 0, "{out}");
    let verifier: Address = field(&out, "verifier").parse().unwrap();
    assert!(
        out.contains("devnet only"),
        "the local SRS is labelled: {out}"
    );
    let setup = IZkRegistry::setupOfCall::abi_decode_returns(
        &p.call(
            TransactionRequest::default()
                .with_to(REGISTRY)
                .with_input(IZkRegistry::setupOfCall { modelId: model }.abi_encode()),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(setup.verifier, verifier);
    assert_eq!((setup.inputCount, setup.outputCount), (4, 1));

    // A second, different registration of the same model keeps the first; an identical one is
    // a no-op.
    let mut again = IZkRegistry::registerCall {
        modelId: model,
        verifier: setup.verifier,
        settingsHash: setup.settingsHash,
        inputScale: setup.inputScale,
        outputScale: setup.outputScale,
        inputCount: setup.inputCount,
        outputCount: setup.outputCount,
        tolerance: setup.tolerance,
    };
    p.call(
        TransactionRequest::default()
            .with_to(REGISTRY)
            .with_input(again.abi_encode()),
    )
    .await
    .expect("an identical registration is a no-op");
    again.tolerance += U256::from(1u8);
    assert!(matches!(
        registry_revert(&p, again.abi_encode()).await,
        IZkRegistryErrors::AlreadyRegistered(e) if e.verifier == verifier
    ));

    // Phase one of the example: the result waits for its proof.
    let contract = ProvenSignal::new(signal, p.clone());
    let err = contract
        .settle(id)
        .call()
        .await
        .expect_err("not proven yet");
    let data = err.as_revert_data().expect("revert data");
    assert_eq!(devnet.decode_error(&data).unwrap().name, "NotProven");
    assert!(!is_proven(&p, id).await);

    // Prove and submit.
    let proof_path = cache.join("proof.json");
    let (code, out) = zk(
        &devnet.url(),
        cache,
        &[
            "prove",
            &id.to_string(),
            "--out",
            proof_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("proven"), "{out}");
    assert!(is_proven(&p, id).await);
    let proof = read_proof(&proof_path);
    assert_eq!(proof.instances.len(), 5);

    // Phase two: the contract acts on the proven result, once.
    let result = contract.resultOf(id).call().await.unwrap();
    contract
        .settle(id)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(contract.signal().call().await.unwrap(), result);

    // A second submit of a proven record.
    assert!(matches!(
        registry_revert(&p, submit(&proof).abi_encode()).await,
        IZkRegistryErrors::AlreadyProven(_)
    ));
    let (code, out) = zk(&devnet.url(), cache, &["prove", &id.to_string()]).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("AlreadyProven"), "{out}");

    // A second record, with other inputs: proved without submitting.
    let id2 = request(&devnet, signal, &[-7000, 3000, 100, -4200], 4).await;
    let proof2_path = cache.join("proof2.json");
    let (code, out) = zk(
        &devnet.url(),
        cache,
        &[
            "prove",
            &id2.to_string(),
            "--no-submit",
            "--out",
            proof2_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(!is_proven(&p, id2).await);
    let proof2 = read_proof(&proof2_path);

    // A proof for other inputs: record 1's proof and inputs for record 2.
    let mut wrong = submit(&proof);
    wrong.id = id2;
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::InputsNotRecorded(_)
    ));
    // Record 2's inputs with record 1's instances and proof.
    wrong.inputs = submit(&proof2).inputs;
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::InputInstanceMismatch(e) if e.index == U256::ZERO
    ));
    // Output instances that do not match the record.
    let mut wrong = submit(&proof2);
    let last = wrong.instances.len() - 1;
    wrong.instances[last] = proof.instances[last];
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::OutputOutOfTolerance(e) if e.index == U256::from(last)
    ));
    // Too few instances.
    let mut wrong = submit(&proof2);
    wrong.instances.pop();
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::InstanceCountMismatch(_)
    ));
    // One flipped proof byte, sent as a real transaction: it reverts and changes nothing.
    let mut wrong = submit(&proof2);
    let mut bytes = wrong.proof.to_vec();
    bytes[100] ^= 1;
    wrong.proof = bytes.into();
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::ProofRejected(_)
    ));
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(REGISTRY)
                .with_input(wrong.abi_encode())
                .with_gas_limit(3_000_000),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(!receipt.status());
    assert!(!is_proven(&p, id2).await);
    // A record that does not exist.
    let mut wrong = submit(&proof2);
    wrong.id = U256::from(999u32);
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::UnknownRecord(_)
    ));
    let (code, out) = zk(&devnet.url(), cache, &["prove", "999"]).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("UnknownRecord"), "{out}");
    // A record of a model with no setup (the credit model, on record 2's inputs).
    let other_signal = devnet.deploy("ProvenSignal", (other_model,)).await.unwrap();
    let id3 = request(&devnet, other_signal, &[-7000, 3000, 100, -4200], 4).await;
    let mut wrong = submit(&proof2);
    wrong.id = id3;
    assert!(matches!(
        registry_revert(&p, wrong.abi_encode()).await,
        IZkRegistryErrors::NoSetup(e) if e.modelId == other_model
    ));
    // A proof of another model: the credit model's proof of the same inputs, for the linear
    // model's record 2. Its setup takes an SRS file (the linear setup's, of the same size), as
    // a ceremony's would be given: not labelled devnet-only.
    let srs = cache.join(model.to_string()).join("kzg.srs");
    let (code, out) = zk(
        &devnet.url(),
        cache,
        &[
            "setup",
            &other_model.to_string(),
            "--srs",
            srs.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("devnet only"), "{out}");
    assert_eq!(field(&out, "srs"), srs.display().to_string(), "{out}");
    let proof3_path = cache.join("proof3.json");
    let (code, out) = zk(
        &devnet.url(),
        cache,
        &[
            "prove",
            &id3.to_string(),
            "--no-submit",
            "--out",
            proof3_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let mut wrong = submit(&read_proof(&proof3_path));
    wrong.id = id2;
    let refused = registry_revert(&p, wrong.abi_encode()).await;
    assert!(
        matches!(
            refused,
            IZkRegistryErrors::InputInstanceMismatch(_)
                | IZkRegistryErrors::OutputOutOfTolerance(_)
                | IZkRegistryErrors::ProofRejected(_)
        ),
        "{refused:?}"
    );

    // The credit model (an MLP: Gemm, ReLU, Gemm, Sigmoid): its own record proven on chain.
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(REGISTRY)
                .with_input(submit(&read_proof(&proof3_path)).abi_encode()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert!(is_proven(&p, id3).await);

    // The untampered proof of record 2 still goes through.
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(REGISTRY)
                .with_input(submit(&proof2).abi_encode()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert!(is_proven(&p, id2).await);
    println!("submit gas (linear): {}", receipt.gas_used);

    // Anyone re-derives the verifier from the model's bytes, settings and SRS.
    let (code, out) = zk(&devnet.url(), cache, &["check", &model.to_string()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("belongs to model"), "{out}");

    // A circuit over the row bound, and a model the prover cannot express: named errors, and
    // nothing registered.
    let mlp = models().join("mlp.onnx").display().to_string();
    let (code, out) = zk(
        &devnet.url(),
        cache,
        &["setup", &mlp, "--max-logrows", "12"],
    )
    .await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("CircuitTooLarge"), "{out}");
    assert!(out.contains("over the bound of 2^12"), "{out}");
    let tree = devnet
        .add_model("models/real/lgbm_regressor.onnx")
        .await
        .unwrap();
    let (code, out) = zk(&devnet.url(), cache, &["setup", &tree.to_string()]).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("UnsupportedModel"), "{out}");
    assert!(out.contains("TreeEnsembleRegressor"), "{out}");
    let (code, out) = zk(
        &devnet.url(),
        cache,
        &["prove", &id.to_string(), "--no-submit"],
    )
    .await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("AlreadyProven"), "{out}");

    devnet.stop().await;
}

/// A small CNN (Conv, ReLU, MaxPool, Conv, GlobalAveragePool, Gemm, Softmax) on a 12×12 image:
/// set up, recorded by a contract's `infer`, proven, `isProven`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cnns_record_is_proven_on_chain() {
    let _one = ONE_AT_A_TIME.lock().await;
    let devnet = Devnet::start().await.unwrap();
    let p = devnet.signer(3);
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();
    let model = devnet.add_model("models/cnn.onnx").await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let (code, out) = zk(&devnet.url(), cache, &["setup", &model.to_string()]).await;
    assert_eq!(code, 0, "{out}");

    let image = Tensor {
        shape: vec![1, 1, 12, 12],
        values: (0..144)
            .map(|i| I256::try_from((i * 29) % 201 - 100).unwrap())
            .collect(),
        decimals: 2,
    };
    // InferenceProbe.infer has the precompile's signature.
    let call = IInference::inferCall {
        modelId: model,
        inputs: vec![image],
        outputDecimals: 6,
    };
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(probe)
                .with_input(call.abi_encode()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let id = recorded_id(&receipt);
    assert!(!is_proven(&p, id).await);
    let (code, out) = zk(&devnet.url(), cache, &["prove", &id.to_string()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(is_proven(&p, id).await);
    devnet.stop().await;
}

/// `verinfer node --zk-prover`: a record of a model with a setup is proven in the background,
/// and one recorded while the node ran without the prover is proven after a restart with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_prover_proves_new_records_and_catches_up_after_a_restart() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().display().to_string();
    // The prover submits as dev account 5; the CLI sends as account 0, the test as account 1.
    let prover_key = format!("0x{}", alloy::hex::encode(dev_keys()[5].to_bytes()));
    let with_prover = [
        "--zk-prover",
        "--zk-cache",
        &cache_arg,
        "--zk-prover-key",
        &prover_key,
    ];
    let node = ChildNode::start(data.path(), &with_prover);
    let linear = models().join("linear.onnx").display().to_string();
    let (code, out) = zk(&node.url(), cache.path(), &["setup", &linear]).await;
    assert_eq!(code, 0, "{out}");
    let model: alloy::primitives::B256 = field(&out, "model").parse().unwrap();

    let infer = |values: [i64; 4]| IInference::inferCall {
        modelId: model,
        inputs: vec![Tensor {
            shape: vec![1, 4],
            values: values.iter().map(|&v| I256::try_from(v).unwrap()).collect(),
            decimals: 3,
        }],
        outputDecimals: 6,
    };
    let record = |url: String, call: IInference::inferCall| async move {
        let p = provider(&url, 1);
        let receipt = p
            .send_transaction(
                TransactionRequest::default()
                    .with_to(verinfer_precompile::ADDRESS)
                    .with_input(call.abi_encode()),
            )
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status());
        recorded_id(&receipt)
    };
    let wait_proven = |url: String, id: U256| async move {
        let p = provider(&url, 1).erased();
        for _ in 0..600 {
            if is_proven(&p, id).await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        false
    };

    let id1 = record(node.url(), infer([500, -250, 125, 875])).await;
    assert!(
        wait_proven(node.url(), id1).await,
        "record {id1} was not proven by the node's prover"
    );

    // A `ZK` request through the OpenGradient facade at 0xF4 is proven too.
    let og = OGInference::runModelInferenceCall {
        request: ModelInferenceRequest {
            mode: ModelInferenceMode::ZK,
            modelCID: model.to_string(),
            input: ModelInput {
                numbers: vec![MultiDimensionalNumberTensor {
                    name: "x".into(),
                    values: [(25, 2), (-5, 1), (3, 0), (-125, 3)]
                        .into_iter()
                        .map(|(value, decimals)| Number { value, decimals })
                        .collect(),
                    shape: vec![1, 4],
                }],
                strings: vec![],
            },
        },
    };
    let receipt = provider(&node.url(), 1)
        .send_transaction(
            TransactionRequest::default()
                .with_to(OG_ADDRESS)
                .with_input(og.abi_encode()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let og_id = recorded_id(&receipt);
    assert!(
        wait_proven(node.url(), og_id).await,
        "the facade's ZK record {og_id} was not proven"
    );

    // Without the prover: a record stays unproven.
    node.kill();
    let node = ChildNode::start(data.path(), &[]);
    let id2 = record(node.url(), infer([-100, 200, -300, 400])).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(!is_proven(&provider(&node.url(), 1).erased(), id2).await);
    node.kill();
    // Back with the prover: it catches up.
    let node = ChildNode::start(data.path(), &with_prover);
    assert!(
        wait_proven(node.url(), id2).await,
        "record {id2} was not proven after the restart"
    );
    assert!(is_proven(&provider(&node.url(), 1).erased(), id1).await);
    node.kill();
}
