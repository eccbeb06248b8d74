"""The one writer of run dirs: creates them, appends the logs, writes and prunes checkpoints.

A writer holds the run dir's lock (`dumpcli.rundir.lock`) for as long as it lives. A checkpoint
is built in a temp dir and renamed into place, with `manifest.json` (sizes and checksums of the
rest) written last, so a directory named `step-N` is always complete and can be verified before
it is trusted; a resumed run cuts the logs back to its checkpoint's step so nothing is logged
twice, and first clears what a killed writer left. File names come from `dumpcli.rundir.layout`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dumpcli.errors import DumpError
from dumpcli.fsutil import append_jsonl, atomic_dir, check_can_create, atomic_write_json, atomic_write_text, read_jsonl
from dumpcli.rundir.layout import (CHECKPOINT_FORMAT_VERSION, LOGS, MANIFEST, TRAINER_STATE, RunDir, is_temp_name,
                                   checkpoint_manifest)
from dumpcli.rundir.lock import RunLock

_OLD_CHECKPOINT = re.compile(r"\.(step-\d+)\.old")  # a checkpoint being replaced (fsutil.atomic_dir)


@dataclass(frozen=True)
class RunWriter:
    run: RunDir
    lock: RunLock | None = None

    @classmethod
    def create(cls, path: Path, config: Any, dataset: dict[str, Any], lock: RunLock | None = None) -> RunWriter:
        """Make a new run dir with its resolved config and dataset record; refuses a folder with anything in it.

        `config`: a TrainConfig; `dataset`: what `dumpcli.data.dataset.DatasetDir.record` gives
        (resolved path, fingerprint, one entry per distribution trained on). Takes the run dir's
        lock unless `lock` is already held.
        """
        from dumpcli.config import write_resolved_config

        run = RunDir(Path(path))
        check_new_run_dir(run)
        with _writing(run.path):
            run.path.mkdir(parents=True, exist_ok=True)
            lock = lock or run.lock()
            refuse_existing(run)  # again, under the lock: another trainer may have been quicker
            writer = cls(run, lock)
            writer.clear_leftovers()
            atomic_write_json(run.dataset_path, dataset)
            write_resolved_config(config, run.config_path)  # last: a run dir "exists" once config.yaml does
        return writer

    @classmethod
    def reopen(cls, run: RunDir, step: int | None, lock: RunLock) -> RunWriter:
        """Continue `run` from its checkpoint at `step` (None: from scratch): later log lines are dropped.

        Lines that are not JSON objects with an integer step (a partial write, garbage) are dropped
        too; every file is rewritten atomically.
        """
        writer = cls(run, lock)
        writer.clear_leftovers()
        with _writing(run.path):
            for name in LOGS:
                path = run.path / name
                if path.exists():
                    kept = [r for r in read_jsonl(path, skip_bad=True)
                            if step is not None and isinstance(r.get("step"), int) and r["step"] <= step]
                    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
        return writer

    def clear_leftovers(self) -> None:
        """Delete temp files and dirs of writes a killed process never finished (only under the lock).

        A checkpoint caught between being moved aside and its replacement moved in is put back.
        """
        folders = [self.run.path, self.run.checkpoints_dir]
        for child in (c for folder in folders if folder.is_dir() for c in folder.iterdir()):
            old = _OLD_CHECKPOINT.fullmatch(child.name)
            if old and not (child.parent / old.group(1)).exists():
                os.replace(child, child.parent / old.group(1))
            elif old or is_temp_name(child.name):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        child.unlink()

    def set_aside(self, checkpoint: Path) -> Path:
        """Rename a damaged checkpoint to step-N.damaged: kept for a look, never loaded or counted again."""
        target = checkpoint.with_name(checkpoint.name + ".damaged")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(checkpoint, target)
        return target

    def append_metrics(self, row: dict[str, Any]) -> None:
        with _writing(self.run.path, resume=True):
            append_jsonl(self.run.metrics_path, finite(row))

    def append_eval(self, row: dict[str, Any]) -> None:
        with _writing(self.run.path, resume=True):
            append_jsonl(self.run.eval_path, finite(row))

    def append_sample(self, row: dict[str, Any]) -> None:
        with _writing(self.run.path, resume=True):
            append_jsonl(self.run.samples_path, finite(row))

    def write_checkpoint(self, step: int, write_contents: Callable[[Path], None], trainer_state: dict[str, Any]) -> Path:
        """checkpoints/step-N atomically: contents, trainer_state.json, manifest.json last, then rename."""
        final = self.run.checkpoint_dir(step)
        with _writing(self.run.path, resume=True), atomic_dir(final, overwrite=True) as tmp:
            write_contents(tmp)
            atomic_write_json(tmp / TRAINER_STATE, {"format_version": CHECKPOINT_FORMAT_VERSION, "step": step, **trainer_state})
            atomic_write_json(tmp / MANIFEST, checkpoint_manifest(tmp))
        return final

    def release(self) -> None:
        """Give up the run dir's lock: another trainer may resume it from now on."""
        if self.lock is not None:
            self.lock.release()

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the newest `keep` checkpoints (0 keeps all)."""
        if keep <= 0:
            return
        for _, path in self.run.checkpoints()[:-keep]:
            shutil.rmtree(path, ignore_errors=True)


def refuse_existing(run: RunDir) -> None:
    """A new run never writes into a folder that holds anything (another run's files above all)."""
    if run.path.exists() and not run.path.is_dir():
        raise DumpError(f"--out {run.path} is a file, not a folder; pick another --out")
    if run.has_content():
        hint = (f"continue it with `dump train --resume {run.path}`" if run.exists()
                else "it is not a run dir (no config.yaml)")
        raise DumpError(f"run dir {run.path} already exists and is not empty; {hint} or pick another --out")


def check_new_run_dir(run: RunDir) -> None:
    """Everything about a new run's --out that can be checked without creating it: before the model loads."""
    refuse_existing(run)
    if run.path.is_dir():
        if not os.access(run.path, os.W_OK | os.X_OK):
            raise DumpError(f"cannot write to run dir {run.path}: it is not writable; pick another --out")
    else:
        check_can_create(run.path, "--out")


@contextlib.contextmanager
def _writing(run: Path, resume: bool = False) -> Iterator[None]:
    """An OSError while writing the run dir (a full disk, a read-only mount) as one line that says what to do."""
    try:
        yield
    except OSError as e:
        what = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        then = f"; free space or fix it, then continue with dump train --resume {run}" if resume else "; pick another --out"
        raise DumpError(f"cannot write to run dir {run} ({what}){then}") from None


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite number as None: logs are strict JSON, a NaN loss reads null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DumpError(f"{checkpoint / TRAINER_STATE} is unreadable ({e})") from None
    if not isinstance(state, dict) or state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        version = state.get("format_version") if isinstance(state, dict) else None
        raise DumpError(f"{checkpoint} has checkpoint format {version!r}; this dump reads {CHECKPOINT_FORMAT_VERSION}")
    return state
