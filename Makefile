# replay: `make demo` runs a real capture + verify; `make test` runs every test against a real engine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE   ?= replay-base/python:3.11-bookworm
export REPLAY_BASE := $(BASE)

.PHONY: install engine podman slurm base tools chromium demo test test-unit check docs bench clean

$(BIN)/replay: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/replay

engine:
	@bash scripts/ensure-engine.sh

# Rootless Podman, the second engine (tests/e2e/test_podman.py makes an ordinary user and verifies as it).
podman:
	@bash scripts/ensure-podman.sh

# Debian's slurm-wlm + munge for the Slurm tests' one-node cluster (tests/slurm/cluster.py starts it).
slurm:
	@bash scripts/ensure-slurm.sh

base: install engine
	@REPLAY=$(BIN)/replay bash scripts/ensure-base.sh

tools:
	@bash scripts/ensure-tools.sh

chromium:
	@bash scripts/ensure-chromium.sh

demo: base
	@bash demo/run.sh

test: base tools podman slurm chromium
	$(BIN)/pytest -q

# No root needed: only the Python package; a test whose system tool (ssh-keygen...) is missing is skipped here.
test-unit: install
	REPLAY_TEST_UNIT=1 $(BIN)/pytest -q tests/unit tests/cli

check: install
	$(BIN)/ruff check replay tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q tests/cli/test_docs.py

# The README's sample outputs, rewritten from replay's own renderers (the docs test fails when one is stale).
docs: install
	$(BIN)/python scripts/readme_samples.py --write

bench: base tools
	$(BIN)/python benchmarks/bench_hash.py
	$(BIN)/python benchmarks/bench_compare.py
	$(BIN)/python benchmarks/bench_manifest.py
	$(BIN)/python benchmarks/bench_capture_verify.py
	$(BIN)/python benchmarks/bench_bundle.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_lock.py
	$(BIN)/python benchmarks/bench_bundle_index.py
	$(BIN)/python benchmarks/bench_investigate.py
	$(BIN)/python benchmarks/bench_capture_resolves.py

clean:
	rm -rf $(VENV) demo/work .pytest_cache .mypy_cache .ruff_cache
