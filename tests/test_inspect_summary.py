"""What `dump inspect` reports about a run, and about several runs side by side."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inspect_fixtures import NAMES, config_dict, eval_row, metrics_row, write_config, write_run

from dumpcli.inspect.summary import compare_runs, load_run, reward_auc, smooth, summarize_run


def rows_of(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in summary["distributions"]}


def hand_run(tmp_path: Path, steps: list[dict[str, Any]], evals: list[dict[str, Any]] = (), total: int = 10) -> Path:
    """A run whose per-step distributions are given exactly: [{name: (probability, prompts, reward, abs_adv)}]."""
    run_dir = tmp_path / "hand"
    write_config(run_dir, config_dict(total))
    lines = []
    for i, dists in enumerate(steps, start=1):
        row = metrics_row(i, total, ["a", "b"])
        row["distributions"] = {
            n: {"probability": p, "prompts": k, "reward": r, "abs_advantage": a} for n, (p, k, r, a) in dists.items()
        }
        lines.append(json.dumps(row))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run_dir / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    return run_dir


def test_prompts_and_shares_add_up_over_all_steps(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=30, total=50)
    summary = summarize_run(load_run(run_dir))
    rows = rows_of(run_dir)
    for d in summary["distributions"]:
        assert d["prompts"] == sum(r["distributions"][d["name"]]["prompts"] for r in rows)
    assert math.isclose(sum(d["prompt_share"] for d in summary["distributions"]), 1.0)


def test_probability_is_the_latest_step_s(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=30, total=50)
    last = rows_of(run_dir)[-1]["distributions"]
    assert {n: d["probability"] for n, d in by_name(summarize_run(load_run(run_dir))).items()} == {
        n: v["probability"] for n, v in last.items()
    }


def test_recent_reward_is_prompt_weighted_over_the_scheduler_window(tmp_path: Path) -> None:
    # window 32 completions / 4 per prompt = the last 8 prompts of each distribution
    steps = [
        {"a": (0.5, 8, 0.0, 0.0), "b": (0.5, 2, 0.1, 0.1)},
        {"a": (0.5, 6, 1.0, 0.5), "b": (0.5, 0, None, None)},
        {"a": (0.5, 2, 0.5, 0.2), "b": (0.5, 0, None, None)},
    ]
    summary = summarize_run(load_run(hand_run(tmp_path, steps)))
    a, b = by_name(summary)["a"], by_name(summary)["b"]
    assert summary["recent_prompts"] == 8
    assert a["recent_reward"] == pytest.approx((6 * 1.0 + 2 * 0.5) / 8)
    assert a["recent_abs_advantage"] == pytest.approx((6 * 0.5 + 2 * 0.2) / 8)
    assert b["recent_reward"] == pytest.approx(0.1)  # drawn long ago: still what the scheduler remembers


def test_window_left_out_of_the_config_is_the_scheduler_s_default(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=3)
    config = config_dict(3)
    config["scheduler"]["options"] = {}  # UCB's default window: 300 completions; 4 per prompt
    write_config(run_dir, config)
    assert summarize_run(load_run(run_dir))["recent_prompts"] == 75


def test_window_of_an_uninstalled_scheduler_falls_back(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=3)
    write_config(run_dir, config_dict(3, scheduler="not-installed"))
    assert summarize_run(load_run(run_dir))["recent_prompts"] == 32


def test_never_drawn_distribution_has_no_recent_values(tmp_path: Path) -> None:
    steps = [{"a": (0.9, 4, 0.5, 0.2), "b": (0.1, 0, None, None)}]
    b = by_name(summarize_run(load_run(hand_run(tmp_path, steps))))["b"]
    assert (b["prompts"], b["recent_reward"], b["recent_abs_advantage"]) == (0, None, None)


def test_eval_change_is_latest_minus_first(tmp_path: Path) -> None:
    evals = [eval_row(0, 40, NAMES), eval_row(20, 40, NAMES)]
    run_dir = write_run(tmp_path / "run", steps=25, total=40, eval_every=0)
    (run_dir / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    summary = summarize_run(load_run(run_dir))
    name = NAMES[1]
    first, last = evals[0]["distributions"][name], evals[1]["distributions"][name]
    d = by_name(summary)[name]
    assert d["eval_accuracy"] == last["accuracy"]
    assert d["eval_accuracy_change"] == pytest.approx(last["accuracy"] - first["accuracy"])
    assert summary["eval"]["reward_change"] == pytest.approx(evals[1]["reward"] - evals[0]["reward"])
    assert (summary["eval"]["step"], summary["eval"]["first_step"], summary["eval"]["evaluations"]) == (20, 0, 2)


def test_best_and_worst_follow_latest_eval_accuracy(tmp_path: Path) -> None:
    steps = [{"a": (0.5, 4, 0.9, 0.1), "b": (0.5, 4, 0.1, 0.1)}]
    evals = [{"step": 1, "reward": 0.5, "accuracy": 0.5,
              "distributions": {"a": {"reward": 0.1, "accuracy": 0.2, "n": 5}, "b": {"reward": 0.8, "accuracy": 0.7, "n": 5}}}]  # fmt: skip
    summary = summarize_run(load_run(hand_run(tmp_path, steps, evals)))
    assert (summary["ranked_by"], summary["best"], summary["worst"]) == ("eval_accuracy", "b", "a")


def test_best_and_worst_fall_back_to_recent_reward_without_evals(tmp_path: Path) -> None:
    steps = [{"a": (0.5, 4, 0.9, 0.1), "b": (0.5, 4, 0.1, 0.1)}]
    summary = summarize_run(load_run(hand_run(tmp_path, steps)))
    assert (summary["ranked_by"], summary["best"], summary["worst"], summary["eval"]) == ("recent_reward", "a", "b", None)


def test_best_and_worst_skip_a_measure_on_which_all_distributions_tie(tmp_path: Path) -> None:
    steps = [{"a": (0.5, 4, 0.9, 0.1), "b": (0.5, 4, 0.1, 0.1)}]
    evals = [{"step": 1, "reward": 0.5, "accuracy": 0.0,
              "distributions": {"a": {"reward": 0.1, "accuracy": 0.0, "n": 5}, "b": {"reward": 0.3, "accuracy": 0.0, "n": 5}}}]  # fmt: skip
    summary = summarize_run(load_run(hand_run(tmp_path, steps, evals)))
    assert (summary["ranked_by"], summary["best"], summary["worst"]) == ("eval_reward", "b", "a")


def test_header_has_progress_eta_and_throughput(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=30, total=50)  # 2 s per step in the fixture
    s = summarize_run(load_run(run_dir), window=10)
    rows = rows_of(run_dir)
    assert (s["step"], s["total_steps"], s["finished"]) == (30, 50, False)
    assert s["progress"] == pytest.approx(0.6)
    assert s["eta_s"] == pytest.approx(20 * 2.0)
    assert s["tokens_per_second"] == pytest.approx(np.mean([r["tokens_per_second"] for r in rows[-10:]]))
    assert s["reward"] == pytest.approx(np.mean([r["reward"] for r in rows[-10:]]))
    assert s["scheduler"] == {"name": "ucb", "options": {"c": 1.0, "tau": 0.1, "window": 32}}


def test_run_is_finished_when_its_step_reaches_the_total(tmp_path: Path) -> None:
    s = summarize_run(load_run(write_run(tmp_path / "run", steps=12, total=12)))
    assert s["finished"] and s["eta_s"] == 0.0


def test_upto_summarises_as_of_an_earlier_step(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "run", steps=20, total=20, eval_every=5))
    s = summarize_run(run, upto=7)
    assert (s["step"], s["finished"], s["eval"]["step"]) == (7, False, 5)
    assert sum(d["prompts"] for d in s["distributions"]) == 7 * 8


def test_smooth_is_a_trailing_mean_that_skips_gaps() -> None:
    values = np.array([1.0, np.nan, 3.0, 5.0, np.nan, np.nan, np.nan])
    assert np.allclose(smooth(values, 2)[:5], [1.0, 1.0, 3.0, 4.0, 5.0], equal_nan=True)
    assert np.isnan(smooth(values, 2)[-1])


def test_reward_auc_is_the_trapezoid_area_over_steps(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "run", steps=15))
    area, per_step = reward_auc(run.metrics)
    r, s = run.metrics.columns["reward"], run.metrics.columns["step"]
    assert area == pytest.approx(float(np.sum((r[1:] + r[:-1]) / 2 * np.diff(s))))
    assert per_step == pytest.approx(area / 14)


def test_steps_to_target_is_the_first_step_the_smoothed_reward_reaches_it(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "run", steps=60))
    rewards = smooth(run.metrics.columns["reward"], 5)
    target = float(np.nanmax(rewards)) - 0.05
    expected = int(run.metrics.columns["step"][np.argmax(rewards >= target)])
    assert summarize_run(run, window=5, target=target)["steps_to_target"] == expected
    assert summarize_run(run, window=5, target=99.0)["steps_to_target"] is None


def test_comparison_gives_final_eval_and_prompts_per_run_and_distribution(tmp_path: Path) -> None:
    runs = [load_run(write_run(tmp_path / name, steps=20, scheduler=name, eval_every=10)) for name in ("ucb", "uniform")]
    c = compare_runs(runs, target=0.3)
    assert [s["name"] for s in c["runs"]] == ["ucb", "uniform"]
    hardest = c["distributions"][-1]
    assert hardest["name"] == NAMES[-1]
    final = json.loads((tmp_path / "uniform" / "eval.jsonl").read_text().splitlines()[-1])
    assert hardest["final_eval"]["uniform"] == {"step": 20, **{k: final["distributions"][NAMES[-1]][k] for k in ("accuracy", "reward")}}
    assert hardest["prompts"]["ucb"] == by_name(c["runs"][0])[NAMES[-1]]["prompts"]
    assert all(s["target"] == 0.3 for s in c["runs"])


def test_comparison_labels_runs_with_the_same_dir_name_by_path(tmp_path: Path) -> None:
    runs = [load_run(write_run(tmp_path / side / "ucb", steps=3)) for side in ("a", "b")]
    assert [s["name"] for s in compare_runs(runs)["runs"]] == [str(tmp_path / "a" / "ucb"), str(tmp_path / "b" / "ucb")]


def test_comparison_of_runs_on_different_distributions_fills_the_gaps(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / "a", steps=10, names=["x-1", "x-2"]))
    b = load_run(write_run(tmp_path / "b", steps=10, names=["x-2", "x-3"]))
    rows = {d["name"]: d for d in compare_runs([a, b])["distributions"]}
    assert list(rows) == ["x-1", "x-2", "x-3"]
    assert rows["x-1"]["final_eval"]["b"] is None and rows["x-1"]["prompts"]["b"] == 0
    assert rows["x-3"]["final_eval"]["a"] is None and rows["x-3"]["final_eval"]["b"] is not None
