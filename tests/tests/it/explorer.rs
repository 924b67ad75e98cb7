//! The explorer at `/explorer`, in headless Chromium (playwright-core, tests/browser/explorer.cjs):
//! a record made by the lending example is shown with its output, found by every kind of search,
//! verified (in the page and by the node's re-run); a record tampered with `anvil_setStorageAt`
//! fails; pages that do not exist say so; hostile strings show as text and never run; new blocks
//! arrive over the WebSocket. Needs Chromium and playwright-core: `scripts/install-browser`
//! (scripts/test runs it and sets VERINFER_BROWSER). With `VERINFER_SCREENSHOTS=DIR` the pages
//! are saved there (docs/explorer holds the committed ones).

use std::path::PathBuf;
use std::process::Command;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256, I256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use alloy::sol_types::{Revert, SolError, SolValue};
use serde_json::{json, Value};
use verinfer_node::tensor::format_fixed;
use verinfer_precompile::{record, ADDRESS};
use verinfer_tests::harness::Devnet;

sol! {
    #[sol(rpc)]
    interface CreditLending {
        function assess(address borrower, int256[] features) external returns (uint256 factorBps);
        event Assessed(address indexed borrower, int256 scoreBps, uint256 factorBps, uint256 inferenceId);
    }
}

/// Printable ASCII without spaces, so the node accepts it as a model's CID (its name).
const HOSTILE_CID: &str = "<img/src=x/onerror=window.__pwned=1>";
const HOSTILE_REASON: &str =
    "<script>window.__pwned=2</script><img src=x onerror=\"window.__pwned=3\"><b>bold</b>";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Init code that reverts with `data` (CODECOPY it to memory, REVERT).
fn reverting_init_code(data: &[u8]) -> Bytes {
    let len = u16::try_from(data.len()).unwrap().to_be_bytes();
    let mut code = vec![
        0x61, len[0], len[1], 0x61, 0x00, 15, 0x60, 0x00, 0x39, 0x61, len[0], len[1], 0x60, 0x00,
        0xfd,
    ];
    code.extend_from_slice(data);
    code.into()
}

/// Score `borrower`; the record id and the transaction.
async fn assess(devnet: &Devnet, lending: Address, borrower: Address) -> (U256, B256) {
    let features: Vec<I256> = [12000i64, 20, 1000, 0]
        .map(I256::try_from)
        .map(Result::unwrap)
        .to_vec();
    let receipt = CreditLending::new(lending, devnet.provider())
        .assess(borrower, features)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let assessed = receipt.decoded_log::<CreditLending::Assessed>().unwrap();
    (assessed.inferenceId, receipt.transaction_hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_finds_and_verifies_records_in_a_browser() {
    let browser = std::env::var_os("VERINFER_BROWSER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/browser"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        browser.join("node_modules/playwright-core").exists() && PathBuf::from(&chromium).exists(),
        "no playwright-core under {} or no Chromium at {chromium}: run scripts/install-browser (scripts/test does)",
        browser.display()
    );

    let devnet = Devnet::start().await.unwrap();
    let p = devnet.provider();
    let model = devnet.add_model("models/credit.onnx").await.unwrap();
    let lending = devnet
        .deploy_with_value("CreditLending", (model,), U256::from(10u128.pow(19)))
        .await
        .unwrap();
    let (id, tx) = assess(&devnet, lending, devnet.key(1).address()).await;
    let (tampered, _) = assess(&devnet, lending, devnet.key(2).address()).await;

    // Tamper with the second record: its last output word (the score) plus one.
    let stored: Value = p
        .raw_request("verinfer_getInference".into(), (tampered,))
        .await
        .unwrap();
    let outputs: Vec<verinfer_precompile::abi::Tensor> = stored["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| verinfer_precompile::abi::Tensor {
            shape: serde_json::from_value(t["shape"].clone()).unwrap(),
            values: t["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().parse().unwrap())
                .collect(),
            decimals: t["decimals"].as_u64().unwrap() as u8,
        })
        .collect();
    let words = outputs.abi_encode().len() / 32;
    let slot = record::base_slot(tampered) + U256::from(9 + words - 1);
    let score = outputs[0].values[0];
    let _: Value = p
        .raw_request(
            "anvil_setStorageAt".into(),
            (ADDRESS, slot, B256::from((score + I256::ONE).into_raw())),
        )
        .await
        .unwrap();

    // Hostile strings: a model named by a CID of markup, a transaction reverting with a script.
    let linear = Bytes::from(std::fs::read(root().join("models/linear.onnx")).unwrap());
    let hostile: Value = p
        .raw_request("verinfer_uploadModel".into(), (linear, HOSTILE_CID))
        .await
        .unwrap();
    let revert = Revert::from(HOSTILE_REASON).abi_encode();
    let reverted = p
        .send_transaction(
            TransactionRequest::default()
                .with_deploy_code(reverting_init_code(&revert))
                .with_gas_limit(300_000),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(!reverted.status());

    let record: Value = p
        .raw_request("verinfer_getInference".into(), (id,))
        .await
        .unwrap();
    let block_number = record["blockNumber"].as_u64().unwrap();
    let block: Value = p
        .raw_request(
            "eth_getBlockByNumber".into(),
            (format!("{block_number:#x}"), false),
        )
        .await
        .unwrap();
    let info: Value = p
        .raw_request("verinfer_getModel".into(), (model,))
        .await
        .unwrap();
    let output = &record["outputs"][0];
    let output = format_fixed(
        output["values"][0].as_str().unwrap().parse().unwrap(),
        output["decimals"].as_u64().unwrap() as u8,
    );
    let ops = info["ops"].clone();
    assert!(ops.as_array().is_some_and(|o| !o.is_empty()), "{info}");

    let screenshots = std::env::var("VERINFER_SCREENSHOTS").ok();
    let args = json!({
        "url": devnet.url().trim_end_matches('/'),
        "chromium": chromium,
        "screenshots": screenshots,
        "record": {
            "id": id.to::<u64>(),
            "tx": tx,
            "block": block_number,
            "blockHash": block["hash"],
            "model": model,
            "modelSize": info["size"],
            "inferGas": info["inferGas"],
            "ops": ops,
            "caller": format!("{lending:#x}"),
            "output": output,
            "input": "120.00, 0.20, 10.00, 0.00",
        },
        "tampered": tampered.to::<u64>(),
        "hostile": {"model": hostile["id"], "cid": HOSTILE_CID, "tx": reverted.transaction_hash, "reason": HOSTILE_REASON},
    });
    let script = root().join("tests/browser/explorer.cjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(args.to_string())
            .env("NODE_PATH", browser.join("node_modules"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("explorer: every step passed"),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    devnet.stop().await;
}
