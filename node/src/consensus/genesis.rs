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
    /// The validators' BLS12-381 threshold key, which finalization certificates are signed
    /// with (absent only in genesis files of older versions, which no longer start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<GenesisThreshold>,
}

/// The validator set's threshold key (min-sig BLS12-381: signatures in G1, keys in G2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisThreshold {
    /// The group public key, hex (G2, 96 bytes compressed): every certificate verifies
    /// against it alone.
    pub group_key: String,
    /// The group key in EIP-2537's encoding (256 bytes, hex), as a light client takes it.
    pub group_key_eip2537: String,
    /// The public polynomial (commonware's encoding, hex): each validator's public share, for
    /// checking their partial signatures.
    pub polynomial: String,
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

    /// The threshold polynomial, checked against the group key and the validator count.
    pub(crate) fn polynomial(&self) -> anyhow::Result<super::threshold::Polynomial> {
        let Some(threshold) = &self.threshold else {
            bail!(
                "the genesis file has no threshold key (it was written by an older verinfer, \
                 whose validators signed with ed25519 alone): start a new testnet in another \
                 --data-dir"
            );
        };
        let polynomial = super::threshold::parse_polynomial(
            threshold.polynomial.trim_start_matches("0x"),
            self.validators.len(),
        )?;
        let group_key = super::threshold::group_key_bytes(&polynomial);
        if hex::decode(&threshold.group_key).ok().as_deref() != Some(group_key.as_slice()) {
            bail!("the genesis file's groupKey is not the key its polynomial commits to");
        }
        let eip2537 = super::threshold::g2_eip2537(&group_key)
            .map_err(|e| anyhow::anyhow!("the group key: {e}"))?;
        let stated = hex::decode(&threshold.group_key_eip2537).unwrap_or_default();
        if stated != eip2537 {
            bail!("the genesis file's groupKeyEip2537 is not its groupKey");
        }
        Ok(polynomial)
    }

    /// The group public key in EIP-2537's encoding (256 bytes).
    pub fn group_key_eip2537(&self) -> anyhow::Result<Vec<u8>> {
        let polynomial = self.polynomial()?;
        let key = super::threshold::g2_eip2537(&super::threshold::group_key_bytes(&polynomial))
            .map_err(|e| anyhow::anyhow!("the group key: {e}"))?;
        Ok(key.to_vec())
    }

    /// Generate a threshold key among the validators by a DKG (replacing any), given their
    /// keys in genesis order; returns each validator's share in that order.
    pub fn generate_threshold_key(
        &mut self,
        keys: &[ValidatorKey],
    ) -> anyhow::Result<Vec<super::ValidatorShare>> {
        let public = self.public_keys()?;
        if keys.len() != public.len()
            || keys
                .iter()
                .zip(&public)
                .any(|(k, p)| &k.0.public_key() != p)
        {
            bail!("the keys given are not the genesis validators' keys, in genesis order");
        }
        let private: Vec<_> = keys.iter().map(|key| key.0.clone()).collect();
        let (polynomial, shares) = super::threshold::generate_shares(&private)?;
        let group_key = super::threshold::group_key_bytes(&polynomial);
        let eip2537 = super::threshold::g2_eip2537(&group_key)
            .map_err(|e| anyhow::anyhow!("the generated group key: {e}"))?;
        self.threshold = Some(GenesisThreshold {
            group_key: hex::encode(&group_key),
            group_key_eip2537: hex::encode(eip2537),
            polynomial: super::threshold::polynomial_hex(&polynomial),
        });
        Ok(shares.into_iter().map(super::ValidatorShare).collect())
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
        self.polynomial()?;
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
