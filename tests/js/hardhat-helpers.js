// hardhat-network-helpers against a verinfer node: mine, time.increase (exact), time.increaseTo,
// takeSnapshot/restore, setBalance. Run by tests/tests/it/hardhat.rs:
//   VERINFER_RPC=http://127.0.0.1:PORT npx hardhat --config .tools/peers/hardhat.config.js \
//     run tests/js/hardhat-helpers.js --network verinfer
// Prints "ok" and exits 0, or throws.
const helpers = require("@nomicfoundation/hardhat-network-helpers");
const hre = require("hardhat");

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function main() {
  const version = await hre.network.provider.request({ method: "web3_clientVersion" });
  check(version.includes("verinfer"), `client version names verinfer: ${version}`);

  const start = await helpers.time.latestBlock();
  await helpers.mine(5);
  check((await helpers.time.latestBlock()) === start + 5, "mine(5) mines five blocks");
  await helpers.mine(3, { interval: 60 });
  check((await helpers.time.latestBlock()) === start + 8, "mine(3, interval) mines three blocks");

  // A rapid chain runs ahead of the wall clock; increase is still exact.
  const before = await helpers.time.latest();
  const after = await helpers.time.increase(3600);
  check(after === before + 3600, `time.increase(3600) moved ${after - before} s`);
  await helpers.time.increaseTo(after + 100);
  check((await helpers.time.latest()) === after + 100, "time.increaseTo is exact");

  const snapshot = await helpers.takeSnapshot();
  const at = await helpers.time.latestBlock();
  const someone = "0x000000000000000000000000000000000000bEEF";
  await helpers.setBalance(someone, 12345n);
  await helpers.mine(4);
  check((await helpers.time.latestBlock()) === at + 4, "mined after the snapshot");
  await snapshot.restore();
  check((await helpers.time.latestBlock()) === at, "restore goes back to the snapshot's block");
  const balance = await hre.network.provider.request({ method: "eth_getBalance", params: [someone, "latest"] });
  check(BigInt(balance) === 0n, `the balance set after the snapshot is gone: ${balance}`);
  console.log("ok");
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
