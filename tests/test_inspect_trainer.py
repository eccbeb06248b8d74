"""`dump inspect` on a run dir written by the real trainer (tiny-random, 4 steps), watched live."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_inspect_cli import check_run

from dumpcli.cli import main
from dumpcli.inspect.summary import load_run, summarize_run
from dumpcli.inspect.plots import plot_runs

STEPS = 4


@dataclass
class TrainedRun:
    path: Path
    follow_lines: list[str]
    follow_returncode: int
    follow_stderr: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A ladder run from `dump train`, with `dump inspect --follow --jsonl` started before it."""
    root = tmp_path_factory.mktemp("real")
    assert main(["prepare", "ladder", "--lengths", "1-3", "--train", "16", "--test", "4", "--out", str(root / "ladder")]) == 0
    run_dir = root / "run"
    dump = [sys.executable, "-m", "dumpcli"]
    follow = subprocess.Popen([*dump, "inspect", str(run_dir), "--follow", "--jsonl", "--interval", "0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # run.threads=1: torch's default thread count crawls on a shared 2-core machine (5 s vs 0.1 s a step)
    train = subprocess.run(
        [*dump, "train", "--model", "tiny-random", "--data", str(root / "ladder"), "--steps", str(STEPS),
         "--batch-size", "2", "--num-generations", "2", "--max-new-tokens", "4", "--eval-every", "2", "--set", "run.threads=1", "--out", str(run_dir)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    try:
        out, err = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert train.returncode == 0, train.stderr
    return TrainedRun(run_dir, out.splitlines(), follow.returncode, err)


def test_follow_sees_the_real_trainer_s_steps_and_ends_with_it(trained: TrainedRun) -> None:
    assert trained.follow_returncode == 0, trained.follow_stderr
    # steps take ~0.1 s here, so how many it catches on the way varies; each new one is a line
    steps = [json.loads(line)["step"] for line in trained.follow_lines]
    assert steps == list(range(steps[0], STEPS + 1))
    assert json.loads(trained.follow_lines[-1])["finished"]


def test_real_run_json_has_the_documented_keys(trained: TrainedRun, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(trained.path), "--json"]) == 0
    check_run(json.loads(capsys.readouterr().out))


def test_real_run_summary_matches_what_the_trainer_logged(trained: TrainedRun) -> None:
    rows = [json.loads(line) for line in (trained.path / "metrics.jsonl").read_text().splitlines()]
    evals = [json.loads(line) for line in (trained.path / "eval.jsonl").read_text().splitlines()]
    s = summarize_run(load_run(trained.path))
    assert (s["step"], s["total_steps"], s["finished"], s["scheduler"]["name"], s["model"]) == (STEPS, STEPS, True, "ucb", "tiny-random")
    assert [d["name"] for d in s["distributions"]] == ["reverse-1", "reverse-2", "reverse-3"]
    assert [d["difficulty"] for d in s["distributions"]] == [1.0, 2.0, 3.0]
    for d in s["distributions"]:
        assert d["prompts"] == sum(r["distributions"][d["name"]]["prompts"] for r in rows)
        assert d["probability"] == rows[-1]["distributions"][d["name"]]["probability"]
    assert s["eval"]["step"] == evals[-1]["step"] and s["eval"]["evaluations"] == len(evals)
    assert s["checkpoint_step"] == STEPS


def test_inspect_orders_by_difficulty_from_the_run_dir_with_the_dataset_moved_away(tmp_path: Path) -> None:
    data = tmp_path / "mixed"
    assert main(["prepare", "ladder", "--tasks", "reverse,copy", "--lengths", "1-2", "--train", "8", "--test", "2",
                 "--out", str(data)]) == 0
    assert main(["train", "--model", "tiny-random", "--data", str(data), "--steps", "1", "--batch-size", "2",
                 "--num-generations", "2", "--max-new-tokens", "2", "--set", "run.threads=1", "--set", "run.progress=false",
                 "--set", "run.eval_at_start=false", "--out", str(tmp_path / "run")]) == 0
    data.rename(tmp_path / "moved")
    names = [d["name"] for d in summarize_run(load_run(tmp_path / "run"))["distributions"]]
    # by difficulty (the length), then name; by name alone it would be copy-1, copy-2, reverse-1, reverse-2
    assert names == ["copy-1", "reverse-1", "copy-2", "reverse-2"]


def test_real_run_plots(trained: TrainedRun, tmp_path: Path) -> None:
    out = plot_runs([load_run(trained.path)], tmp_path / "real.png")
    assert out.stat().st_size > 30_000
