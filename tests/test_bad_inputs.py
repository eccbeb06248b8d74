"""Every command on a table of bad inputs: exit code 2, exactly one line on stderr, no traceback,
and no file created or changed. Then `dump inspect` on random bytes appended to each log.

Each case is (id, how to set up the workspace, argv); the workspace holds a dataset dir, a finished
tiny run and stray files, and is the current directory, so a default output path lands in it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dumpcli.cli import main

Setup = Callable[[Path], None]
TINY = ["--model", "tiny-random", "--steps", "2", "-b", "2", "-G", "2", "--max-new-tokens", "2",
        "--set", "run.threads=1", "--set", "data.eval_rows=1", "--set", "run.progress=false"]


def write(rel: str, content: bytes | str) -> Setup:
    def setup(ws: Path) -> None:
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return setup


def edit(rel: str, change: Callable[[str], str]) -> Setup:
    def setup(ws: Path) -> None:
        (ws / rel).write_text(change((ws / rel).read_text()))
    return setup


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


PLAIN = {"prompt": "2+2?", "answer": "4", "distribution": "add"}
BINARY = bytes(range(256)) * 4
NONE: Setup = lambda ws: None  # noqa: E731

# (id, setup, argv): ws/file.txt is a regular file, ws/data/ladder a dataset dir, ws/run a finished run.
CASES: list[tuple[str, Setup, list[str]]] = [
    # dump train: paths
    ("train-out-is-a-file", NONE, ["train", *TINY, "--data", "data/ladder", "--out", "file.txt"]),
    ("train-out-under-a-file", NONE, ["train", *TINY, "--data", "data/ladder", "--out", "file.txt/run"]),
    ("train-out-exists", NONE, ["train", *TINY, "--data", "data/ladder", "--out", "run"]),
    ("train-data-missing", NONE, ["train", *TINY, "--data", "nowhere", "--out", "new"]),
    ("train-data-is-a-file", NONE, ["train", *TINY, "--data", "file.txt", "--out", "new"]),
    ("train-data-yaml-broken", edit("data/ladder/dataset.yaml", lambda t: t + "\n  - : [\n"), ["train", *TINY, "--data", "data/ladder", "--out", "new"]),
    ("train-data-yaml-binary", write("data/ladder/dataset.yaml", BINARY), ["train", *TINY, "--data", "data/ladder", "--out", "new"]),
    ("train-data-table-garbage", write("data/ladder/train.parquet", BINARY), ["train", *TINY, "--data", "data/ladder", "--out", "new"]),
    # dump train: config files
    ("train-config-missing", NONE, ["train", *TINY, "--config", "nope.yaml"]),
    ("train-config-is-a-dir", NONE, ["train", *TINY, "--config", "data"]),
    ("train-config-binary", write("c.yaml", BINARY), ["train", *TINY, "--config", "c.yaml"]),
    ("train-config-yaml-broken", write("c.yaml", "grpo: {lr: [\n"), ["train", *TINY, "--config", "c.yaml"]),
    ("train-config-empty", write("c.yaml", ""), ["train", *TINY, "--config", "c.yaml"]),
    ("train-config-a-list", write("c.yaml", "- 1\n- 2\n"), ["train", *TINY, "--config", "c.yaml"]),
    ("train-config-bad-type", write("c.yaml", "grpo: {steps: many}\n"), ["train", *TINY, "--config", "c.yaml"]),
    ("train-config-empty-run-config", write("run/config.yaml", ""), ["train", *TINY, "--config", "run/config.yaml", "--out", "new"]),
    # dump train: values
    ("train-lr-inf", NONE, ["train", *TINY, "--data", "data/ladder", "--lr", "inf", "--out", "new"]),
    ("train-lr-nan", NONE, ["train", *TINY, "--data", "data/ladder", "--lr", "nan", "--out", "new"]),
    ("train-lr-negative", NONE, ["train", *TINY, "--data", "data/ladder", "--lr", "-1", "--out", "new"]),
    ("train-temperature-inf", NONE, ["train", *TINY, "--data", "data/ladder", "--set", "grpo.temperature=inf", "--out", "new"]),
    ("train-beta-inf", NONE, ["train", *TINY, "--data", "data/ladder", "--set", "grpo.beta=inf", "--out", "new"]),
    ("train-seed-negative", NONE, ["train", *TINY, "--data", "data/ladder", "--seed", "-1", "--out", "new"]),
    ("train-seed-huge", NONE, ["train", *TINY, "--data", "data/ladder", "--seed", str(2**63), "--out", "new"]),
    ("train-seed-text", NONE, ["train", *TINY, "--data", "data/ladder", "--set", "run.seed=abc", "--out", "new"]),
    ("train-steps-zero", NONE, ["train", *TINY, "--data", "data/ladder", "--steps", "0", "--out", "new"]),
    ("train-set-unknown-key", NONE, ["train", *TINY, "--set", "grpo.nope=1"]),
    ("train-scheduler-unknown", NONE, ["train", *TINY, "--scheduler", "nope"]),
    ("train-option-inf", NONE, ["train", *TINY, "--data", "data/ladder", "-O", "c=inf", "--out", "new"]),
    ("train-model-missing", NONE, ["train", *TINY[2:], "--model", "no/such-model-here", "--data", "data/ladder", "--out", "new"]),
    ("train-distribution-unknown", NONE, ["train", *TINY, "--data", "data/ladder", "--set", "data.distributions=nope", "--out", "new"]),
    # dump train --resume
    ("resume-missing", NONE, ["train", "--resume", "nowhere"]),
    ("resume-a-file", NONE, ["train", "--resume", "file.txt"]),
    ("resume-not-a-run", NONE, ["train", "--resume", "data"]),
    ("resume-with-out", NONE, ["train", "--resume", "run", "--out", "x"]),
    ("resume-other-config", NONE, ["train", "--resume", "run", "--lr", "0.5"]),
    ("resume-config-binary", write("run/config.yaml", BINARY), ["train", "--resume", "run"]),
    ("resume-config-yaml-broken", write("run/config.yaml", "grpo: [\n"), ["train", "--resume", "run"]),
    ("resume-config-empty", write("run/config.yaml", ""), ["train", "--resume", "run"]),
    ("resume-config-no-version", edit("run/config.yaml", lambda t: t.replace("format_version: 1\n", "")), ["train", "--resume", "run"]),
    ("resume-dataset-changed", edit("run/dataset.json", lambda t: t.replace('"fingerprint": "', '"fingerprint": "0')), ["train", "--resume", "run"]),
    ("resume-dataset-json-binary", write("run/dataset.json", BINARY), ["train", "--resume", "run"]),
    # dump eval
    ("eval-run-missing", NONE, ["eval", "--run", "nowhere"]),
    ("eval-run-a-file", NONE, ["eval", "--run", "file.txt"]),
    ("eval-run-config-binary", write("run/config.yaml", BINARY), ["eval", "--run", "run"]),
    ("eval-adapter-missing", NONE, ["eval", "--adapter", "nowhere", "--data", "data/ladder", "--model", "tiny-random"]),
    ("eval-adapter-and-run", NONE, ["eval", "--adapter", "run", "--run", "run"]),
    ("eval-data-is-a-file", NONE, ["eval", "--data", "file.txt", "--model", "tiny-random"]),
    ("eval-seed-negative", NONE, ["eval", "--run", "run", "--seed", "-1"]),
    ("eval-max-rows-zero", NONE, ["eval", "--run", "run", "--max-rows", "0"]),
    ("eval-no-intact-checkpoint", lambda ws: [p.write_bytes(b"") for p in (ws / "run/checkpoints").glob("*/optimizer.pt")], ["eval", "--run", "run"]),
    # dump inspect
    ("inspect-missing", NONE, ["inspect", "nowhere"]),
    ("inspect-a-file", NONE, ["inspect", "file.txt"]),
    ("inspect-config-binary", write("run/config.yaml", BINARY), ["inspect", "run"]),
    ("inspect-metrics-garbage-line", edit("run/metrics.jsonl", lambda t: "garbage\n" + t), ["inspect", "run"]),
    ("inspect-eval-garbage-line", edit("run/eval.jsonl", lambda t: "{[\n" + t), ["inspect", "run"]),
    ("inspect-plot-not-png", NONE, ["inspect", "run", "--plot", "out.txt"]),
    ("inspect-plot-under-a-file", NONE, ["inspect", "run", "--plot", "file.txt/out.png"]),
    ("inspect-plot-a-dir", lambda ws: (ws / "dir.png").mkdir(), ["inspect", "run", "--plot", "dir.png"]),
    ("inspect-json-and-jsonl", NONE, ["inspect", "run", "--json", "--jsonl"]),
    # dump prepare
    ("prepare-out-is-a-file", NONE, ["prepare", "ladder", "--lengths", "1", "--train", "4", "--test", "1", "--out", "file.txt"]),
    ("prepare-out-under-a-file", NONE, ["prepare", "ladder", "--lengths", "1", "--train", "4", "--test", "1", "--out", "file.txt/d"]),
    ("prepare-out-exists", NONE, ["prepare", "ladder", "--lengths", "1", "--train", "4", "--test", "1", "--out", "data/ladder"]),
    ("prepare-seed-negative", NONE, ["prepare", "ladder", "--lengths", "1", "--seed", "-1", "--out", "new"]),
    ("prepare-seed-huge", NONE, ["prepare", "ladder", "--lengths", "1", "--seed", str(2**64), "--out", "new"]),
    ("prepare-lengths-bad", NONE, ["prepare", "ladder", "--lengths", "x-y", "--out", "new"]),
    ("prepare-kk-people-bad", NONE, ["prepare", "kk", "--people", "0", "--out", "new"]),
    ("prepare-arith-ops-bad", NONE, ["prepare", "arith", "--ops", "pow", "--out", "new"]),
    ("import-missing", NONE, ["prepare", "import", "nope.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-a-dir", NONE, ["prepare", "import", "data", "--reward", "arith", "--out", "new"]),
    ("import-not-utf8", write("in.jsonl", b'{"prompt": "\xff\xfe", "answer": "4", "distribution": "add"}\n'), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-binary", write("in.jsonl", BINARY), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-lone-surrogate", write("in.jsonl", '{"prompt": "a\\ud800b", "answer": "4", "distribution": "add"}\n'), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-null-answer", write("in.jsonl", jsonl([{**PLAIN, "answer": None}])), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-no-answer", write("in.jsonl", jsonl([{"prompt": "x", "distribution": "add"}])), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-not-objects", write("in.jsonl", "[1, 2]\n"), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-prompt-a-number", write("in.jsonl", jsonl([{**PLAIN, "prompt": 5}])), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-distribution-a-list", write("in.jsonl", jsonl([{**PLAIN, "distribution": [1]}])), ["prepare", "import", "in.jsonl", "--reward", "arith", "--out", "new"]),
    ("import-parquet-garbage", write("in.parquet", BINARY), ["prepare", "import", "in.parquet", "--reward", "arith", "--out", "new"]),
    ("import-no-reward", write("in.jsonl", jsonl([PLAIN])), ["prepare", "import", "in.jsonl", "--out", "new"]),
    ("import-test-fraction-bad", write("in.jsonl", jsonl([PLAIN])), ["prepare", "import", "in.jsonl", "--reward", "arith", "--test-fraction", "2", "--out", "new"]),
    ("recipe-missing", NONE, ["prepare", "recipe", "nope.yaml", "--out", "new"]),
    ("recipe-binary", write("r.yaml", BINARY), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-yaml-broken", write("r.yaml", "sources: [\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-seed-text", write("r.yaml", "seed: abc\nsources: [{source: ladder, lengths: 1, train: 2, test: 1}]\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-seed-negative", write("r.yaml", "seed: -1\nsources: [{source: ladder, lengths: 1, train: 2, test: 1}]\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-files-a-number", write("r.yaml", "sources: [{source: import, files: 5, reward: arith}]\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-train-text", write("r.yaml", "sources: [{source: ladder, lengths: 1, train: many}]\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-tasks-a-number", write("r.yaml", "sources: [{source: ladder, tasks: 5, lengths: 1}]\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-prefill-a-number", write("r.yaml", "sources: [{source: import, files: [x.jsonl], reward: arith, prefill: 5}]\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("recipe-sources-a-string", write("r.yaml", "sources: ladder\n"), ["prepare", "recipe", "r.yaml", "--out", "new"]),
    ("merge-not-a-dataset", NONE, ["prepare", "merge", "run", "--out", "new"]),
    ("merge-same-twice", NONE, ["prepare", "merge", "data/ladder", "data/ladder", "--out", "new"]),
    # read-only folders (a read-only tmpfs: root writes through plain permissions)
    ("train-out-read-only", NONE, ["train", *TINY, "--data", "data/ladder", "--out", "{ro}/run"]),
    ("prepare-out-read-only", NONE, ["prepare", "ladder", "--lengths", "1", "--train", "4", "--test", "1", "--out", "{ro}/d"]),
    ("inspect-plot-read-only", NONE, ["inspect", "run", "--plot", "{ro}/p.png"]),
    # the rest of the CLI
    ("unknown-command", NONE, ["nope"]),
    ("schedulers-unknown-flag", NONE, ["schedulers", "--nope"]),
]


@pytest.fixture(scope="module")
def pristine(make_ladder: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace every case starts from: data/ladder, a finished 2-step run, file.txt."""
    ws = tmp_path_factory.mktemp("pristine")
    shutil.copytree(make_ladder(seed=3, lengths="1-2", train=8, test=2), ws / "data" / "ladder")
    (ws / "file.txt").write_text("not a folder\n")
    cwd = Path.cwd()
    os.chdir(ws)
    try:
        assert main(["train", *TINY, "--data", "data/ladder", "--out", "run", "--set", "run.save_every=1"]) == 0
    finally:
        os.chdir(cwd)
    return ws


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A read-only mount, or None where this machine lets the tests mount nothing."""
    path = tmp_path_factory.mktemp("ro")
    mounted = shutil.which("mount") and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                                                      capture_output=True).returncode == 0
    yield path if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def ws(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ws"
    shutil.copytree(pristine, path)
    monkeypatch.chdir(path)
    monkeypatch.setenv("DUMP_CACHE", str(tmp_path / "cache"))  # a default dataset or model would land here
    return path


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` (the temp dir holding the workspace and the cache) and its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def one_clean_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `dump argv`; assert exit 2 and exactly one line on stderr, no traceback; return that line."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, f"exit {code}, stderr:\n{err}"
    return lines[0]


@pytest.mark.parametrize(("setup", "argv"), [pytest.param(setup, argv, id=name) for name, setup, argv in CASES])
def test_bad_input_ends_in_one_line_and_exit_2_with_nothing_written(
        ws: Path, setup: Setup, argv: list[str], read_only: Path | None, capsys: pytest.CaptureFixture[str]) -> None:
    if any("{ro}" in a for a in argv):
        if read_only is None:
            pytest.skip("cannot mount a read-only tmpfs here (needs root in a privileged container)")
        argv = [a.replace("{ro}", str(read_only)) for a in argv]
    setup(ws)
    before = tree(ws.parent)
    line = one_clean_error(argv, capsys)
    assert line.startswith("dump"), line
    assert tree(ws.parent) == before


@pytest.mark.parametrize("log", ["metrics.jsonl", "eval.jsonl", "samples.jsonl"])
def test_inspect_survives_random_bytes_appended_to_a_log(ws: Path, log: str, capsys: pytest.CaptureFixture[str]) -> None:
    original = (ws / "run" / log).read_bytes()
    rng = random.Random(log)
    for trial in range(12):
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        if trial % 3 == 0:
            tail = tail.replace(b"\n", b"")  # a partial last line: readers must tolerate it
        (ws / "run" / log).write_bytes(original + tail)
        code = main(["inspect", "run", "--json"])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        if code == 0:
            json.loads(captured.out)
        else:
            assert code == 2 and len(captured.err.splitlines()) == 1, captured.err
        if b"\n" not in tail:
            assert code == 0, captured.err


def test_dataset_and_run_files_get_the_usual_modes(pristine: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    folder, file = 0o777 & ~umask, 0o666 & ~umask
    checkpoint = next((pristine / "run" / "checkpoints").iterdir())
    for path in (pristine / "data" / "ladder", pristine / "run", checkpoint):
        assert path.stat().st_mode & 0o777 == folder, path
    for path in (pristine / "data" / "ladder" / "dataset.yaml", pristine / "run" / "config.yaml",
                 pristine / "run" / "dataset.json", checkpoint / "trainer_state.json", checkpoint / "manifest.json"):
        assert path.stat().st_mode & 0o777 == file, path
