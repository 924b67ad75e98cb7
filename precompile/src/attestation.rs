//! The attester's EIP-712 signature over a recorded inference (docs/design.md, "Attestation").
//!
//! Digest: EIP-712 over
//! `Inference(uint256 chainId,uint256 id,bytes32 modelId,bytes32 inputHash,bytes32 outputHash)`
//! with domain `{name: "verinfer", version: "1", chainId, verifyingContract: 0x…0A00}`.
//! Signature: secp256k1, RFC 6979 (deterministic), low-s, 65 bytes `r ‖ s ‖ v` with `v` 27 or
//! 28, which is what Solidity's `ecrecover` takes.

use std::sync::{Mutex, OnceLock};

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_sol_types::{eip712_domain, sol, SolStruct};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};

use crate::abi::InferenceRecord;
use crate::ADDRESS;

sol! {
    /// The EIP-712 struct an attestation signs.
    struct Inference {
        uint256 chainId;
        uint256 id;
        bytes32 modelId;
        bytes32 inputHash;
        bytes32 outputHash;
    }
}

/// The EIP-712 digest the attestation of record `id` signs, from the record's own fields.
pub fn record_digest(chain_id: u64, id: U256, record: &InferenceRecord) -> B256 {
    digest(
        chain_id,
        id,
        record.modelId,
        record.inputHash,
        record.outputHash,
    )
}

/// The EIP-712 digest an attestation signs: `keccak256(0x1901 ‖ domainSeparator ‖ structHash)`,
/// with the type hash and each chain's domain separator computed once.
pub fn digest(
    chain_id: u64,
    id: U256,
    model_id: B256,
    input_hash: B256,
    output_hash: B256,
) -> B256 {
    static TYPE_HASH: OnceLock<B256> = OnceLock::new();
    let type_hash = TYPE_HASH.get_or_init(|| keccak256(Inference::eip712_encode_type().as_bytes()));
    let mut fields = [0u8; 6 * 32];
    for (word, value) in fields.chunks_exact_mut(32).zip([
        type_hash.0,
        U256::from(chain_id).to_be_bytes(),
        id.to_be_bytes(),
        model_id.0,
        input_hash.0,
        output_hash.0,
    ]) {
        word.copy_from_slice(&value);
    }
    let mut message = [0u8; 2 + 2 * 32];
    message[..2].copy_from_slice(&[0x19, 0x01]);
    message[2..34].copy_from_slice(domain_separator(chain_id).as_slice());
    message[34..].copy_from_slice(keccak256(fields).as_slice());
    keccak256(message)
}

/// The EIP-712 domain separator of `chain_id` (cached: a node signs for one chain).
fn domain_separator(chain_id: u64) -> B256 {
    static LAST: Mutex<Option<(u64, B256)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some((cached, separator)) if cached == chain_id => separator,
        _ => {
            let separator = eip712_domain! {
                name: "verinfer",
                version: "1",
                chain_id: chain_id,
                verifying_contract: ADDRESS,
            }
            .separator();
            *last = Some((chain_id, separator));
            separator
        }
    }
}

/// Why an attester could not be built or a signature checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The key is zero or not below the curve order.
    #[error("invalid secp256k1 private key")]
    InvalidKey,
    /// The signature is not 65 bytes with v 27 or 28, or does not recover.
    #[error("malformed or unrecoverable signature")]
    BadSignature,
}

/// Signs attestations with a secp256k1 key, through libsecp256k1 (RFC 6979 nonces, low-s: the
/// same bytes k256 gives, which the tests check, so chains signed before the switch replay).
#[derive(Clone)]
pub struct Attester {
    key: SecretKey,
    address: Address,
}

impl std::fmt::Debug for Attester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attester")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Attester {
    /// An attester from a 32-byte private key.
    pub fn from_bytes(key: &B256) -> Result<Self, AttestationError> {
        let key = SecretKey::from_byte_array(key.0).map_err(|_| AttestationError::InvalidKey)?;
        let address = address_of(&PublicKey::from_secret_key_global(&key));
        Ok(Self { key, address })
    }

    /// The address signatures recover to.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Sign a digest: 65 bytes `r ‖ s ‖ v`, `v` 27 or 28, low-s.
    pub fn sign(&self, digest: &B256) -> [u8; 65] {
        let signature = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.key);
        let (recovery, rs) = signature.serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&rs);
        // libsecp256k1's recovery ids are 0 or 1 for the signatures it makes.
        out[64] = 27 + u8::from(i32::from(recovery) == 1);
        out
    }
}

