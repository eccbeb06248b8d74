"""`dump eval`: per-distribution greedy accuracy and reward of a trained run, --json for pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dumpcli.cli import main
from dumpcli.fsutil import read_jsonl


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dumpcli.data.recipe import prepare_recipe

    root = tmp_path_factory.mktemp("eval")
    recipe = {"seed": 3, "sources": [{"source": "ladder", "tasks": ["reverse"], "lengths": "1-2", "train": 30, "test": 5}]}
    prepare_recipe(recipe, root / "data")
    out = root / "run"
    args = ["train", "--model", "tiny-random", "--data", str(root / "data"), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--num-generations", "4", "--max-new-tokens", "3", "--lr", "3e-3",
            "--set", "model.lora=false", "--set", "run.threads=1", "--set", "data.eval_rows=4"]
    assert main(args) == 0
    return out


def eval_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    capsys.readouterr()
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_of_a_run_matches_the_trainers_last_evaluation(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = eval_json(capsys, "--run", str(run), "--max-rows", "4")
    last = read_jsonl(run / "eval.jsonl")[-1]
    greedy = lambda d: {k: d[k] for k in ("reward", "accuracy", "n")}  # noqa: E731 - sampled ones are random
    assert {n: greedy(d) for n, d in result["distributions"].items()} == {n: greedy(d) for n, d in last["distributions"].items()}
    assert (result["reward"], result["accuracy"]) == (last["reward"], last["accuracy"])


def test_eval_of_a_checkpoint_folder_equals_eval_of_its_run(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_run = eval_json(capsys, "--run", str(run))
    by_adapter = eval_json(capsys, "--adapter", str(run / "checkpoints" / "step-000002"))
    assert by_adapter["distributions"] == by_run["distributions"]
    assert by_adapter["model"] == "tiny-random"


def test_eval_json_has_accuracy_reward_and_row_count_per_distribution(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = eval_json(capsys, "--run", str(run), "--max-rows", "3", "--distributions", "reverse-2")
    assert list(result["distributions"]) == ["reverse-2"]
    d = result["distributions"]["reverse-2"]
    assert d["n"] == 3 and 0.0 <= d["accuracy"] <= 1.0 and 0.0 <= d["reward"] <= 1.0
    assert result["n"] == 3 and result["adapter"].endswith("adapter")


def test_eval_without_an_adapter_evaluates_the_base_model(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained = eval_json(capsys, "--run", str(run))
    base = eval_json(capsys, "--data", str(run.parent / "data"), "--model", "tiny-random")
    assert base["adapter"] is None
    assert trained["distributions"].keys() == base["distributions"].keys()


def test_adapter_and_run_together_are_refused(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--run", str(run), "--adapter", str(run / "checkpoints" / "step-000002")]) == 2
    assert "either --adapter or --run" in capsys.readouterr().err


def test_missing_adapter_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--adapter", str(tmp_path / "nope"), "--model", "tiny-random"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dump: error: adapter") and len(err.splitlines()) == 1


def test_sampled_accuracy_is_the_share_of_sampled_completions_that_are_right(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # At temperature 1e-4 sampling is greedy decoding, so every sample is the greedy answer.
    result = eval_json(capsys, "--run", str(run), "--samples", "3", "--temperature", "1e-4")
    for d in result["distributions"].values():
        assert d["samples"] == 3 and d["sampled_accuracy"] == pytest.approx(d["accuracy"])
    last = read_jsonl(run / "eval.jsonl")[-1]
    assert all(0.0 <= d["sampled_accuracy"] <= 1.0 and d["samples"] == 4 for d in last["distributions"].values())


def test_greedy_only_evaluation_reports_no_sampled_accuracy(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = eval_json(capsys, "--run", str(run), "--samples", "0")
    assert "sampled_accuracy" not in result and all("sampled_accuracy" not in d for d in result["distributions"].values())
