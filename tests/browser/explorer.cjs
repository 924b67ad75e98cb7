// The explorer in a real browser (headless Debian Chromium, driven by playwright-core), run by
// tests/tests/it/explorer.rs against a node it has prepared. Argument: one JSON object (see
// that test). Prints "ok <step>" per step; exits 1 at the first failure with what the page showed.
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const args = JSON.parse(process.argv[2]);
const base = `${args.url}/explorer`;
let page;
let current = "start";

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(name) {
  if (args.screenshots) await page.screenshot({ path: path.join(args.screenshots, `${name}.png`), fullPage: true });
}

async function visit(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => document.getElementById("app").dataset.route === h, hash);
}

async function search(query) {
  const before = await route();
  await page.fill("#search-input", query);
  await page.click("#search button");
  // Done when the route moved on: to the one page found, or to the search page once it shows
  // its results or "not found".
  await page.waitForFunction((previous) => {
    const now = document.getElementById("app").dataset.route;
    if (now === previous) return false;
    return !now.startsWith("#/search/") || document.querySelector("[data-testid=not-found], [data-testid=search-results]") !== null;
  }, before);
}

const text = (selector) => page.textContent(selector);
const route = () => page.evaluate(() => document.getElementById("app").dataset.route);

async function verifyRecord(id) {
  await visit(`#/record/${id}`);
  await page.click("[data-testid=verify]");
  await page.waitForSelector("[data-testid=verdict]", { timeout: 60000 });
  return {
    verdict: await text("[data-testid=verdict]"),
    failed: await page.$$eval("[data-testid=check-failed]", (xs) => xs.map((x) => x.textContent)),
    passed: await page.$$eval("[data-testid=check-ok]", (xs) => xs.length),
  };
}

