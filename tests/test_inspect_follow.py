"""`dump inspect --follow` against a run another process is writing, and ending when it finishes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from inspect_fixtures import write_run

from dumpcli.cli import main

FIXTURES = Path(__file__).with_name("inspect_fixtures.py")
STEPS = 8


def start_inspect(run_dir: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "dumpcli", "inspect", str(run_dir), "--follow", "--interval", "0.05", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_writer(run_dir: Path) -> subprocess.Popen[bytes]:
    """Writes config, then one metrics line per step in two halves, with evals and checkpoint temp dirs."""
    return subprocess.Popen([sys.executable, str(FIXTURES), str(run_dir), "--steps", str(STEPS), "--sleep", "0.25"])


def outputs_when_both_end(inspect: subprocess.Popen, writer: subprocess.Popen) -> tuple[str, str]:
    """Stdout and stderr of `dump inspect --follow`, which must exit 0 by itself once the writer ends."""
    try:
        out, err = inspect.communicate(timeout=40)
    finally:
        writer.wait(timeout=10)
        inspect.kill()
    assert inspect.returncode == 0, err
    return out, err


def test_follow_streams_each_new_step_and_exits_when_the_run_ends(tmp_path: Path) -> None:
    run_dir = tmp_path / "live"  # does not exist yet: inspect starts before the trainer
    inspect = start_inspect(run_dir, "--jsonl")
    time.sleep(0.5)
    writer = start_writer(run_dir)
    out, err = outputs_when_both_end(inspect, writer)
    steps = [json.loads(line)["step"] for line in out.splitlines()]
    assert len(steps) >= 3 and steps == list(range(steps[0], STEPS + 1))
    final = json.loads(out.splitlines()[-1])
    assert final["finished"] and final["eval"]["step"] == 5 and final["checkpoint_step"] == 5


def test_follow_leaves_the_final_table_and_json_when_the_run_ends(tmp_path: Path) -> None:
    run_dir = tmp_path / "live"
    writer = start_writer(run_dir)
    inspect = start_inspect(run_dir, "--json")
    out, err = outputs_when_both_end(inspect, writer)
    assert json.loads(out)["step"] == STEPS
    assert f"step {STEPS}/{STEPS}" in err and "finished" in err


def test_follow_of_a_finished_run_returns_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(tmp_path / "done", steps=6, total=6)
    started = time.monotonic()
    assert main(["inspect", str(run_dir), "--follow", "--jsonl"]) == 0
    assert time.monotonic() - started < 5
    assert [json.loads(line)["step"] for line in capsys.readouterr().out.splitlines()] == [6]


def test_follow_refuses_a_dir_of_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "runs" / "ucb", steps=2)
    assert main(["inspect", str(tmp_path / "runs"), "--follow"]) == 2
    assert "holds run dirs" in capsys.readouterr().err