/// Half the secp256k1 group order: an `s` above it is the high form of a signature, refused as
/// EIP-2 refuses it for transactions (every attestation is made low-s).
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The address that signed `digest`, from a 65-byte `r ‖ s ‖ v` signature (low-s only).
pub fn recover(digest: &B256, signature: &[u8]) -> Result<Address, AttestationError> {
    let [rs @ .., v] = signature else {
        return Err(AttestationError::BadSignature);
    };
    if rs.len() != 64 || !(27..=28).contains(v) || rs[32..] > HALF_ORDER[..] {
        return Err(AttestationError::BadSignature);
    }
    let recovery =
        RecoveryId::try_from(i32::from(v - 27)).map_err(|_| AttestationError::BadSignature)?;
    let signature = RecoverableSignature::from_compact(rs, recovery)
        .map_err(|_| AttestationError::BadSignature)?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(digest.0), &signature)
        .map_err(|_| AttestationError::BadSignature)?;
    Ok(address_of(&key))
}

fn address_of(key: &PublicKey) -> Address {
    Address::from_slice(&keccak256(&key.serialize_uncompressed()[1..])[12..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_recovers_to_the_attester_and_is_deterministic() {
        let attester = Attester::from_bytes(&B256::repeat_byte(7)).unwrap();
        let d = digest(
            31337,
            U256::from(1),
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );
        let sig = attester.sign(&d);
        assert_eq!(sig, attester.sign(&d));
        assert_eq!(recover(&d, &sig), Ok(attester.address()));
        let other = digest(
            31338,
            U256::from(1),
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );
        assert_ne!(recover(&other, &sig), Ok(attester.address()));
        assert_eq!(recover(&d, &sig[..64]), Err(AttestationError::BadSignature));
    }

    #[test]
    fn known_key_has_known_address() {
        // anvil's first dev account.
        let key: B256 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
            .parse()
            .unwrap();
        let attester = Attester::from_bytes(&key).unwrap();
        assert_eq!(
            attester.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            Attester::from_bytes(&B256::ZERO).err(),
            Some(AttestationError::InvalidKey)
        );
    }

    /// k256 as it signed before the switch to libsecp256k1: RFC 6979, low-s.
    fn k256_sign(key: &B256, digest: &B256) -> [u8; 65] {
        let key = k256::ecdsa::SigningKey::from_slice(key.as_slice()).unwrap();
        let (signature, recovery) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery.to_byte();
        out
    }

    #[test]
    fn signatures_are_byte_identical_to_k256s_and_high_s_is_refused() {
        for i in 0u64..512 {
            let key = keccak256(i.to_be_bytes());
            let digest = keccak256(keccak256(i.to_be_bytes()));
            let attester = Attester::from_bytes(&key).unwrap();
            let ours = attester.sign(&digest);
            assert_eq!(ours, k256_sign(&key, &digest), "key {key}, digest {digest}");
            assert_eq!(recover(&digest, &ours), Ok(attester.address()));

            // The high-s twin (n - s, v flipped) recovers the same key; refused, as k256 did.
            let sig = k256::ecdsa::Signature::from_slice(&ours[..64]).unwrap();
            let high = k256::ecdsa::Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
            let mut twin = [0u8; 65];
            twin[..64].copy_from_slice(&high.to_bytes());
            twin[64] = if ours[64] == 27 { 28 } else { 27 };
            assert_eq!(recover(&digest, &twin), Err(AttestationError::BadSignature));
        }
    }

    #[test]
    fn the_digest_is_alloys_eip712_signing_hash() {
        for chain_id in [1u64, 31337, 31337, 8453, 1] {
            let message = Inference {
                chainId: U256::from(chain_id),
                id: U256::from(chain_id * 7),
                modelId: B256::repeat_byte(1),
                inputHash: B256::repeat_byte(2),
                outputHash: B256::repeat_byte(3),
            };
            let domain = eip712_domain! {
                name: "verinfer",
                version: "1",
                chain_id: chain_id,
                verifying_contract: ADDRESS,
            };
            assert_eq!(
                digest(
                    chain_id,
                    message.id,
                    message.modelId,
                    message.inputHash,
                    message.outputHash
                ),
                message.eip712_signing_hash(&domain)
            );
        }
    }
}
