"""The run dir: resolved config, JSONL logs and atomic checkpoints (docs/formats.md).

    runs/ucb/
      config.yaml            format_version + the fully resolved TrainConfig
      metrics.jsonl          one object per optimizer step
      eval.jsonl             one object per evaluation
      samples.jsonl          a few completions per step
      checkpoints/step-000020/  adapter/, optimizer.pt, scheduler.json, rng.pt, trainer_state.json

A checkpoint is built in a temp dir and renamed into place, and `trainer_state.json` is written
last, so a directory named `step-N` is always complete; `--resume` takes the newest one and cuts
the logs back to its step so nothing is logged twice.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dumpcli.config import TrainConfig, config_from_dict, write_resolved_config
from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_dir, atomic_write_json, atomic_write_text, read_jsonl

CHECKPOINT_FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")
TRAINER_STATE = "trainer_state.json"
LOGS = ("metrics.jsonl", "eval.jsonl", "samples.jsonl")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval_path(self) -> Path:
        return self.path / "eval.jsonl"

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> TrainConfig:
        """The run's resolved config; DumpError when this is not a run dir."""
        if not self.config_path.is_file():
            raise DumpError(f"{self.path} is not a run dir (no config.yaml); pass the folder `dump train` wrote")
        raw = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        return config_from_dict(raw, where=str(self.config_path))

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first (temp dirs start with '.' and never match)."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for child in self.checkpoints_dir.iterdir():
            m = _STEP_DIR.match(child.name)
            if m and (child / TRAINER_STATE).is_file():
                found.append((int(m.group(1)), child))
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1][1] if ckpts else None

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def read_evals(self) -> list[dict[str, Any]]:
        return read_jsonl(self.eval_path)


def create_run_dir(path: Path, cfg: TrainConfig) -> RunDir:
    """Make a new run dir and write its resolved config; refuses to touch an existing run."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise DumpError(f"run dir {path} already exists and is not empty; continue it with `dump train --resume {path}` or pick another --out")
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    write_resolved_config(cfg, run.config_path)
    return run


def truncate_logs(run: RunDir, step: int) -> None:
    """Drop log lines after `step` (written after the checkpoint we resume from), atomically."""
    import json

    for name in LOGS:
        path = run.path / name
        if not path.exists():
            continue
        rows = read_jsonl(path)
        kept = [r for r in rows if int(r.get("step", 0)) <= step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def write_checkpoint(run: RunDir, step: int, write_contents: Callable[[Path], None], trainer_state: dict[str, Any]) -> Path:
    """Write checkpoints/step-N atomically: contents first, trainer_state.json last, then rename."""
    final = run.checkpoints_dir / checkpoint_name(step)
    with atomic_dir(final, overwrite=True) as tmp:
        write_contents(tmp)
        atomic_write_json(tmp / TRAINER_STATE, {"format_version": CHECKPOINT_FORMAT_VERSION, "step": step, **trainer_state})
    return final


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    import json

    state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    if state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise DumpError(f"{checkpoint} has checkpoint format {state.get('format_version')!r}; this dump reads {CHECKPOINT_FORMAT_VERSION}")
    return state


def prune_checkpoints(run: RunDir, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (0 keeps all)."""
    if keep <= 0:
        return
    for _, path in run.checkpoints()[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- RNG states


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
    torch.save({"torch": states["torch"], "cuda": states.get("cuda", [])}, folder / "rng.pt")
    atomic_write_json(folder / "rng_host.json", {"python": _jsonable(states["python"]), "numpy": _jsonable(states["numpy"])})


def load_rng_states(folder: Path) -> None:
    import json

    import torch

    host = json.loads((folder / "rng_host.json").read_text(encoding="utf-8"))
    dev = torch.load(folder / "rng.pt")
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


# ---------------------------------------------------------------- summary


def before_after_summary(run: RunDir) -> dict[str, Any]:
    """Per distribution: prompts drawn, training reward early vs late, eval reward first vs last.

    Early/late are the means over the first and last quarter of the steps that drew from the
    distribution. `rose_on` lists the distributions whose eval reward went up (training reward
    where there is no second evaluation).
    """
    metrics, evals = run.read_metrics(), run.read_evals()
    names = list(metrics[-1]["distributions"]) if metrics else list(evals[-1]["distributions"]) if evals else []
    reward_first, reward_last = _early_late([m["reward"] for m in metrics])
    out: dict[str, Any] = {"run": str(run.path), "steps": metrics[-1]["step"] if metrics else 0,
                           "elapsed_s": metrics[-1]["elapsed_s"] if metrics else 0.0,
                           "reward_first": reward_first, "reward_last": reward_last, "distributions": {}}
    rose = []
    for name in names:
        drawn = [m["distributions"][name] for m in metrics if m["distributions"].get(name, {}).get("prompts")]
        first, last = _early_late([d["reward"] for d in drawn])
        row = {"prompts": sum(d["prompts"] for d in drawn), "train_reward_first": first, "train_reward_last": last,
               "probability_last": metrics[-1]["distributions"][name]["probability"] if metrics else None}
        if evals:
            row["eval_reward_first"] = evals[0]["distributions"].get(name, {}).get("reward")
            row["eval_reward_last"] = evals[-1]["distributions"].get(name, {}).get("reward")
            row["eval_accuracy_first"] = evals[0]["distributions"].get(name, {}).get("accuracy")
            row["eval_accuracy_last"] = evals[-1]["distributions"].get(name, {}).get("accuracy")
        a, b = (row.get("eval_reward_first"), row.get("eval_reward_last")) if len(evals) > 1 else (first, last)
        if a is not None and b is not None and b > a:
            rose.append(name)
        out["distributions"][name] = row
    out["rose_on"] = rose
    out["rose_by"] = "eval" if len(evals) > 1 else "train"
    return out


def _early_late(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    k = max(1, len(values) // 4)
    return sum(values[:k]) / k, sum(values[-k:]) / k
