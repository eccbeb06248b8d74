"""The one writer of run dirs: creates them, appends the logs, writes and prunes checkpoints.

A checkpoint is built in a temp dir and renamed into place, with `trainer_state.json` written
last, so a directory named `step-N` is always complete; a resumed run cuts the logs back to its
checkpoint's step so nothing is logged twice. File names come from `dumpcli.rundir.layout`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dumpcli.errors import DumpError
from dumpcli.fsutil import append_jsonl, atomic_dir, atomic_write_json, atomic_write_text, read_jsonl
from dumpcli.rundir.layout import CHECKPOINT_FORMAT_VERSION, LOGS, TRAINER_STATE, RunDir


@dataclass(frozen=True)
class RunWriter:
    run: RunDir

    @classmethod
    def create(cls, path: Path, config: Any, dataset: dict[str, Any]) -> RunWriter:
        """Make a new run dir with its resolved config and dataset record; refuses a folder with anything in it.

        `config`: a TrainConfig; `dataset`: what `dumpcli.data.dataset.DatasetDir.record` gives
        (resolved path, fingerprint, one entry per distribution trained on).
        """
        from dumpcli.config import write_resolved_config

        run = RunDir(Path(path))
        refuse_existing(run)
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run.dataset_path, dataset)
        write_resolved_config(config, run.config_path)  # last: a run dir "exists" once config.yaml does
        return cls(run)

    @classmethod
    def reopen(cls, run: RunDir, step: int) -> RunWriter:
        """Continue `run` from its checkpoint at `step`: log lines after it are dropped, atomically."""
        for name in LOGS:
            path = run.path / name
            if path.exists():
                kept = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= step]
                atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
        return cls(run)

    def append_metrics(self, row: dict[str, Any]) -> None:
        append_jsonl(self.run.metrics_path, row)

    def append_eval(self, row: dict[str, Any]) -> None:
        append_jsonl(self.run.eval_path, row)

    def append_sample(self, row: dict[str, Any]) -> None:
        append_jsonl(self.run.samples_path, row)

    def write_checkpoint(self, step: int, write_contents: Callable[[Path], None], trainer_state: dict[str, Any]) -> Path:
        """checkpoints/step-N atomically: contents first, trainer_state.json last, then rename."""
        final = self.run.checkpoint_dir(step)
        with atomic_dir(final, overwrite=True) as tmp:
            write_contents(tmp)
            atomic_write_json(tmp / TRAINER_STATE, {"format_version": CHECKPOINT_FORMAT_VERSION, "step": step, **trainer_state})
        return final

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the newest `keep` checkpoints (0 keeps all)."""
        if keep <= 0:
            return
        for _, path in self.run.checkpoints()[:-keep]:
            shutil.rmtree(path, ignore_errors=True)


def refuse_existing(run: RunDir) -> None:
    """A new run never writes into a folder that holds anything (another run's files above all)."""
    if run.has_content():
        raise DumpError(f"run dir {run.path} already exists and is not empty; continue it with "
                        f"`dump train --resume {run.path}` or pick another --out")


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    if state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise DumpError(f"{checkpoint} has checkpoint format {state.get('format_version')!r}; this dump reads {CHECKPOINT_FORMAT_VERSION}")
    return state
