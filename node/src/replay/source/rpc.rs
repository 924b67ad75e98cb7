//! Replay from a running node over JSON-RPC.

use alloy_primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, Context};
use serde_json::json;
use verinfer_precompile::abi::InferenceRecord;
use verinfer_precompile::GasSchedule;

use super::{ReplayBlock, Source};
use crate::client::{Client, ClientError};
use crate::fork::ForkPoint;
use crate::state::StoredDiff;
use crate::wire::ModelJson;

/// A node's RPC as a replay source.
pub struct Rpc {
    client: Client,
}

impl Rpc {
    /// Connect to `url`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: Client::new(url)?,
        })
    }
}

impl Source for Rpc {
    fn chain_id(&self) -> anyhow::Result<u64> {
        let id: alloy_primitives::U64 = self.client.call("eth_chainId", json!([]))?;
        Ok(id.to())
    }

    fn genesis(&self) -> anyhow::Result<StoredDiff> {
        Ok(self.client.call("verinfer_getGenesis", json!([]))?)
    }

    fn head(&self) -> anyhow::Result<u64> {
        let n: alloy_primitives::U64 = self.client.call("eth_blockNumber", json!([]))?;
        Ok(n.to())
    }

    fn block(&self, number: u64) -> anyhow::Result<ReplayBlock> {
        self.client
            .call("verinfer_getReplayBlock", json!([number]))
            .with_context(|| format!("fetching block {number}"))
    }

    fn model(&self, id: B256) -> anyhow::Result<Vec<u8>> {
        let model: Option<ModelJson> = self.client.call("verinfer_getModel", json!([id]))?;
        let bytes = model
            .and_then(|m| m.bytes)
            .ok_or_else(|| anyhow!("verinfer_getModel returned no bytes for {id}"))?;
        Ok(bytes.to_vec())
    }

    fn record(&self, id: U256) -> anyhow::Result<Option<InferenceRecord>> {
        use alloy_sol_types::SolCall;
        use verinfer_precompile::abi::IInference;
        let data = Bytes::from(IInference::getInferenceCall { id }.abi_encode());
        let call = json!([{"to": verinfer_precompile::ADDRESS, "data": data}, "latest"]);
        match self.client.call::<Bytes>("eth_call", call) {
            Ok(out) => Ok(IInference::getInferenceCall::abi_decode_returns(&out).ok()),
            Err(_) => Ok(None),
        }
    }

    fn attester(&self) -> anyhow::Result<Option<Address>> {
        Ok(Some(self.client.call("verinfer_attester", json!([]))?))
    }

    fn models(&self) -> anyhow::Result<Vec<B256>> {
        let models: Vec<ModelJson> = self.client.call("verinfer_listModels", json!([]))?;
        Ok(models.into_iter().map(|m| m.id).collect())
    }

    fn cids(&self) -> anyhow::Result<Vec<(String, B256)>> {
        let models: Vec<ModelJson> = self.client.call("verinfer_listModels", json!([]))?;
        Ok(models
            .into_iter()
            .flat_map(|m| m.cids.into_iter().map(move |cid| (cid, m.id)))
            .collect())
    }

    fn gas_schedule(&self) -> anyhow::Result<GasSchedule> {
        match self.client.call("verinfer_getGasSchedule", json!([])) {
            // A node from before schedules were recorded: its chains ran the first one.
            Err(ClientError::Rpc { code: -32601, .. }) => Ok(GasSchedule::first()),
            answer => Ok(answer?),
        }
    }

    fn fork(&self) -> anyhow::Result<Option<ForkPoint>> {
        Ok(self.client.call("verinfer_getFork", json!([]))?)
    }
}
