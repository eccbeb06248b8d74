"""Import prompts from Parquet or JSONL: the verl / Logic-RL / DUMP format, or plain JSONL.

    dump prepare import kk/train.parquet kk/test.parquet --out data/kk-imported
    dump prepare import mine.jsonl --reward arith --distribution-column level --out data/mine

verl format: `prompt` (chat messages), `data_source` (becomes the distribution),
`reward_model.ground_truth`, `extra_info`. Plain format: `prompt` (messages or a string),
`answer`, `distribution`, optionally `prefill`.
A distribution whose name contains "kk" is scored by the K&K reward, as in Logic-RL and DUMP;
every other one by `--reward`. A file whose name contains "test" or "val" fills the test split.

A K&K ground truth is stored as its solution text "(1) Emma is a knight\\n(2) ...", decoded from
any of the real shapes: DUMP's JSON string and Logic-RL's struct (both hold the text in
`solution_text_format`) or the plain text. One from which not every person can be read is refused
here (a JSON string kept as text let a one-person answer score +3 and a gold one -1).

Prefill: a row's own `prefill` column, else `--prefill`, else by format. verl rows (with
`reward_model`) get none: DUMP's prompts carry none and the model writes <think> itself; only a
verl prompt that ends with "<think>" (some Logic-RL templates) has that tag moved to the prefill.
Plain rows get "<think>" when scored by `kk` (as `dump prepare kk` rows), none otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dumpcli.data.common import ProgressFn, SourceOutput, no_progress, rng_for
from dumpcli.data.dataset import DistributionInfo, make_row
from dumpcli.errors import DumpError
from dumpcli.rewards import available_rewards
from dumpcli.rewards import kk as kk_reward


@dataclass(frozen=True)
class ImportSpec:
    files: tuple[Path, ...]
    reward: str | None = None  # reward of distributions whose name lacks "kk"
    distribution_column: str | None = None  # default: data_source, else distribution
    split: str = "auto"  # auto (from the file name) | train | test
    test_fraction: float = 0.0  # hold out this share of train rows per distribution when no test file
    seed: int = 42
    prefill: str | None = None  # for rows without a `prefill` column; None: the format's default


THINK = "<think>"
KK_FIX = 'give it as the text "(1) Emma is a knight\\n(2) Liam is a knave", alone or as `solution_text_format` of a JSON object'


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a .parquet, .jsonl or .json file as dicts."""
    if path.is_dir():
        raise DumpError(f"import file {path} is a directory; pass the .parquet or .jsonl files in it")
    if not path.is_file():
        raise DumpError(f"import file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise DumpError(f"{path} is not a readable Parquet file ({str(e).splitlines()[0]})") from e
    if suffix in (".jsonl", ".json"):
        rows = []
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            line = path.read_bytes()[: e.start].count(b"\n") + 1
            raise DumpError(f"{path}:{line}: not UTF-8 text (byte {e.object[e.start]:#04x}); save the file as UTF-8") from None
        except OSError as e:
            raise DumpError(f"{path} is unreadable ({e.strerror})") from None
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DumpError(f"{path}:{i + 1}: not valid JSON ({e.msg}); import expects one object per line") from e
            if not isinstance(rows[-1], dict):
                raise DumpError(f"{path}:{i + 1}: expected a JSON object per line")
        return rows
    raise DumpError(f"{path}: unknown file type {suffix!r}; import reads .parquet, .jsonl or .json")


def _split_of(path: Path, spec: ImportSpec) -> str:
    if spec.split in ("train", "test"):
        return spec.split
    return "test" if re.search(r"test|val", path.stem, re.IGNORECASE) else "train"


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        return [{"role": str(m.get("role", "user")), "content": str(m["content"])} for m in value]
    raise DumpError(f"{where}: `prompt` must be a string or a list of {{role, content}} messages")


def _raw_truth(row: dict[str, Any], where: str) -> Any:
    if isinstance(row.get("reward_model"), dict) and "ground_truth" in row["reward_model"]:
        return row["reward_model"]["ground_truth"]
    if "answer" in row:
        if row["answer"] is None:
            raise DumpError(f"{where}: `answer` is null; every row needs the answer its reward checks")
        return row["answer"]
    raise DumpError(f"{where}: missing required column `reward_model.ground_truth` (verl) or `answer` (plain)")


def _kk_fields(truth: Any, where: str) -> dict[str, Any]:
    """The ground truth as an object: Logic-RL's struct, DUMP's JSON string, or plain text."""
    if isinstance(truth, dict):
        fields = truth
    elif isinstance(truth, str) and truth.lstrip().startswith("{"):
        try:
            fields = json.loads(truth)
        except json.JSONDecodeError as e:
            raise DumpError(f"{where}: the K&K ground truth is broken JSON ({e.msg} at character {e.pos}); {KK_FIX}") from e
    elif isinstance(truth, str):
        return {"solution_text_format": truth}
    else:
        what = "missing (null)" if truth is None else f"a {type(truth).__name__}, not text or an object"
        raise DumpError(f"{where}: the K&K ground truth is {what}; {KK_FIX}")
    if not isinstance(fields.get("solution_text_format"), str):
        raise DumpError(f"{where}: the K&K ground truth has no text `solution_text_format` (keys: {sorted(map(str, fields))}); {KK_FIX}")
    return fields


def _check_kk(fields: dict[str, Any], where: str) -> None:
    """Refuse a ground truth the reward could not hold an answer to, person by person."""
    text = fields["solution_text_format"]
    truth = kk_reward.complete_ground_truth(text)
    if truth is None or kk_reward.parse_answer(text, list(truth)) != truth:
        raise DumpError(f"{where}: not every person can be read from the K&K ground truth {text[:80]!r}: each line must name one person not named before, as \"NAME is a knight\" or \"NAME is a knave\" with NAME in ASCII letters; {KK_FIX}")
    names, solution = fields.get("names"), fields.get("solution")
    if isinstance(names, list) and [str(n) for n in names] != list(truth):
        raise DumpError(f"{where}: the K&K ground truth names {list(truth)} but its `names` are {names}; fix the row so they agree")
    if isinstance(names, list) and isinstance(solution, list) and all(isinstance(v, bool) for v in solution):
        roles = ["knight" if knight else "knave" for knight in solution]
        if roles != list(truth.values()):
            raise DumpError(f"{where}: the K&K ground truth's roles {list(truth.values())} disagree with its `solution` {solution}; fix the row")


def _answer(row: dict[str, Any], where: str, kk: bool) -> str:
    truth = _raw_truth(row, where)
    if kk:
        fields = _kk_fields(truth, where)
        _check_kk(fields, where)
        return str(fields["solution_text_format"])
    if isinstance(truth, dict):
        return str(truth["solution_text_format"]) if "solution_text_format" in truth else json.dumps(truth, sort_keys=True)
    return truth if isinstance(truth, str) else json.dumps(truth)


def _prefill(row: dict[str, Any], prompt: list[dict[str, str]], kk: bool, spec: ImportSpec) -> str:
    """The row's own `prefill`, else --prefill, else the default of the row's format."""
    if row.get("prefill") is not None:
        return str(row["prefill"])
    if spec.prefill is not None:
        return spec.prefill
    if isinstance(row.get("reward_model"), dict):  # verl: the model writes <think> unless the prompt did
        return THINK if prompt[-1]["content"].rstrip().endswith(THINK) else ""
    return THINK if kk else ""


def _convert(row: dict[str, Any], where: str, column: str, spec: ImportSpec) -> tuple[str, list[dict[str, str]], str, str]:
    """(distribution, prompt, prefill, answer) of one input row."""
    for needed in ("prompt", column):
        if row.get(needed) is None:
            raise DumpError(f"{where}: missing required column `{needed}`; pass --distribution-column if it has another name")
    if not isinstance(row[column], (str, int)) or isinstance(row[column], bool):
        raise DumpError(f"{where}: the distribution (`{column}`) must be text, got {row[column]!r}")
    dist = str(row[column])
    prompt = _messages(row["prompt"], where)
    kk = _reward_for(dist, spec) == "kk"
    prefill = _prefill(row, prompt, kk, spec)
    last = prompt[-1]["content"]
    if prefill and last.rstrip().endswith(prefill):  # verl prompts often end with the prefill itself
        prompt[-1]["content"] = last.rstrip()[: -len(prefill)].rstrip()
    answer = _answer(row, where, kk)
    for name, text in [("distribution", dist), ("prefill", prefill), ("answer", answer), *(("prompt", m["content"]) for m in prompt)]:
        _check_unicode(text, name, where)
    return dist, prompt, prefill, answer


def _check_unicode(text: str, name: str, where: str) -> None:
    """JSON can spell a lone surrogate (\\ud800), which no UTF-8 file can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DumpError(f"{where}: `{name}` holds a lone surrogate ({text[e.start]!r} at character {e.start}), "
                        "which is not valid Unicode; fix the text") from None


def _difficulty(name: str, order: int) -> float:
    numbers = re.findall(r"\d+", name)
    return float(numbers[-1]) if numbers else float(order)


def _reward_for(name: str, spec: ImportSpec) -> str:
    reward = "kk" if "kk" in name.lower() else spec.reward
    if reward is None:
        raise DumpError(f"no reward for imported distribution {name!r}; pass --reward NAME (installed: {', '.join(available_rewards())})")
    if reward not in available_rewards():
        raise DumpError(f"unknown reward {reward!r}; installed: {', '.join(available_rewards())}")
    return reward


def _column(records: list[dict[str, Any]], spec: ImportSpec) -> str:
    if spec.distribution_column:
        return spec.distribution_column
    first = records[0] if records else {}
    return "data_source" if "data_source" in first else "distribution"


Item = tuple[list[dict[str, str]], str, str, dict[str, Any]]  # prompt, prefill, answer, meta


def _read_all(spec: ImportSpec) -> tuple[dict[str, dict[str, list[Item]]], list[dict[str, Any]], list[tuple[str, int]]]:
    """Every row of every file, converted and checked: {distribution: {split: items}}, file records, (file, rows)."""
    grouped: dict[str, dict[str, list[Item]]] = {}
    files: list[dict[str, Any]] = []
    sizes: list[tuple[str, int]] = []
    for path in map(Path, spec.files):
        records = read_records(path)
        if not records:
            raise DumpError(f"{path} has no rows")
        column, split = _column(records, spec), _split_of(path, spec)
        for i, row in enumerate(records):
            dist, prompt, prefill, answer = _convert(row, f"{path} row {i}", column, spec)
            meta = {"file": path.name, "row": i, "extra_info": row.get("extra_info")}
            grouped.setdefault(dist, {"train": [], "test": []})[split].append((prompt, prefill, answer, meta))
        files.append({"file": str(path), "sha256": sha256(path), "split": split, "column": column})
        sizes.append((path.name, len(records)))
    return grouped, files, sizes


def build(spec: ImportSpec, progress: ProgressFn = no_progress) -> SourceOutput:
    if not spec.files:
        raise DumpError("import needs at least one FILE (.parquet or .jsonl)")
    if not 0.0 <= spec.test_fraction < 1.0:
        raise DumpError(f"--test-fraction must be in [0, 1) (got {spec.test_fraction})")
    if spec.prefill is not None and not isinstance(spec.prefill, str):
        raise DumpError(f"prefill must be text (got {spec.prefill!r}); quote it, e.g. prefill: \"<think>\"")
    grouped, files, sizes = _read_all(spec)
    for name, rows in sizes:  # only once every row passed, so a bad row is never reported under a drawn bar
        progress(name, rows, rows)
    out = SourceOutput()
    holdout = spec.test_fraction > 0 and not any(g["test"] for g in grouped.values())
    for order, (name, splits) in enumerate(grouped.items(), start=1):
        if holdout:
            perm = rng_for(spec.seed, 4, order).permutation(len(splits["train"]))
            n_test = round(len(perm) * spec.test_fraction)
            rows = [splits["train"][int(j)] for j in perm]
            splits = {"test": rows[:n_test], "train": rows[n_test:]}
        for split, items in splits.items():
            for i, (prompt, prefill, answer, meta) in enumerate(items):
                out.rows[split].append(make_row(name, split, i, prompt, prefill, answer, meta))
        made = {"importer": "import", "files": files, "test_fraction": spec.test_fraction if holdout else 0.0}
        counts = {s: len(splits[s]) for s in ("train", "test")}
        out.distributions.append(DistributionInfo(name, "import", _difficulty(name, order), _reward_for(name, spec), counts, made))
    return out
