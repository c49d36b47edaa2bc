# The two commands of the README:
#   make book   build the book from the default (cpu) profile; PROFILE=smoke for the quick one
#   make test   lint and the fast tests; make test-e2e: the end-to-end ones (CI runs both)
# and make reproduce: tier 1 of the published run (published/$(PROFILE)).
# Both set up .venv first (idempotent). XQG_DATA_DIR names the data directory (default:
# ../shared/data beside the checkout when present).

PROFILE ?= cpu
PYTHON ?= .venv/bin/python

.PHONY: setup book book-local reproduce run test test-e2e lint bench clean

setup:
	@bash tools/setup.sh

book: setup
	$(PYTHON) -m xqglib book --profile $(PROFILE)

# the book from a local run even where published/$(PROFILE) exists (runs what the run lacks)
book-local: setup
	$(PYTHON) -m xqglib book --profile $(PROFILE) --local

# tier 1: the published run's headline numbers, recomputed from its per-question tables (seconds)
reproduce: setup
	$(PYTHON) -m xqglib reproduce --tier 1 --profile $(PROFILE)

run: setup
	$(PYTHON) -m xqglib run --profile $(PROFILE)

lint: setup
	$(PYTHON) -m ruff check xqglib tests benchmarks

test: lint
	$(PYTHON) -m pytest -q -m "not e2e"

test-e2e: setup
	$(PYTHON) -m pytest -q -m e2e

# the roofline benchmark, on AVX2 (the study's budget machine) even where the CPU has more
bench: setup
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 $(PYTHON) benchmarks/throughput.py --profile $(PROFILE)

clean:
	rm -rf _build book/_executed runs
