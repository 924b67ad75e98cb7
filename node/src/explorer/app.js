// The verinfer explorer: one page over the node's public JSON-RPC (same origin, HTTP for
// reads, the WebSocket for new heads). Every value from the chain reaches the page as text
// (textContent), never as markup, so a hostile model name, revert reason or decoded value is
// shown, not run.
import * as c from "./crypto.js";

const PRECOMPILE = "0x0000000000000000000000000000000000000a00";
const ZK_REGISTRY = "0x0000000000000000000000000000000000000a02";
const INFER = c.selector("infer(bytes32,(uint32[],int256[],uint8)[],uint8)");
const RECORDED = c.toHex(c.keccakText("InferenceRecorded(uint256,bytes32,address,bytes32,bytes32)"));
const LATEST_BLOCKS = 10;
const LATEST_RECORDS = 25;
// Custom errors of IInference.sol, by selector, for reverted transactions.
const ERRORS = Object.fromEntries(
  [
    "UnknownSelector(bytes4)", "MalformedCalldata(string)", "UnknownModel(bytes32)",
    "WrongInputCount(uint256,uint256)", "ShapeMismatch(uint256,uint32[],uint32[])",
    "ValueCountMismatch(uint256,uint256,uint256)", "TooManyElements(uint256,uint256)",
    "DecimalsTooLarge(uint256,uint256)", "ValueOutOfRange(uint256,uint256)",
    "NonFiniteOutput(uint256,uint256)", "InferenceFailed(string)", "NotDirectCall()",
    "ValueNotAccepted()", "UnknownInference(uint256)", "PrecompileUnavailable(string)",
    "DimensionOutOfBounds(uint256,uint256,uint256,uint256)",
    "SymbolMismatch(uint256,uint256,string,uint256,uint256)",
  ].map((sig) => [c.selector(sig), sig]),
);

const app = document.getElementById("app");

// ---- JSON-RPC ----

let nextId = 0;
/** One JSON-RPC call to the node serving this page. */
async function rpc(method, params = []) {
  const response = await fetch("/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++nextId, method, params }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

// ---- DOM: every string becomes a text node ----

function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const link = (href, text, props = {}) => h("a", { href, ...props }, text);
const mono = (text) => h("span", { class: "mono" }, text);
const short = (hex) => (hex && hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-8)}` : hex);
const blockLink = (n) => link(`#/block/${n}`, String(n));
const txLink = (hash) => (hash ? link(`#/tx/${hash}`, short(hash), { class: "mono", title: hash }) : h("span", { class: "muted" }, "unknown"));
const addressLink = (a) => (a ? link(`#/address/${a}`, a, { class: "mono" }) : h("span", { class: "muted" }, "—"));
const modelLink = (id) => link(`#/model/${id}`, short(id), { class: "mono", title: id });
const recordLink = (id) => link(`#/record/${id}`, `#${id}`);
const num = (hex) => (hex === null || hex === undefined ? null : BigInt(hex));
const ether = (wei) => c.formatFixed(BigInt(wei), 18).replace(/\.?0+$/, "") + " ETH";

function fields(rows) {
  return h("table", { class: "fields" }, rows.filter(Boolean).map(([name, value, testid]) =>
    h("tr", { testid }, h("th", {}, name), h("td", {}, value))));
}

function table(headers, rows, testid) {
  return h("table", { testid },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))));
}

function notFound(what) {
  return h("div", { class: "not-found", testid: "not-found" },
    h("h1", {}, "Not found"), h("p", {}, `This node has no ${what}.`));
}

function tensorText(t) {
  const values = t.values.map((v) => c.formatFixed(v, t.decimals));
  return `[${t.shape.join(", ")}] ${values.length > 64 ? values.slice(0, 64).join(", ") + ", …" : values.join(", ")}`;
}

function tensors(list, testid) {
  return h("div", { testid }, list.map((t, i) => h("div", { class: "mono" }, `${i}: ${tensorText(t)}`)));
}

function specs(list) {
  return list.map((s) => h("div", { class: "mono" }, `${s.name} ${s.dtype ?? ""} [${(s.shape || []).join(", ")}]`));
}

// ---- views ----

