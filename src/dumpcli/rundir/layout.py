"""The run-dir layout: file names, the format version, what a complete checkpoint is.

    runs/ucb/
      config.yaml            format_version + the fully resolved TrainConfig
      dataset.json           the dataset trained on: resolved path, fingerprint, distributions
      metrics.jsonl          one object per optimizer step
      eval.jsonl             one object per evaluation
      samples.jsonl          a few completions per step
      .lock                  held (flock) by the one `dump train` writing the run; holds its pid
      checkpoints/step-000020/  adapter/, optimizer.pt, scheduler.json, rng.pt, rng_host.json,
                                trainer_state.json, manifest.json (written last: sizes, sha256);
                                --engine trl: adapter/, scheduler.json, trl/ (TRL's checkpoint),
                                trainer_state.json, manifest.json

This module is the only place that knows these names (docs/formats.md documents them); the
writer (`dumpcli.rundir.writer`) and the readers (`RunDir` here, `dumpcli.rundir.reader` for
inspect) go through it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dumpcli.errors import DumpError
from dumpcli.fsutil import read_jsonl

FORMAT_VERSION = 1  # of the run dir (config.yaml's format_version)
CHECKPOINT_FORMAT_VERSION = 1  # of trainer_state.json

CONFIG = "config.yaml"
DATASET = "dataset.json"
METRICS = "metrics.jsonl"
EVAL = "eval.jsonl"
SAMPLES = "samples.jsonl"
LOGS = (METRICS, EVAL, SAMPLES)
CHECKPOINTS = "checkpoints"
LOCK = ".lock"

# Inside checkpoints/step-N/
ADAPTER = "adapter"
OPTIMIZER = "optimizer.pt"
SCHEDULER_STATE = "scheduler.json"
RNG = "rng.pt"
RNG_HOST = "rng_host.json"
TRAINER_STATE = "trainer_state.json"
MANIFEST = "manifest.json"  # written last: its presence makes the checkpoint complete; sizes + sha256 verify it
TRL_CHECKPOINT = "trl"  # --engine trl: TRL's own checkpoint (optimizer, LR schedule, per-rank RNG, its trainer state)
TRL_STAGING = ".trl"  # --engine trl: under checkpoints/, where TRL writes a checkpoint before dump moves it in

_STEP_DIR = re.compile(r"step-(\d+)")  # temp dirs of a write in progress start with "." and never match


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def checkpoint_step(folder: Path) -> int | None:
    """The step of a complete checkpoint folder, else None (a temp dir, a half-written one, anything else).

    Complete means written to the end (its manifest exists; checkpoints of dumps before the
    manifest have only trainer_state.json, written last then); whether its files are still intact
    is `verify_checkpoint`'s question, asked before a checkpoint is loaded.
    """
    m = _STEP_DIR.fullmatch(folder.name)
    return int(m.group(1)) if m and ((folder / MANIFEST).is_file() or (folder / TRAINER_STATE).is_file()) else None


def file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def checkpoint_manifest(folder: Path) -> dict[str, Any]:
    """What manifest.json holds: the size and sha256 of every other file in the checkpoint."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {"format_version": 1, "files": {p.relative_to(folder).as_posix(): file_digest(p) for p in files}}


def verify_checkpoint(folder: Path) -> str | None:
    """None when every file the manifest lists is there with its size and sha256; else what is wrong.

    A checkpoint written before manifests existed cannot be verified and is trusted, as it was then.
    """
    if not (folder / MANIFEST).exists() and (folder / TRAINER_STATE).is_file():
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or TRAINER_STATE not in files:
            return f"{MANIFEST} lists no {TRAINER_STATE}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{MANIFEST} is unreadable"
    for name, want in files.items():
        path = folder / name
        try:
            size = path.stat().st_size
            if size != want.get("size"):
                return f"{name} has {size} bytes, the manifest says {want.get('size')}"
            if file_digest(path)["sha256"] != want.get("sha256"):
                return f"{name} does not match its checksum"
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, AttributeError) as e:
            return f"{name} is unreadable ({e})"
    return None


def check_format_version(raw: Mapping[str, Any], where: Path) -> None:
    """A run's config.yaml must carry the version this dump reads (written by `dump train`)."""
    version = raw.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise DumpError(f"{where.parent} was written by a newer dump (run format_version {version}, this dump reads "
                        f"{FORMAT_VERSION}); upgrade dump to read it")
    if version != FORMAT_VERSION:
        raise DumpError(f"{where} has format_version {version!r}; expected {FORMAT_VERSION} (see docs/formats.md)")


