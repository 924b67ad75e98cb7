//! OpenGradient-style CID aliases of models.
//!
//! A contract calling the facade at 0xF4 names its model by a `modelCID` string. Besides the
//! model id in hex, a CID bound to a model resolves to it. A binding lives in two places:
//! - in **chain state**, the model id at [`record::cid_slot`] of 0xA00, written as a dev edit,
//!   so the facade resolves it inside the EVM and every replay (`verinfer verify`,
//!   `--replay-from`) resolves it at the same point of the chain;
//! - in **`cids.json`** beside the models (`{"<cid>": "0x<model id>" | "<file>.onnx"}`), so
//!   the node can list a model's CIDs (`verinfer_getModel`) and a `--models DIR` can bind its
//!   files at start.
//!
//! Bindings are immutable: a CID names content, so rebinding it to another model is refused.

use std::collections::BTreeMap;
use std::path::Path;

use alloy_primitives::{B256, U256};
use verinfer_precompile::{opengradient::hex_model_id, record, ADDRESS};

use crate::chain::{Chain, ChainError};
use crate::state::{AccountState, StateDiff};

/// The file that lists the CIDs of a models folder.
pub const CIDS_FILE: &str = "cids.json";
/// Longest CID accepted, in bytes (a CIDv1 of a SHA-256 in base32 is 59).
pub const MAX_CID_LEN: usize = 128;

/// Why a CID could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum CidError {
    /// The string cannot be a CID.
    #[error("{cid:?} is not a usable CID: {reason}")]
    Invalid {
        /// The CID.
        cid: String,
        /// Why it cannot be one.
        reason: &'static str,
    },
    /// The model is not on this node.
    #[error("cannot bind {cid}: the node has no model {model}")]
    UnknownModel {
        /// The CID.
        cid: String,
        /// The model.
        model: B256,
    },
    /// The CID names another model already.
    #[error("{cid} is bound to model {bound} on this chain; bindings cannot change (asked for {requested})")]
    Rebind {
        /// The CID.
        cid: String,
        /// The model it is bound to.
        bound: B256,
        /// The model the request named.
        requested: B256,
    },
    /// The state edit failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A binding is a state edit outside any block, which a validator network cannot make.
    #[error(
        "cannot bind {cid}: CID bindings are state edits, not available on a validator network \
         (use the model id)"
    )]
    Network {
        /// The CID.
        cid: String,
    },
}

/// Check that `cid` can be an alias: 1 to [`MAX_CID_LEN`] printable ASCII characters without
/// spaces, and not `0x…` (which names a model id).
pub fn check(cid: &str) -> Result<(), CidError> {
    let invalid = |reason| {
        Err(CidError::Invalid {
            cid: cid.chars().take(MAX_CID_LEN).collect(),
            reason,
        })
    };
    if cid.is_empty() {
        return invalid("empty");
    }
    if cid.len() > MAX_CID_LEN {
        return invalid("longer than 128 bytes");
    }
    if !cid.bytes().all(|b| b.is_ascii_graphic()) {
        return invalid("only printable ASCII without spaces is accepted");
    }
    if cid.starts_with("0x") {
        return invalid("a 0x-prefixed modelCID is read as a model id, not an alias");
    }
    Ok(())
}

/// The model `cid` is bound to in the chain's current state.
pub fn bound_model(chain: &Chain, cid: &str) -> Option<B256> {
    let value = chain.world().own_storage(&ADDRESS, &record::cid_slot(cid));
    (!value.is_zero()).then(|| B256::from(value))
}

/// The model a `modelCID` names on this chain: a hex id, or a bound CID.
pub fn resolve(chain: &Chain, cid: &str) -> Option<B256> {
    hex_model_id(cid).or_else(|| bound_model(chain, cid))
}

/// Bind `cid` to `model` in chain state (a dev edit, replayed like `anvil_setStorageAt`);
/// returns false when it was bound to that model already.
pub fn bind(chain: &mut Chain, cid: &str, model: B256) -> Result<bool, CidError> {
    check(cid)?;
    match bound_model(chain, cid) {
        Some(bound) if bound == model => return Ok(false),
        Some(bound) => {
            return Err(CidError::Rebind {
                cid: cid.into(),
                bound,
                requested: model,
            })
        }
        None => {}
    }
    let mut diff = StateDiff::default();
    if chain.world().account(&ADDRESS).ok().flatten().is_none() {
        diff.set_account(ADDRESS, AccountState::default());
    }
    diff.set_storage(ADDRESS, record::cid_slot(cid), U256::from_be_bytes(model.0));
    chain.edit_state(diff)?;
    Ok(true)
}

/// The bindings of `dir/cids.json` (`{"<cid>": "0x<model id>" | "<file>.onnx"}`) in CID order,
/// a file named by its model id (keccak256 of its bytes); none when there is no such file.
pub fn read_file(dir: &Path) -> anyhow::Result<Vec<(String, B256)>> {
    use anyhow::Context;
    let path = dir.join(CIDS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let entries: BTreeMap<String, String> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected an object of CID → model id (0x…) or .onnx file name",
            path.display()
        )
    })?;
    entries
        .into_iter()
        .map(|(cid, target)| {
            let model = match hex_model_id(&target) {
                Some(id) => id,
                None => {
                    let file = dir.join(&target);
                    let bytes = std::fs::read(&file).with_context(|| {
                        format!("{}: reading {}", path.display(), file.display())
                    })?;
                    alloy_primitives::keccak256(bytes)
                }
            };
            Ok((cid, model))
        })
        .collect()
}

/// Write `book` (CID → model id) as `dir/cids.json`, atomically.
pub fn write_file(dir: &Path, book: &BTreeMap<String, B256>) -> anyhow::Result<()> {
    let entries: BTreeMap<&str, String> = book
        .iter()
        .map(|(cid, id)| (cid.as_str(), id.to_string()))
        .collect();
    let tmp = dir.join(format!(".{CIDS_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&entries)?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(CIDS_FILE))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_syntax() {
        check("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").unwrap();
        check("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi").unwrap();
        for bad in ["", "has space", "0xabc", &"a".repeat(129), "naïve"] {
            assert!(matches!(check(bad), Err(CidError::Invalid { .. })), "{bad}");
        }
    }

    #[test]
    fn cids_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("verinfer-cids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read_file(&dir).unwrap().is_empty());
        let id = B256::repeat_byte(7);
        let book = BTreeMap::from([("QmA".to_string(), id)]);
        write_file(&dir, &book).unwrap();
        assert_eq!(read_file(&dir).unwrap(), vec![("QmA".into(), id)]);
        std::fs::write(dir.join("linear.onnx"), b"bytes").unwrap();
        std::fs::write(dir.join(CIDS_FILE), r#"{"QmB": "linear.onnx"}"#).unwrap();
        assert_eq!(
            read_file(&dir).unwrap(),
            vec![("QmB".into(), alloy_primitives::keccak256(b"bytes"))]
        );
        std::fs::write(dir.join(CIDS_FILE), r#"{"QmC": "missing.onnx"}"#).unwrap();
        assert!(read_file(&dir).is_err());
        std::fs::write(dir.join(CIDS_FILE), "[1]").unwrap();
        assert!(read_file(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
