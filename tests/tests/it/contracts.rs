//! End-to-end tests of the Solidity library and the example contracts: compiled from
//! `contracts/` with foundry-compilers, deployed on a real node over JSON-RPC, results compared
//! with a direct run of the engine, proofs checked in Solidity and in Rust.

use alloy::network::TransactionBuilder;
use alloy::primitives::{keccak256, Address, Bytes, B256, I256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent, SolValue};
use serde_json::Value;
use verinfer_precompile::abi::IInference::{self, InferenceRecord, InferenceRecorded};
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::{attestation, Attester, ADDRESS};
use verinfer_tests::harness::{revert_data, run_model, Devnet};
use verinfer_tests::tensor;

sol! {
    #[sol(rpc)]
    interface CreditLending {
        function assess(address borrower, int256[] features) external returns (uint256 factorBps);
        function quote(int256[] features) external view returns (uint256 factorBps);
        function deposit() external payable;
        function borrow(uint256 amount) external;
        function borrowLimit(address borrower) external view returns (uint256);
        function proofOf(address borrower) external view returns (uint256 inferenceId, bool valid);
        function factorFor(int256 scoreBps) external pure returns (uint256);
        event Assessed(address indexed borrower, int256 scoreBps, uint256 factorBps, uint256 inferenceId);
    }

    #[sol(rpc)]
    interface VolatilityFeePool {
        function updateFee(int256[] returnsPct) external returns (uint256);
        function feeBps() external view returns (uint256);
        function volatility() external view returns (int256);
        function feeFor(int256 vol) external pure returns (uint256);
        function quote(uint256 amountIn) external view returns (uint256 amountOut);
        function proof() external view returns (uint256 inferenceId, bool valid);
        event FeeUpdated(uint256 feeBps, int256 volatility, uint256 inferenceId);
    }

    #[sol(rpc)]
    interface GatedMint {
        function mint(uint256[] features) external returns (uint256 tokenId);
        function classify(uint256[] features) external view returns (uint256);
        function ownerOf(uint256 tokenId) external view returns (address);
        function inferenceOf(uint256 tokenId) external view returns (uint256);
        function proofOf(uint256 tokenId) external view returns (uint256 inferenceId, bool valid);
        event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    }
}

/// Calldata for `signature` (canonical types) with `args` ABI-encoded as parameters; lets the
/// tests call the probe with the precompile crate's own `Tensor` and `InferenceRecord` types.
fn calldata<A: SolValue>(signature: &str, args: A) -> Bytes
where
    for<'a> <A::SolType as alloy::sol_types::SolType>::Token<'a>:
        alloy::sol_types::abi::TokenSeq<'a>,
{
    let mut data = keccak256(signature)[..4].to_vec();
    data.extend(args.abi_encode_params());
    data.into()
}

const TENSOR: &str = "(uint32[],int256[],uint8)";

fn record_type() -> String {
    format!("(bytes32,bytes32,bytes32,{TENSOR}[],address,uint64,address,bytes)")
}

/// `eth_call` `data` on `to`; returns the raw output or the RPC error.
async fn call(
    p: &DynProvider,
    to: Address,
    data: Bytes,
) -> Result<Bytes, alloy::transports::RpcError<alloy::transports::TransportErrorKind>> {
    p.call(TransactionRequest::default().with_to(to).with_input(data))
        .await
}

/// The named custom error an `eth_call` from dev account 0 reverted with.
async fn revert_name(devnet: &Devnet, to: Address, data: Bytes) -> String {
    revert_name_as(devnet, 0, to, data).await
}

/// The named custom error an `eth_call` from dev account `from` reverted with.
async fn revert_name_as(devnet: &Devnet, from: usize, to: Address, data: Bytes) -> String {
    let tx = TransactionRequest::default()
        .with_from(devnet.key(from).address())
        .with_to(to)
        .with_input(data);
    let err = devnet
        .provider()
        .call(tx)
        .await
        .expect_err("the call must revert");
    let data = revert_data(&err).unwrap_or_else(|| panic!("no revert data in {err}"));
    devnet
        .decode_error(&data)
        .unwrap_or_else(|| panic!("undecodable revert data {data}"))
        .name
}

/// What a recorded inference should hold.
struct Expected<'a> {
    id: U256,
    model: B256,
    inputs: &'a [Tensor],
    outputs: &'a [Tensor],
    caller: Address,
}

