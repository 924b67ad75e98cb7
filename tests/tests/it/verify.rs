//! `verinfer verify` end to end: a chain with inferences over every test model replays clean
//! from a running node and from a copy of its data directory; each thing that can be tampered
//! with is reported exactly, at the right block, transaction and inference; replays in separate
//! processes with different engine settings reach the same state root; a second node started
//! with `--replay-from` reaches the same head and goes on from there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::eips::BlockNumberOrTag;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, I256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolValue;
use serde_json::Value;
use verinfer_node::replay::ReplayFrom;
use verinfer_node::storage::Storage;
use verinfer_node::witness::BlockWitness;
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::{record, GasSchedule, ADDRESS};
use verinfer_tests::harness::Devnet;
use verinfer_tests::node::{verinfer_bin, ChildNode};
use verinfer_tests::workload::{record_inferences, test_models, Workload, RECIPIENT};

/// A stopped node's data directory holding the workload's chain.
struct Built {
    dir: tempfile::TempDir,
    work: Workload,
    head: u64,
    state_root: B256,
}

/// Run the workload on a node keeping its data in a temporary directory; the node keeps
/// running (stop it before reading the directory).
async fn build_chain(rounds: u64) -> (Built, Devnet) {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start_with(|c| {
        c.data_dir = Some(dir.path().to_path_buf());
        c.model_dirs = vec![verinfer_tests::models()];
    })
    .await
    .unwrap();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let models = test_models().unwrap();
    assert!(models.len() >= 10, "expected every test model");
    let work = record_inferences(&devnet, probe, &models, rounds)
        .await
        .unwrap();
    let head = devnet
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let built = Built {
        dir,
        work,
        head: head.header.number,
        state_root: head.header.state_root,
    };
    (built, devnet)
}

