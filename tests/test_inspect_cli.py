"""`dump inspect` at the command line: the table, --json against its documented schema, bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inspect_fixtures import NAMES, config_dict, write_config, write_run

from dumpcli.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "inspect-json.md"
NUM, OPT_NUM, OPT_INT, OPT_STR = (int, float), (int, float, type(None)), (int, type(None)), (str, type(None))

RUN_KEYS: dict[str, Any] = {
    "schema_version": int, "kind": str, "name": str, "path": str, "scheduler": dict, "model": OPT_STR,
    "step": int, "total_steps": OPT_INT, "progress": OPT_NUM, "finished": bool, "elapsed_s": OPT_NUM,
    "tokens_per_second": OPT_NUM, "step_time_s": OPT_NUM, "eta_s": OPT_NUM, "reward": OPT_NUM,
    "window_steps": int, "recent_prompts": int, "target": OPT_NUM, "steps_to_target": OPT_INT,
    "reward_auc": OPT_NUM, "mean_reward": OPT_NUM, "checkpoint_step": OPT_INT, "eval": (dict, type(None)),
    "ranked_by": OPT_STR, "best": OPT_STR, "worst": OPT_STR, "distributions": list,
}  # fmt: skip
EVAL_KEYS = {"step": int, "accuracy": OPT_NUM, "reward": OPT_NUM, "first_step": int,
             "accuracy_change": OPT_NUM, "reward_change": OPT_NUM, "evaluations": int}  # fmt: skip
DIST_KEYS = {
    "name": str, "difficulty": OPT_NUM, "probability": OPT_NUM, "prompts": int, "prompt_share": OPT_NUM,
    "recent_reward": OPT_NUM, "recent_abs_advantage": OPT_NUM, "eval_accuracy": OPT_NUM, "eval_reward": OPT_NUM,
    "eval_accuracy_change": OPT_NUM, "eval_reward_change": OPT_NUM,
}  # fmt: skip
COMPARISON_KEYS = {"schema_version": int, "kind": str, "target": OPT_NUM, "window_steps": int, "runs": list, "distributions": list}
COMPARISON_DIST_KEYS = {"name": str, "difficulty": OPT_NUM, "final_eval": dict, "prompts": dict}


def check_keys(obj: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    assert set(obj) == set(spec), f"{where}: keys differ from the documented ones"
    for key, types in spec.items():
        assert isinstance(obj[key], types) and not (types is int and isinstance(obj[key], bool)), f"{where}.{key}: {obj[key]!r}"


def check_run(obj: dict[str, Any]) -> None:
    check_keys(obj, RUN_KEYS, "run")
    assert obj["kind"] == "run" and set(obj["scheduler"]) == {"name", "options"}
    if obj["eval"] is not None:
        check_keys(obj["eval"], EVAL_KEYS, "eval")
    for d in obj["distributions"]:
        check_keys(d, DIST_KEYS, "distributions[]")


def inspect_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_of_a_run_has_exactly_the_documented_keys_and_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_run(inspect_json(capsys, str(write_run(tmp_path / "run", steps=20, total=40)), "--target", "0.3"))


def test_json_of_a_run_without_evals_keeps_every_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = inspect_json(capsys, str(write_run(tmp_path / "run", steps=3, total=40, eval_every=0)))
    check_run(out)
    assert out["eval"] is None and out["distributions"][0]["eval_accuracy"] is None


def test_json_of_several_runs_has_exactly_the_documented_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(write_run(tmp_path / s, steps=12, scheduler=s)) for s in ("ucb", "uniform", "sequential")]
    out = inspect_json(capsys, *paths)
    check_keys(out, COMPARISON_KEYS, "comparison")
    for run in out["runs"]:
        check_run(run)
    for d in out["distributions"]:
        check_keys(d, COMPARISON_DIST_KEYS, "comparison.distributions[]")
        assert set(d["final_eval"]) == set(d["prompts"]) == {"ucb", "uniform", "sequential"}


def test_every_json_key_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(), flags=re.M))
    assert set(RUN_KEYS) | set(EVAL_KEYS) | set(DIST_KEYS) | set(COMPARISON_KEYS) | set(COMPARISON_DIST_KEYS) == documented


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_json_pipes_into_jq_select_by_probability(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=30, total=50)
    dump = subprocess.run([sys.executable, "-m", "dumpcli", "inspect", str(run_dir), "--json"], capture_output=True, check=True)
    jq = subprocess.run(["jq", "-c", ".distributions[] | select(.probability > 0.2) | .name"],
                        input=dump.stdout, capture_output=True, check=True)  # fmt: skip
    expected = [d["name"] for d in json.loads(dump.stdout)["distributions"] if d["probability"] > 0.2]
    assert [json.loads(line) for line in jq.stdout.decode().split()] == expected and expected


def test_table_goes_to_stderr_and_marks_best_and_worst(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(write_run(tmp_path / "run", steps=30, total=50))]) == 0
    out = capsys.readouterr()
    assert out.out == ""
    flowing = " ".join(out.err.split())  # the header wraps at the console's width, wherever the tmp path ends
    assert "step 30/50" in flowing and "scheduler ucb" in flowing
    lines = {name: next(ln for ln in out.err.splitlines() if f" {name} " in ln) for name in NAMES}
    assert "▲" in lines[NAMES[0]] and "▼" in lines[NAMES[-1]]


def test_comparison_table_has_a_column_per_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(write_run(tmp_path / s, steps=12, scheduler=s)) for s in ("ucb", "uniform")]
    assert main(["inspect", *paths, "--target", "0.2"]) == 0
    err = capsys.readouterr().err
    assert "final eval accuracy per distribution" in err and "steps to 0.2" in err
    assert re.search(r"distribution\s+ucb\s+uniform", err)


def test_jsonl_without_follow_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(write_run(tmp_path / "run", steps=5)), "--jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["step"] == 5


def one_error_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(["inspect", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dump: error: ")
    return err


def test_a_path_that_is_not_a_dir_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "is not a directory" in one_error_line(capsys, [str(tmp_path / "nope")])


def test_a_dir_that_is_not_a_run_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "other").mkdir()
    assert "is not a run dir (no config.yaml)" in one_error_line(capsys, [str(tmp_path / "other")])


def test_a_run_from_a_newer_format_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(tmp_path / "run", steps=2)
    write_config(run_dir, config_dict(2) | {"format_version": 7})
    assert "newer dump (run format_version 7" in one_error_line(capsys, [str(run_dir)])


def test_an_empty_run_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path / "run", config_dict(5))
    assert "no steps yet" in one_error_line(capsys, [str(tmp_path / "run")])


def test_json_and_jsonl_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "pass one of them" in one_error_line(capsys, [str(write_run(tmp_path / "r", steps=2)), "--json", "--jsonl"])


def test_follow_takes_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (str(write_run(tmp_path / n, steps=2)) for n in "ab")
    assert "--follow watches one run" in one_error_line(capsys, [a, b, "--follow"])
