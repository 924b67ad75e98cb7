//! hardhat-network-helpers (`mine`, `time.increase`, `takeSnapshot`, ...) against a verinfer
//! node: tests/js/hardhat-helpers.js run by hardhat on the node. Needs the peers of
//! scripts/install-peers (scripts/test runs it; `$VERINFER_PEERS` or .tools/peers).

use std::path::PathBuf;
use std::process::Command;

use verinfer_tests::node::ChildNode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn hardhat_network_helpers_work_against_the_node() {
    let peers = std::env::var_os("VERINFER_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/peers"));
    let cli = peers.join("node_modules/hardhat/internal/cli/cli.js");
    assert!(
        cli.exists(),
        "no hardhat under {}: run scripts/install-peers (scripts/test does)",
        peers.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let node = ChildNode::start(dir.path(), &[]);
    let out = Command::new("node")
        .arg(&cli)
        .arg("--config")
        .arg(peers.join("hardhat.config.js"))
        .args(["run", "--network", "verinfer"])
        .arg(root().join("tests/js/hardhat-helpers.js"))
        .current_dir(&peers)
        .env("VERINFER_RPC", node.url())
        .env("NODE_PATH", peers.join("node_modules"))
        .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
        .output()
        .expect("node (Node.js) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "hardhat-network-helpers failed against the node:\n{stdout}\n{stderr}"
    );
}
