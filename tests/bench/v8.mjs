// `make bench-v8`'s runner: starts tests/v8-bench's .wasm (wasm32-wasip1) in Node's V8 with
// node:wasi (preview1), the fixtures directory and the results directory preopened.
//
//   node --no-liftoff tests/bench/v8.mjs V8_BENCH_WASM FIXTURES_DIR RESULTS_DIR
//
// `--no-liftoff` as Envoy's V8 runs (proxy-wasm-cpp-host turns Liftoff off): every function is
// compiled by TurboFan before it first runs. The module also carries the filter's proxy-wasm
// entry points, which import the proxy-wasm host functions (`env.proxy_*`); the stages never
// call them, so each is given a stub that fails loudly if one ever is. Settings passed on:
// BENCH_V8_MS.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import process from 'node:process';
import { WASI } from 'node:wasi';

const [wasmPath, fixturesDir, resultsDir] = process.argv.slice(2);
if (!wasmPath || !fixturesDir || !resultsDir) {
  console.error('usage: node tests/bench/v8.mjs V8_BENCH_WASM FIXTURES_DIR RESULTS_DIR');
  process.exit(2);
}

const env = {
  NODE_VERSION: process.version,
  V8_VERSION: process.versions.v8,
};
if (process.env.BENCH_V8_MS) env.BENCH_V8_MS = process.env.BENCH_V8_MS;

const wasi = new WASI({
  version: 'preview1',
  args: ['v8-bench', '/fixtures', '/results'],
  env,
  preopens: { '/fixtures': resolve(fixturesDir), '/results': resolve(resultsDir) },
});

const module = new WebAssembly.Module(readFileSync(wasmPath));
const host = {};
for (const { module: from, name } of WebAssembly.Module.imports(module)) {
  if (from === 'env') {
    host[name] = () => {
      throw new Error(`v8-bench called the proxy-wasm host function ${name}`);
    };
  }
}
const instance = new WebAssembly.Instance(module, {
  wasi_snapshot_preview1: wasi.wasiImport,
  env: host,
});
// A command module: wasi.start refuses one that also exports `_initialize` (the filter's
// proxy-wasm entry point), so it is given the two exports a command needs.
const { memory, _start } = instance.exports;
const code = wasi.start({ exports: { memory, _start } });
process.exitCode = code ?? 0;
