"""`dump train --engine trl`: TRL's GRPOTrainer trains tiny-random with dump's schedulers choosing every prompt.

What TRL did is read from its own output (tests/trl_probe.py records `_generate_and_score_completions`),
what dump logged from the run dir; the two are compared here. TRL runs in this process except where a
process must die (kill -9) or be two (torchrun).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("trl")

from dumpcli.cli import main  # noqa: E402
from dumpcli.fsutil import read_jsonl  # noqa: E402
from trl_probe import train_and_record  # noqa: E402

TIMING_KEYS = {"time", "elapsed_s", "step_time_s", "tokens_per_second", "generation_time_s"}
METRIC_KEYS = {  # as tests/test_train.py expects of --engine dump
    "step", "time", "elapsed_s", "loss", "reward", "reward_std", "frac_reward_zero_std", "kl", "clip_ratio",
    "grad_norm", "learning_rate", "completions/mean_length", "completions/clipped_ratio", "tokens_per_second",
    "step_time_s", "generation_time_s", "scheduler", "distributions",
}
NAMES = ["reverse-1", "reverse-2", "reverse-3"]
B, G, STEPS = 3, 4, 4
DRAW_LAG = 1  # num_iterations 1: the loader asks for round t+1 before round t's update (docs/engines.md)
PROBE = Path(__file__).with_name("trl_probe.py")


@pytest.fixture(scope="module")
def ladder(make_ladder: Callable[..., Path]) -> Path:
    return make_ladder(seed=1, lengths="1-3", train=40, test=6)


def write_config(path: Path, data: Path, out: Path, scheduler: str, options: dict[str, Any],
                 grpo: dict[str, Any] | None = None, **run: Any) -> Path:
    config = {
        "model": {"name": "tiny-random", "lora": False},
        "data": {"path": str(data), "eval_rows": 3},
        "grpo": {"steps": STEPS, "batch_size": B, "num_generations": G, "max_new_tokens": 4, "lr": 1e-3, **(grpo or {})},
        "scheduler": {"name": scheduler, "options": options},
        "run": {"out": str(out), "engine": "trl", "threads": 1, "save_every": 2, "progress": False, **run},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def spawn(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def ucb(ladder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ucb")
    config = write_config(tmp / "ucb.yaml", ladder, tmp / "run", "ucb", {"window": 1000})
    return tmp / "run", train_and_record(config, tmp / "probe")


def test_a_trl_run_writes_the_run_dir_dump_writes(ucb: tuple[Path, dict[str, Any]]) -> None:
    run, _ = ucb
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert [e["step"] for e in read_jsonl(run / "eval.jsonl")] == [0, 4]
    assert {s["step"] for s in read_jsonl(run / "samples.jsonl")} == {1, 2, 3, 4}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    checkpoint = run / "checkpoints" / "step-000004"
    assert {"adapter", "scheduler.json", "trl", "trainer_state.json"} <= {p.name for p in checkpoint.iterdir()}
    assert yaml.safe_load((run / "config.yaml").read_text())["run"]["engine"] == "trl"
    for row in read_jsonl(run / "metrics.jsonl"):
        assert METRIC_KEYS <= set(row), METRIC_KEYS - set(row)
        assert any(k.startswith("rewards/") for k in row)
        assert sum(d["prompts"] for d in row["distributions"].values()) == B


def test_the_scheduler_window_holds_exactly_the_advantages_trl_computed(ucb: tuple[Path, dict[str, Any]]) -> None:
    _, probe = ucb
    dist = np.concatenate([r["distribution"] for r in probe["rounds"]])  # [steps x N], training order
    adv = np.concatenate([r["advantages"] for r in probe["rounds"]])
    window = probe["scheduler"]["window"]
    assert window["count"] == [int((dist == j).sum()) for j in range(len(NAMES))]
    for j in range(len(NAMES)):
        np.testing.assert_allclose(window["values"][j][: window["count"][j]], np.abs(adv[dist == j]), rtol=1e-6)


def test_logged_abs_advantage_is_the_mean_of_trls_advantages(ucb: tuple[Path, dict[str, Any]]) -> None:
    run, probe = ucb
    for row, rnd in zip(read_jsonl(run / "metrics.jsonl"), probe["rounds"], strict=True):
        dist, adv = np.array(rnd["distribution"]), np.abs(rnd["advantages"])
        for j, name in enumerate(NAMES):
            logged = row["distributions"][name]
            assert logged["prompts"] * G == (dist == j).sum()
            if logged["prompts"]:
                assert logged["abs_advantage"] == pytest.approx(adv[dist == j].mean(), rel=1e-6)


def test_dump_inspect_and_eval_read_a_trl_run(ucb: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = ucb
    capsys.readouterr()
    assert main(["inspect", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == STEPS
    assert sum(d["prompts"] for d in summary["distributions"]) == STEPS * B
    assert main(["eval", "--run", str(run), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["distributions"]) == set(NAMES)


def test_a_key_trl_cannot_honour_stops_with_one_line_and_writes_nothing(
        ladder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--engine", "trl", "--model", "tiny-random", "--data", str(ladder), "--out", str(out),
            "--set", "grpo.advantage_eps=1e-6"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dump: error: grpo.advantage_eps=1e-06 has no TRL equivalent") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("num_iterations", [1, 2])
def test_sequential_order_puts_every_prompt_on_the_named_distribution_one_round_late(
        ladder: Path, tmp_path: Path, num_iterations: int) -> None:
    # steps=1: the sequential scheduler moves on after every update, so each round's distribution
    # says how many updates its draw had seen: the lag between update and draw, measured.
    order = ["reverse-3", "reverse-1", "reverse-2"]
    config = write_config(tmp_path / "seq.yaml", ladder, tmp_path / "run", "sequential",
                          {"order": ",".join(order), "steps": 1}, {"num_iterations": num_iterations}, eval_at_start=False)
    probe = train_and_record(config, tmp_path / "probe")
    lag = DRAW_LAG if num_iterations == 1 else 0
    drawn = [[name for name, d in row["distributions"].items() for _ in range(d["prompts"])]
             for row in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    expected = [order[min(max(step - 1 - lag, 0), len(order) - 1)] for step in range(1, STEPS + 1)]
    assert drawn == [[name] * B for name in expected]  # lag 1: ["reverse-3"] x 2, then one per round
    assert [d["round"] - 1 - d["updates_seen"] for d in probe["draws"]][1:] == [lag] * (STEPS - 1)


def test_kill_9_then_resume_logs_what_the_uninterrupted_run_logged(
        ucb: tuple[Path, dict[str, Any]], ladder: Path, tmp_path: Path) -> None:
    reference, _ = ucb
    run = tmp_path / "run"
    config = write_config(tmp_path / "ucb.yaml", ladder, run, "ucb", {"window": 1000})
    killed = spawn([str(PROBE), str(config), str(tmp_path / "probe"), "--kill-after-step", "3"])
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3]  # step 3 logged, never checkpointed
    assert main(["train", "--resume", str(run)]) == 0
    for name in ("metrics.jsonl", "eval.jsonl", "samples.jsonl"):
        assert without_timing(read_jsonl(run / name)) == without_timing(read_jsonl(reference / name)), name


def test_two_ranks_draw_alike_update_alike_and_log_every_prompt(ladder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = write_config(tmp_path / "ucb.yaml", ladder, run, "ucb", {"window": 1000}, eval_every=0, eval_at_start=False)
    done = spawn(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(PROBE), str(config),
                  str(tmp_path / "probe")])
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / "probe" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [d["slots"] for d in ranks[0]["draws"]] == [d["slots"] for d in ranks[1]["draws"]]
    assert ranks[0]["scheduler"] == ranks[1]["scheduler"]
    assert [d["round"] - 1 - d["updates_seen"] for d in ranks[0]["draws"]][1:] == [DRAW_LAG] * (STEPS - 1)
    # Each rank trained on its own half of every round; the logged prompt counts are both halves together.
    rows = read_jsonl(run / "metrics.jsonl")
    assert len(rows) == STEPS
    for step, row in enumerate(rows):
        local = [np.array(rank["rounds"][step]["distribution"]) for rank in ranks]
        assert [len(x) for x in local] == [B * G // 2] * 2
        both = np.concatenate(local)
        assert {n: d["prompts"] * G for n, d in row["distributions"].items()} == {n: int((both == j).sum()) for j, n in enumerate(NAMES)}
    # The window holds the advantages of both ranks, in rank order: each rank learned from all of them.
    dist = np.concatenate([rank["rounds"][s]["distribution"] for s in range(STEPS) for rank in ranks])
    adv = np.concatenate([rank["rounds"][s]["advantages"] for s in range(STEPS) for rank in ranks])
    window = ranks[0]["scheduler"]["window"]
    for j in range(len(NAMES)):
        np.testing.assert_allclose(window["values"][j][: window["count"][j]], np.abs(adv[dist == j]), rtol=1e-6)
