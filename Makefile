# The README's two commands: `make demo` and `make test`. Each sets up what it needs first.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# No model hub at run time: everything runs on locally built tiny models and shipped data.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
           TOKENIZERS_PARALLELISM=false DO_NOT_TRACK=1 GRADIO_ANALYTICS_ENABLED=False
DEMO_DIR ?= demo_out
PYTEST_ARGS ?=

.PHONY: setup test demo clean

setup:
	@bash scripts/bootstrap.sh

test: setup
	$(OFFLINE) $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

demo: setup
	$(OFFLINE) $(BIN)/sdrrl demo --work-dir $(DEMO_DIR)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
