# AI gateway: a proxy-wasm filter for Envoy. `make help` lists the targets.
# `make run` and `make test` install what they need (idempotently) on a fresh machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT        := $(abspath .)
VENV        := $(ROOT)/.venv
ENVOY       := $(VENV)/bin/envoy
WASM        := $(ROOT)/target/wasm32-wasip1/release/ai_gateway.wasm
WASM_MODE   := $(ROOT)/.tools/wasm-std-mode
# How to build for wasm: with the rustup target, or -Zbuild-std from Debian's rust-src
# (decided by tests/scripts/wasm-std.sh, see README "Building").
WASM_CARGO   = $(if $(filter build-std,$(shell cat $(WASM_MODE) 2>/dev/null)),RUSTC_BOOTSTRAP=1 cargo,cargo)
WASM_FLAGS   = --target wasm32-wasip1 $(if $(filter build-std,$(shell cat $(WASM_MODE) 2>/dev/null)),-Zbuild-std=std$(,)panic_abort)
,           := ,
export ENVOY_BIN := $(ENVOY)
export GATEWAY_WASM := $(WASM)

.PHONY: help setup wasm wasm-timing run test lint fmt unit fuzz integration validate redis clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(WASM_MODE) $(ENVOY) ## Install the wasm std and Envoy 1.40 (into .venv) if missing

$(WASM_MODE):
	bash tests/scripts/wasm-std.sh

$(ENVOY): tests/requirements.txt
	bash tests/scripts/python-env.sh

wasm: $(WASM_MODE) ## Build the release .wasm
	@bash tests/scripts/wasm-std.sh
	$(WASM_CARGO) build --release $(WASM_FLAGS) -p ai-gateway-filter
	@bash tests/scripts/wasm-opt.sh $(WASM)
	@ls -l $(WASM) | awk '{print "built " $$NF " (" $$5 " bytes)"}'

wasm-timing: $(WASM_MODE) ## The .wasm with each callback timed from inside (target/timing/; README "Benchmarks")
	$(WASM_CARGO) build --release $(WASM_FLAGS) -p ai-gateway-filter --features callback-timing --target-dir $(ROOT)/target/timing
	@ls -l $(ROOT)/target/timing/wasm32-wasip1/release/ai_gateway.wasm | awk '{print "built " $$NF}'

run: wasm $(ENVOY) ## Start Envoy with the gateway on :10000 and the demo provider on :10001
	cargo build -q -p gateway-tests --bin fake-provider --bin demo-config
	bash tests/scripts/run.sh

test: lint unit integration kubernetes ## Everything CI runs: format, clippy, unit and integration tests
	@echo "make test: all checks passed"

lint: $(WASM_MODE) ## cargo fmt --check, clippy natively and on the wasm target
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy -p gateway-tests --features bench --all-targets -- -D warnings
	$(WASM_CARGO) clippy --release $(WASM_FLAGS) -p ai-gateway-filter -- -D warnings
	$(WASM_CARGO) clippy --release $(WASM_FLAGS) -p ai-gateway-filter --features callback-timing -- -D warnings

fmt: ## Format the code
	cargo fmt --all

unit: ## Unit tests of the pure logic (native), and of the bench's statistics
	cargo test -p ai-gateway-filter
	cargo test -p gateway-tests --features bench --lib

# The fuzz properties also run in `unit`, with few cases; FUZZ_CASES sets how many here.
FUZZ_CASES ?= 20000
fuzz: ## Property-based fuzzing of every parser, longer than in `unit` (FUZZ_CASES=20000)
	PROPTEST_CASES=$(FUZZ_CASES) cargo test -p ai-gateway-filter --test fuzz
	PROPTEST_CASES=$(FUZZ_CASES) cargo test -p ai-gateway-filter --lib eventstream::fuzz

integration: wasm $(ENVOY) validate redis ## Integration tests through a real Envoy
	cargo test -p gateway-tests -- --test-threads 2

