//! The validators' BLS12-381 threshold key: one group public key every finalization
//! certificate verifies against, and one private share per validator.
//!
//! The variant is min-sig (signatures in G1, keys in G2): a contract checking a certificate
//! with the EIP-2537 precompiles hashes the message to G1 (two `MAP_FP_TO_G1` calls, 5 500 gas
//! each) instead of G2 (two `MAP_FP2_TO_G2`, 23 800 each); the pairing costs the same either
//! way, and the certificate is 48 bytes instead of 96.

use std::num::NonZeroU32;
use std::path::Path;

use alloy_primitives::hex;
use anyhow::{anyhow, Context};
use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::deal;
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_cryptography::bls12381::primitives::sharing::{Mode, ModeVersion, Sharing};
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_cryptography::ed25519;
use commonware_utils::ordered::Set;
use commonware_utils::{N3f1, TryCollect as _};

/// The BLS12-381 variant the network signs with.
pub(crate) type Variant = MinSig;

/// Domain separation tag of the certificates' hash-to-curve (RFC 9380, hash to G1 with
/// SHA-256, as the min-sig proof-of-possession ciphersuite names it).
pub const HASH_TO_G1_DST: &str = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

/// The validator set's public threshold polynomial: every validator's public share, and the
/// group key it commits to.
pub(crate) type Polynomial = Sharing<Variant>;

/// Deal a new threshold key among `validators` (a trusted dealer: see `docs/validators.md` for
/// why `verinfer testnet` does not run commonware's DKG): the public polynomial and each
/// validator's share, in the order of `validators`.
pub(crate) fn deal_shares(
    validators: &[ed25519::PublicKey],
) -> anyhow::Result<(Polynomial, Vec<Share>)> {
    let players: Set<ed25519::PublicKey> = validators
        .iter()
        .cloned()
        .try_collect()
        .map_err(|_| anyhow!("the validator keys are not unique"))?;
    let (output, shares) =
        deal::<Variant, _, N3f1>(commonware_utils::sys_rng(), Mode::NonZeroCounter, players)
            .map_err(|e| anyhow!("dealing the threshold key: {e}"))?;
    let shares = validators
        .iter()
        .map(|key| {
            shares
                .get_value(key)
                .cloned()
                .ok_or_else(|| anyhow!("no share was dealt to validator {key}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((output.public().clone(), shares))
}

/// The polynomial's encoding in `genesis.json` (commonware's codec, hex).
pub(crate) fn polynomial_hex(polynomial: &Polynomial) -> String {
    hex::encode(polynomial.encode())
}

/// Parse the genesis file's polynomial of a set of `validators`.
pub(crate) fn parse_polynomial(text: &str, validators: usize) -> anyhow::Result<Polynomial> {
    let bytes = hex::decode(text).context("the threshold polynomial is not hex")?;
    let max = NonZeroU32::new(u32::try_from(validators).unwrap_or(u32::MAX))
        .ok_or_else(|| anyhow!("no validators"))?;
    let polynomial = Polynomial::decode_cfg(bytes::Bytes::from(bytes), &(max, ModeVersion::v0()))
        .map_err(|e| anyhow!("the threshold polynomial does not decode: {e}"))?;
    if polynomial.total().get() as usize != validators {
        return Err(anyhow!(
            "the threshold polynomial is for {} validators, the genesis lists {validators}",
            polynomial.total()
        ));
    }
    Ok(polynomial)
}

/// The group public key (G2, compressed, 96 bytes).
pub(crate) fn group_key_bytes(polynomial: &Polynomial) -> Vec<u8> {
    polynomial.public().encode().to_vec()
}

/// A validator's private share, kept in a file as hex.
#[derive(Clone)]
pub struct ValidatorShare(pub(crate) Share);

impl ValidatorShare {
    /// Read a share file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the share file {}", path.display()))?;
        let bytes = hex::decode(text.trim())
            .with_context(|| format!("{} does not hold a hex share", path.display()))?;
        Share::decode(bytes::Bytes::from(bytes))
            .map(Self)
            .map_err(|e| anyhow!("{} is not a threshold share: {e}", path.display()))
    }

    /// Write it to a share file (hex).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, hex::encode(self.0.encode()))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// A G1 point (a certificate's signature, 48 bytes compressed) in EIP-2537's encoding: x and
/// y, each a 64-byte big-endian field element.
pub fn g1_eip2537(compressed: &[u8]) -> Result<[u8; 128], String> {
    let point = blst::min_sig::Signature::uncompress(compressed)
        .map_err(|e| format!("not a compressed G1 point: {e:?}"))?;
    let raw = point.serialize(); // x ‖ y, 48 bytes each
    let mut out = [0u8; 128];
    out[16..64].copy_from_slice(&raw[..48]);
    out[80..128].copy_from_slice(&raw[48..]);
    Ok(out)
}

/// A G2 point (the group key, 96 bytes compressed) in EIP-2537's encoding: x.c0, x.c1, y.c0,
/// y.c1, each a 64-byte big-endian field element. (blst, like zcash, writes c1 before c0.)
pub fn g2_eip2537(compressed: &[u8]) -> Result<[u8; 256], String> {
    let point = blst::min_sig::PublicKey::uncompress(compressed)
        .map_err(|e| format!("not a compressed G2 point: {e:?}"))?;
    let raw = point.serialize(); // x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0, 48 bytes each
    let mut out = [0u8; 256];
    for (i, from) in [1usize, 0, 3, 2].into_iter().enumerate() {
        out[i * 64 + 16..(i + 1) * 64].copy_from_slice(&raw[from * 48..(from + 1) * 48]);
    }
    Ok(out)
}
