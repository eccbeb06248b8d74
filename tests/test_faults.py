"""Faults around a training run, on tiny-random: signals, kill -9 inside checkpoint writes, damaged
checkpoints, a second trainer, a dead trainer under --follow, a full disk, a NaN loss. After each,
the run resumes to exactly the logs of an uninterrupted run: nothing lost, nothing logged twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dumpcli.cli import main
from dumpcli.fsutil import read_jsonl

STEPS = 6
TIMING_KEYS = {"time", "elapsed_s", "step_time_s", "generation_time_s", "tokens_per_second"}


def args(data: Path, out: Path) -> list[str]:
    # Deterministic, one thread: the only way two processes agree bit for bit.
    return ["train", "--model", "tiny-random", "--data", str(data), "--out", str(out), "--steps", str(STEPS),
            "--batch-size", "4", "--num-generations", "4", "--max-new-tokens", "4", "--lr", "1e-3", "--seed", "5",
            "--save-every", "2", "--eval-every", "3", "--scheduler", "ucb",
            "--set", "run.threads=1", "--set", "run.deterministic=true",
            "--set", "data.eval_rows=2", "--set", "run.keep_checkpoints=0", "--set", "run.progress=false"]


def logs(run: Path) -> dict[str, list[dict[str, Any]]]:
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]  # noqa: E731
    return {name: strip(read_jsonl(run / name)) for name in ("metrics.jsonl", "eval.jsonl", "samples.jsonl")}


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "dumpcli", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 120.0, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "trainer exited early"
        assert time.monotonic() < deadline, "timed out waiting for the trainer"
        time.sleep(poll)


def temp_dirs(run: Path) -> list[Path]:
    return [p for p in (run / "checkpoints").glob(".*")] if (run / "checkpoints").is_dir() else []


def last_line(err: str) -> str:
    """The error line that ends `err`, the only one from dump (the rest is the run's own progress)."""
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("dump")] == lines[-1:] and "Traceback" not in err, err
    return lines[-1]


@pytest.fixture(scope="module")
def ladder(make_ladder: Callable[..., Path]) -> Path:
    return make_ladder(seed=2, lengths="1-3", train=40, test=4)