validate: $(ENVOY) wasm ## envoy --mode validate on every config in envoy/
	@for f in envoy/*.yaml; do \
	  $(ENVOY) --mode validate -c $$f -l error >/dev/null || { echo "INVALID: $$f"; exit 1; }; \
	  echo "valid: $$f"; \
	done

# Kubernetes and Istio (k8s/): see README "Deploy to Kubernetes" and "Deploy with Istio".
.PHONY: kubernetes kubernetes-render
kubernetes: $(ENVOY) wasm ## Check k8s/: kustomize builds, schemas, the bootstrap (envoy --mode validate)
	$(VENV)/bin/python tests/k8s/check.py

kubernetes-render: ## Regenerate the k8s/ files derived from envoy/envoy.yaml
	cargo run -q -p gateway-tests --bin k8s-render

# The rate limit service of the quota tests keeps its counters in Debian's redis-server.
redis:
	@bash tests/scripts/redis.sh

clean: ## Remove build output (keeps .venv and .tools)
	cargo clean

# Benchmark (README "Benchmarks"): gateway vs plain Envoy and the wasm floor, and with
# BENCH_PEERS=1 vs LiteLLM and Portkey, on this machine. Installs wrk and binaryen (Debian) and
# the peers when missing; writes the table and JSON to bench/results/. Settings: BENCH_DURATION,
# BENCH_CONNECTIONS, ... (see tests/src/bench/mod.rs); BENCH_BASELINE=<git rev> also measures
# that revision's gateway, built in a temporary worktree (tests/bench/baseline.sh). Measures and
# records only; asserts nothing.
.PHONY: bench bench-native bench-v8 floor-wasm
bench: wasm floor-wasm $(ENVOY) ## Benchmark vs plain Envoy (BENCH_PEERS=1: also LiteLLM, Portkey; BENCH_BASELINE=rev)
	bash tests/bench/setup.sh
	@if [ "$${BENCH_PEERS:-0}" = 1 ]; then bash tests/bench/peers.sh; fi
	@if [ -n "$${BENCH_BASELINE:-}" ]; then \
	  WASM_CARGO="$(WASM_CARGO)" WASM_FLAGS="$(WASM_FLAGS)" bash tests/bench/baseline.sh "$$BENCH_BASELINE"; fi
	cargo build --release -q -p gateway-tests --features bench --bin bench
	$(ROOT)/target/release/bench

# The wasm floor: a minimal filter that reads the request body and writes it back (tests/floor-filter).
floor-wasm: $(WASM_MODE)
	@bash tests/scripts/wasm-std.sh
	$(WASM_CARGO) build --release $(WASM_FLAGS) -p floor-filter

bench-native: ## Native timings of the per-request pure work, per stage and wire format
	cargo build --release -q -p gateway-tests --features bench --bin bench-native
	$(ROOT)/target/release/bench-native

# bench-native's stages and fixtures timed inside V8, the engine Envoy runs the gateway in:
# bench-native writes its checked fixtures to target/bench-v8/, tests/v8-bench (the same stages,
# tests/src/bench/stages.rs) is built for wasm32-wasip1 like the gateway (release profile,
# wasm-opt) and Node.js runs it (tests/bench/v8.mjs). Writes bench/results/v8.md.
V8_BENCH_WASM := $(ROOT)/target/wasm32-wasip1/release/v8-bench.wasm
bench-v8: $(WASM_MODE) ## The same stages timed in V8: wasm32-wasip1 run by Node.js 20 (BENCH_V8_MS)
	@command -v node >/dev/null || { echo "bench-v8: needs Node.js 20.11 or later (node:wasi)"; exit 1; }
	@bash tests/scripts/wasm-std.sh
	cargo build --release -q -p gateway-tests --features bench --bin bench-native
	$(ROOT)/target/release/bench-native --dump $(ROOT)/target/bench-v8
	$(WASM_CARGO) build --release $(WASM_FLAGS) -p v8-bench
	@bash tests/scripts/wasm-opt.sh $(V8_BENCH_WASM)
	@mkdir -p $(ROOT)/bench/results
	node --no-liftoff --disable-warning=ExperimentalWarning tests/bench/v8.mjs \
	  $(V8_BENCH_WASM) $(ROOT)/target/bench-v8 $(ROOT)/bench/results
