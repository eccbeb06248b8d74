"""The dataset dir: `dataset.yaml` + one Parquet table per split (see docs/formats.md).

    from dumpcli.data.dataset import load_dataset_dir
    ds = load_dataset_dir("data/kk")
    [d.name for d in ds.distributions]      # ['kk-3', ..., 'kk-14']
    ds.rows("train")[0]["prompt"]            # [{'role': 'system', ...}, {'role': 'user', ...}]

Tables are written with `datasets` (so any HF tool reads them) and read back with pyarrow
(no cache dir, no copies). Writing goes through a temp dir and a rename: an interrupted
`dump prepare` never leaves a half-written dataset dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dumpcli import __version__
from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_dir, check_can_create

FORMAT = "dump-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "test")
COLUMNS = ("id", "distribution", "prompt", "prefill", "answer", "meta")


@dataclass(frozen=True)
class DistributionInfo:
    name: str
    source: str  # kk | arith | ladder | import | ...
    difficulty: float  # larger is harder: the sequential baseline's order, plot order
    reward: str  # a name in the reward registry (entry-point group dumpcli.rewards)
    rows: dict[str, int] = field(default_factory=dict)  # rows per split
    made: dict[str, Any] = field(default_factory=dict)  # generator parameters, or imported files


@dataclass
class DatasetDir:
    path: Path
    distributions: list[DistributionInfo]
    _cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.distributions]

    def distribution(self, name: str) -> DistributionInfo:
        for d in self.distributions:
            if d.name == name:
                return d
        raise DumpError(f"{self.path}: no distribution {name!r}; it has: {', '.join(self.names)}")

    def rows(self, split: str) -> list[dict[str, Any]]:
        """All rows of a split, columns as in docs/formats.md (`prompt` as a list of dicts)."""
        if split not in SPLITS:
            raise DumpError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
        if split not in self._cache:
            self._cache[split] = _read_table(self.path / f"{split}.parquet")
        return self._cache[split]

    def fingerprint(self) -> str:
        """sha256 of dataset.yaml and the tables: `prepare` is byte-reproducible, so equal data, equal print."""
        digest = hashlib.sha256()
        for name in ("dataset.yaml", *(f"{split}.parquet" for split in SPLITS)):
            digest.update(name.encode())
            with open(self.path / name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    def record(self, names: list[str] | None = None) -> dict[str, Any]:
        """What a run dir keeps of the dataset it trained on (`names`: the distributions trained on)."""
        chosen = [d for d in self.distributions if names is None or d.name in names]
        return {
            "path": str(self.path.resolve()),
            "fingerprint": self.fingerprint(),
            "distributions": [
                {"name": d.name, "source": d.source, "difficulty": d.difficulty, "reward": d.reward,
                 "train": d.rows.get("train", 0), "test": d.rows.get("test", 0)}
                for d in chosen
            ],
        }

    def summary(self) -> dict[str, Any]:
        """What `dump prepare --json` prints."""
        return {
            "path": str(self.path),
            "distributions": [
                {"name": d.name, "source": d.source, "difficulty": d.difficulty, "reward": d.reward, "rows": d.rows}
                for d in self.distributions
            ],
            "rows": {s: sum(d.rows.get(s, 0) for d in self.distributions) for s in SPLITS},
            "rewards": sorted({d.reward for d in self.distributions}),
        }


def _features() -> Any:
    from datasets import Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "distribution": Value("string"),
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "prefill": Value("string"),
            "answer": Value("string"),
            "meta": Value("string"),
        }
    )


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """`datasets` draws its own tqdm bars on stderr; ours is the rich one."""
    import datasets as hf_tqdm

    was_disabled = hf_tqdm.are_progress_bars_disabled()
    hf_tqdm.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            hf_tqdm.enable_progress_bars()


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    from datasets import Dataset

    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    with _quiet_datasets():
        Dataset.from_dict(columns, features=_features()).to_parquet(str(path))


def _read_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DumpError(f"{path} is missing; re-run `dump prepare` to rebuild the dataset dir")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DumpError(f"{path} is not a readable Parquet file ({e}); re-run `dump prepare`") from e
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DumpError(f"{path} lacks column(s) {', '.join(missing)}; re-run `dump prepare`")
    return table.select(list(COLUMNS)).to_pylist()


def validate_rows(distributions: list[DistributionInfo], rows_by_split: dict[str, list[dict[str, Any]]]) -> None:
    """Row ids unique, every row's distribution declared, counts matching the manifest."""
    names = {d.name for d in distributions}
    if len(names) != len(distributions):
        dupes = sorted({d.name for d in distributions if [x.name for x in distributions].count(d.name) > 1})
        raise DumpError(f"distribution name(s) used twice: {', '.join(dupes)}; rename one source")
    seen: set[str] = set()
    for split, rows in rows_by_split.items():
        counts: dict[str, int] = {}
        for r in rows:
            if r["distribution"] not in names:
                raise DumpError(f"row {r['id']} names undeclared distribution {r['distribution']!r}")
            if r["id"] in seen:
                raise DumpError(f"row id {r['id']!r} is used twice")
            seen.add(r["id"])
            counts[r["distribution"]] = counts.get(r["distribution"], 0) + 1
        for d in distributions:
            if d.rows.get(split, 0) != counts.get(d.name, 0):
                raise DumpError(f"{d.name}: manifest says {d.rows.get(split, 0)} {split} rows, table has {counts.get(d.name, 0)}")


