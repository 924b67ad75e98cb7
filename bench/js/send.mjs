// The JavaScript client of `scripts/bench`: sends signed transactions one after another the way
// a dapp's script does with Node's own fetch (keep-alive), each after the previous one's
// receipt, polling `eth_getTransactionReceipt` every millisecond, exactly as the Rust client
// does (a transaction still pending after 2 s gets one `evm_mine` and counts as stalled).
//
// Usage: node send.mjs URL FILE   (FILE: a JSON array of 0x-prefixed raw transactions)
//        node send.mjs URL FILE --call   (FILE: {"method", "params", "count"}: one read-only
//                                         call repeated, one after another)
// Prints one JSON line: {"latenciesUs": [...], "wallUs": n, "stalled": n}.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const [url, file, mode] = process.argv.slice(2);
if (!url || !file) {
  console.error("usage: node send.mjs URL FILE [--call]");
  process.exit(2);
}
const input = JSON.parse(readFileSync(file, "utf8"));
let id = 0;

async function rpc(method, params) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  const reply = await response.json();
  if (reply.error) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
  return reply.result;
}

async function waitSuccess(hash) {
  const started = performance.now();
  let nudged = false;
  for (;;) {
    const receipt = await rpc("eth_getTransactionReceipt", [hash]);
    if (receipt) {
      if (receipt.status !== "0x1") throw new Error(`transaction ${hash} reverted`);
      return nudged;
    }
    if (!nudged && performance.now() - started > 2000) {
      nudged = true;
      await rpc("evm_mine", []);
    }
    if (performance.now() - started > 30000) throw new Error(`no receipt for ${hash} after 30 s`);
    await sleep(1);
  }
}

const latenciesUs = [];
let stalled = 0;
const started = performance.now();
if (mode === "--call") {
  for (let i = 0; i < input.count; i++) {
    const t = performance.now();
    await rpc(input.method, input.params);
    latenciesUs.push((performance.now() - t) * 1000);
  }
} else {
  for (const raw of input) {
    const t = performance.now();
    const hash = await rpc("eth_sendRawTransaction", [raw]);
    if (await waitSuccess(hash)) stalled += 1;
    latenciesUs.push((performance.now() - t) * 1000);
  }
}
const wallUs = (performance.now() - started) * 1000;
console.log(JSON.stringify({ latenciesUs, wallUs, stalled }));
