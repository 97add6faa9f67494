"""Shared fixtures: offline environment and the tiny local models (built once per checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# No model hub in tests: everything is built locally or shipped as fixtures.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def tiny_cache_dir() -> Path:
    """Persistent, content-keyed cache inside the checkout (gitignored): built once, reused."""
    path = Path(os.environ.get("SDRRL_TEST_CACHE", REPO / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_models(tiny_cache_dir):
    from sdrrl.tiny import build_all

    return build_all(tiny_cache_dir / "tiny-models")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
