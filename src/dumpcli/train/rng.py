"""Every RNG state a run depends on: captured per step (to undo an interrupted step) and checkpointed.

Python, numpy-global and torch (CPU + every CUDA device); the trainer's own prompt RNG and the
scheduler's RNG are saved with the trainer state and the scheduler state.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.fsutil import atomic_write_json, torch_save
from dumpcli.rundir.layout import RNG, RNG_HOST


def capture_rng_states() -> dict[str, Any]:
    """Python, numpy-global and torch (CPU + every CUDA device) RNG states."""
    import torch

    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_rng_states(folder: Path) -> None:
    """rng.pt (torch CPU + CUDA states) and rng_host.json (python, numpy) into a checkpoint folder."""
    import torch

    states = capture_rng_states()
    torch_save({"torch": states["torch"], "cuda": states.get("cuda", [])}, folder / RNG)
    atomic_write_json(folder / RNG_HOST, {"python": _jsonable(states["python"]), "numpy": _jsonable(states["numpy"])})


def load_rng_states(folder: Path) -> None:
    import torch

    host = json.loads((folder / RNG_HOST).read_text(encoding="utf-8"))
    dev = torch.load(folder / RNG)
    python, numpy_state = host["python"], host["numpy"]
    restore_rng_states({
        "python": (python[0], tuple(python[1]), python[2]),
        "numpy": (numpy_state[0], np.asarray(numpy_state[1], dtype=np.uint32), *numpy_state[2:4], float(numpy_state[4])),
        "torch": dev["torch"], **({"cuda": dev["cuda"]} if dev["cuda"] else {}),
    })


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, list)):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj




@contextlib.contextmanager
def rng_untouched() -> Iterator[None]:
    """Evaluation must not shift the training's sampling stream (runs with and without eval agree)."""
    states = capture_rng_states()
    try:
        yield
    finally:
        restore_rng_states(states)
