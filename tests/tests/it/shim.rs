//! The code at 0xA00 for EVMs without the precompile (`InferenceShim`) and the `verinfer ffi`
//! protocol: the committed code is the compiled source, the node puts it in genesis, the
//! in-memory answer equals what the precompile does inside revm, and without cheatcodes the
//! shim names its limit. forge itself runs it in tests/tests/forge.rs.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use alloy::providers::Provider;
use alloy_primitives::{address, Address, Bytes, TxKind, U256};
use alloy_sol_types::{SolCall, SolInterface};
use revm::bytecode::Bytecode;
use revm::context::result::ExecutionResult;
use revm::state::AccountInfo;
use verinfer_precompile::shim::{self, FfiRequest, STATUS_RETURN, STATUS_REVERT};
use verinfer_precompile::IInference::{self, IInferenceErrors};
use verinfer_precompile::{
    Attester, InferencePrecompile, Mode, ModelStore, ADDRESS, GENESIS_NONCE,
};
use verinfer_tests::evm::{TestEvm, CHAIN_ID};
use verinfer_tests::harness::{solc_path, Devnet};
use verinfer_tests::{models, tensor};

const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");

/// `contract` in `contracts/src/{contract}.sol` compiled from `sources` (paths under
/// `contracts/`) with the settings the committed code was built with: `object` is
/// `deployedBytecode` (code put in genesis) or `bytecode` (creation code).
fn compiled(contract: &str, sources: &[&str], evm_version: &str, object: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = |f: &str| std::fs::read_to_string(root.join("contracts").join(f)).unwrap();
    let file = format!("src/{contract}.sol");
    let sources: serde_json::Map<String, serde_json::Value> = sources
        .iter()
        .chain([&file.as_str()])
        .map(|f| (f.to_string(), serde_json::json!({"content": source(f)})))
        .collect();
    let input = serde_json::json!({
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": true, "runs": 200},
            "evmVersion": evm_version,
            "metadata": {"appendCBOR": false},
            "outputSelection": {file.clone(): {contract: [format!("evm.{object}.object")]}},
        },
    });
    let mut solc = Command::new(solc_path().unwrap())
        .arg("--standard-json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    solc.stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = solc.wait_with_output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["contracts"][&file][contract]["evm"][object]["object"]
        .as_str()
        .unwrap_or_else(|| panic!("solc failed: {}", json["errors"]))
        .to_string()
}

/// Check (or with `VERINFER_UPDATE_SHIM=1`, rewrite) `contracts/shim/{contract}.hex`.
fn check_committed_code(contract: &str, committed: &str, compiled: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/shim")
        .join(format!("{contract}.hex"));
    if std::env::var_os("VERINFER_UPDATE_SHIM").is_some() {
        std::fs::write(path, format!("{compiled}\n")).unwrap();
        return;
    }
    assert_eq!(
        compiled,
        committed.trim(),
        "{} is stale: rerun this test with VERINFER_UPDATE_SHIM=1",
        path.display()
    );
}

/// The runtime code of a contract genesis holds (importing IInference.sol).
fn genesis_runtime(contract: &str, interface: &str) -> String {
    compiled(contract, &[interface], "paris", "deployedBytecode")
}

/// contracts/shim/InferenceShim.hex is contracts/src/InferenceShim.sol compiled.
#[test]
fn committed_code_is_the_compiled_source() {
    check_committed_code(
        "InferenceShim",
        shim::RUNTIME_CODE_HEX,
        genesis_runtime("InferenceShim", "src/IInference.sol"),
    );
}

/// contracts/shim/ZkRegistry.hex (the registry at 0xA02 in genesis) is its source compiled.
#[test]
fn committed_registry_code_is_the_compiled_source() {
    check_committed_code(
        "ZkRegistry",
        verinfer_precompile::zk_registry::RUNTIME_CODE_HEX,
        genesis_runtime("ZkRegistry", "src/IInference.sol"),
    );
}

