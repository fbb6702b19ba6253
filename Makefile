# Two commands from a fresh clone: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Tests use one intra-op thread per worker and two workers: the CI machine has 2 cores.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: venv demo test lint format bench-dnt bench-lm bench-warmup bench-cluster bench-deep-cluster bench-tr2c bench-reid bench-reid-hcl bench-reid-cc bench-reid-cast bench-depict bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	# torch is pinned to 2.13.0; pip's configuration supplies the CPU wheel (uv would ignore it).
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m structlearn.cli demo --out demo_out

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format: $(STAMP)
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

# Benchmarks: long experiments, never part of `make test`. Each writes benchmarks/results/<name>/.
bench-dnt: $(STAMP)
	$(PY) benchmarks/bench_dnt.py

# Issue 12: {preln, dnt} x {AdamW, SGDW, Muon} on Tiny Shakespeare (needs ../shared/data or
# STRUCTLEARN_SHAKESPEARE); BENCH_LM_ARGS e.g. "--workers 2" or "--part throughput --nanogpt-dir DIR".
bench-lm: $(STAMP)
	$(PY) benchmarks/bench_lm.py $(BENCH_LM_ARGS)

bench-warmup: $(STAMP)
	$(PY) benchmarks/bench_warmup.py

bench-cluster: $(STAMP)
	$(PY) benchmarks/bench_cluster.py

bench-deep-cluster: $(STAMP)
	$(PY) benchmarks/bench_deep_cluster.py

bench-tr2c: $(STAMP)
	$(PY) benchmarks/bench_tr2c.py

bench-reid: $(STAMP)
	$(PY) benchmarks/bench_reid.py

bench-reid-hcl: $(STAMP)
	$(PY) benchmarks/bench_reid.py --parts hcl --name reid_hcl

bench-reid-cc: $(STAMP)
	$(PY) benchmarks/bench_reid.py --parts cc --name reid_cc
	$(PY) benchmarks/bench_reid.py --parts cc_pose --name reid_cc_pose

bench-reid-cast: $(STAMP)
	$(PY) benchmarks/bench_reid.py --parts cast cast_luma --name reid_cast

bench-depict: $(STAMP)
	$(PY) benchmarks/bench_depict.py

bench: bench-dnt bench-warmup bench-cluster bench-deep-cluster bench-tr2c bench-reid bench-depict

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
