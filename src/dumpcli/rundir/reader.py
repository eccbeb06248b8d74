"""Read run dirs (docs/formats.md) as columns, incrementally: what `dump inspect` is built on.

    reader = RunReader(Path("runs/ucb")); reader.poll(); run = reader.run()
    run.metrics.columns["reward"], run.metrics.dists["kk-3"]["probability"]   # float64 [steps]

metrics.jsonl can hold 100k+ steps, so it is parsed column-wise by pyarrow's JSON reader with an
explicit schema (only the keys inspect uses), not one `json.loads` per line; `RunReader.poll()`
reads only the bytes appended since the last poll, which is what `--follow` needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.fsutil import read_jsonl
from dumpcli.rundir.layout import RunDir

TOP_FIELDS = ("step", "time", "elapsed_s", "reward", "tokens_per_second", "step_time_s")
DIST_FIELDS = ("probability", "prompts", "reward", "abs_advantage")


@dataclass
class Metrics:
    """metrics.jsonl as float64 columns [N]; a distribution absent from a step reads NaN (prompts 0)."""

    columns: dict[str, np.ndarray] = field(default_factory=lambda: {k: np.zeros(0) for k in TOP_FIELDS})
    dists: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    scheduler: str | None = None

    def __len__(self) -> int:
        return len(self.columns["step"])

    def extend(self, other: Metrics) -> None:
        n, m = len(self), len(other)
        for k in TOP_FIELDS:
            self.columns[k] = np.concatenate([self.columns[k], other.columns[k]])
        for name in list(self.dists) + [d for d in other.dists if d not in self.dists]:
            mine = self.dists.get(name) or missing_dist(n)
            theirs = other.dists.get(name) or missing_dist(m)
            self.dists[name] = {k: np.concatenate([mine[k], theirs[k]]) for k in DIST_FIELDS}
        self.scheduler = other.scheduler or self.scheduler


def missing_dist(n: int) -> dict[str, np.ndarray]:
    cols = {k: np.full(n, np.nan) for k in DIST_FIELDS}
    cols["prompts"] = np.zeros(n)
    return cols


class MetricsFormatError(ValueError):
    """A metrics line that is not valid JSON or not a metrics object; `line` counts from 1 in the chunk."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line, self.detail = line, detail


def parse_metrics(data: Any, ends: list[bytes]) -> Metrics:
    """Parse complete metrics.jsonl lines into columns.

    `data`: bytes or a pyarrow Buffer (zero-copy from a memory map); `ends`: its first and last
    lines, which name the distributions and the scheduler (reading them costs nothing; reading
    every line in Python is what this avoids).
    """
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        rows = [json.loads(ln) for ln in ends if ln.strip()]
    except ValueError:  # not JSON, or not UTF-8
        _raise_bad_line(data)
    if not all(isinstance(row, dict) and isinstance(row.get("distributions", {}), dict) for row in rows):
        _raise_bad_line(data)
    if not rows:
        return Metrics()
    names = list(dict.fromkeys(n for row in rows for n in (row.get("distributions") or {})))
    dist_type = pa.struct([(k, pa.float64()) for k in DIST_FIELDS])
    schema = pa.schema(
        [(k, pa.float64()) for k in TOP_FIELDS] + [("distributions", pa.struct([(n, dist_type) for n in names]))]
    )
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(pa.BufferReader(data), parse_options=options)
    except pa.ArrowInvalid as e:
        _raise_bad_line(data, str(e))
    out = Metrics(scheduler=rows[-1].get("scheduler"))
    out.columns = {k: _column(table.column(k)) for k in TOP_FIELDS}
    if np.isnan(out.columns["step"]).any():
        row = int(np.flatnonzero(np.isnan(out.columns["step"]))[0])
        line = [i for i, ln in enumerate(bytes(data).split(b"\n")) if ln.strip()][row] + 1
        raise MetricsFormatError(line, 'has no "step"; every metrics line needs one (see docs/formats.md)')
    dists = table.column("distributions").combine_chunks()
    for n in names:
        cols = {k: _column(dists.field(n).field(k)) for k in DIST_FIELDS}
        cols["prompts"] = np.nan_to_num(cols["prompts"])
        out.dists[n] = cols
    return out


def _column(arr: Any) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _raise_bad_line(data: Any, detail: str = "") -> None:
    """Name the first line that is not a metrics object (slow path, only on corrupt files)."""
    for i, line in enumerate(bytes(data).split(b"\n")):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise MetricsFormatError(i + 1, f"not valid JSON ({e.msg}); the run's metrics are corrupt") from None
        except ValueError:
            raise MetricsFormatError(i + 1, "not UTF-8 text; the run's metrics are corrupt") from None
        if not isinstance(row, dict) or not isinstance(row.get("distributions", {}), dict):
            raise MetricsFormatError(i + 1, "not a metrics object (see docs/formats.md)")
    first = detail.splitlines()[0] if detail else "unreadable"
    raise MetricsFormatError(1, f"does not follow the run-dir format in docs/formats.md ({first})")