/// Run the `verinfer` binary off the async runtime: exit code and stdout.
async fn run_verinfer(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(verinfer_bin()).args(&args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
    .await
    .unwrap()
}

/// `verinfer verify-inference <id> --rpc <url> --json`: exit code and proof report.
async fn verify_inference(url: &str, id: U256) -> (i32, Value) {
    let args = ["verify-inference", &id.to_string(), "--rpc", url, "--json"];
    let (code, out) = run_verinfer(args.iter().map(|a| a.to_string()).collect()).await;
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON ({e}): {out}"));
    (code, report)
}

/// `verinfer verify <args> --json` with extra environment; exit code and report.
fn verify(args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let out = Command::new(verinfer_bin())
        .arg("verify")
        .args(args)
        .arg("--json")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn verify_dir(dir: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    verify(&["--data-dir", dir.to_str().unwrap()], env)
}

fn assert_clean(built: &Built, (code, report): &(i32, Value)) {
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report:#}");
    assert_eq!(*code, 0);
    assert_eq!(report["blocks"], built.head);
    assert_eq!(report["inferences"], built.work.inferences);
    assert_eq!(report["transactions"], built.work.transactions + 1); // + the probe's deployment
    assert_eq!(report["models"], 11);
    assert_eq!(report["stateRoot"], built.state_root.to_string());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the built data directory, altered by `tamper`.
fn tampered(built: &Built, tamper: impl FnOnce(&Path, &Storage)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(built.dir.path(), copy.path());
    {
        let storage = Storage::open(&copy.path().join("chain.redb")).unwrap();
        tamper(copy.path(), &storage);
    }
    copy
}

/// The first block that recorded inferences, and its witnesses.
fn first_witnesses(storage: &Storage) -> (u64, Vec<BlockWitness>) {
    (1..)
        .map(|n| (n, storage.witnesses(n).unwrap()))
        .find(|(_, w)| !w.is_empty())
        .unwrap()
}

/// The first mismatch of a failed verify, as (block, transaction, inference, what).
fn first_mismatch((code, report): &(i32, Value)) -> (Value, Value, Value, String) {
    assert_eq!(*code, 1, "verify must fail: {report:#}");
    let m = &report["mismatches"][0];
    (
        m["block"].clone(),
        m["transaction"].clone(),
        m["inference"].clone(),
        m["what"].as_str().unwrap_or_default().to_string(),
    )
}

fn hex(n: U256) -> Value {
    Value::String(format!("{n:#x}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_verifies_over_rpc_and_from_its_data_and_replays_agree_across_processes() {
    let (built, devnet) = build_chain(3).await;
    assert!(built.work.inferences >= 30);
    let url = devnet.url();
    let rpc = tokio::task::spawn_blocking(move || verify(&["--rpc", &url], &[]))
        .await
        .unwrap();
    assert_clean(&built, &rpc);

    // One inference on its own: re-run, hashes, signature, all checked and reported.
    let id = U256::from(built.work.inferences - 1);
    let (code, proof) = verify_inference(&devnet.url(), id).await;
    assert_eq!(code, 0, "{proof:#}");
    assert_eq!(proof["id"], hex(id));
    let checks = proof["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 7);
    assert!(checks.iter().all(|c| c["passed"] == true), "{proof:#}");
    assert_eq!(proof["reexecuted"], proof["outputs"]);
    let args = ["verify-inference", "1", "--rpc", &devnet.url()];
    let (code, out) = run_verinfer(args.iter().map(|a| a.to_string()).collect()).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED") && !out.contains("FAIL"), "{out}");
    let args = ["verify-inference", "999999", "--rpc", &devnet.url()];
    let (code, out) = run_verinfer(args.iter().map(|a| a.to_string()).collect()).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the node has no inference 999999"), "{out}");
    devnet.stop().await;

    // Two separate processes with different engine settings in the environment: the pinned
    // kernels and single-threaded executor make them agree with each other and with the node.
    let a = verify_dir(built.dir.path(), &[("RAYON_NUM_THREADS", "1")]);
    let b = verify_dir(
        built.dir.path(),
        &[
            ("RAYON_NUM_THREADS", "8"),
            ("TRACT_CPU_ISA", "-fma,-avx2,-avx512f"),
        ],
    );
    assert_clean(&built, &a);
    assert_clean(&built, &b);
    assert_eq!(a.1["stateRoot"], b.1["stateRoot"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_reported_where_it_happened() {
    let (built, devnet) = build_chain(2).await;
    devnet.stop().await;
    let storage = Storage::open(&built.dir.path().join("chain.redb")).unwrap();
    let (block, witnesses) = first_witnesses(&storage);
    drop(storage);
    let witness = witnesses[0].clone();
    let (tx, id) = (
        Value::String(witness.transaction_hash.to_string()),
        hex(witness.id),
    );

    // A witness output: the re-executed model disagrees at that element.
    let copy = tampered(&built, |_, s| {
        let mut w = witnesses.clone();
        let mut outputs = w[0].decoded_outputs().unwrap();
        outputs[0].values[0] += I256::ONE;
        w[0].outputs = outputs.abi_encode().into();
        s.overwrite_witnesses(block, &w).unwrap();
    });
    let (b, t, i, what) = first_mismatch(&verify_dir(copy.path(), &[]));
    assert_eq!((b, t, i), (block.into(), tx.clone(), id.clone()));
    assert!(what.starts_with("output 0 differs at element 0"), "{what}");
    // The model re-runs on worker threads by default; on the replay's own thread, the same
    // report, mismatch for mismatch.
    let data_dir = copy.path().to_str().unwrap();
    let threads = |n: &str| {
        verify(
            &["--data-dir", data_dir, "--keep-going", "--threads", n],
            &[],
        )
    };
    let inline = threads("0");
    assert_eq!(inline.1["mismatches"], threads("2").1["mismatches"]);
    assert!(inline.1["mismatches"].as_array().unwrap().len() > 1);

    // A signature: it no longer recovers to the attester.
    let copy = tampered(&built, |_, s| {
        let mut w = witnesses.clone();
        let mut sig = w[0].signature.to_vec();
        sig[10] ^= 0x01;
        w[0].signature = sig.into();
        s.overwrite_witnesses(block, &w).unwrap();
    });
    let (b, t, i, what) = first_mismatch(&verify_dir(copy.path(), &[]));
    assert_eq!((b, t, i), (block.into(), tx.clone(), id.clone()));
    assert!(what.starts_with("signature recovers to"), "{what}");

    // Asking for the wrong attester: one finding, not a mismatch at every later block.
    let dir = built.dir.path().to_str().unwrap();
    let wrong = "0x0000000000000000000000000000000000000001";
    let (code, report) = verify(
        &["--data-dir", dir, "--attester", wrong, "--keep-going"],
        &[],
    );
    assert_eq!(code, 1, "{report:#}");
    let mismatches = report["mismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 1, "{report:#}");
    let what = mismatches[0]["what"].as_str().unwrap();
    assert!(
        what.starts_with("attester: this chain's inferences are attested by 0x"),
        "{what}"
    );

    // A model file: other bytes served under the same id.
    let copy = tampered(&built, |dir, _| {
        let path = dir
            .join("models")
            .join(format!("{}.onnx", witness.model_id));
        let other = std::fs::read_dir(dir.join("models"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| *p != path)
            .unwrap();
        std::fs::copy(other, path).unwrap();
    });
    let (b, t, i, what) = first_mismatch(&verify_dir(copy.path(), &[]));
    assert_eq!((b, t, i), (block.into(), tx.clone(), id.clone()));
    assert!(
        what.starts_with(&format!(
            "model {}: the bytes served under this id hash to",
            witness.model_id
        )),
        "{what}"
    );

    // A block's state root (its hash recomputed, so only the root is wrong).
    let forged = B256::repeat_byte(0x11);
    let target = built.head - 2;
    let copy = tampered(&built, |_, s| {
        let mut b = s.block(target).unwrap().unwrap();
        b.header.state_root = forged;
        b.hash = b.header.hash_slow();
        s.overwrite_block(&b).unwrap();
    });
    let (b, t, i, what) = first_mismatch(&verify_dir(copy.path(), &[]));
    assert_eq!((b, t, i), (target.into(), Value::Null, Value::Null));
    assert!(
        what.starts_with(&format!("state root: header {forged}, replay ")),
        "{what}"
    );

    // An output value in the state: the record the node serves differs from the replay's.
    let copy = tampered(&built, |_, s| tamper_record_output(s, witness.id));
    let expected = "record in the source's state: output 0 element 0: replay ";
    let (b, t, i, what) = first_mismatch(&verify_dir(copy.path(), &[]));
    assert_eq!((b, t, i), (Value::Null, Value::Null, id.clone()));
    assert!(what.starts_with(expected), "{what}");

    // The same state served by a running node: verify over RPC finds it too.
    let devnet = Devnet::start_with(|c| c.data_dir = Some(PathBuf::from(copy.path())))
        .await
        .unwrap();
    let url = devnet.url();
    let rpc = tokio::task::spawn_blocking(move || verify(&["--rpc", &url], &[]))
        .await
        .unwrap();
    // verify-inference on that record: the hash and the re-run both disagree with it.
    let (code, proof) = verify_inference(&devnet.url(), witness.id).await;
    devnet.stop().await;
    assert_eq!(code, 1, "{proof:#}");
    let failed: Vec<&str> = proof["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "the recorded outputs hash to the recorded output hash",
            "re-running the model gives the recorded outputs, bit for bit"
        ],
        "{proof:#}"
    );
    let (b, t, i, what) = first_mismatch(&rpc);
    assert_eq!((b, t, i), (Value::Null, Value::Null, id.clone()));
    assert!(what.starts_with(expected), "{what}");

    // --keep-going lists more than the first.
    let copy = tampered(&built, |_, s| {
        let mut w = witnesses.clone();
        let mut sig = w[0].signature.to_vec();
        sig[10] ^= 0x01;
        w[0].signature = sig.into();
        s.overwrite_witnesses(block, &w).unwrap();
    });
    let (code, report) = verify(
        &["--data-dir", copy.path().to_str().unwrap(), "--keep-going"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        report["mismatches"].as_array().unwrap().len() > 1,
        "{report:#}"
    );
    assert_eq!(
        report["blocks"], built.head,
        "--keep-going replays every block"
    );
}

/// Add one to element 0 of output 0 of record `id` in the stored state.
fn tamper_record_output(storage: &Storage, id: U256) {
    let original = record::read(id, |slot| storage.storage_value(&ADDRESS, &slot))
        .unwrap()
        .unwrap();
    let mut changed = original.clone();
    let outputs: &mut Vec<Tensor> = &mut changed.outputs;
    outputs[0].values[0] += I256::ONE;
    let mut before = HashMap::new();
    record::write(id, &original, |slot, value| {
        before.insert(slot, value);
        Ok::<_, ()>(())
    })
    .unwrap();
    record::write(id, &changed, |slot, value| {
        if before.get(&slot) != Some(&value) {
            storage
                .overwrite_storage_value(&ADDRESS, &slot, value)
                .unwrap();
        }
        Ok::<_, ()>(())
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_replays_another_and_serves_the_same_chain() {
    let (built, devnet) = build_chain(1).await;
    let url = devnet.url();
    let a = devnet.provider();
    let head = a
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let record_a: Value = a
        .raw_request("verinfer_getInference".into(), (1,))
        .await
        .unwrap();

    // From the running node's RPC, through the CLI.
    let dir_b = tempfile::tempdir().unwrap();
    let path_b = dir_b.path().to_path_buf();
    let source = url.clone();
    let b =
        tokio::task::spawn_blocking(move || ChildNode::start(&path_b, &["--replay-from", &source]))
            .await
            .unwrap();
    let pb = verinfer_tests::node::provider(&b.url(), 1);
    let replayed = pb
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.header.hash, head.header.hash);
    assert_eq!(replayed.header.state_root, head.header.state_root);
    let record_b: Value = pb
        .raw_request("verinfer_getInference".into(), (1,))
        .await
        .unwrap();
    assert_eq!(record_b, record_a);
    let models_b: Vec<Value> = pb
        .raw_request("verinfer_listModels".into(), ())
        .await
        .unwrap();
    assert_eq!(models_b.len(), 11);

    // It goes on from there: a new block on top of the replayed head, and the whole chain
    // still verifies.
    let receipt = pb
        .send_transaction(
            TransactionRequest::default()
                .with_to(RECIPIENT)
                .with_value(U256::from(7)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(receipt.block_number, Some(built.head + 1));
    let next = pb
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.header.parent_hash, head.header.hash);
    let url_b = b.url();
    let (code, report) = tokio::task::spawn_blocking(move || verify(&["--rpc", &url_b], &[]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["blocks"], built.head + 1);

    // A restart resumes the replayed chain instead of replaying again.
    drop(b);
    let path_b = dir_b.path().to_path_buf();
    let b = tokio::task::spawn_blocking(move || {
        ChildNode::start(&path_b, &["--replay-from", "http://127.0.0.1:9"])
    })
    .await
    .unwrap();
    let pb = verinfer_tests::node::provider(&b.url(), 1);
    assert_eq!(pb.get_block_number().await.unwrap(), built.head + 1);
    drop(b);

    // From a copy of a stopped node's data directory, in process and in memory.
    devnet.stop().await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(built.dir.path(), copy.path());
    let c = Devnet::start_with(|c| {
        c.replay_from = Some(ReplayFrom::DataDir(copy.path().to_path_buf()));
    })
    .await
    .unwrap();
    let replayed = c
        .provider()
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.header.hash, head.header.hash);
    c.stop().await;

    // A source that does not verify is refused, naming the mismatch.
    let bad = tampered(&built, |_, s| {
        let mut b = s.block(built.head).unwrap().unwrap();
        b.header.state_root = B256::repeat_byte(0x22);
        b.hash = b.header.hash_slow();
        s.overwrite_block(&b).unwrap();
    });
    let err = Devnet::start_with(|c| {
        c.replay_from = Some(ReplayFrom::DataDir(bad.path().to_path_buf()));
    })
    .await
    .err()
    .expect("a tampered chain must be refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("does not verify") && err.contains("state root: header 0x2222"),
        "{err}"
    );
}

/// `verify-inference --proof`: the record's storage slots are proven with `eth_getProof`
/// against the head's state root; a dev edit of a record slot that no other check covers
/// (caller and block), not yet in any block, breaks the proof and only the proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_inference_proves_the_record_against_the_state_root() {
    let (built, devnet) = build_chain(1).await;
    let id = U256::from(built.work.inferences - 1);
    let args = |id: U256| {
        [
            "verify-inference",
            &id.to_string(),
            "--rpc",
            &devnet.url(),
            "--json",
            "--proof",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
    };
    let (code, out) = run_verinfer(args(id)).await;
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, 0, "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    assert!(checks.iter().all(|c| c["passed"] == true), "{report:#}");
    assert_eq!(
        report["stateProof"]["stateRoot"],
        Value::String(built.state_root.to_string())
    );
    assert!(report["stateProof"]["slots"].as_u64().unwrap() >= 11);

    // Another caller, the same block (the block leads to the transaction).
    let slot = record::base_slot(id) + U256::from(3);
    let p = devnet.provider();
    let word = p.get_storage_at(ADDRESS, slot).await.unwrap() ^ U256::from(0xff);
    let _: Value = p
        .raw_request(
            "anvil_setStorageAt".into(),
            (ADDRESS, slot, B256::from(word)),
        )
        .await
        .unwrap();
    let (code, out) = run_verinfer(args(id)).await;
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, 1, "{report:#}");
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert!(failed[0]["what"].as_str().unwrap().contains("eth_getProof"));
    devnet.stop().await;
}

/// A chain keeps the gas schedule it was created with: models are priced by it after a restart
/// without `--gas-schedule`, `verify` replays by it (data dir and RPC), another schedule on the
/// same data dir is refused, and a copy whose recorded schedule was swapped for the default
/// fails to verify at its first inference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_keeps_the_gas_schedule_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    let costly = GasSchedule {
        infer_base: 50_000,
        ..GasSchedule::default()
    };
    let start = |schedule: Option<GasSchedule>| {
        let path = dir.path().to_path_buf();
        Devnet::start_with(move |c| {
            c.data_dir = Some(path);
            c.model_dirs = vec![verinfer_tests::models()];
            c.gas_schedule = schedule;
        })
    };
    let models = test_models().unwrap();
    let model = &models[0];
    let infer_gas = |devnet: &Devnet| -> u64 {
        let client = verinfer_node::client::Client::new(&devnet.url()).unwrap();
        let info: verinfer_node::wire::ModelJson = client
            .call("verinfer_getModel", serde_json::json!([model.id]))
            .unwrap();
        info.infer_gas
    };
    let schedule_of = |devnet: &Devnet| -> GasSchedule {
        verinfer_node::client::Client::new(&devnet.url())
            .unwrap()
            .call("verinfer_getGasSchedule", serde_json::json!([]))
            .unwrap()
    };

    let devnet = start(Some(costly.clone())).await.unwrap();
    assert_eq!(schedule_of(&devnet), costly);
    assert_eq!(infer_gas(&devnet), model.infer_gas + 10_000);
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let work = record_inferences(&devnet, probe, std::slice::from_ref(model), 2)
        .await
        .unwrap();
    assert_eq!(work.inferences, 2);
    devnet.stop().await;

    // Restarted without --gas-schedule: still the chain's own, and it goes on with it.
    let devnet = start(None).await.unwrap();
    assert_eq!(schedule_of(&devnet), costly);
    assert_eq!(infer_gas(&devnet), model.infer_gas + 10_000);
    let (code, report) = verify(&["--rpc", &devnet.url()], &[]);
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report:#}");
    assert_eq!((code, report["inferences"].clone()), (0, 2.into()));
    devnet.stop().await;
    let (code, report) = verify_dir(dir.path(), &[]);
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report:#}");
    assert_eq!(code, 0);

    // Another schedule on this chain is refused, naming the recorded one.
    let err = format!(
        "{:#}",
        start(Some(GasSchedule::default()))
            .await
            .err()
            .expect("refused")
    );
    assert!(
        err.contains("created with another gas schedule") && err.contains("\"inferBase\":50000"),
        "{err}"
    );

    // The same chain replayed under the default schedule does not verify.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    {
        let storage = Storage::open(&copy.path().join("chain.redb")).unwrap();
        verinfer_node::schedule::record(&storage, &GasSchedule::default()).unwrap();
    }
    let (_, _, _, what) = first_mismatch(&verify_dir(copy.path(), &[]));
    assert!(what.contains("gas"), "{what}");

    // A validator takes the network's schedule, not its own.
    let err = format!(
        "{:#}",
        Devnet::start_with(|c| {
            c.validator = Some(verinfer_node::config::ValidatorConfig {
                key: copy.path().join("key"),
                share: copy.path().join("share"),
                genesis: copy.path().join("genesis.json"),
                forge_outputs: false,
            });
            c.gas_schedule = Some(GasSchedule::default());
        })
        .await
        .err()
        .expect("refused")
    );
    assert!(
        err.contains("--gas-schedule is not for validators"),
        "{err}"
    );
}