@pytest.fixture(scope="module")
def finished(ladder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run: checkpoints at steps 2, 4 and 6, all kept."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(args(ladder, out)) == 0
    return out


@pytest.fixture(scope="module")
def reference(finished: Path) -> dict[str, list[dict[str, Any]]]:
    return logs(finished)


@pytest.fixture
def copy_of(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def test_sigterm_checkpoints_the_last_step_a_second_trainer_is_refused_and_resume_repeats_the_run(
        ladder: Path, reference: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dumpcli.rundir import RunDir

    out = tmp_path / "run"
    proc = spawn(args(ladder, out) + ["--set", "run.save_every=0"])  # the default: nothing saved until the end
    wait_for(lambda: RunDir(out).lock_holder() == proc.pid, proc, poll=0.005)
    # A second trainer on the same run dir stops at once, naming the first one's pid.
    assert main(["train", "--resume", str(out)]) == 2
    assert f"pid {proc.pid}" in last_line(capsys.readouterr().err)
    wait_for(lambda: len(read_jsonl(out / "metrics.jsonl")) >= 1, proc, poll=0.005)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)  # an impatient second signal must not cut the checkpoint short
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()
    done = read_jsonl(out / "metrics.jsonl")[-1]["step"]
    assert done < STEPS and (out / "checkpoints" / f"step-{done:06d}" / "manifest.json").is_file()
    assert f"Interrupted (SIGTERM) after step {done}" in err.decode()
    assert main(["train", "--resume", str(out)]) == 0
    assert logs(out) == reference


@pytest.fixture(scope="module")
def killed_in_checkpoint_writes(ladder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A run kill -9'ed in the middle of a checkpoint write, twice (the second time while resumed)."""
    out = tmp_path_factory.mktemp("killed") / "run"
    kills = 0
    for argv in (args(ladder, out) + ["--set", "run.save_every=1"], ["train", "--resume", str(out)]):
        proc = spawn(argv)
        wait_for(lambda: bool(temp_dirs(out)), proc, poll=0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += proc.returncode == -signal.SIGKILL
    yield out, kills


def test_follow_on_a_killed_run_exits_with_one_line(killed_in_checkpoint_writes: tuple[Path, int],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = killed_in_checkpoint_writes
    started = time.monotonic()
    assert main(["inspect", str(out), "--follow", "--interval", "0.1"]) == 2
    assert time.monotonic() - started < 10
    assert "no dump train is writing" in capsys.readouterr().err.splitlines()[-1]


def test_kill_9_inside_checkpoint_writes_then_resume_repeats_the_run_and_clears_temp_dirs(
        killed_in_checkpoint_writes: tuple[Path, int], reference: dict[str, Any]) -> None:
    out, kills = killed_in_checkpoint_writes
    assert kills == 2 and temp_dirs(out)
    assert main(["train", "--resume", str(out), "--set", "run.save_every=1"]) == 0
    assert logs(out) == reference
    assert temp_dirs(out) == []


CHECKPOINT_FILES = ["adapter/adapter_model.safetensors", "optimizer.pt", "scheduler.json", "rng.pt", "rng_host.json",
                    "trainer_state.json", "manifest.json"]


@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_a_truncated_checkpoint_file_falls_back_to_the_previous_checkpoint(
        copy_of: Path, reference: dict[str, Any], name: str, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = copy_of / "checkpoints" / "step-000006" / name
    assert damaged.is_file()
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    assert main(["eval", "--run", str(copy_of), "--max-rows", "1"]) == 0
    assert "using step-000004" in capsys.readouterr().err
    assert main(["train", "--resume", str(copy_of)]) == 0
    err = capsys.readouterr().err
    assert "damaged checkpoint (step-000006" in err and "Resuming at step 4" in err and "Traceback" not in err
    assert logs(copy_of) == reference
    assert (copy_of / "checkpoints" / "step-000006.damaged").is_dir()


def test_a_checkpoint_from_before_manifests_is_still_resumed(copy_of: Path, reference: dict[str, Any]) -> None:
    shutil.rmtree(copy_of / "checkpoints" / "step-000006")
    (copy_of / "checkpoints" / "step-000004" / "manifest.json").unlink()  # as an older dump wrote it
    assert main(["train", "--resume", str(copy_of)]) == 0
    assert logs(copy_of) == reference


def test_resume_drops_garbage_and_a_partial_last_line_from_the_logs(copy_of: Path, reference: dict[str, Any]) -> None:
    shutil.rmtree(copy_of / "checkpoints" / "step-000006")  # as if killed before the last checkpoint
    for log in ("metrics.jsonl", "eval.jsonl", "samples.jsonl"):
        text = (copy_of / log).read_bytes()
        (copy_of / log).write_bytes(b"\xff garbage\n[1, 2]\n" + text + b'{"step": 7, "half a li')
    assert main(["inspect", str(copy_of), "--json"]) in (0, 2)  # a corrupt middle line: one clear line, no traceback
    assert main(["train", "--resume", str(copy_of)]) == 0
    assert logs(copy_of) == reference


def test_a_nan_loss_is_logged_as_null_and_stops_at_the_last_good_step(
        ladder: Path, reference: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import dumpcli.train.loop as loop

    real = loop.grpo_loss
    calls = {"n": 0}

    def nan_at_step_3(*a: Any, **k: Any) -> Any:
        loss, stats = real(*a, **k)
        calls["n"] += 1
        return (loss * float("nan"), stats) if calls["n"] == 3 else (loss, stats)

    monkeypatch.setattr(loop, "grpo_loss", nan_at_step_3)
    out = tmp_path / "run"
    assert main(args(ladder, out)) == 2
    assert "step 3: the loss is nan" in last_line(capsys.readouterr().err)
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["loss"] is None
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002"]
    monkeypatch.setattr(loop, "grpo_loss", real)
    assert main(["train", "--resume", str(out)]) == 0
    assert logs(out) == reference


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs: the run's three checkpoints (~1.7 MB each) fit, just."""
    path = tmp_path / "disk"
    path.mkdir()
    if not shutil.which("mount") or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)],
                                                   capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root in a privileged container)")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    with open(disk / "filler", "wb") as f, __import__("contextlib").suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 16))
            f.flush()


@pytest.mark.parametrize("where", ["checkpoint", "metrics.jsonl"])
def test_a_full_disk_ends_with_one_line_and_a_resumable_run(
        ladder: Path, reference: dict[str, Any], small_disk: Path, where: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The disk fills up while the step-3 log lines (step 3 is evaluated) or the step-4 checkpoint are written."""
    import dumpcli.rundir.writer as writer

    out = small_disk / "run"
    real_append, real_checkpoint = writer.append_jsonl, writer.RunWriter.write_checkpoint

    def append(path: Path, row: dict[str, Any]) -> None:
        if path.name == where and row["step"] == 3:
            fill(small_disk)
        real_append(path, row)

    def checkpoint(self: Any, step: int, *a: Any) -> Path:
        if where == "checkpoint" and step == 4:
            fill(small_disk)
        return real_checkpoint(self, step, *a)

    monkeypatch.setattr(writer, "append_jsonl", append)
    monkeypatch.setattr(writer.RunWriter, "write_checkpoint", checkpoint)
    assert main(args(ladder, out)) == 2
    line = last_line(capsys.readouterr().err)
    assert "No space left on device" in line and f"dump train --resume {out}" in line
    assert not temp_dirs(out)
    (small_disk / "filler").unlink()  # space freed
    monkeypatch.undo()
    assert main(["train", "--resume", str(out)]) == 0
    assert logs(out) == reference