const steps = {
  async home() {
    await page.goto(base);
    await page.waitForSelector(`[data-testid=latest-records] [data-testid=record-${args.record.id}]`);
    await page.waitForSelector(`[data-testid=latest-blocks] [data-testid=block-${args.record.block}]`);
    await shot("home");
  },

  async live() {
    const head = await page.evaluate(async () => {
      window.__samePage = true;
      return Number((await (await fetch("/", { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }) })).json()).result);
    });
    await page.waitForSelector("#live.on");
    await page.evaluate(async () => {
      const call = async (method, params) => (await (await fetch("/", { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method, params }) })).json()).result;
      const [from] = await call("eth_accounts", []);
      await call("eth_sendTransaction", [{ from, to: "0x000000000000000000000000000000000000b0b0", value: "0x1" }]);
    });
    await page.waitForSelector(`#live[data-head="${head + 1}"]`);
    await page.waitForSelector(`[data-testid=latest-blocks] [data-testid=block-${head + 1}]`);
    check(await page.evaluate(() => window.__samePage === true), "the page reloaded instead of updating");
  },

  async models() {
    await visit("#/models");
    const row = `[data-testid="model-${args.record.model}"]`;
    await page.waitForSelector(row);
    const runs = Number(await text(`${row} [data-testid=runs]`));
    check(runs >= 2, `the model shows ${runs} calls, expected at least 2`);
    const rowText = await text(row);
    for (const op of args.record.ops) check(rowText.includes(op), `the model row does not name op ${op}: ${rowText}`);
    check(rowText.includes(String(args.record.inferGas)), `the model row does not show its gas ${args.record.inferGas}`);
    await shot("models");
  },

  async model() {
    await visit(`#/model/${args.record.model}`);
    await page.waitForSelector("[data-testid=download]");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=download]")]);
    const file = await download.path();
    const size = fs.statSync(file).size;
    check(size === args.record.modelSize, `the download is ${size} bytes, the model ${args.record.modelSize}`);
    check((await text("[data-testid=model-records]")).includes(`#${args.record.id}`), "the model page does not list its record");
    await shot("model");
  },

  async searchTransaction() {
    await search(args.record.tx);
    check((await route()) === `#/tx/${args.record.tx}`, `searching the tx hash led to ${await route()}`);
    check((await text("[data-testid=status]")).includes("success"), "the transaction does not show success");
    await page.click(`[data-testid=tx-records] a[href="#/record/${args.record.id}"]`);
    await page.waitForFunction((id) => document.getElementById("app").dataset.route === `#/record/${id}`, args.record.id);
    await page.waitForSelector("[data-testid=inputs].mono, [data-testid=inputs] .mono");
    const outputs = await text("[data-testid=outputs]");
    check(outputs.includes(args.record.output), `the record shows outputs ${outputs}, expected ${args.record.output}`);
    const inputs = await text("[data-testid=inputs]");
    check(inputs.includes(args.record.input), `the record shows inputs ${inputs}, expected ${args.record.input}`);
    // The genesis holds the ZK registry at 0xA02; nothing proved this record.
    check((await text("[data-testid=zk]")) === "not proven", `the ZK status reads ${await text("[data-testid=zk]")}`);
    await shot("record");
  },

  async verify() {
    const result = await verifyRecord(args.record.id);
    check(result.verdict === "VERIFIED", `verdict ${result.verdict}: ${result.failed.join(" | ")}`);
    check(result.failed.length === 0 && result.passed >= 8, `${result.passed} checks passed, failed: ${result.failed}`);
    await shot("record-verified");
  },

  async searchEverything() {
    await search(String(args.record.id));
    if ((await route()).startsWith("#/search/")) await page.click(`[data-testid=search-results] a[href="#/record/${args.record.id}"]`);
    await page.waitForFunction((id) => document.getElementById("app").dataset.route === `#/record/${id}`, args.record.id);

    await search(args.record.blockHash);
    check((await route()) === `#/block/${args.record.blockHash}`, `the block hash led to ${await route()}`);
    check((await text("[data-testid=title]")) === `Block ${args.record.block}`, "the block page names another block");
    check((await text("[data-testid=block-inferences]")).includes(`#${args.record.id}`), "the block does not list its record");
    await shot("block");

    await search(String(args.record.block));
    if ((await route()).startsWith("#/search/")) await page.click(`[data-testid=search-results] a[href="#/block/${args.record.block}"]`);
    await page.waitForFunction((n) => document.getElementById("app").dataset.route === `#/block/${n}`, args.record.block);

    await search(args.record.caller);
    check((await route()) === `#/address/${args.record.caller}`, `the address led to ${await route()}`);
    check((await text("[data-testid=address-records]")).includes(`#${args.record.id}`), "the caller's page does not list its record");

    await search(args.record.model);
    check((await route()) === `#/model/${args.record.model}`, `the model id led to ${await route()}`);
  },

  async notFound() {
    for (const hash of ["#/record/999999", "#/block/999999", `#/model/0x${"00".repeat(32)}`, `#/tx/0x${"11".repeat(32)}`]) {
      await visit(hash);
      check(await page.$("[data-testid=not-found]"), `${hash} does not say not found`);
    }
    await search("no-such-thing");
    check(await page.$("[data-testid=not-found]"), "a search for nothing does not say not found");
    await shot("not-found");
  },

  async tampered() {
    const result = await verifyRecord(args.tampered);
    check(result.verdict === "NOT VERIFIED", `the tampered record's verdict is ${result.verdict}`);
    check(result.failed.some((f) => f.includes("output hash")), `no failed output-hash check: ${result.failed.join(" | ")}`);
    check(result.failed.some((f) => f.includes("re-running the model")), `the node's re-run did not fail: ${result.failed.join(" | ")}`);
    await shot("record-tampered");
  },

  async escaping() {
    const injected = () => page.evaluate(() => ({
      pwned: window.__pwned,
      elements: document.querySelectorAll("#app img, #app script, #app iframe, #app svg").length,
    }));
    await visit(`#/model/${args.hostile.model}`);
    check((await text("[data-testid=cid]")) === args.hostile.cid, "the hostile CID is not shown as text");
    await visit("#/models");
    check((await text(`[data-testid="model-${args.hostile.model}"]`)).includes(args.hostile.cid), "the models page lacks the hostile CID");
    await search(args.hostile.cid);
    check((await route()).startsWith("#/model/"), `the hostile CID search led to ${await route()}`);
    await visit(`#/tx/${args.hostile.tx}`);
    check((await text("[data-testid=revert-reason]")) === args.hostile.reason, `the revert reason reads ${await text("[data-testid=revert-reason]")}`);
    await shot("escaping");
    await page.waitForTimeout(300);
    const found = await injected();
    check(found.pwned === undefined, `injected script ran: window.__pwned = ${found.pwned}`);
    check(found.elements === 0, `${found.elements} injected elements in the page`);
  },
};

(async () => {
  const browser = await chromium.launch({
    executablePath: args.chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  try {
    page = await browser.newPage({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
    page.setDefaultTimeout(20000);
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
    for (const [name, step] of Object.entries(steps)) {
      current = name;
      await step();
      console.log(`ok ${name}`);
    }
    check(errors.length === 0, `the page logged errors:\n${errors.join("\n")}`);
    console.log("explorer: every step passed");
  } catch (e) {
    console.log(`FAILED at ${current}: ${e.message}`);
    if (errors.length) console.log(errors.join("\n"));
    if (page) {
      console.log("route:", await route().catch(() => "?"));
      console.log("page text:", (await page.textContent("body").catch(() => "")).slice(0, 3000));
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
