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
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{Dealer, Info, Logs, Player, Reveal};
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_cryptography::bls12381::primitives::sharing::{Mode, ModeVersion, Sharing};
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_cryptography::{ed25519, Signer as _};
use commonware_parallel::Sequential;
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

/// The namespace binding the key generation's transcripts (acks and dealer logs).
const DKG_NAMESPACE: &[u8] = b"verinfer_DKG";

/// Generate a new threshold key among `validators` with commonware's Joint-Feldman DKG
/// (`feldman_desmedt`): every validator deals a random polynomial and acks, signed with its
/// ed25519 key, each dealing it checked against the dealer's public commitment; the key is the
/// sum of the selected dealings, so no one dealer's randomness decides it. The rounds run in
/// this process, which holds every validator's key (see `docs/validators.md`, "The threshold
/// key"). Returns the public polynomial and each validator's share, in the order of
/// `validators`.
pub(crate) fn generate_shares(
    validators: &[ed25519::PrivateKey],
) -> anyhow::Result<(Polynomial, Vec<Share>)> {
    let keys: Set<ed25519::PublicKey> = validators
        .iter()
        .map(|key| key.public_key())
        .try_collect()
        .map_err(|_| anyhow!("the validator keys are not unique"))?;
    let info = Info::<Variant, _>::new::<N3f1>(
        DKG_NAMESPACE,
        0,
        None,
        Mode::NonZeroCounter,
        Reveal::V1,
        keys.clone(),
        keys,
    )
    .map_err(|e| anyhow!("setting up the key generation: {e:?}"))?;
    let mut rng = commonware_utils::sys_rng();
    let mut players = validators
        .iter()
        .map(|key| Player::new(info.clone(), key.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("a validator cannot play the key generation: {e:?}"))?;
    let mut logs = Logs::<Variant, _, N3f1>::new(info.clone());
    for dealer_key in validators {
        let dealer_id = dealer_key.public_key();
        let (mut dealer, public, private) =
            Dealer::start::<N3f1>(&mut rng, info.clone(), dealer_key.clone(), None)
                .map_err(|e| anyhow!("validator {dealer_id} cannot deal: {e:?}"))?;
        for (player_id, message) in private {
            let player = validators
                .iter()
                .position(|key| key.public_key() == player_id)
                .and_then(|i| players.get_mut(i))
                .ok_or_else(|| anyhow!("a dealing for {player_id}, who is no validator"))?;
            let ack = player
                .dealer_message::<N3f1>(dealer_id.clone(), public.clone(), message)
                .map_err(|e| anyhow!("{player_id} refused {dealer_id}'s dealing: {e:?}"))?
                .ok_or_else(|| anyhow!("{player_id} saw {dealer_id}'s dealing twice"))?;
            dealer
                .receive_player_ack(player_id.clone(), ack)
                .map_err(|e| anyhow!("{dealer_id} refused {player_id}'s ack: {e:?}"))?;
        }
        let (signer, log) = dealer
            .finalize::<N3f1>()
            .check(&info)
            .ok_or_else(|| anyhow!("{dealer_id}'s signed log does not check"))?;
        logs.record(signer, log);
    }
    let mut polynomial = None;
    let mut shares = Vec::with_capacity(validators.len());
    for (key, player) in validators.iter().zip(players) {
        let (output, share) = player
            .finalize::<N3f1>(&mut rng, logs.clone(), &Sequential)
            .map_err(|e| {
                anyhow!(
                    "{} cannot finish the key generation: {e:?}",
                    key.public_key()
                )
            })?;
        match &polynomial {
            None => polynomial = Some(output.public().clone()),
            Some(agreed) if agreed == output.public() => {}
            Some(_) => return Err(anyhow!("the validators' key generations disagree")),
        }
        shares.push(share);
    }
    let polynomial = polynomial.ok_or_else(|| anyhow!("no validators"))?;
    Ok((polynomial, shares))
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

#[cfg(test)]
mod tests {
    use commonware_cryptography::bls12381::primitives::ops;

    use super::*;
    use crate::consensus::ValidatorKey;

    #[test]
    fn the_generated_key_signs_with_any_quorum_and_no_fewer() {
        let keys: Vec<_> = (0..4).map(|_| ValidatorKey::random().0).collect();
        let (polynomial, shares) = generate_shares(&keys).expect("the DKG runs");
        assert_eq!(polynomial.total().get(), 4);
        assert_eq!(polynomial.required(), 3);
        let (namespace, message) = (b"verinfer_TEST".as_slice(), b"block".as_slice());
        let partials: Vec<_> = shares
            .iter()
            .map(|share| ops::threshold::sign_message::<Variant>(share, namespace, message))
            .collect();
        for partial in &partials {
            ops::threshold::verify_message::<Variant>(&polynomial, namespace, message, partial)
                .expect("each share is the polynomial's");
        }
        for quorum in [&partials[..3], &partials[1..]] {
            let signature = ops::threshold::recover::<Variant, _>(&polynomial, quorum, &Sequential)
                .expect("a quorum recovers");
            ops::verify_message::<Variant>(polynomial.public(), namespace, message, &signature)
                .expect("the group key verifies it");
        }
        assert!(
            ops::threshold::recover::<Variant, _>(&polynomial, &partials[..2], &Sequential)
                .is_err()
        );
        let (other, _) = generate_shares(&keys).expect("the DKG runs again");
        assert_ne!(
            other.public(),
            polynomial.public(),
            "fresh randomness, a new key"
        );
    }
}