/// contracts/shim/InferenceLightClient.hex (what `verinfer relay deploy` deploys) is its source
/// compiled for Prague.
#[test]
fn committed_light_client_code_is_the_compiled_source() {
    let sources = [
        "src/IInferenceLightClient.sol",
        "src/light/Rlp.sol",
        "src/light/MerkleTrie.sol",
        "src/light/Bls12381.sol",
    ];
    check_committed_code(
        "InferenceLightClient",
        verinfer_node::light_client::CREATION_CODE_HEX,
        compiled("InferenceLightClient", &sources, "prague", "bytecode"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_puts_the_shim_at_0xa00_and_0xf4_in_genesis() {
    let devnet = Devnet::start().await.unwrap();
    let code = devnet.provider().get_code_at(ADDRESS).await.unwrap();
    assert_eq!(code, shim::runtime_code());
    assert!(
        code.len() > 1000,
        "the shim is real code: {} bytes",
        code.len()
    );
    let og = verinfer_precompile::opengradient::OG_ADDRESS;
    assert_eq!(devnet.provider().get_code_at(og).await.unwrap(), code);
    devnet.stop().await;
}

fn precompile() -> Arc<InferencePrecompile> {
    let store = Arc::new(ModelStore::default());
    store.add_file(&models().join("credit.onnx")).unwrap();
    let attester = Attester::from_bytes(&alloy_primitives::B256::repeat_byte(7)).unwrap();
    Arc::new(InferencePrecompile::new(store, Mode::Sign(attester)))
}

fn infer_call() -> Vec<u8> {
    let model = verinfer_tests::harness::model_id("models/credit.onnx").unwrap();
    IInference::inferCall {
        modelId: model,
        inputs: vec![tensor(&[1, 4], &[12000, 20, 1000, 0], 2)],
        outputDecimals: 4,
    }
    .abi_encode()
}

fn request(data: Vec<u8>, count: u64) -> FfiRequest {
    FfiRequest {
        data: data.into(),
        caller: ALICE,
        value: U256::ZERO,
        direct: true,
        isStatic: false,
        chainId: U256::from(CHAIN_ID),
        blockNumber: U256::from(1),
        gasLimit: U256::from(10_000_000),
        inferenceCount: U256::from(count),
        openGradient: false,
    }
}

/// What `verinfer ffi` answers is what the precompile does in revm: return data, every storage
/// write, the log — for the first record and for one after others.
#[test]
fn the_ffi_answer_is_what_the_precompile_does_in_revm() {
    let precompile = precompile();
    let mut evm = TestEvm::new(Arc::clone(&precompile), &[ALICE]);
    for count in 0..2u64 {
        let ExecutionResult::Success { output, logs, .. } = evm.call(ALICE, ADDRESS, infer_call())
        else {
            panic!("infer failed in revm");
        };
        let answer = shim::answer(&precompile, &request(infer_call(), count), []).unwrap();
        let response = shim::decode_response(&answer).unwrap();
        assert_eq!(response.status, STATUS_RETURN);
        assert_eq!(response.output, *output.data(), "return data");
        assert!(
            response.slots.len() > 9,
            "a record and the count are written"
        );
        for (slot, value) in response.slots.iter().zip(&response.values) {
            assert_eq!(evm.precompile_slot(*slot), *value, "slot {slot}");
        }
        assert_eq!(logs.len(), 1);
        assert_eq!(response.topics, logs[0].data.topics(), "log topics");
        assert_eq!(response.logData, logs[0].data.data, "log data");
        let info = precompile.store().list().into_iter().next().unwrap();
        let decode_gas = precompile.store().schedule().decode_gas(infer_call().len());
        assert_eq!(response.gasUsed, U256::from(info.infer_gas + decode_gas));
    }
}

/// The call context is honoured: STATICCALL and DELEGATECALL may not record, ether is refused,
/// too little gas is out of gas, and nothing is written on a revert.
#[test]
fn the_ffi_answer_follows_the_call_context() {
    let precompile = precompile();
    let answer =
        |r: FfiRequest| shim::decode_response(&shim::answer(&precompile, &r, []).unwrap()).unwrap();
    let not_direct = IInferenceErrors::NotDirectCall(IInference::NotDirectCall {}).abi_encode();
    for (is_static, direct) in [(true, true), (false, false)] {
        let r = answer(FfiRequest {
            isStatic: is_static,
            direct,
            ..request(infer_call(), 0)
        });
        assert_eq!(
            (r.status, r.output.to_vec()),
            (STATUS_REVERT, not_direct.clone())
        );
        assert!(r.slots.is_empty() && r.topics.is_empty());
    }
    let r = answer(FfiRequest {
        value: U256::from(1),
        ..request(infer_call(), 0)
    });
    let refused = IInferenceErrors::ValueNotAccepted(IInference::ValueNotAccepted {}).abi_encode();
    assert_eq!(r.output.to_vec(), refused);
    let r = answer(FfiRequest {
        gasLimit: U256::from(50_000),
        ..request(infer_call(), 0)
    });
    assert_eq!(r.status, shim::STATUS_OUT_OF_GAS);
    assert!(r.slots.is_empty());
}

/// In an EVM without the precompile and without cheatcodes (cast run, another node), the shim
/// reverts with `PrecompileUnavailable` and says what to do.
#[test]
fn without_cheatcodes_the_shim_names_its_limit() {
    let mut evm = TestEvm::new(precompile(), &[ALICE]);
    evm.with_precompile = false;
    let code = shim::runtime_code();
    evm.db.insert_account_info(
        ADDRESS,
        AccountInfo {
            nonce: GENESIS_NONCE,
            code_hash: alloy_primitives::keccak256(&code),
            code: Some(Bytecode::new_raw(code)),
            ..Default::default()
        },
    );
    for data in [infer_call(), IInference::attesterCall {}.abi_encode()] {
        let result = evm.transact(ALICE, TxKind::Call(ADDRESS), data, 1_000_000);
        let ExecutionResult::Revert { output, .. } = result else {
            panic!("expected a revert, got {result:?}");
        };
        match IInferenceErrors::abi_decode(&output) {
            Ok(IInferenceErrors::PrecompileUnavailable(e)) => {
                assert!(e.hint.contains("verinfer node"), "{}", e.hint);
                assert!(e.hint.contains("--ffi"), "{}", e.hint);
            }
            other => panic!("expected PrecompileUnavailable, got {other:?} ({output})"),
        }
    }
    // The record views need no ffi: they read the shim's own storage.
    let count = IInference::inferenceCountCall {}.abi_encode();
    let result = evm.transact(ALICE, TxKind::Call(ADDRESS), count, 1_000_000);
    let ExecutionResult::Success { output, .. } = result else {
        panic!("inferenceCount failed: {result:?}");
    };
    assert_eq!(output.data(), &Bytes::from(U256::ZERO.to_be_bytes_vec()));
}
