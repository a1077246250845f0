# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned where it is installed (the library itself asks for a range). What the pin
# installs depends on the index pip reads: on Linux, PyPI's torch wheel is the CUDA build
# (several GB of NVIDIA libraries); macOS and Windows wheels are CPU-only. For the CPU build
# on Linux: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_PIN ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS := test,parquet,distributed,lightning,skorch,tensorboard

# The install stamp is named after a digest of what the install depends on: pyproject.toml's
# content, the torch pin and index, the extras. A clone, a checkout or a `touch` changes
# modification times, not content, so it does not reinstall; an edited pyproject.toml does.
INSTALL_KEY := $(shell $(PYTHON) -c 'import hashlib, sys; \
	print(hashlib.sha256(open("pyproject.toml", "rb").read() + sys.argv[1].encode()).hexdigest()[:16])' \
	'$(TORCH_PIN) $(TORCH_INDEX) $(EXTRAS)')
STAMP := $(VENV)/.installed-$(INSTALL_KEY)

.PHONY: demo test lint bench bench-quick install

$(STAMP):
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/shrinkage demo

# Without Chromium the browser tests skip, and the summary says why and how to run them;
# SHRINKAGE_REQUIRE_BROWSER=1 (CI) turns that skip into a failure.
test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples docs
	$(VENV)/bin/ruff format --check src tests bench examples docs

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/cli_startup.py
	$(PY) bench/overhead.py --threads 1 --clock cpu
	$(PY) bench/overhead.py --threads 2 --clock cpu
	$(PY) bench/overhead.py --threads 1 --clock cpu --optimizer sgd
	$(PY) bench/search.py
	$(PY) bench/search_networks.py --compiled
	$(PY) bench/lstm_products.py
	$(PY) bench/predict_block.py
	$(PY) bench/per_layer.py
	$(PY) bench/per_layer.py --no-optuna --repeat 3 --json bench/results/per_layer-ab.json
	$(PY) bench/report.py
	$(PY) bench/dask_search.py
	$(PY) bench/model_swap.py
	$(PY) bench/moons_case_study.py

bench-quick: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/cli_startup.py --quick
	$(PY) bench/overhead.py --quick
	$(PY) bench/search.py --quick
	$(PY) bench/per_layer.py --quick
	$(PY) bench/report.py --quick
	$(PY) bench/dask_search.py --quick
	$(PY) bench/search_networks.py --quick
	$(PY) bench/lstm_products.py --quick
	$(PY) bench/predict_block.py --quick
	$(PY) bench/model_swap.py --quick
	$(PY) bench/moons_case_study.py --quick