@dataclass
class Run:
    """One run dir as read so far."""

    path: Path
    config: dict[str, Any]
    metrics: Metrics
    evals: list[dict[str, Any]]
    difficulty: dict[str, float]
    checkpoint_step: int | None = None

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def total_steps(self) -> int | None:
        return total_steps(self.config)

    @property
    def step(self) -> int | None:
        return int(self.metrics.columns["step"][-1]) if len(self.metrics) else None

    @property
    def finished(self) -> bool:
        total = self.total_steps
        return total is not None and self.step is not None and self.step >= total

    def distribution_names(self) -> list[str]:
        """Easy to hard when the data says how hard each is, else in natural name order (kk-3 < kk-10)."""
        names = list(dict.fromkeys([*self.metrics.dists, *(n for e in self.evals for n in e.get("distributions", {}))]))
        return sorted(names, key=lambda n: (self.difficulty.get(n, float("inf")), natural_key(n)))


def natural_key(name: str) -> list[Any]:
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", name) if tok]


def total_steps(config: dict[str, Any]) -> int | None:
    """The run's planned number of optimizer steps, from the resolved config."""
    for section, key in (("grpo", "steps"), ("run", "steps")):
        value = (config.get(section) or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class RunReader:
    """Reads a run dir incrementally: each `poll()` parses only what was appended since the last one.

    Tolerates what a live run looks like: no files yet, a last line still being written, a
    checkpoint temp dir, metrics.jsonl restarted from scratch.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._run = RunDir(self.path)
        self.config: dict[str, Any] | None = None
        self.metrics = Metrics()
        self._offset = 0  # bytes of metrics.jsonl already parsed
        self._inode: int | None = None  # of that metrics.jsonl; `--resume` rewrites it as a new file
        self._evals: list[dict[str, Any]] = []
        self._evals_stamp: tuple[int, int] | None = None
        self._difficulty: dict[str, float] = {}

    @property
    def started(self) -> bool:
        return self.config is not None

    def poll(self) -> int:
        """Read what is new; returns the number of new steps."""
        if self.config is None:
            self._read_config()
            if self.config is None:
                return 0
        new = self._read_metrics()
        self._read_evals()
        return new

    def run(self) -> Run:
        if self.config is None:
            raise DumpError(f"{self.path} has no config.yaml yet; is `dump train` writing it?")
        checkpoints = self._run.checkpoints()
        return Run(self.path, self.config, self.metrics, self._evals, self._difficulty,
                   checkpoints[-1][0] if checkpoints else None)

    def _read_config(self) -> None:
        if not self._run.exists():
            return
        self.config = self._run.read_raw_config()
        # The run records what it trained on, so it reads the same with the dataset moved away.
        self._difficulty = self._run.difficulties()

    def _read_metrics(self) -> int:
        file = self._run.metrics_path
        try:
            stat = file.stat()
        except FileNotFoundError:
            return 0
        size = stat.st_size
        if size < self._offset or stat.st_ino != self._inode:  # rewritten (resume cut it back) or started over
            self.metrics, self._offset, self._inode = Metrics(), 0, stat.st_ino
        if size == self._offset:
            return 0
        with open(file, "rb") as f:
            end, last = _last_line(f, self._offset, size)
            f.seek(end)
            tail = f.read(size - end)
            if tail.strip() and _is_object(tail):  # a complete object whose newline has not landed yet
                end, last = size, tail
            if end == self._offset:
                return 0
            f.seek(self._offset)
            first = f.readline()
        import pyarrow as pa

        data = pa.memory_map(str(file)).read_at(end - self._offset, self._offset)
        try:
            chunk = parse_metrics(data, [first, last])
        except MetricsFormatError as e:
            raise DumpError(f"{file}:{_count_lines(file, self._offset) + e.line}: {e.detail}") from None
        self._offset = end
        self.metrics.extend(chunk)
        return len(chunk)

    def _read_evals(self) -> None:
        file = self._run.eval_path
        try:
            stat = file.stat()
        except FileNotFoundError:
            return
        if (stat.st_size, stat.st_mtime_ns) == self._evals_stamp:
            return
        try:
            self._evals = [e for e in read_jsonl(file) if isinstance(e, dict) and "step" in e]
        except ValueError as e:
            raise DumpError(f"{e}; the run's eval.jsonl is corrupt") from None
        self._evals_stamp = (stat.st_size, stat.st_mtime_ns)


def _last_line(f: BinaryIO, start: int, size: int, block: int = 1 << 16) -> tuple[int, bytes]:
    """Offset just past the last newline in [start, size) (start if none) and the line it ends.

    Reads backwards from the end in blocks: the file can be 100+ MB and only its end matters.
    """
    pos, buf = size, b""
    while pos > start:
        step = min(block, pos - start)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        nl = buf.rfind(b"\n")
        if nl < 0:
            continue
        prev = buf.rfind(b"\n", 0, nl)
        if prev >= 0 or pos == start:
            return pos + nl + 1, buf[prev + 1 : nl]
    return start, b""


def _count_lines(file: Path, upto: int) -> int:
    """Newlines before byte `upto` (to name a bad line; only on errors)."""
    count = 0
    with open(file, "rb") as f:
        while upto > 0:
            chunk = f.read(min(upto, 1 << 24))
            if not chunk:
                break
            count += chunk.count(b"\n")
            upto -= len(chunk)
    return count


def _is_object(text: bytes) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:  # not JSON, or not UTF-8
        return False
