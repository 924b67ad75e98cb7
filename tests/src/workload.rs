//! A chain worth verifying: inferences over every test model through `InferenceProbe`, value
//! transfers, a reverted inference and a dev edit, built on a [`Devnet`] over JSON-RPC. Shared
//! by the `verinfer verify` tests and the replay-rate bench.

use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{address, Address, Bytes, B256, I256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use anyhow::{bail, Context};
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::{ElementType, ModelInfo, ModelStore, TensorSpec};

use crate::harness::Devnet;

/// Where the workload's transfers go.
pub const RECIPIENT: Address = address!("0x000000000000000000000000000000000000b0b0");

/// What [`record_inferences`] put on the chain.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// Successful `infer` transactions (one recorded inference each).
    pub inferences: u64,
    /// Every transaction sent, reverted ones included.
    pub transactions: u64,
    /// Wall time spent sending transactions and waiting for their receipts.
    pub elapsed: Duration,
}

/// The committed test models (`models/*.onnx`), admitted as the node admits them.
pub fn test_models() -> anyhow::Result<Vec<ModelInfo>> {
    let store = ModelStore::default();
    let mut infos = Vec::new();
    for result in store.add_dir(&crate::models())? {
        infos.push(result?);
    }
    infos.sort_by_key(|i| i.id);
    Ok(infos)
}

/// Inputs for a model, pseudo-random from `seed` but in range for each element type (reals
/// in [-2, 2] with 6 decimals).
pub fn inputs_for(specs: &[TensorSpec], seed: u64) -> Vec<Tensor> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |span: i64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % span as u64) as i64
    };
    specs
        .iter()
        .map(|spec| {
            let (decimals, low, span) = match spec.dtype {
                ElementType::F32 => (6, -2_000_000, 4_000_001),
                ElementType::I8 => (0, -128, 256),
                ElementType::U8 => (0, 0, 256),
                ElementType::I32 | ElementType::I64 | ElementType::I16 => (0, -1000, 2001),
                ElementType::U16 | ElementType::U32 => (0, 0, 2001),
                ElementType::Bool => (0, 0, 2),
            };
            Tensor {
                shape: spec.shape.iter().map(|d| *d as u32).collect(),
                values: (0..spec.len())
                    .map(|_| I256::try_from(low + next(span)).unwrap_or_default())
                    .collect(),
                decimals,
            }
        })
        .collect()
}

/// Calldata of `InferenceProbe.infer(modelId, inputs, outputDecimals)` (the precompile's own
/// `infer` signature, so the same encoding).
pub fn infer_calldata(model: B256, inputs: Vec<Tensor>, output_decimals: u8) -> Bytes {
    IInference::inferCall {
        modelId: model,
        inputs,
        outputDecimals: output_decimals,
    }
    .abi_encode()
    .into()
}

/// Send `rounds` inferences per model through the `InferenceProbe` at `probe` (models must be
/// on the node), a transfer after each round, one inference that reverts (wrong input count)
/// and one `anvil_setBalance` edit between blocks. Waits for every receipt.
pub async fn record_inferences(
    devnet: &Devnet,
    probe: Address,
    models: &[ModelInfo],
    rounds: u64,
) -> anyhow::Result<Workload> {
    let p = devnet.provider();
    let mut work = Workload::default();
    let started = Instant::now();
    for round in 0..rounds {
        for (m, info) in models.iter().enumerate() {
            let inputs = inputs_for(&info.inputs, round * 1000 + m as u64);
            let tx = TransactionRequest::default()
                .with_to(probe)
                .with_input(infer_calldata(info.id, inputs, 6));
            let receipt = p.send_transaction(tx).await?.get_receipt().await?;
            if !receipt.status() {
                bail!("infer on model {} reverted", info.id);
            }
            work.inferences += 1;
            work.transactions += 1;
        }
        let tx = TransactionRequest::default()
            .with_to(RECIPIENT)
            .with_value(U256::from(round + 1));
        p.send_transaction(tx).await?.get_receipt().await?;
        work.transactions += 1;
        if round == 0 {
            // A dev edit between blocks, which a replay must apply where the node did.
            let _: serde_json::Value = p
                .raw_request(
                    "anvil_setBalance".into(),
                    (RECIPIENT, U256::from(1_000_000u64)),
                )
                .await
                .context("anvil_setBalance")?;
            // An inference that reverts (no inputs): a failed receipt in the chain.
            let info = models.first().context("no test models")?;
            let tx = TransactionRequest::default()
                .with_to(probe)
                .with_input(infer_calldata(info.id, Vec::new(), 6))
                .with_gas_limit(2_000_000);
            let receipt = p.send_transaction(tx).await?.get_receipt().await?;
            if receipt.status() {
                bail!("an infer call without inputs succeeded");
            }
            work.transactions += 1;
        }
    }
    work.elapsed = started.elapsed();
    Ok(work)
}