/// Everything a recorded inference promises, checked through every interface a user has:
/// the precompile's `getInference`, `verinfer_getInference`, the Rust attestation code, the
/// Solidity library's `verify`, and the `InferenceRecorded` log in `receipt`.
async fn check_record(
    devnet: &Devnet,
    probe: Address,
    expect: Expected<'_>,
    receipt: &TransactionReceipt,
) -> InferenceRecord {
    let Expected {
        id,
        model,
        inputs,
        outputs: expected,
        caller,
    } = expect;
    let p = devnet.provider();
    let out = call(
        &p,
        ADDRESS,
        IInference::getInferenceCall { id }.abi_encode().into(),
    )
    .await
    .unwrap();
    let record = IInference::getInferenceCall::abi_decode_returns(&out).unwrap();
    assert_eq!(record.modelId, model);
    assert_eq!(record.outputs, expected, "recorded outputs = a direct run");
    assert_eq!(
        record.inputHash,
        keccak256((model, inputs.to_vec()).abi_encode_params())
    );
    assert_eq!(record.outputHash, keccak256(expected.to_vec().abi_encode()));
    assert_eq!(record.caller, caller);
    assert_eq!(record.blockNumber, receipt.block_number.unwrap());

    // The node's JSON view of the same record.
    let json: Value = p
        .raw_request("verinfer_getInference".into(), (id,))
        .await
        .unwrap();
    assert_eq!(json["signatureValid"], true);
    assert_eq!(
        json["signature"].as_str().unwrap(),
        record.signature.to_string()
    );
    let values: Vec<String> = expected[0].values.iter().map(|v| v.to_string()).collect();
    assert_eq!(json["outputs"][0]["values"], serde_json::json!(values));

    // Rust: the signature recovers to the attester over the EIP-712 digest.
    let attester: Address = p.raw_request("verinfer_attester".into(), ()).await.unwrap();
    assert_eq!(record.attester, attester);
    let chain_id = p.get_chain_id().await.unwrap();
    let digest = attestation::digest(chain_id, id, model, record.inputHash, record.outputHash);
    assert_eq!(
        attestation::recover(&digest, &record.signature).unwrap(),
        attester
    );
    assert_eq!(json["digest"].as_str().unwrap(), digest.to_string());

    // Solidity: the library computes the same hashes and digest, and verifies the record.
    let hashes = call(
        &p,
        probe,
        calldata(
            &format!("hashes(bytes32,{TENSOR}[],{TENSOR}[])"),
            (model, inputs.to_vec(), expected.to_vec()),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        <(B256, B256)>::abi_decode_params(&hashes).unwrap(),
        (record.inputHash, record.outputHash)
    );
    let sol_digest = call(
        &p,
        probe,
        calldata(
            "digest(uint256,uint256,bytes32,bytes32,bytes32)",
            (
                U256::from(chain_id),
                id,
                model,
                record.inputHash,
                record.outputHash,
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(B256::from_slice(&sol_digest), digest);
    let verified = call(&p, probe, calldata("verify(uint256)", (id,)))
        .await
        .unwrap();
    assert!(bool::abi_decode(&verified).unwrap(), "Solidity verifies");

    // A tampered record fails the Solidity check.
    let mut forged = record.clone();
    forged.outputs[0].values[0] += I256::ONE;
    let verify_forged = calldata(
        &format!("verifyRecord(uint256,{})", record_type()),
        (id, forged),
    );
    let ok = call(&p, probe, verify_forged).await.unwrap();
    assert!(!bool::abi_decode(&ok).unwrap(), "a forged output verifies");

    // The log.
    let log = receipt
        .inner
        .logs()
        .iter()
        .find(|l| l.address() == ADDRESS)
        .expect("an InferenceRecorded log");
    let event = InferenceRecorded::decode_log_data(log.data()).unwrap();
    assert_eq!((event.id, event.modelId, event.caller), (id, model, caller));
    assert_eq!(
        (event.inputHash, event.outputHash),
        (record.inputHash, record.outputHash)
    );
    record
}

fn fixed(values: &[f64], decimals: u8) -> Vec<I256> {
    let scale = 10f64.powi(decimals as i32);
    values
        .iter()
        .map(|v| I256::try_from((v * scale).round() as i64).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_lending_sets_the_collateral_factor_from_the_model() {
    let devnet = Devnet::start().await.unwrap();
    let model = devnet.add_model("models/credit.onnx").await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let address = devnet
        .deploy_with_value(
            "CreditLending",
            (model,),
            U256::from(10u128 * 10u128.pow(18)),
        )
        .await
        .unwrap();
    let assessor = CreditLending::new(address, devnet.provider());
    let alice = devnet.key(1).address();

    let features = fixed(&[120.0, 0.2, 10.0, 0.0], 2);
    let input = tensor(&[1, 4], &[12000, 20, 1000, 0], 2);
    let expected = run_model("models/credit.onnx", std::slice::from_ref(&input), 4).unwrap();
    let quoted = assessor.quote(features.clone()).call().await.unwrap();

    let receipt = assessor
        .assess(alice, features)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let assessed = receipt
        .decoded_log::<CreditLending::Assessed>()
        .expect("an Assessed event");
    let score = expected[0].values[0];
    assert_eq!(assessed.scoreBps, score);
    assert!(
        score > I256::try_from(9000).unwrap(),
        "a good borrower scores high: {score}"
    );
    let factor = assessor.factorFor(score).call().await.unwrap();
    assert_eq!(assessed.factorBps, factor);
    assert_eq!(quoted, factor, "predict through a view agrees with infer");

    check_record(
        &devnet,
        probe,
        Expected {
            id: assessed.inferenceId,
            model,
            inputs: &[input],
            outputs: &expected,
            caller: address,
        },
        &receipt,
    )
    .await;
    let proof = assessor.proofOf(alice).call().await.unwrap();
    assert_eq!(
        (proof.inferenceId, proof.valid),
        (assessed.inferenceId, true)
    );

    // Alice borrows up to her limit, and not a wei more.
    let as_alice = CreditLending::new(address, devnet.signer(1));
    let one_eth = U256::from(10u128.pow(18));
    as_alice
        .deposit()
        .value(one_eth)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let limit = as_alice.borrowLimit(alice).call().await.unwrap();
    assert_eq!(limit, one_eth * factor / U256::from(10_000));
    let over = as_alice.borrow(limit + U256::ONE).calldata().clone();
    assert_eq!(revert_name_as(&devnet, 1, address, over).await, "OverLimit");
    let borrowed = as_alice
        .borrow(limit)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(borrowed.status());
    assert_eq!(
        as_alice.borrowLimit(alice).call().await.unwrap(),
        U256::ZERO
    );

    // Only the assessor scores.
    let data = as_alice
        .assess(alice, fixed(&[1.0; 4], 2))
        .calldata()
        .clone();
    let name = revert_name_as(&devnet, 1, address, data).await;
    assert_eq!(name, "NotAssessor");
    devnet.stop().await;
}

/// `updateFee(returns)` on the pool (returns in percent, four decimals): the emitted volatility
/// is the model file's output on the same input, and the record checks out. Returns the event
/// and that volatility.
async fn update_fee<P: alloy::providers::Provider>(
    devnet: &Devnet,
    probe: Address,
    pool: &VolatilityFeePool::VolatilityFeePoolInstance<P>,
    model: B256,
    model_file: &str,
    returns: &[f64],
) -> (alloy::primitives::Log<VolatilityFeePool::FeeUpdated>, I256) {
    let values = fixed(returns, 4);
    let input = Tensor {
        shape: vec![1, 16],
        values: values.clone(),
        decimals: 4,
    };
    let expected = run_model(model_file, std::slice::from_ref(&input), 4).unwrap();
    let receipt = pool
        .updateFee(values)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let updated = receipt
        .decoded_log::<VolatilityFeePool::FeeUpdated>()
        .unwrap();
    let vol = expected[0].values[0];
    assert_eq!(updated.volatility, vol);
    check_record(
        devnet,
        probe,
        Expected {
            id: updated.inferenceId,
            model,
            inputs: &[input],
            outputs: &expected,
            caller: *pool.address(),
        },
        &receipt,
    )
    .await;
    (updated, vol)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatility_pool_fee_follows_the_model() {
    let devnet = Devnet::start().await.unwrap();
    let model = devnet.add_model("models/volatility.onnx").await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let million = U256::from(1_000_000u64);
    let address = devnet
        .deploy("VolatilityFeePool", (model, million, million))
        .await
        .unwrap();
    let pool = VolatilityFeePool::new(address, devnet.provider());
    let calm_quote = pool.quote(U256::from(1000)).call().await.unwrap();

    // A choppy market: returns of ±4.5% and ±3.25%.
    let returns: Vec<f64> = (0..16)
        .map(|i| if i % 2 == 0 { 4.5 } else { -3.25 })
        .collect();
    let (updated, vol) = update_fee(
        &devnet,
        probe,
        &pool,
        model,
        "models/volatility.onnx",
        &returns,
    )
    .await;
    // sqrt((4.5² + 3.25²) / 2) = 3.92508...%
    assert!((vol.as_i64() - 39251).abs() <= 1, "volatility {vol}");
    let fee = pool.feeFor(vol).call().await.unwrap();
    assert_eq!(updated.feeBps, fee);
    assert_eq!(fee, U256::from(5 + 39)); // floor + 10 bps per percent
    assert_eq!(pool.feeBps().call().await.unwrap(), fee);
    assert!(pool.quote(U256::from(1000)).call().await.unwrap() < calm_quote);
    let proof = pool.proof().call().await.unwrap();
    assert_eq!(
        (proof.inferenceId, proof.valid),
        (updated.inferenceId, true)
    );

    let short = pool.updateFee(fixed(&[1.0; 15], 4)).calldata().clone();
    assert_eq!(revert_name(&devnet, address, short).await, "WrongWindow");
    devnet.stop().await;
}

/// The same pool on a real model: a LightGBM regressor trained to estimate realised volatility
/// (models/real/volatility_lgbm.onnx, exported by onnxmltools with converter defaults). The
/// contract does not change; the fee follows the trees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatility_pool_runs_on_a_lightgbm_model() {
    let devnet = Devnet::start().await.unwrap();
    let model = devnet
        .add_model("models/real/volatility_lgbm.onnx")
        .await
        .unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let million = U256::from(1_000_000u64);
    let address = devnet
        .deploy("VolatilityFeePool", (model, million, million))
        .await
        .unwrap();
    let pool = VolatilityFeePool::new(address, devnet.provider());
    let mut fees = vec![];
    for (calm, amplitude) in [(true, 0.2), (false, 4.0)] {
        let returns: Vec<f64> = (0..16)
            .map(|i| {
                if i % 2 == 0 {
                    amplitude
                } else {
                    -amplitude * 0.8
                }
            })
            .collect();
        let (updated, vol) = update_fee(
            &devnet,
            probe,
            &pool,
            model,
            "models/real/volatility_lgbm.onnx",
            &returns,
        )
        .await;
        assert_eq!(
            updated.feeBps,
            pool.feeFor(vol).call().await.unwrap(),
            "calm: {calm}"
        );
        fees.push(updated.feeBps);
    }
    // The model learned that a stormy window is more volatile than a calm one.
    assert!(fees[1] > fees[0], "fees {fees:?}");
    devnet.stop().await;
}

/// Deterministic pseudo-random uint8 feature vectors.
fn features(seed: u64) -> Vec<u64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..32)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 256
        })
        .collect()
}

fn class_of(values: &[u64]) -> usize {
    let ints: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    let out = run_model("models/quantized.onnx", &[tensor(&[1, 32], &ints, 0)], 0).unwrap();
    let v = &out[0].values;
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_mint_admits_only_the_allowed_class() {
    let devnet = Devnet::start().await.unwrap();
    let model = devnet.add_model("models/quantized.onnx").await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();

    // Two applicants the classifier puts in different classes.
    let good = features(1);
    let allowed = class_of(&good);
    let bad = (2..200)
        .map(features)
        .find(|f| class_of(f) != allowed)
        .expect("some features fall in another class");
    let address = devnet
        .deploy("GatedMint", (model, U256::from(allowed)))
        .await
        .unwrap();
    let mint = GatedMint::new(address, devnet.provider());
    let to_u256 = |f: &[u64]| f.iter().map(|&v| U256::from(v)).collect::<Vec<_>>();
    assert_eq!(
        mint.classify(to_u256(&good)).call().await.unwrap(),
        U256::from(allowed)
    );

    let receipt = mint
        .mint(to_u256(&good))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let transfer = receipt.decoded_log::<GatedMint::Transfer>().unwrap();
    assert_eq!(
        (transfer.to, transfer.tokenId),
        (devnet.key(0).address(), U256::ONE)
    );
    let id = mint.inferenceOf(U256::ONE).call().await.unwrap();
    let ints: Vec<i64> = good.iter().map(|&v| v as i64).collect();
    let input = tensor(&[1, 32], &ints, 0);
    let expected = run_model("models/quantized.onnx", std::slice::from_ref(&input), 0).unwrap();
    check_record(
        &devnet,
        probe,
        Expected {
            id,
            model,
            inputs: &[input],
            outputs: &expected,
            caller: address,
        },
        &receipt,
    )
    .await;
    let proof = mint.proofOf(U256::ONE).call().await.unwrap();
    assert_eq!((proof.inferenceId, proof.valid), (id, true));

    let refused = mint.mint(to_u256(&bad)).calldata().clone();
    assert_eq!(revert_name(&devnet, address, refused).await, "NotEligible");
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_revert_with_named_errors_through_the_library() {
    let devnet = Devnet::start().await.unwrap();
    let credit = devnet.add_model("models/credit.onnx").await.unwrap();
    let quantized = devnet.add_model("models/quantized.onnx").await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let good = vec![tensor(&[1, 4], &[100, 20, 300, 0], 2)];
    let infer_sig = format!("infer(bytes32,{TENSOR}[],uint8)");

    // The good call works through the probe, so each failure below is the input's fault.
    let ok = call(
        &devnet.provider(),
        probe,
        calldata(&infer_sig, (credit, good.clone(), U256::from(4))),
    )
    .await
    .unwrap();
    let (id, _) = <(U256, Vec<Tensor>)>::abi_decode_params(&ok).unwrap();
    assert_eq!(id, U256::ONE);

    let cases: Vec<(&str, Bytes)> = vec![
        (
            "ShapeMismatch",
            calldata(
                &infer_sig,
                (credit, vec![tensor(&[1, 3], &[1, 2, 3], 0)], U256::from(4)),
            ),
        ),
        (
            "UnknownModel",
            calldata(
                &infer_sig,
                (B256::repeat_byte(7), good.clone(), U256::from(4)),
            ),
        ),
        (
            "ValueOutOfRange",
            calldata(
                &infer_sig,
                (quantized, vec![tensor(&[1, 32], &[300; 32], 0)], U256::ZERO),
            ),
        ),
        (
            "WrongInputCount",
            calldata(&infer_sig, (credit, Vec::<Tensor>::new(), U256::from(4))),
        ),
        (
            "InferenceOutOfGas",
            calldata(
                &format!("inferWithGas(uint256,bytes32,{TENSOR}[],uint8)"),
                (U256::from(30_000), credit, good.clone(), U256::from(4)),
            ),
        ),
        (
            "NotDirectCall",
            calldata(
                &format!("inferStatic(bytes32,{TENSOR}[],uint8)"),
                (credit, good.clone(), U256::from(4)),
            ),
        ),
        (
            "NotDirectCall",
            calldata(
                &format!("inferDelegate(bytes32,{TENSOR}[],uint8)"),
                (credit, good.clone(), U256::from(4)),
            ),
        ),
    ];
    for (expected, data) in cases {
        assert_eq!(revert_name(&devnet, probe, data).await, expected);
    }

    // A transaction gets the same error from gas estimation, and nothing is recorded.
    let err = devnet
        .provider()
        .send_transaction(
            TransactionRequest::default()
                .with_to(probe)
                .with_input(calldata(
                    &infer_sig,
                    (B256::repeat_byte(7), good.clone(), U256::from(4)),
                )),
        )
        .await
        .unwrap_err();
    let data = revert_data(&err).expect("revert data from eth_estimateGas");
    assert_eq!(devnet.decode_error(&data).unwrap().name, "UnknownModel");
    let count = call(
        &devnet.provider(),
        ADDRESS,
        IInference::inferenceCountCall {}.abi_encode().into(),
    )
    .await
    .unwrap();
    assert_eq!(U256::abi_decode(&count).unwrap(), U256::ZERO);
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_digest_and_signature_agree_between_rust_and_solidity() {
    let devnet = Devnet::start().await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let p = devnet.provider();
    let attester = Attester::from_bytes(&keccak256("a key only this test knows")).unwrap();
    for (chain_id, id) in [(1u64, 1u64), (31337, 42), (u64::MAX, u64::MAX)] {
        let model = keccak256(chain_id.to_be_bytes());
        let (input_hash, output_hash) = (keccak256(b"in"), keccak256(id.to_be_bytes()));
        let id = U256::from(id);
        // Rust → Solidity: the same digest.
        let rust = attestation::digest(chain_id, id, model, input_hash, output_hash);
        let sol = call(
            &p,
            probe,
            calldata(
                "digest(uint256,uint256,bytes32,bytes32,bytes32)",
                (U256::from(chain_id), id, model, input_hash, output_hash),
            ),
        )
        .await
        .unwrap();
        assert_eq!(B256::from_slice(&sol), rust, "chain {chain_id} id {id}");
    }

    // A Rust signature over this chain's digest recovers in Solidity (ecrecover), and a
    // signature with a flipped bit or a high s does not.
    let chain_id = p.get_chain_id().await.unwrap();
    let id = U256::from(9);
    let outputs = vec![tensor(&[1], &[5], 0)];
    let mut record = InferenceRecord {
        modelId: B256::repeat_byte(1),
        inputHash: B256::repeat_byte(2),
        outputHash: keccak256(outputs.abi_encode()),
        outputs,
        caller: Address::repeat_byte(3),
        blockNumber: 1,
        attester: attester.address(),
        signature: Default::default(),
    };
    let digest = attestation::record_digest(chain_id, id, &record);
    record.signature = attester.sign(&digest).to_vec().into();
    let signer_sig = format!("signer(uint256,{})", record_type());
    let recovered = call(&p, probe, calldata(&signer_sig, (id, record.clone())))
        .await
        .unwrap();
    assert_eq!(Address::abi_decode(&recovered).unwrap(), attester.address());

    let mut flipped = record.clone();
    let mut sig = flipped.signature.to_vec();
    sig[10] ^= 1;
    flipped.signature = sig.into();
    let recovered = call(&p, probe, calldata(&signer_sig, (id, flipped)))
        .await
        .unwrap();
    assert_ne!(Address::abi_decode(&recovered).unwrap(), attester.address());

    // Solidity → Rust: a digest the library computed, signed in Rust, recovers in Rust.
    let sol = call(
        &p,
        probe,
        calldata(
            "digest(uint256,uint256,bytes32,bytes32,bytes32)",
            (
                U256::from(chain_id),
                id,
                record.modelId,
                record.inputHash,
                record.outputHash,
            ),
        ),
    )
    .await
    .unwrap();
    let sol_digest = B256::from_slice(&sol);
    let signature = attester.sign(&sol_digest);
    assert_eq!(
        attestation::recover(&sol_digest, &signature).unwrap(),
        attester.address()
    );
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_point_helpers() {
    let devnet = Devnet::start().await.unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let p = devnet.provider();
    let i = |v: i64| I256::try_from(v).unwrap();
    // rescale rounds half to even when it drops places, like the precompile's outputs.
    for (value, from, to, expected) in [
        (15, 1, 0, 2),
        (25, 1, 0, 2),
        (-15, 1, 0, -2),
        (-25, 1, 0, -2),
        (1249, 3, 1, 12),
        (1251, 3, 1, 13),
        (7, 0, 3, 7000),
        (-7, 2, 2, -7),
    ] {
        let out = call(
            &p,
            probe,
            calldata(
                "rescale(int256,uint8,uint8)",
                (i(value), U256::from(from), U256::from(to)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            I256::abi_decode(&out).unwrap(),
            i(expected),
            "rescale({value}, {from}, {to})"
        );
    }
    let overflow = calldata(
        "rescale(int256,uint8,uint8)",
        (I256::MAX, U256::ZERO, U256::ONE),
    );
    assert_eq!(
        revert_name(&devnet, probe, overflow).await,
        "RescaleOverflow"
    );

    for (a, da, b, db, expected) in [(15, 1, 150, 2, 0i8), (-1, 0, 5, 1, -1), (2, 0, 199, 2, 1)] {
        let out = call(
            &p,
            probe,
            calldata(
                "compare(int256,uint8,int256,uint8)",
                (i(a), U256::from(da), i(b), U256::from(db)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            I256::abi_decode(&out).unwrap(),
            I256::try_from(expected).unwrap()
        );
    }
    let out = call(
        &p,
        probe,
        calldata("argmax(int256[])", (vec![i(-3), i(9), i(2), i(9)],)),
    )
    .await
    .unwrap();
    assert_eq!(U256::abi_decode(&out).unwrap(), U256::ONE, "first of ties");
    let empty = calldata("argmax(int256[])", (Vec::<I256>::new(),));
    assert_eq!(revert_name(&devnet, probe, empty).await, "EmptyTensor");
    devnet.stop().await;
}