async function home() {
  const head = Number(await rpc("eth_blockNumber"));
  const numbers = [];
  for (let n = head; n >= 0 && numbers.length < LATEST_BLOCKS; n--) numbers.push(n);
  const [blocks, count, models] = await Promise.all([
    Promise.all(numbers.map((n) => rpc("eth_getBlockByNumber", ["0x" + n.toString(16), true]))),
    rpc("verinfer_inferenceCount"),
    rpc("verinfer_listModels"),
  ]);
  const txs = blocks.filter(Boolean).flatMap((b) => b.transactions.map((t) => ({ ...t, block: Number(b.number) }))).slice(0, 15);
  const records = await latestRecords(Number(count), 5);
  return [
    h("h1", {}, `Latest: block ${head}`),
    h("p", { class: "muted" }, `${Number(count)} inferences recorded, ${models.length} models. `, link("#/models", "Models"), " · ", link("#/records", "Inferences")),
    h("section", { class: "grid" },
      h("div", { class: "card" }, h("h2", {}, "Latest blocks"),
        table(["block", "hash", "txs", "gas used"], blocks.filter(Boolean).map((b) =>
          h("tr", { testid: `block-${Number(b.number)}` }, h("td", {}, blockLink(Number(b.number))), h("td", { class: "mono" }, short(b.hash)),
            h("td", {}, String(b.transactions.length)), h("td", {}, String(Number(b.gasUsed))))), "latest-blocks")),
      h("div", { class: "card" }, h("h2", {}, "Latest transactions"),
        table(["hash", "from", "to", "block"], txs.map((t) =>
          h("tr", {}, h("td", {}, txLink(t.hash)), h("td", { class: "mono" }, short(t.from)),
            h("td", { class: "mono" }, t.to ? short(t.to) : "create"), h("td", {}, blockLink(t.block)))), "latest-transactions"))),
    h("div", { class: "card" }, h("h2", {}, "Latest inferences"), recordTable(records, "latest-records")),
  ];
}

async function latestRecords(count, limit) {
  const ids = [];
  for (let id = count; id >= 1 && ids.length < limit; id--) ids.push(id);
  const records = await Promise.all(ids.map((id) => rpc("verinfer_getInference", ["0x" + id.toString(16)])));
  return records.filter(Boolean);
}

function recordTable(records, testid) {
  return table(["record", "model", "caller", "block", "outputs"], records.map((r) =>
    h("tr", { testid: `record-${Number(r.id)}` }, h("td", {}, recordLink(Number(r.id))), h("td", {}, modelLink(r.modelId)),
      h("td", { class: "mono" }, short(r.caller)), h("td", {}, blockLink(r.blockNumber)),
      h("td", { class: "mono" }, r.outputs.map(tensorText).join(" ; ")))), testid);
}

async function records() {
  const count = Number(await rpc("verinfer_inferenceCount"));
  return [h("h1", {}, `Inferences (${count})`), h("p", { class: "muted" }, `The latest ${Math.min(count, LATEST_RECORDS)}.`),
    recordTable(await latestRecords(count, LATEST_RECORDS), "records")];
}

async function block(which) {
  const b = /^0x[0-9a-fA-F]{64}$/.test(which)
    ? await rpc("eth_getBlockByHash", [which, true])
    : /^\d+$/.test(which) ? await rpc("eth_getBlockByNumber", ["0x" + BigInt(which).toString(16), true]) : null;
  if (!b) return notFound(`block ${which}`);
  const number = Number(b.number);
  const [witnesses, finalization] = await Promise.all([
    rpc("verinfer_getBlockInferences", [number]).catch(() => []),
    rpc("verinfer_getFinalization", [number]).catch(() => null),
  ]);
  return [
    h("h1", { testid: "title" }, `Block ${number}`),
    fields([
      ["hash", mono(b.hash)],
      ["parent", number > 0 ? link(`#/block/${number - 1}`, b.parentHash, { class: "mono" }) : mono(b.parentHash)],
      ["time", new Date(Number(b.timestamp) * 1000).toISOString()],
      ["state root", mono(b.stateRoot)],
      ["gas used / limit", `${Number(b.gasUsed)} / ${Number(b.gasLimit)}`],
      ["base fee", b.baseFeePerGas ? `${Number(b.baseFeePerGas)} wei` : "—"],
      ["finalized", finalization ? `by the validators' certificate in block ${finalization.certifiedBlock ?? finalization.certified_block ?? number}` : "devnet: sealed by the node"],
    ]),
    h("h2", {}, `Transactions (${b.transactions.length})`),
    table(["hash", "from", "to", "value"], b.transactions.map((t) =>
      h("tr", {}, h("td", {}, txLink(t.hash)), h("td", {}, addressLink(t.from)), h("td", {}, t.to ? addressLink(t.to) : "create"), h("td", {}, ether(t.value)))), "block-transactions"),
    h("h2", {}, `Inferences (${witnesses.length})`),
    table(["record", "model", "transaction", "outputs"], witnesses.map((w) =>
      h("tr", {}, h("td", {}, recordLink(Number(w.id))), h("td", {}, modelLink(w.modelId)), h("td", {}, txLink(w.transactionHash)),
        h("td", { class: "mono" }, (w.decodedOutputs || []).map(tensorText).join(" ; ")))), "block-inferences"),
  ];
}

