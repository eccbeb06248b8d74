"""`dump train` end to end on tiny-random: run dir contents, metrics keys, the scheduler's grip
on sampling, repeatability from the resolved config, and clean refusals of bad input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dumpcli.cli import main
from dumpcli.fsutil import read_jsonl

TIMING_KEYS = {"time", "elapsed_s", "step_time_s", "generation_time_s", "tokens_per_second"}
METRIC_KEYS = {
    "step", "time", "elapsed_s", "loss", "reward", "reward_std", "frac_reward_zero_std", "kl", "clip_ratio",
    "grad_norm", "learning_rate", "completions/mean_length", "completions/clipped_ratio", "tokens_per_second",
    "step_time_s", "generation_time_s", "scheduler", "distributions",
}


@pytest.fixture(scope="module")
def ladder(make_ladder: Callable[..., Path]) -> Path:
    return make_ladder(seed=1, lengths="1-3", train=40, test=6)


def tiny_args(data: Path, out: Path, *extra: str, steps: int = 3) -> list[str]:
    return ["train", "--model", "tiny-random", "--data", str(data), "--out", str(out), "--steps", str(steps),
            "--batch-size", "3", "--num-generations", "4", "--max-new-tokens", "4", "--lr", "1e-3",
            "--set", "model.lora=false", "--set", "run.threads=1", "--set", "data.eval_rows=3", *extra]


def without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


@pytest.fixture(scope="module")
def run(ladder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ucb"
    assert main(tiny_args(ladder, out, "--scheduler", "ucb", "--save-every", "2")) == 0
    return out


def test_a_run_writes_config_logs_and_checkpoints(run: Path) -> None:
    assert yaml.safe_load((run / "config.yaml").read_text())["format_version"] == 1
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3]
    assert [e["step"] for e in read_jsonl(run / "eval.jsonl")] == [0, 3]
    assert {s["step"] for s in read_jsonl(run / "samples.jsonl")} == {1, 2, 3}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    ckpt = run / "checkpoints" / "step-000003"
    assert {"adapter", "optimizer.pt", "scheduler.json", "rng.pt", "trainer_state.json"} <= {p.name for p in ckpt.iterdir()}


def test_metrics_lines_have_the_documented_keys(run: Path) -> None:
    for row in read_jsonl(run / "metrics.jsonl"):
        assert METRIC_KEYS <= set(row), METRIC_KEYS - set(row)
        assert any(k.startswith("rewards/") for k in row)
        assert row["kl"] is None  # beta 0: no reference pass, nothing to report
        for d in row["distributions"].values():
            assert set(d) == {"probability", "prompts", "zero_std_prompts", "reward", "abs_advantage"}


def test_every_prompt_slot_is_counted_once_per_step(run: Path) -> None:
    for row in read_jsonl(run / "metrics.jsonl"):
        dists = row["distributions"]
        assert set(dists) == {"reverse-1", "reverse-2", "reverse-3"}
        assert sum(d["prompts"] for d in dists.values()) == 3
        assert abs(sum(d["probability"] for d in dists.values()) - 1.0) < 1e-9
        assert all((d["reward"] is None) == (d["prompts"] == 0) for d in dists.values())


def test_eval_lines_have_per_distribution_accuracy_and_reward(run: Path) -> None:
    last = read_jsonl(run / "eval.jsonl")[-1]
    assert {"step", "time", "reward", "accuracy", "distributions"} <= set(last)
    assert {d["n"] for d in last["distributions"].values()} == {3}


def test_the_resolved_config_repeats_the_run(run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.yaml"), "--out", str(again)]) == 0
    assert without_timing(read_jsonl(again / "metrics.jsonl")) == without_timing(read_jsonl(run / "metrics.jsonl"))


def test_the_scheduler_decides_every_prompts_distribution(ladder: Path, tmp_path: Path) -> None:
    out = tmp_path / "seq"
    args = tiny_args(ladder, out, "--scheduler", "sequential", "-O", "order=reverse-2", "-O", "steps=1000",
                     "--set", "run.eval_at_start=false")
    assert main(args) == 0
    for row in read_jsonl(out / "metrics.jsonl"):
        assert row["distributions"]["reverse-2"]["prompts"] == 3
        assert row["distributions"]["reverse-2"]["probability"] == 1.0
    assert {s["distribution"] for s in read_jsonl(out / "samples.jsonl")} == {"reverse-2"}


def test_json_summary_reports_reward_per_distribution(ladder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(tiny_args(ladder, tmp_path / "j", "--scheduler", "uniform", "--json")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["rose_by"] == "eval"
    assert set(summary["distributions"]) == {"reverse-1", "reverse-2", "reverse-3"}
    assert isinstance(summary["rose_on"], list)


def test_lora_with_kl_micro_batches_and_ppo_iterations_trains(ladder: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    args = tiny_args(ladder, out, "--set", "model.lora=true", "--set", "grpo.beta=0.05", "--set", "grpo.micro_batch_size=4",
                     "--set", "grpo.num_iterations=2", "--set", "grpo.loss_type=dr_grpo", "--lr", "5e-3",
                     "--set", "run.eval_at_start=false", steps=2)
    assert main(args) == 0
    rows = read_jsonl(out / "metrics.jsonl")
    # The adapter starts at zero (policy == reference); the second PPO iteration and step see it moved.
    assert all(r["kl"] is not None and r["kl"] > 0.0 for r in rows)
    assert all(0.0 <= r["clip_ratio"] <= 1.0 for r in rows)
    assert (out / "checkpoints" / "step-000002" / "adapter" / "adapter_config.json").is_file()


# ---------------------------------------------------------------- bad input


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def _other_version(ladder: Path, tmp: Path) -> Path:
    import shutil

    copy = tmp / "v2"
    shutil.copytree(ladder, copy)
    manifest = copy / "dataset.yaml"
    manifest.write_text(manifest.read_text().replace("format_version: 1", "format_version: 2"))
    return copy


BAD_INPUTS = {
    "missing dataset dir": (lambda ladder, tmp: ["--data", str(tmp / "nope")], "does not exist"),
    "dataset from another format version": (lambda ladder, tmp: ["--data", str(_other_version(ladder, tmp))], "version"),
    "unknown config key": (lambda ladder, tmp: ["--set", "grpo.lrate=1"], "unknown key grpo.lrate"),
    "batch not divisible": (lambda ladder, tmp: ["--set", "grpo.micro_batch_size=5"], "must divide"),
    "model path that does not exist": (lambda ladder, tmp: ["--model", str(tmp / "no-model")], "does not exist"),
    "4-bit on CPU": (lambda ladder, tmp: ["--load-in-4bit", "--set", "model.lora=true"], "CUDA"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_run_dir(case: str, ladder: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    make_extra, expected = BAD_INPUTS[case]
    out = tmp_path / "run"
    assert main(tiny_args(ladder, out) + make_extra(ladder, tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dump: error:") and len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


def test_resume_with_a_different_config_is_refused_and_changes_nothing(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree(run)
    assert main(["train", "--resume", str(run), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "different config (grpo.lr differ)" in err and len(err.strip().splitlines()) == 1
    assert _tree(run) == before


def test_training_into_an_existing_run_dir_is_refused_and_changes_nothing(run: Path, ladder: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree(run)
    assert main(tiny_args(ladder, run)) == 2
    assert "already exists" in capsys.readouterr().err
    assert _tree(run) == before


def test_micro_batches_give_the_same_first_update_as_one_batch(ladder: Path, tmp_path: Path) -> None:
    rows = {}
    for name, extra in (("whole", []), ("micro", ["--set", "grpo.micro_batch_size=2"])):
        out = tmp_path / name
        assert main(tiny_args(ladder, out, "--set", "run.eval_at_start=false", *extra, steps=1)) == 0
        rows[name] = read_jsonl(out / "metrics.jsonl")[0]
    assert rows["micro"]["reward"] == rows["whole"]["reward"]  # same rollouts
    assert rows["micro"]["grad_norm"] == pytest.approx(rows["whole"]["grad_norm"], rel=1e-4)


def test_learning_rate_warms_up_then_follows_its_schedule() -> None:
    from dumpcli.config import GRPOConfig
    from dumpcli.train.loop import learning_rate

    warm = GRPOConfig(lr=1.0, steps=10, warmup_steps=4)
    assert [learning_rate(warm, s) for s in (1, 2, 4, 5, 10)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    linear = GRPOConfig(lr=1.0, steps=10, lr_schedule="linear")
    assert learning_rate(linear, 1) == 1.0 and learning_rate(linear, 10) == pytest.approx(0.1)
    cosine = GRPOConfig(lr=1.0, steps=10, lr_schedule="cosine")
    assert learning_rate(cosine, 1) == 1.0 and learning_rate(cosine, 6) == pytest.approx(0.5)


def test_scheduler_sees_normalised_advantages_when_the_loss_does_not_scale(ladder: Path, tmp_path: Path) -> None:
    import numpy as np
    import torch

    from dumpcli.config import TrainConfig, apply_sets
    from dumpcli.train.grpo import group_advantages
    from dumpcli.train.setup import build_trainer

    cfg = apply_sets(TrainConfig(), [
        "model.name=tiny-random", "model.lora=false", f"data.path={ladder}", f"run.out={tmp_path / 'run'}",
        "grpo.steps=3", "grpo.batch_size=4", "grpo.num_generations=4", "grpo.max_new_tokens=4",
        "grpo.scale_rewards=false", "run.threads=1", "run.progress=false", "data.eval_rows=2",
    ])
    trainer = build_trainer(cfg)
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    update = trainer.scheduler.update
    trainer.scheduler.update = lambda dist, adv, rew: (seen.append((dist, adv, rew)), update(dist, adv, rew))[1]  # type: ignore[method-assign]
    for _ in range(3):
        trainer.train_step()
    checked = 0
    for distribution, advantages, rewards in seen:
        for j in np.unique(distribution):
            adv, rew = advantages[distribution == j], rewards[distribution == j]
            # Each distribution's completions are whole groups of G, in order: normalise them again.
            expected, _ = group_advantages(torch.tensor(rew, dtype=torch.float32), 4, True, cfg.grpo.advantage_eps)
            np.testing.assert_allclose(adv, expected.numpy(), atol=1e-6)
            checked += int(np.abs(rew - rew.mean()).max() > 0)
    assert seen and checked, "no step had a group with unequal rewards to check"


def test_resume_with_the_saved_scheduler_option_values_is_accepted(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree(run)
    # -O values arrive as strings; the saved ones are typed: the same values must compare equal
    assert main(["train", "--resume", str(run), "-O", "tau=0.1", "-O", "window=300", "--set", "run.progress=false"]) == 0
    assert "different config" not in capsys.readouterr().err
    assert _tree(run) == before  # the run had finished: nothing to add


def test_dynamic_sampling_trains_only_on_groups_with_signal_while_rounds_last(ladder: Path, tmp_path: Path) -> None:
    import numpy as np

    from dumpcli.config import TrainConfig, apply_sets
    from dumpcli.train.setup import build_trainer

    cfg = apply_sets(TrainConfig(), [
        "model.name=tiny-random", "model.lora=false", f"data.path={ladder}", f"run.out={tmp_path / 'run'}",
        "grpo.steps=4", "grpo.batch_size=4", "grpo.num_generations=4", "grpo.max_new_tokens=4",
        "grpo.filter_zero_std_groups=true", "grpo.max_generation_rounds=3", "run.threads=1", "run.progress=false",
        "data.eval_rows=2", "run.eval_samples=0",
    ])
    trainer = build_trainer(cfg)
    trained: list[np.ndarray] = []  # rewards [B, G] of each update, recounted below
    update = trainer._policy_update
    trainer._policy_update = lambda batch, lr: (trained.append(batch.rewards.view(-1, 4).numpy().copy()), update(batch, lr))[1]  # type: ignore[method-assign]
    drawn: list[np.ndarray] = []  # distribution of every completion the scheduler was updated with
    scheduler_update = trainer.scheduler.update
    trainer.scheduler.update = lambda d, a, r: (drawn.append(d.copy()), scheduler_update(d, a, r))[1]  # type: ignore[method-assign]
    rows = [trainer.train_step() for _ in range(4)]
    for row, rewards, dist in zip(rows, trained, drawn):
        groups_with_signal = int((rewards.std(axis=1) > 0).sum())
        assert rewards.shape == (4, 4)
        assert 1 <= row["dynamic_sampling/rounds"] <= 3
        # a group without signal is trained on only when the rounds ran out before the batch was full
        if groups_with_signal < 4:
            assert row["dynamic_sampling/rounds"] == 3
        drawn_groups = row["dynamic_sampling/groups_drawn"]
        assert len(dist) == drawn_groups * 4 and drawn_groups >= 4
        assert sum(d["prompts"] for d in row["distributions"].values()) == drawn_groups
        assert all(0 <= d["zero_std_prompts"] <= d["prompts"] for d in row["distributions"].values())
    assert any(row["dynamic_sampling/rounds"] > 1 for row in rows), "no step needed a refill: the test checks nothing"


def test_without_dynamic_sampling_each_step_draws_exactly_one_batch(run: Path) -> None:
    for row in read_jsonl(run / "metrics.jsonl"):
        assert "dynamic_sampling/rounds" not in row
        assert sum(d["prompts"] for d in row["distributions"].values()) == 3
        zero = sum(d["zero_std_prompts"] for d in row["distributions"].values())
        assert zero == round(row["frac_reward_zero_std"] * 3)


def test_resume_of_a_run_still_being_created_names_the_trainer_that_holds_it(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from dumpcli.rundir import RunDir

    run = RunDir(tmp_path / "new")
    run.path.mkdir()
    with run.lock():  # a new run holds its lock before its config.yaml is written
        assert main(["train", "--resume", str(run.path)]) == 2
    assert f"pid {os.getpid()}" in capsys.readouterr().err
