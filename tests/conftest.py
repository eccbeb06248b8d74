"""Shared fixtures: real datasets written by the real `prepare` code, small enough for CI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Hermetic: only dump's built-in schedulers and rewards load, whatever else is installed here.
# Tests that need a plugin set DUMP_LOAD_PLUGINS for the process they start.
os.environ["DUMP_LOAD_PLUGINS"] = ""

MakeLadder = Callable[..., Path]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked `cuda` where torch sees no GPU, saying so: CI has none."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return  # torch is imported only when such a test was collected
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is false); "
                                   "bash scripts/gpu-check.sh runs these on one")
    for item in cuda_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def make_ladder(tmp_path_factory: pytest.TempPathFactory) -> MakeLadder:
    """`make_ladder(seed=, lengths="1-3", train=, test=)` writes a reverse-digit ladder dataset dir."""
    from dumpcli.data.recipe import prepare_recipe

    def make(*, seed: int, lengths: str, train: int, test: int) -> Path:
        out = tmp_path_factory.mktemp("data") / "ladder"
        source = {"source": "ladder", "tasks": ["reverse"], "lengths": lengths, "train": train, "test": test}
        prepare_recipe({"seed": seed, "sources": [source]}, out)
        return out

    return make
