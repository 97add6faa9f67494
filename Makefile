# The README's two commands: `make demo` and `make test`. Each sets up what it needs first.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# the vLLM environment (`make test` makes it; VLLM_DEVICE=cuda for vLLM's CUDA build)
VLLM_VENV ?= .venv-vllm
# No model hub at run time: everything runs on locally built tiny models and shipped data.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
           TOKENIZERS_PARALLELISM=false DO_NOT_TRACK=1 GRADIO_ANALYTICS_ENABLED=False
DEMO_DIR ?= demo_out
PYTEST_ARGS ?=

.PHONY: setup setup-vllm test demo clean

setup:
	@VENV=$(VENV) bash scripts/bootstrap.sh

setup-vllm:
	@VENV=$(VENV) VLLM_VENV=$(VLLM_VENV) bash scripts/bootstrap.sh --vllm

test: setup-vllm
	$(OFFLINE) SDRRL_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

demo: setup
	$(OFFLINE) $(BIN)/sdrrl demo --work-dir $(DEMO_DIR)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
