//! The network's genesis file and the validators' key files.

use std::net::SocketAddr;
use std::path::Path;

use alloy_primitives::hex;
use anyhow::{bail, Context};
use commonware_codec::DecodeExt;
use commonware_cryptography::{ed25519, Signer};
use serde::{Deserialize, Serialize};

/// What every validator of a network starts from: the chain, its genesis timestamp (so every
/// validator seals the same genesis block) and the validator set, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Genesis {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The genesis block's timestamp, in seconds.
    pub timestamp: u64,
    /// Target time between blocks, in milliseconds, when transactions are waiting; an idle
    /// network proposes an empty block every `idleBlockTimeMs`.
    pub block_time_ms: u64,
    /// Time between empty blocks while no transaction waits, in milliseconds.
    pub idle_block_time_ms: u64,
    /// The validators.
    pub validators: Vec<GenesisValidator>,
}

/// One validator of the genesis set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisValidator {
    /// Its ed25519 public key, hex: it signs votes and authenticates its connections.
    pub public_key: String,
    /// Where it listens for the other validators.
    pub p2p: SocketAddr,
    /// Its JSON-RPC URL, for people and tools (not used by consensus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
}

impl Genesis {
    /// Read a genesis file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the genesis file {}", path.display()))?;
        let genesis: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a genesis file", path.display()))?;
        genesis.check()?;
        Ok(genesis)
    }

    /// Write it, pretty-printed.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The validators' public keys, in genesis order.
    pub fn public_keys(&self) -> anyhow::Result<Vec<ed25519::PublicKey>> {
        self.validators
            .iter()
            .map(|v| parse_public_key(&v.public_key))
            .collect()
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.validators.is_empty() {
            bail!("the genesis file lists no validator");
        }
        let keys = self.public_keys()?;
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != keys.len() {
            bail!("the genesis file lists a validator key twice");
        }
        if self.block_time_ms == 0 || self.idle_block_time_ms < self.block_time_ms {
            bail!("blockTimeMs must be positive and idleBlockTimeMs at least blockTimeMs");
        }
        Ok(())
    }
}

/// Parse a hex ed25519 public key.
pub fn parse_public_key(text: &str) -> anyhow::Result<ed25519::PublicKey> {
    let bytes = hex::decode(text).with_context(|| format!("public key {text} is not hex"))?;
    ed25519::PublicKey::decode(bytes::Bytes::from(bytes))
        .map_err(|e| anyhow::anyhow!("public key {text} is not an ed25519 key: {e}"))
}

/// A validator's private key (ed25519), kept in a file as hex.
#[derive(Clone)]
pub struct ValidatorKey(pub(crate) ed25519::PrivateKey);

impl ValidatorKey {
    /// A new random key.
    pub fn random() -> Self {
        let seed = alloy_signer_local::PrivateKeySigner::random().to_bytes();
        Self::from_bytes(seed.as_slice()).unwrap_or_else(|_| unreachable!("32 bytes"))
    }

    fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        ed25519::PrivateKey::decode(bytes::Bytes::copy_from_slice(bytes))
            .map(Self)
            .map_err(|e| anyhow::anyhow!("not an ed25519 private key: {e}"))
    }

    /// Read a key file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        let bytes = hex::decode(text.trim())
            .with_context(|| format!("{} does not hold a hex key", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("in {}", path.display()))
    }

    /// Write it to a key file (hex).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = commonware_codec::Encode::encode(&self.0);
        std::fs::write(path, hex::encode(bytes))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The public key, hex (as the genesis file lists it).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.0.public_key().as_ref())
    }
}