@dataclass(frozen=True)
class RunDir:
    """Paths of one run dir and whole-file reads of it (the incremental reader is `RunReader`)."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def dataset_path(self) -> Path:
        return self.path / DATASET

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def eval_path(self) -> Path:
        return self.path / EVAL

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / checkpoint_name(step)

    def exists(self) -> bool:
        return self.config_path.is_file()

    def has_content(self) -> bool:
        """True when the folder holds anything a new run must not overwrite.

        Ignored: the lock file, and what a `dump train` killed before its run dir was complete
        leaves (dataset.json and temp files, no config.yaml), so such a folder is never a dead end.
        """
        if not self.path.is_dir():
            return False
        leftovers = {LOCK} if self.exists() else {LOCK, DATASET}
        return any(p.name not in leftovers and not is_temp_name(p.name) for p in self.path.iterdir())

    def read_raw_config(self) -> dict[str, Any]:
        """config.yaml as a mapping, its format version checked; DumpError when this is not a run dir."""
        if not self.config_path.is_file():
            raise DumpError(f"{self.path} is not a run dir (no {CONFIG}); pass the folder `dump train` wrote")
        try:
            raw = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise DumpError(f"{self.config_path} is not valid YAML ({type(e).__name__}); was it edited by hand?") from None
        except OSError as e:
            raise DumpError(f"{self.config_path} is unreadable ({e.strerror})") from None
        if not isinstance(raw, dict):
            raise DumpError(f"{self.config_path} is not a run config (expected a mapping with format_version: {FORMAT_VERSION})")
        check_format_version(raw, self.config_path)
        return raw

    def read_config(self) -> Any:
        """The run's resolved `TrainConfig`; a relative data.path (runs of older dumps) becomes the
        resolved one dataset.json recorded, so resume and eval do not depend on the current directory."""
        from dumpcli.config import config_from_dict, set_value

        cfg = config_from_dict(self.read_raw_config(), where=str(self.config_path))
        recorded = (self.read_dataset() or {}).get("path")
        if cfg.data.path is not None and not Path(cfg.data.path).is_absolute() and isinstance(recorded, str):
            cfg = set_value(cfg, "data.path", recorded, where=str(self.dataset_path))
        return cfg

    def read_dataset(self) -> dict[str, Any] | None:
        """dataset.json (what the run trained on), or None for a run written before it existed."""
        try:
            record = json.loads(self.dataset_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise DumpError(f"{self.dataset_path} is unreadable ({e}); was it edited by hand?") from None
        return record if isinstance(record, dict) else None

    def difficulties(self) -> dict[str, float]:
        """Difficulty per distribution, from the run's own dataset.json: the dataset may be gone."""
        record = self.read_dataset() or {}
        return {
            str(d["name"]): float(d["difficulty"])
            for d in record.get("distributions") or []
            if isinstance(d, dict) and "name" in d and isinstance(d.get("difficulty"), (int, float))
        }

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first."""
        try:
            children = list(self.checkpoints_dir.iterdir())
        except OSError:  # none yet, or the folder changed under us
            return []
        return sorted((step, child) for child in children if (step := checkpoint_step(child)) is not None)

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (not verified; `intact_checkpoints` is what loading uses)."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def newest_intact_checkpoint(self) -> tuple[Path | None, list[tuple[Path, str]]]:
        """The newest checkpoint that passes `verify_checkpoint`, and the newer ones that failed, with why.

        What resume and `dump eval --run` load: a damaged newest checkpoint falls back to the one before.
        """
        damaged: list[tuple[Path, str]] = []
        for _, path in reversed(self.checkpoints()):
            problem = verify_checkpoint(path)
            if problem is None:
                return path, damaged
            damaged.append((path, problem))
        return None, damaged

    def lock(self) -> Any:
        """Hold the run dir's exclusive lock (a `RunLock`, a context manager); DumpError naming the holder's pid."""
        from dumpcli.rundir.lock import RunLock

        return RunLock.acquire(self.path)

    def lock_holder(self) -> int | None:
        """The pid holding the run dir's lock (0 when unknown), or None when no process holds it."""
        from dumpcli.rundir.lock import lock_holder

        return lock_holder(self.path)

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path, skip_bad=True)

    def read_evals(self) -> list[dict[str, Any]]:
        return read_jsonl(self.eval_path, skip_bad=True)

    @classmethod
    def of_checkpoint(cls, folder: Path) -> RunDir | None:
        """The run dir a checkpoint folder (checkpoints/step-N or its adapter/) belongs to, if any."""
        for candidate in (folder.parent.parent, folder.parent.parent.parent):
            if (candidate / CONFIG).is_file() and folder.is_relative_to(candidate / CHECKPOINTS):
                return cls(candidate)
        return None


def is_temp_name(name: str) -> bool:
    """A temp file or dir of an atomic write (`.NAME.xxxx.tmp`), left behind only by a killed process."""
    return name.startswith(".") and name.endswith(".tmp")


def describe_fallback(found: Path | None, damaged: list[tuple[Path, str]]) -> str:
    """One line on the damaged checkpoints passed over, for resume and eval to print."""
    bad = "; ".join(f"{path.name}: {problem}" for path, problem in damaged)
    to = f"using {found.name}, the newest intact one" if found else "no intact checkpoint is left"
    return f"damaged checkpoint{'s' if len(damaged) > 1 else ''} ({bad}); {to}"