/** The call frames of a callTracer trace, depth first. */
function frames(trace) {
  const out = [];
  const stack = [trace];
  while (stack.length) {
    const f = stack.pop();
    if (!f) continue;
    out.push(f);
    for (const sub of f.calls || []) stack.push(sub);
  }
  return out;
}

function revertText(data) {
  if (!data || data === "0x") return null;
  const bytes = c.fromHex(data);
  const reason = c.decodeRevertReason(bytes);
  if (reason !== null) return reason;
  const name = ERRORS[c.toHex(bytes.slice(0, 4))];
  return name ? `${name} ${data.slice(10) ? "0x" + data.slice(10) : ""}` : data;
}

async function transaction(hash) {
  if (!/^0x[0-9a-fA-F]{64}$/.test(hash)) return notFound(`transaction ${hash}`);
  const [t, receipt] = await Promise.all([rpc("eth_getTransactionByHash", [hash]), rpc("eth_getTransactionReceipt", [hash])]);
  if (!t) return notFound(`transaction ${hash}`);
  let failure = null;
  if (receipt && receipt.status === "0x0") {
    const trace = await rpc("debug_traceTransaction", [hash, { tracer: "callTracer" }]).catch(() => null);
    failure = trace ? revertText(trace.output) ?? trace.error ?? "reverted" : "reverted";
  }
  const recorded = (receipt?.logs || []).filter((l) => l.address.toLowerCase() === PRECOMPILE && l.topics[0] === RECORDED);
  return [
    h("h1", { testid: "title" }, "Transaction"),
    fields([
      ["hash", mono(t.hash)],
      ["block", t.blockNumber ? blockLink(Number(t.blockNumber)) : "pending"],
      ["from", addressLink(t.from)],
      ["to", t.to ? addressLink(t.to) : receipt?.contractAddress ? h("span", {}, "created ", addressLink(receipt.contractAddress)) : "contract creation"],
      ["value", ether(t.value)],
      ["status", !receipt ? "pending" : receipt.status === "0x1" ? h("span", { class: "ok" }, "success") : h("span", { class: "bad" }, "reverted"), "status"],
      failure !== null && ["revert reason", h("span", { class: "mono", testid: "revert-reason" }, failure)],
      receipt && ["gas used", String(Number(receipt.gasUsed))],
      ["input", h("span", { class: "mono" }, t.input.length > 514 ? t.input.slice(0, 514) + "…" : t.input)],
      recorded.length > 0 && ["inferences", recorded.map((l) => [recordLink(Number(l.topics[1])), " "]), "tx-records"],
    ]),
    h("h2", {}, `Logs (${receipt?.logs.length ?? 0})`),
    table(["address", "topics", "data"], (receipt?.logs || []).map((l) =>
      h("tr", {}, h("td", {}, addressLink(l.address)), h("td", { class: "mono" }, l.topics.map((x) => h("div", {}, x))), h("td", { class: "mono" }, l.data))), "logs"),
  ];
}

async function models() {
  const list = await rpc("verinfer_listModels");
  return [h("h1", {}, `Models (${list.length})`),
    table(["model", "names (CIDs)", "inputs", "outputs", "size", "ops", "gas per infer", "calls"], list.map((m) =>
      h("tr", { testid: `model-${m.id}` }, h("td", {}, modelLink(m.id)), h("td", {}, (m.cids || []).map((x) => h("span", { class: "tag" }, x))),
        h("td", {}, specs(m.inputs)), h("td", {}, specs(m.outputs)), h("td", {}, `${m.size} B`),
        h("td", {}, (m.ops || []).map((o) => h("span", { class: "tag" }, o))), h("td", {}, String(m.inferGas)), h("td", { testid: "runs" }, String(m.runs)))), "models")];
}