def check_output_dir(out: Path, overwrite: bool) -> None:
    """Fail before any work when `out` exists and may not be replaced."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DumpError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    if out.exists() and not out.is_dir():
        raise DumpError(f"{out} exists and is not a directory; choose another --out")
    check_can_create(out, "--out")


def write_dataset_dir(
    out: Path,
    distributions: list[DistributionInfo],
    rows_by_split: dict[str, list[dict[str, Any]]],
    overwrite: bool = False,
) -> DatasetDir:
    """Write the manifest and tables atomically; return the dataset dir as `load_dataset_dir` would."""
    out = Path(out)
    check_output_dir(out, overwrite)
    rows_by_split = {s: list(rows_by_split.get(s, [])) for s in SPLITS}
    validate_rows(distributions, rows_by_split)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"dump {__version__}",
        "distributions": [asdict(d) for d in distributions],
    }
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            for split in SPLITS:
                _write_table(tmp / f"{split}.parquet", rows_by_split[split])
            (tmp / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    except FileExistsError as e:  # another process created it while we were generating
        raise DumpError(f"{out} already exists; pass --overwrite to replace it") from e
    return DatasetDir(path=out, distributions=list(distributions), _cache=rows_by_split)


def _parse_distribution(path: Path, raw: Any) -> DistributionInfo:
    if not isinstance(raw, dict):
        raise DumpError(f"{path}: each distribution must be a mapping; re-run `dump prepare`")
    try:
        return DistributionInfo(
            name=str(raw["name"]),
            source=str(raw["source"]),
            difficulty=float(raw["difficulty"]),
            reward=str(raw["reward"]),
            rows={str(k): int(v) for k, v in (raw.get("rows") or {}).items()},
            made=dict(raw.get("made") or {}),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise DumpError(f"{path}: malformed distribution entry ({e!r}); re-run `dump prepare`") from e


def load_dataset_dir(path: Path | str) -> DatasetDir:
    """Read `dataset.yaml`; tables are read on first `rows(split)`."""
    path = Path(path)
    manifest_path = path / "dataset.yaml"
    if path.exists() and not path.is_dir():
        raise DumpError(f"dataset dir {path} is a file, not a folder; pass the folder `dump prepare --out` wrote")
    if not path.is_dir():
        raise DumpError(f"dataset dir {path} does not exist; create it with `dump prepare`")
    if not manifest_path.is_file():
        raise DumpError(f"{path} has no dataset.yaml; it is not a dataset dir made by `dump prepare`")
    try:
        manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        detail = str(e).splitlines()[0] if isinstance(e, yaml.YAMLError) else "not UTF-8 text"
        raise DumpError(f"{manifest_path} is not valid YAML ({detail}); re-run `dump prepare`") from None
    except OSError as e:
        raise DumpError(f"{manifest_path} is unreadable ({e.strerror}); re-run `dump prepare`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DumpError(f"{manifest_path} is not a dump dataset manifest (format: {FORMAT} missing)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DumpError(
            f"{manifest_path} has format_version {manifest.get('format_version')!r}; this dump reads "
            f"version {FORMAT_VERSION}: re-run `dump prepare` with this version"
        )
    raw = manifest.get("distributions")
    if not isinstance(raw, list) or not raw:
        raise DumpError(f"{manifest_path} lists no distributions; re-run `dump prepare`")
    return DatasetDir(path=path, distributions=[_parse_distribution(manifest_path, d) for d in raw])


def make_row(distribution: str, split: str, index: int, prompt: list[dict[str, str]], prefill: str, answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    """One table row; ids look like `kk-3/train/000017`."""
    return {
        "id": f"{distribution}/{split}/{index:06d}",
        "distribution": distribution,
        "prompt": prompt,
        "prefill": prefill,
        "answer": answer,
        "meta": json.dumps(meta, sort_keys=True, default=str),
    }


def merge_dataset_dirs(paths: list[Path], out: Path, overwrite: bool = False) -> DatasetDir:
    """One dataset dir holding every distribution of `paths` (names must not clash)."""
    if not paths:
        raise DumpError("merge needs at least one dataset dir")
    check_output_dir(Path(out), overwrite)
    if any(Path(p).resolve() == Path(out).resolve() for p in paths):
        raise DumpError(f"--out {out} is one of the inputs; write the merge to a new dir")
    loaded = [load_dataset_dir(p) for p in paths]
    distributions = [d for ds in loaded for d in ds.distributions]
    rows = {s: [r for ds in loaded for r in ds.rows(s)] for s in SPLITS}
    return write_dataset_dir(Path(out), distributions, rows, overwrite=overwrite)
