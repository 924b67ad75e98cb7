//! A record of the validator network proven on another chain: 4 validators finalize with
//! BLS12-381 threshold certificates, `verinfer relay deploy` puts `InferenceLightClient` on a
//! plain anvil 1.7.1 (Prague), `verinfer relay` submits the certified header and
//! `verifyInference` returns the record; every forged certificate, header and storage proof
//! reverts with its own named error, and a header that does not check changes nothing.

use alloy::primitives::{hex, Address, Bytes, B256, U256};
use alloy_consensus::Header;
use alloy_rlp::Decodable;
use alloy_sol_types::{SolCall, SolEvent};
use serde_json::json;
use std::time::Duration;
use verinfer_node::client::Client;
use verinfer_node::consensus::{Genesis, ValidatorKey, HASH_TO_G1_DST};
use verinfer_node::light_client::{self, IInferenceLightClient};
use verinfer_node::wire::BlockCertificateJson;
use verinfer_precompile::IInference::InferenceRecorded;
use verinfer_tests::harness::model_id;
use verinfer_tests::models;
use verinfer_tests::network::{tail, Network};
use verinfer_tests::node::{dev_keys, receipt_once_mined, run_verinfer, start_anvil};

use super::network::{finalized, inference, number, send, transfer};

/// The certificate of finalized block `n` (or of the descendant that finalized it).
fn certificate(net: &Network, n: u64) -> BlockCertificateJson {
    let source = Client::new(&net.url(0)).expect("a client");
    let answer: Option<BlockCertificateJson> = source
        .call("verinfer_getBlockCertificate", json!([n]))
        .expect("verinfer_getBlockCertificate");
    answer.unwrap_or_else(|| panic!("block {n} has no certificate"))
}

/// `eth_call` a light client method; the named error it reverted with, or its answer.
fn call<C: SolCall>(anvil: &Client, at: Address, call: &C) -> Result<C::Return, String> {
    light_client::call(anvil, at, call)
}