async function model(name) {
  const m = await rpc("verinfer_getModel", [name]).catch(() => null);
  if (!m) return notFound(`model ${name}`);
  const bytes = m.bytes ? c.fromHex(m.bytes) : new Uint8Array();
  const hashed = c.toHex(c.keccak256(bytes));
  const download = h("a", { testid: "download", download: `${m.id}.onnx`, href: URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" })) }, `download ${m.id.slice(0, 10)}….onnx (${m.size} bytes)`);
  const count = Number(await rpc("verinfer_inferenceCount"));
  const recent = (await latestRecords(count, 100)).filter((r) => r.modelId === m.id);
  return [
    h("h1", { testid: "title" }, "Model ", mono(m.id)),
    fields([
      ["names (CIDs)", (m.cids || []).length ? m.cids.map((x) => h("span", { class: "tag", testid: "cid" }, x)) : h("span", { class: "muted" }, "none bound")],
      ["inputs", specs(m.inputs)],
      ["outputs", specs(m.outputs)],
      ["ops", (m.ops || []).map((o) => h("span", { class: "tag" }, o))],
      ["size", `${m.size} bytes`],
      ["bytes", hashed === m.id ? h("span", { class: "ok" }, "hash to the model id (checked here)") : h("span", { class: "bad" }, `hash to ${hashed}, not the model id`)],
      ["download", download],
      ["compute cost", String(m.computeCost)],
      ["memory estimate", `${m.memoryEstimate} bytes`],
      ["gas per call", `infer ${m.inferGas}, predict ${m.predictGas}`],
      ["calls", `${m.runs} runs since the node admitted it`, "runs"],
    ]),
    h("h2", {}, "Latest inferences of this model"),
    recordTable(recent, "model-records"),
  ];
}

async function zkStatus(id) {
  const code = await rpc("eth_getCode", [ZK_REGISTRY, "latest"]).catch(() => "0x");
  if (!code || code === "0x") return h("span", { class: "muted" }, "no ZK registry on this chain");
  const data = c.selector("isProven(uint256)") + c.toHex(c.word(id)).slice(2);
  const result = await rpc("eth_call", [{ to: ZK_REGISTRY, data }, "latest"]).catch(() => null);
  if (result === null) return h("span", { class: "muted" }, "the registry did not answer");
  return BigInt(result) === 1n ? h("span", { class: "ok", testid: "zk" }, "proven (isProven at 0xA02)") : h("span", { class: "muted", testid: "zk" }, "not proven");
}

/** The `infer` call that made record `id`, from the transaction's call trace. */
async function inferCall(txHash, id) {
  const trace = await rpc("debug_traceTransaction", [txHash, { tracer: "callTracer" }]);
  for (const f of frames(trace)) {
    if ((f.to || "").toLowerCase() !== PRECOMPILE || f.error || !f.input?.startsWith(INFER) || !f.output) continue;
    const output = c.fromHex(f.output);
    if (output.length >= 32 && c.toBigInt(output.slice(0, 32)) === BigInt(id)) return c.decodeInferCall(c.fromHex(f.input));
  }
  throw new Error(`transaction ${txHash} has no infer call that returned record ${id}`);
}

async function record(which) {
  if (!/^\d+$/.test(which)) return notFound(`record ${which}`);
  const id = BigInt(which);
  const r = await rpc("verinfer_getInference", ["0x" + id.toString(16)]);
  if (!r) return notFound(`record ${which}`);
  const inputs = h("div", { testid: "inputs", class: "muted" }, "reading the transaction's trace…");
  const call = r.transactionHash ? inferCall(r.transactionHash, id) : Promise.reject(new Error("the node does not say which transaction recorded it"));
  call.then((x) => {
    inputs.className = "";
    inputs.replaceChildren(...x.inputs.map((t, i) => h("div", { class: "mono" }, `${i}: ${tensorText(t)}`)));
  }, (e) => { inputs.textContent = e.message; });
  call.catch(() => {});
  const result = h("div", { testid: "verify-result" });
  const button = h("button", { testid: "verify", onclick: () => verify(r, call, button, result) }, "Verify");
  return [
    h("h1", { testid: "title" }, `Inference #${which}`),
    fields([
      ["model", modelLink(r.modelId)],
      ["caller", addressLink(r.caller)],
      ["transaction", txLink(r.transactionHash)],
      ["block", blockLink(r.blockNumber)],
      ["inputs", inputs],
      ["outputs", tensors(r.outputs, "outputs")],
      ["input hash", mono(r.inputHash)],
      ["output hash", mono(r.outputHash)],
      ["attester", addressLink(r.attester)],
      ["signature", mono(r.signature)],
      ["EIP-712 digest", mono(r.digest)],
      ["node's signature check", r.signatureValid ? h("span", { class: "ok" }, "recovers to the attester") : h("span", { class: "bad" }, "does not recover to the attester")],
      r.openGradientMode && ["OpenGradient mode", r.openGradientMode],
      ["ZK proof", await zkStatus(id)],
    ]),
    h("h2", {}, "Verify"),
    h("p", { class: "muted" }, "Checks the commitments and the signature here, in the page, then asks the node to re-run the model (verinfer_verifyInference)."),
    button,
    result,
  ];
}

async function verify(r, call, button, result) {
  button.disabled = true;
  result.replaceChildren(h("p", { class: "muted" }, "checking…"));
  const checks = [];
  const check = (what, passed, detail) => checks.push({ what, passed, detail: passed ? "" : detail });
  try {
    const [chainId, attester, m] = await Promise.all([rpc("eth_chainId"), rpc("verinfer_attester"), rpc("verinfer_getModel", [r.modelId])]);
    try {
      const x = await call;
      const hashed = c.inputHash(x.modelId, x.inputs);
      check("the transaction called infer with this model", x.modelId === r.modelId, `it called ${x.modelId}`);
      check("the transaction's inputs hash to the input hash", hashed === r.inputHash, `they hash to ${hashed}`);
    } catch (e) {
      check("the transaction's inputs hash to the input hash", false, e.message);
    }
    const outputs = c.outputHash(r.outputs);
    check("the recorded outputs hash to the output hash", outputs === r.outputHash, `they hash to ${outputs}`);
    const bytes = m?.bytes ? c.toHex(c.keccak256(c.fromHex(m.bytes))) : null;
    check("the model's bytes hash to the model id", bytes === r.modelId, bytes ? `they hash to ${bytes}` : "the node does not serve the model");
    const digest = c.attestationDigest(BigInt(chainId), BigInt(r.id), r.modelId, r.inputHash, r.outputHash);
    const signer = c.recoverAddress(digest, c.fromHex(r.signature));
    check("the signature over the EIP-712 digest recovers to the record's attester", signer === r.attester.toLowerCase(), signer ? `it recovers to ${signer}` : "it recovers to no address");
    check("the attester is the node's (verinfer_attester)", r.attester.toLowerCase() === attester.toLowerCase(), `the node's is ${attester}`);
  } catch (e) {
    check("reading the record's data", false, e.message);
  }
  let replay = [];
  try {
    replay = (await rpc("verinfer_verifyInference", [r.id])).checks;
  } catch (e) {
    replay = [{ what: "the node re-checks the record (verinfer_verifyInference)", passed: false, detail: e.message }];
  }
  const verified = [...checks, ...replay].every((x) => x.passed);
  const list = (items, testid) => h("ul", { class: "checks", testid }, items.map((x) =>
    h("li", { testid: x.passed ? "check-ok" : "check-failed" }, x.passed ? h("span", { class: "ok" }, "ok ") : h("span", { class: "bad" }, "FAIL "), x.what, x.passed ? "" : `: ${x.detail}`)));
  result.replaceChildren(
    h("div", { class: `verdict ${verified ? "ok" : "bad"}`, testid: "verdict" }, verified ? "VERIFIED" : "NOT VERIFIED"),
    h("h3", {}, "In this page"), list(checks, "page-checks"),
    h("h3", {}, "By the node: re-run and storage proof"), list(replay, "node-checks"),
  );
  button.disabled = false;
}

async function address(a) {
  if (!/^0x[0-9a-fA-F]{40}$/.test(a)) return notFound(`address ${a}`);
  const [balance, nonce, code, count] = await Promise.all([
    rpc("eth_getBalance", [a, "latest"]), rpc("eth_getTransactionCount", [a, "latest"]), rpc("eth_getCode", [a, "latest"]), rpc("verinfer_inferenceCount"),
  ]);
  const recent = (await latestRecords(Number(count), 100)).filter((r) => r.caller.toLowerCase() === a.toLowerCase());
  return [
    h("h1", { testid: "title" }, "Address ", mono(a)),
    fields([["balance", ether(balance)], ["nonce", String(Number(nonce))], ["code", code === "0x" ? "none (an account)" : `${(code.length - 2) / 2} bytes (a contract)`]]),
    h("h2", {}, "Latest inferences it called"),
    recordTable(recent, "address-records"),
  ];
}

async function search(query) {
  const q = query.trim();
  const found = [];
  if (/^\d+$/.test(q)) {
    const [b, r] = await Promise.all([rpc("eth_getBlockByNumber", ["0x" + BigInt(q).toString(16), false]), rpc("verinfer_getInference", ["0x" + BigInt(q).toString(16)])]);
    if (b) found.push([`#/block/${q}`, `block ${q}`]);
    if (r) found.push([`#/record/${q}`, `inference record #${q}`]);
  } else if (/^0x[0-9a-fA-F]{64}$/.test(q)) {
    const [t, b, m] = await Promise.all([rpc("eth_getTransactionByHash", [q]), rpc("eth_getBlockByHash", [q, false]), rpc("verinfer_getModel", [q]).catch(() => null)]);
    if (t) found.push([`#/tx/${q}`, `transaction ${q}`]);
    if (b) found.push([`#/block/${q}`, `block ${Number(b.number)}`]);
    if (m) found.push([`#/model/${q}`, `model ${q}`]);
  } else if (/^0x[0-9a-fA-F]{40}$/.test(q)) {
    found.push([`#/address/${q}`, `address ${q}`]);
  } else if (q) {
    const m = await rpc("verinfer_getModel", [q]).catch(() => null);
    if (m) found.push([`#/model/${encodeURIComponent(q)}`, `model ${m.id} (named ${q})`]);
  }
  if (found.length === 1) {
    location.replace(found[0][0]);
    return [];
  }
  if (!found.length) return notFound(`block, transaction, model, record or address matching "${q}"`);
  return [h("h1", {}, "Search"), h("ul", { testid: "search-results" }, found.map(([href, text]) => h("li", {}, link(href, text))))];
}

// ---- routing, live updates ----

const ROUTES = [
  [/^#?\/?$/, home],
  [/^#\/records$/, records],
  [/^#\/models$/, models],
  [/^#\/block\/(.+)$/, block],
  [/^#\/tx\/(.+)$/, transaction],
  [/^#\/model\/(.+)$/, (x) => model(decodeURIComponent(x))],
  [/^#\/record\/(.+)$/, record],
  [/^#\/address\/(.+)$/, address],
  [/^#\/search\/(.*)$/, (x) => search(decodeURIComponent(x))],
];

let rendering = 0;
async function render() {
  const ticket = ++rendering;
  const hash = location.hash || "#/";
  const [pattern, view] = ROUTES.find(([p]) => p.test(hash)) || [null, null];
  let content;
  try {
    content = view ? await view(...hash.match(pattern).slice(1)) : notFound(`page ${hash}`);
  } catch (e) {
    content = h("div", { class: "not-found", testid: "error" }, h("h1", {}, "The node's answer could not be shown"), h("p", { class: "mono" }, e.message));
  }
  if (ticket !== rendering) return;
  app.replaceChildren(...[content].flat());
  app.dataset.route = hash;
}

document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = document.getElementById("search-input").value;
  const target = `#/search/${encodeURIComponent(q.trim())}`;
  if (location.hash === target) render();
  else location.hash = target;
});
window.addEventListener("hashchange", render);
render();

function live() {
  const badge = document.getElementById("live");
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`);
  ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] }));
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id === 1 && message.result) {
      badge.className = "live on";
      badge.textContent = "live";
    }
    const head = message.params?.result?.number;
    if (head === undefined) return;
    badge.className = "live on";
    badge.textContent = `live · block ${Number(head)}`;
    badge.dataset.head = String(Number(head));
    const hash = location.hash || "#/";
    if (/^#?\/?$/.test(hash) || hash === "#/records") render();
  };
  ws.onclose = () => {
    badge.className = "live off";
    badge.textContent = "reconnecting…";
    setTimeout(live, 2000);
  };
}
live();
