//! The attester's EIP-712 signature over a recorded inference (docs/design.md, "Attestation").
//!
//! Digest: EIP-712 over
//! `Inference(uint256 chainId,uint256 id,bytes32 modelId,bytes32 inputHash,bytes32 outputHash)`
//! with domain `{name: "verinfer", version: "1", chainId, verifyingContract: 0x…0A00}`.
//! Signature: secp256k1, RFC 6979 (deterministic), low-s, 65 bytes `r ‖ s ‖ v` with `v` 27 or
//! 28, which is what Solidity's `ecrecover` takes.

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_sol_types::{eip712_domain, sol, SolStruct};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

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

/// The EIP-712 digest an attestation signs.
pub fn digest(
    chain_id: u64,
    id: U256,
    model_id: B256,
    input_hash: B256,
    output_hash: B256,
) -> B256 {
    let domain = eip712_domain! {
        name: "verinfer",
        version: "1",
        chain_id: chain_id,
        verifying_contract: ADDRESS,
    };
    let message = Inference {
        chainId: U256::from(chain_id),
        id,
        modelId: model_id,
        inputHash: input_hash,
        outputHash: output_hash,
    };
    message.eip712_signing_hash(&domain)
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

/// Signs attestations with a secp256k1 key.
#[derive(Clone)]
pub struct Attester {
    key: SigningKey,
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
        let key =
            SigningKey::from_slice(key.as_slice()).map_err(|_| AttestationError::InvalidKey)?;
        let address = address_of(key.verifying_key());
        Ok(Self { key, address })
    }

    /// The address signatures recover to.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Sign a digest: 65 bytes `r ‖ s ‖ v`, `v` 27 or 28, low-s.
    pub fn sign(&self, digest: &B256) -> [u8; 65] {
        // RFC 6979 signing over a 32-byte prehash cannot fail for a valid key.
        let (signature, recovery) = match self.key.sign_prehash_recoverable(digest.as_slice()) {
            Ok(pair) => pair,
            Err(_) => unreachable!("RFC 6979 signing of a 32-byte digest with a valid key"),
        };
        let (signature, recovery) = match signature.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced()),
            ),
            None => (signature, recovery),
        };
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery.to_byte();
        out
    }
}

/// The address that signed `digest`, from a 65-byte `r ‖ s ‖ v` signature.
pub fn recover(digest: &B256, signature: &[u8]) -> Result<Address, AttestationError> {
    let [rs @ .., v] = signature else {
        return Err(AttestationError::BadSignature);
    };
    if rs.len() != 64 || !(27..=28).contains(v) {
        return Err(AttestationError::BadSignature);
    }
    let sig = Signature::from_slice(rs).map_err(|_| AttestationError::BadSignature)?;
    let recovery = RecoveryId::from_byte(v - 27).ok_or(AttestationError::BadSignature)?;
    let key = VerifyingKey::recover_from_prehash(digest.as_slice(), &sig, recovery)
        .map_err(|_| AttestationError::BadSignature)?;
    Ok(address_of(&key))
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..])
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
}
