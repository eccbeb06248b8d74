"""--resume after a hard kill or a Ctrl-C continues the exact same run: same scheduler draws, same
metrics, nothing logged twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dumpcli.cli import main
from dumpcli.fsutil import read_jsonl

STEPS = 12  # room for a signal to land mid-run on a loaded machine
TIMING_KEYS = {"time", "elapsed_s", "step_time_s", "generation_time_s", "tokens_per_second"}


@pytest.fixture(scope="module")
def ladder(make_ladder: Callable[..., Path]) -> Path:
    return make_ladder(seed=2, lengths="1-3", train=40, test=4)


def args(data: Path, out: Path) -> list[str]:
    # Deterministic, one thread: the only way two processes can agree bit for bit.
    return ["train", "--model", "tiny-random", "--data", str(data), "--out", str(out), "--steps", str(STEPS),
            "--batch-size", "4", "--num-generations", "4", "--max-new-tokens", "4", "--lr", "1e-3", "--seed", "5",
            "--save-every", "2", "--eval-every", "3", "--scheduler", "ucb",
            "--set", "model.lora=false", "--set", "run.threads=1", "--set", "run.deterministic=true",
            "--set", "data.eval_rows=2", "--set", "run.keep_checkpoints=0"]


def logs(run: Path) -> dict[str, list[dict[str, Any]]]:
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]  # noqa: E731
    return {name: strip(read_jsonl(run / name)) for name in ("metrics.jsonl", "eval.jsonl", "samples.jsonl")}


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "dumpcli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate: Any, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "trainer exited early"
        assert time.monotonic() < deadline, "timed out waiting for the trainer"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(ladder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(args(ladder, out)) == 0
    return logs(out)


def test_resume_after_a_hard_kill_repeats_the_uninterrupted_run(ladder: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = spawn(args(ladder, out))
    wait_for(lambda: (out / "checkpoints" / "step-000002" / "trainer_state.json").exists(), proc)
    proc.send_signal(signal.SIGKILL)  # no cleanup at all: the worst case
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(read_jsonl(out / "metrics.jsonl")) < STEPS
    resumed = spawn(["train", "--resume", str(out)])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert logs(out) == reference


def test_ctrl_c_checkpoints_the_last_step_and_resume_repeats_the_run(ladder: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = spawn(args(ladder, out))
    wait_for(lambda: len(read_jsonl(out / "metrics.jsonl")) >= 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    done = read_jsonl(out / "metrics.jsonl")[-1]["step"]
    assert done < STEPS
    assert f"Interrupted (SIGINT) after step {done}" in err.decode()
    assert (out / "checkpoints" / f"step-{done:06d}" / "trainer_state.json").is_file()
    assert main(["train", "--resume", str(out)]) == 0
    assert logs(out) == reference


def test_resume_without_a_checkpoint_starts_again_from_step_0_with_the_saved_config(
        ladder: Path, reference: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    assert main(args(ladder, out) + ["--steps", "1", "--set", "run.save_every=0"]) == 0
    shutil.rmtree(out / "checkpoints")  # as if stopped before its first checkpoint
    config = (out / "config.yaml").read_text().replace("\n  steps: 1\n", f"\n  steps: {STEPS}\n").replace("save_every: 0", "save_every: 2")
    (out / "config.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)  # the saved config works from any directory
    assert main(["train", "--resume", "run"]) == 0
    assert logs(out) == reference


def test_resume_of_a_folder_that_is_not_a_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run dir" in capsys.readouterr().err