/// The revert's name: `HeaderMismatch(...)` → `HeaderMismatch`.
fn reverted<T: std::fmt::Debug>(result: Result<T, String>) -> String {
    let reason = result.expect_err("the light client accepted it");
    reason
        .split('(')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn submit(
    header: &Bytes,
    certificate: &BlockCertificateJson,
    signature: Bytes,
) -> IInferenceLightClient::submitHeaderCall {
    IInferenceLightClient::submitHeaderCall {
        header: header.clone(),
        consensusView: certificate.certificate.view,
        parentView: certificate.certificate.parent_view,
        certified: keccak(header),
        signature,
    }
}

fn keccak(bytes: &[u8]) -> B256 {
    alloy::primitives::keccak256(bytes)
}

#[test]
fn a_record_is_proven_on_anvil_by_the_relayer_and_forgeries_revert_by_name() {
    let net = Network::start(4, &[]);
    let anvil_process = start_anvil();
    let anvil = Client::new(&anvil_process.url()).expect("a client");
    let source = Client::new(&net.url(0)).expect("a client");
    let key = format!("0x{}", hex::encode(dev_keys()[0].to_bytes()));
    let genesis = Genesis::read(net.genesis()).expect("genesis");

    let receipt = finalized(&net, 0, &send(&net, 0, inference(0)));
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    let recorded_in = number(&receipt["blockNumber"]);
    let log = &receipt["logs"][0];
    assert_eq!(log["topics"][0], json!(InferenceRecorded::SIGNATURE_HASH));
    let id: U256 = serde_json::from_value(log["topics"][1].clone()).expect("the record id");
    let data: Bytes = serde_json::from_value(log["data"].clone()).expect("log data");
    let output_hash = B256::from_slice(&data[32..64]);

    // The certificate is the documented message under the documented DST, signed by the
    // genesis group key: checked here with blst alone, as a third party would.
    let cert = certificate(&net, recorded_in);
    let threshold = genesis.threshold.clone().expect("a threshold key");
    let group_key =
        blst::min_sig::PublicKey::from_bytes(&hex::decode(&threshold.group_key).unwrap())
            .expect("the group key decodes");
    let signature = blst::min_sig::Signature::from_bytes(&cert.certificate.signature)
        .expect("the signature decodes");
    assert_eq!(cert.dst, HASH_TO_G1_DST);
    assert_eq!(
        signature.verify(
            true,
            &cert.certificate.signed_message,
            cert.dst.as_bytes(),
            &[],
            &group_key,
            true
        ),
        blst::BLST_ERROR::BLST_SUCCESS,
        "the certificate does not verify as docs/validators.md describes"
    );
    assert_eq!(keccak(&cert.header), cert.block_hash);

    // Deploy, then relay: exit 0 only when verifyInference returned the record.
    let genesis_path = net.genesis().to_str().expect("a utf-8 path");
    let (code, out) = run_verinfer(&[
        "relay",
        "deploy",
        "--genesis",
        genesis_path,
        "--to",
        &anvil_process.url(),
        "--from",
        &net.url(0),
        "--private-key",
        &key,
    ]);
    assert_eq!(code, 0, "relay deploy failed: {out}");
    let address: Address = out
        .lines()
        .find_map(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in: {out}"));
    let (code, out) = run_verinfer(&[
        "relay",
        "--from",
        &net.url(0),
        "--to",
        &anvil_process.url(),
        "--light-client",
        &address.to_string(),
        "--record",
        &id.to_string(),
        "--block",
        &recorded_in.to_string(),
        "--private-key",
        &key,
    ]);
    assert_eq!(
        code,
        0,
        "relay failed: {out}\nvalidator 0:\n{}",
        tail(&net.log(0))
    );
    assert!(out.contains("header submitted (gas "), "{out}");
    assert!(out.contains("verifyInference gas: "), "{out}");
    eprintln!("{out}");

    let proven = cert.block_number;
    assert_eq!(
        call(
            &anvil,
            address,
            &IInferenceLightClient::stateRootsCall { number: proven }
        ),
        Ok(cert.state_root)
    );
    let (account_proof, storage_proofs, count) =
        light_client::record_proof(&source, proven, id).expect("eth_getProof");
    let verify = IInferenceLightClient::verifyInferenceCall {
        blockNumber: proven,
        recordId: id,
        accountProof: account_proof.clone(),
        storageProofs: storage_proofs.clone(),
    };
    let record = call(&anvil, address, &verify).expect("verifyInference");
    assert_eq!(
        record.modelId,
        model_id(models().join("linear.onnx")).unwrap()
    );
    assert_eq!(record.outputHash, output_hash);
    assert_eq!(record.blockNumber, recorded_in);
    assert!(!record.outputs.is_empty() && !record.outputs[0].values.is_empty());
    assert_eq!(record.outputs[0].decimals, 2);

    // Offline: verify-inference checks the certificate against the genesis group key, and
    // refuses it against another network's key (same validators, a new DKG).
    // Validator 1 answers this; it may finalize the block a moment after validator 0 did.
    net.assert_same_block(&[0, 1], recorded_in, Duration::from_secs(30));
    let (code, out) = run_verinfer(&[
        "verify-inference",
        &id.to_string(),
        "--rpc",
        &net.url(1),
        "--genesis",
        genesis_path,
    ]);
    assert_eq!(code, 0, "verify-inference --genesis failed: {out}");
    assert!(
        out.contains("storage proof checked; certificate checked"),
        "{out}"
    );
    assert!(out.contains("VERIFIED"), "{out}");
    let keys: Vec<_> = (0..4)
        .map(|i| ValidatorKey::read(&net.dir().join(format!("validator-{i}/key"))).expect("key"))
        .collect();
    let mut other = genesis.clone();
    other.generate_threshold_key(&keys).expect("another key");
    let other_path = net.dir().join("other-genesis.json");
    other.write(&other_path).expect("genesis file");
    let (code, out) = run_verinfer(&[
        "verify-inference",
        &id.to_string(),
        "--rpc",
        &net.url(1),
        "--genesis",
        other_path.to_str().expect("a utf-8 path"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  block")
            && out.contains("certificate verifies against the genesis group key"),
        "{out}"
    );
    assert!(out.contains("NOT VERIFIED"), "{out}");

    // Relaying again submits nothing and proves the same record.
    let (code, out) = run_verinfer(&[
        "relay",
        "--from",
        &net.url(0),
        "--to",
        &anvil_process.url(),
        "--light-client",
        &address.to_string(),
        "--record",
        &id.to_string(),
        "--block",
        &recorded_in.to_string(),
        "--private-key",
        &key,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("header already on the light client"), "{out}");

    // A record id absent from that block's state: RecordNotFound, on chain and from the relayer.
    let absent = count + U256::from(5);
    let (absent_account, absent_storage, _) =
        light_client::record_proof(&source, proven, absent).expect("eth_getProof");
    let absent_call = IInferenceLightClient::verifyInferenceCall {
        blockNumber: proven,
        recordId: absent,
        accountProof: absent_account,
        storageProofs: absent_storage,
    };
    assert_eq!(
        reverted(call(&anvil, address, &absent_call)),
        "RecordNotFound"
    );
    let (code, out) = run_verinfer(&[
        "relay",
        "--from",
        &net.url(0),
        "--to",
        &anvil_process.url(),
        "--light-client",
        &address.to_string(),
        "--record",
        &absent.to_string(),
        "--private-key",
        &key,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("RecordNotFound"), "{out}");

    // A storage proof for another slot, an account proof of another block, a block never
    // submitted.
    let mut swapped = storage_proofs.clone();
    swapped.swap(1, 2);
    let mut bad = verify.clone();
    bad.storageProofs = swapped;
    assert_eq!(reverted(call(&anvil, address, &bad)), "StorageProofInvalid");
    let (bad_account_proof, _, _) =
        light_client::record_proof(&source, recorded_in - 1, id).expect("eth_getProof");
    let mut bad = verify.clone();
    bad.accountProof = bad_account_proof.clone();
    assert_eq!(reverted(call(&anvil, address, &bad)), "AccountProofInvalid");
    let mut bad = verify.clone();
    bad.blockNumber = proven + 1000;
    assert_eq!(reverted(call(&anvil, address, &bad)), "UnknownBlock");

    // Forged headers, against a block the light client has not seen yet.
    let hash = send(&net, 0, transfer(1));
    let later = number(&finalized(&net, 0, &hash)["blockNumber"]);
    let other = certificate(&net, later);
    assert!(other.block_number > proven);
    let good = submit(
        &other.header,
        &other,
        other.certificate.signature_eip2537.clone(),
    );
    // Another block's certificate over this header.
    let mut bad = submit(
        &other.header,
        &cert,
        cert.certificate.signature_eip2537.clone(),
    );
    assert_eq!(reverted(call(&anvil, address, &bad)), "InvalidSignature");
    bad.certified = cert.block_hash;
    assert_eq!(reverted(call(&anvil, address, &bad)), "HeaderMismatch");
    // One flipped bit of the signature: no longer a point of G1.
    let mut flipped = other.certificate.signature_eip2537.to_vec();
    flipped[127] ^= 1;
    let flipped_call = submit(&other.header, &other, flipped.into());
    assert_eq!(
        reverted(call(&anvil, address, &flipped_call)),
        "MalformedSignature"
    );
    // A signature by fewer than the threshold: one validator's share alone.
    let share = std::fs::read_to_string(net.dir().join("validator-1/share")).expect("share");
    let share = hex::decode(share.trim()).expect("hex share");
    let scalar = blst::min_sig::SecretKey::from_bytes(&share[share.len() - 32..])
        .expect("the share's scalar");
    let partial = scalar
        .sign(
            &other.certificate.signed_message,
            HASH_TO_G1_DST.as_bytes(),
            &[],
        )
        .compress();
    let partial = verinfer_node::consensus::g1_eip2537(&partial).expect("a G1 point");
    let partial_call = submit(&other.header, &other, partial.to_vec().into());
    assert_eq!(
        reverted(call(&anvil, address, &partial_call)),
        "InvalidSignature"
    );
    // A header whose state root was changed: certified as the real block, or as itself.
    let mut header = Header::decode(&mut other.header.as_ref()).expect("the header decodes");
    header.state_root = B256::repeat_byte(0x5e);
    let changed: Bytes = alloy_rlp::encode(&header).into();
    let mut changed_call = submit(
        &changed,
        &other,
        other.certificate.signature_eip2537.clone(),
    );
    assert_eq!(
        reverted(call(&anvil, address, &changed_call)),
        "InvalidSignature"
    );
    changed_call.certified = other.block_hash;
    assert_eq!(
        reverted(call(&anvil, address, &changed_call)),
        "HeaderMismatch"
    );

    // A header that does not check changes nothing, even mined.
    let latest = call(&anvil, address, &IInferenceLightClient::latestBlockCall {}).unwrap();
    for forged in [&flipped_call, &partial_call, &changed_call] {
        let tx = json!({
            "from": dev_keys()[1].address(),
            "to": address,
            "data": Bytes::from(forged.abi_encode()),
            "gas": "0x7a120",
        });
        let hash: B256 = anvil
            .call("eth_sendTransaction", json!([tx]))
            .expect("sent");
        let receipt = receipt_once_mined(&anvil, hash);
        assert_eq!(receipt["status"], json!("0x0"), "{receipt}");
    }
    let unchanged = IInferenceLightClient::stateRootsCall {
        number: other.block_number,
    };
    assert_eq!(call(&anvil, address, &unchanged), Ok(B256::ZERO));
    assert_eq!(
        call(&anvil, address, &IInferenceLightClient::latestBlockCall {}),
        Ok(latest)
    );
    // The genuine certificate of that block still goes in.
    assert_eq!(call(&anvil, address, &good), Ok(other.block_number));

    if std::env::var_os("VERINFER_UPDATE_FIXTURE").is_some() {
        let fixture = Fixture {
            group_key: genesis.group_key_eip2537().expect("the group key"),
            chain_id: genesis.chain_id,
            cert: &cert,
            other: &other,
            partial: partial.to_vec(),
            verify: &verify,
            earlier_account_proof: bad_account_proof,
            output_hash,
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../contracts/test/fixtures/LightClientFixture.sol");
        std::fs::write(&path, fixture.solidity()).expect("the fixture written");
    }
}

/// What `contracts/test/LightClient.t.sol` checks in forge's EVM, from one run of this test
/// (`VERINFER_UPDATE_FIXTURE=1`): a network's group key, two certified headers, a record's
/// proofs.
struct Fixture<'a> {
    group_key: Vec<u8>,
    chain_id: u64,
    cert: &'a BlockCertificateJson,
    other: &'a BlockCertificateJson,
    partial: Vec<u8>,
    verify: &'a IInferenceLightClient::verifyInferenceCall,
    earlier_account_proof: Vec<Bytes>,
    output_hash: B256,
}

impl Fixture<'_> {
    fn solidity(&self) -> String {
        let hex = |b: &[u8]| format!("hex\"{}\"", hex::encode(b));
        let list = |name: &str, items: &[Bytes]| {
            let mut f = format!(
                "    function {name}() internal pure returns (bytes[] memory p) {{\n        p = new bytes[]({});\n",
                items.len()
            );
            for (i, item) in items.iter().enumerate() {
                f += &format!("        p[{i}] = {};\n", hex(item));
            }
            f + "    }\n"
        };
        let mut out = String::from(
            "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\n\n\
             /// @notice Generated by tests/tests/it/light_client.rs (VERINFER_UPDATE_FIXTURE=1): a\n\
             /// 4-validator network's group key, two finalized headers with their threshold\n\
             /// certificates, one validator's lone signature, and the proofs of a record.\n\
             library LightClientFixture {\n",
        );
        let constant = |name: &str, value: String| format!("    {name} = {value};\n");
        out += &constant("bytes internal constant GROUP_KEY", hex(&self.group_key));
        out += &constant(
            "uint256 internal constant CHAIN_ID",
            self.chain_id.to_string(),
        );
        for (prefix, c) in [("", self.cert), ("OTHER_", self.other)] {
            out += &constant(
                &format!("bytes internal constant {prefix}HEADER"),
                hex(&c.header),
            );
            out += &constant(
                &format!("uint64 internal constant {prefix}VIEW"),
                c.certificate.view.to_string(),
            );
            out += &constant(
                &format!("uint64 internal constant {prefix}PARENT_VIEW"),
                c.certificate.parent_view.to_string(),
            );
            out += &constant(
                &format!("bytes32 internal constant {prefix}BLOCK_HASH"),
                c.block_hash.to_string(),
            );
            out += &constant(
                &format!("bytes32 internal constant {prefix}STATE_ROOT"),
                c.state_root.to_string(),
            );
            out += &constant(
                &format!("uint64 internal constant {prefix}NUMBER"),
                c.block_number.to_string(),
            );
            out += &constant(
                &format!("bytes internal constant {prefix}SIGNATURE"),
                hex(&c.certificate.signature_eip2537),
            );
        }
        out += &constant(
            "bytes internal constant PARTIAL_SIGNATURE",
            hex(&self.partial),
        );
        out += &constant(
            "uint256 internal constant RECORD_ID",
            self.verify.recordId.to_string(),
        );
        out += &constant(
            "bytes32 internal constant OUTPUT_HASH",
            self.output_hash.to_string(),
        );
        out += "\n";
        out += &list("accountProof", &self.verify.accountProof);
        out += &list("earlierAccountProof", &self.earlier_account_proof);
        out += &format!(
            "    function storageProofs() internal pure returns (bytes[][] memory p) {{\n        p = new bytes[][]({});\n",
            self.verify.storageProofs.len()
        );
        for i in 0..self.verify.storageProofs.len() {
            out += &format!("        p[{i}] = storageProof{i}();\n");
        }
        out += "    }\n";
        for (i, proof) in self.verify.storageProofs.iter().enumerate() {
            out += &list(&format!("storageProof{i}"), proof);
        }
        out + "}\n"
    }
}
