#!/usr/bin/env node
// A `solc` command backed by the npm package `solc` (solc-js), for tools that expect the native
// binary: foundry-compilers and `forge build --use`. It speaks the two things they ask:
//   solc --version                      prints "Version: x.y.z+commit..." like the native binary
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths ...] < input.json
// solcjs's own CLI prints a non-JSON line before its output, so it cannot stand in directly.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.join(__dirname, "..", "solc-js", "node_modules", "solc"));

const args = process.argv.slice(2);
if (args.includes("--version") || args.includes("-v")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("this solc shim only supports --version and --standard-json\n");
  process.exit(2);
}

// Import callback: resolve a path against the base path and include paths, as solc does.
const roots = [];
for (let i = 0; i < args.length; i++) {
  if ((args[i] === "--base-path" || args[i] === "--include-path") && args[i + 1]) roots.push(args[++i]);
}
if (roots.length === 0) roots.push(process.cwd());
function findImports(importPath) {
  for (const root of [...roots, ""]) {
    const file = path.resolve(root, importPath);
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `file not found: ${importPath}` };
}

const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
