"""The curriculum benchmark (benchmarks/curriculum.py): its measurements, and one tiny real run."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "curriculum.py"
FAST_CONFIG = REPO / "examples" / "curriculum" / "ladder-tiny.yaml"


def _load_benchmark_module():
    spec = importlib.util.spec_from_file_location("curriculum_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark_module()
import curriculum_report as report  # noqa: E402 - importable once the benchmark put benchmarks/ on the path


def _eval_row(step: int, rewards: dict[str, float]) -> dict:
    return {"step": step, "distributions": {name: {"reward": r} for name, r in rewards.items()}}


EVALS = [
    _eval_row(0, {"easy": 0.2, "hard": 0.0}),
    _eval_row(10, {"easy": 0.8, "hard": 0.0}),
    _eval_row(20, {"easy": 1.0, "hard": 0.4}),
]


def test_steps_to_target_is_the_first_eval_whose_unweighted_mean_reaches_it():
    summary = bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.4, wall_s=1.0)
    assert summary.steps_to_target == 10  # mean(0.8, 0.0) = 0.4


def test_steps_to_target_is_infinite_when_never_reached():
    summary = bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.9, wall_s=1.0)
    assert math.isinf(summary.steps_to_target)


def test_auc_is_the_trapezoid_area_divided_by_the_step_span():
    summary = bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.4, wall_s=1.0)
    # curve 0.1, 0.4, 0.7 at steps 0, 10, 20: area 10 * 0.25 + 10 * 0.55 = 8.0, over 20 steps
    assert summary.auc == pytest.approx(0.4)


def test_final_hardest_averages_the_distributions_tied_at_the_top_difficulty():
    summary = bench.summarize_run("ucb", 0, EVALS, ["easy", "hard"], target=0.4, wall_s=1.0)
    assert summary.final_hardest == pytest.approx(0.7)
    assert summary.final_reward == pytest.approx(0.7)


def test_final_sampled_is_the_mean_sampled_accuracy_of_the_last_evaluation_and_none_without_it():
    evals = [
        {"step": 0, "distributions": {"easy": {"accuracy": 1.0, "sampled_accuracy": 0.5},
                                      "hard": {"accuracy": 0.0, "sampled_accuracy": 0.0}}},
        {"step": 10, "distributions": {"easy": {"accuracy": 1.0, "sampled_accuracy": 0.75},
                                       "hard": {"accuracy": 0.5, "sampled_accuracy": 0.25}}},
    ]
    summary = bench.summarize_run("ucb", 0, evals, ["hard"], target=0.9, wall_s=1.0, measure="accuracy")
    assert summary.final_reward == pytest.approx(0.75)  # greedy: mean(1.0, 0.5)
    assert summary.final_sampled == pytest.approx(0.5)  # mean(0.75, 0.25)
    assert bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.4, wall_s=1.0).final_sampled is None


def _metrics_row(step: int, prompts: dict[str, int]) -> dict:
    return {"step": step, "distributions": {n: {"prompts": k, "zero_std_prompts": 0} for n, k in prompts.items()}}


def test_groups_to_target_counts_every_group_generated_up_to_the_target_step():
    # 4 prompts a step, except step 10 which refilled twice (dynamic sampling: 4 + 3 + 2 groups drawn)
    rows = [_metrics_row(t, {"easy": 1, "hard": 3} if t != 10 else {"easy": 5, "hard": 4}) for t in range(1, 21)]
    reached = bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.4, wall_s=1.0, metrics_rows=rows)
    assert reached.steps_to_target == 10
    assert reached.groups_to_target == 9 * 4 + 9  # steps 1-9, then step 10's three rounds
    never = bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.9, wall_s=1.0, metrics_rows=rows)
    assert math.isinf(never.groups_to_target)
    assert bench.summarize_run("ucb", 0, EVALS, ["hard"], target=0.4, wall_s=1.0).groups_to_target is None


def test_ratio_to_uniform_divides_medians_and_is_none_when_a_median_never_reached():
    runs = [
        bench.RunSummary("uniform", seed, steps, 0.5, 0.5, 0.1, 10.0)
        for seed, steps in enumerate([100.0, 200.0, 300.0])
    ] + [
        bench.RunSummary("ucb", seed, steps, 0.6, 0.6, 0.2, 12.0)
        for seed, steps in enumerate([60.0, 140.0, math.inf])
    ] + [
        bench.RunSummary("sequential", seed, math.inf, 0.4, 0.4, 0.0, 9.0) for seed in range(3)
    ]
    table = bench.aggregate(runs, ["ucb", "uniform", "sequential"])
    assert table["ucb"]["steps_to_target"]["median"] == 140.0
    assert table["ucb"]["steps_to_target"]["ratio_to_uniform"] == pytest.approx(0.7)
    assert table["ucb"]["reached"] == 2
    assert table["sequential"]["steps_to_target"]["ratio_to_uniform"] is None
    assert table["ucb"]["auc"]["ratio_to_uniform"] == pytest.approx(1.2)


def test_ratio_has_only_a_bound_when_uniform_never_reaches_the_target():
    runs = [bench.RunSummary("ucb", 0, 300.0, 0.5, 0.5, 0.1, 10.0), bench.RunSummary("uniform", 0, math.inf, 0.5, 0.5, 0.1, 10.0)]
    table = bench.aggregate(runs, ["ucb", "uniform"], budget=400)
    assert table["ucb"]["steps_to_target"]["ratio_to_uniform"] is None
    assert table["ucb"]["steps_to_target"]["ratio_bound"] == "<0.75"
    assert "300 (300-300) <0.75x" in bench.markdown_table(table, 400, ["hard"])


def test_markdown_table_shows_never_reached_as_more_than_the_budget():
    runs = [bench.RunSummary(s, 0, math.inf, 0.5, 0.5, 0.1, 10.0) for s in ("ucb", "uniform")]
    text = bench.markdown_table(bench.aggregate(runs, ["ucb", "uniform"]), 50, ["hard"])
    assert "| ucb | 0/1 | >50 (>50->50) n/a |" in text


def test_config_without_uniform_is_refused_with_exit_code_2(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(FAST_CONFIG), "--out", str(tmp_path), "--schedulers", "ucb,thompson"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 2
    assert "add uniform" in result.stderr


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """One real benchmark at a tiny size: 1 seed, ucb and uniform, 2 steps each."""
    out = tmp_path_factory.mktemp("bench") / "b"
    cmd = [sys.executable, str(SCRIPT), str(FAST_CONFIG), "--out", str(out), "--seeds", "0",
           "--schedulers", "ucb,uniform", "--steps", "2", "--json"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, cmd, json.loads(result.stdout)


def test_tiny_benchmark_reports_every_scheduler_with_ratios_to_uniform(tiny_bench):
    _, _, results = tiny_bench
    assert set(results["table"]) == {"ucb", "uniform"}
    assert results["table"]["uniform"]["auc"]["ratio_to_uniform"] == pytest.approx(1.0)
    assert results["hardest"] == ["reverse-6"]
    assert [(r["scheduler"], r["seed"]) for r in results["runs"]] == [("ucb", 0), ("uniform", 0)]
    assert set(results["diagnostics"]["ucb"]) == {f"reverse-{n}" for n in range(1, 7)}


def test_tiny_benchmark_writes_results_table_and_dump_inspect_plot(tiny_bench):
    out, _, results = tiny_bench
    assert json.loads((out / "results.json").read_text())["table"] == results["table"]
    assert "| uniform | " in (out / "table.md").read_text()
    assert results["plot"] == str(out / "compare.png") and (out / "compare.png").stat().st_size > 0
    assert results["heatmaps"] == str(out / "heatmaps.png") and (out / "heatmaps.png").stat().st_size > 0


def test_rerun_reuses_finished_runs_and_gives_the_same_table(tiny_bench):
    out, cmd, first = tiny_bench
    log = out / "runs" / "ucb-seed0.log"
    before = log.stat().st_mtime_ns
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert log.stat().st_mtime_ns == before  # not retrained
    assert json.loads(result.stdout)["table"] == first["table"]


def test_tabulate_only_trains_nothing_and_leaves_unfinished_schedulers_out(tiny_bench):
    out, cmd, first = tiny_bench
    cmd = [c if c != "ucb,uniform" else "ucb,uniform,thompson" for c in cmd] + ["--tabulate-only"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(json.loads(result.stdout)["table"]) == {"ucb", "uniform"}
    assert not (out / "runs" / "thompson-seed0").exists()
    assert "thompson-seed0" in result.stderr
    provenance = json.loads(result.stdout)["provenance"]
    assert provenance["command"] == first["provenance"]["command"]  # still the training's
    assert "--tabulate-only" in provenance["tabulated"]["command"]


def test_bootstrap_interval_of_the_median_brackets_it_and_collapses_for_equal_seeds():
    values = [100.0, 140.0, 180.0, 220.0, 400.0, 90.0, 130.0, 160.0]
    lo, hi = report.bootstrap_median_ci(values)
    assert lo <= sorted(values)[3] <= sorted(values)[4] <= hi  # the sample median (150) is inside
    assert min(values) <= lo and hi <= max(values)
    assert report.bootstrap_median_ci([7.0] * 8) == [7.0, 7.0]
    assert report.bootstrap_median_ci([7.0]) is None


def test_bootstrap_ratio_interval_of_an_arm_against_itself_contains_one():
    values = [100.0, 140.0, 180.0, 220.0, 90.0, 130.0, 160.0, 300.0]
    lo, hi = report.bootstrap_ratio_ci(values, values)
    assert lo < 1.0 < hi
    assert report.bootstrap_ratio_ci([50.0] * 8, [100.0] * 8) == [0.5, 0.5]


def test_zero_signal_share_counts_prompts_whose_groups_had_equal_rewards():
    rows = [{"distributions": {"a": {"prompts": 3, "zero_std_prompts": 1}, "b": {"prompts": 1, "zero_std_prompts": 1}}},
            {"distributions": {"a": {"prompts": 4, "zero_std_prompts": 0}, "b": {"prompts": 0, "zero_std_prompts": 0}}}]
    assert report.zero_signal_share(rows) == pytest.approx(2 / 8)
    assert report.zero_signal_share([{"distributions": {"a": {"prompts": 3}}}]) is None  # logged before the key existed


def test_an_arm_sets_its_scheduler_options_and_trainer_settings(tmp_path):
    cfg = bench.BenchConfig(recipe="ladder", target_reward=0.5, schedulers=["uniform", "ucb-filter"],
                            arms={"ucb-filter": {"scheduler": "ucb", "options": {"tau": 0.2},
                                                 "train": {"grpo": {"filter_zero_std_groups": True}}}})
    run = bench.run_train_config(cfg, tmp_path / "data", tmp_path / "r", "ucb-filter", 3, model="/models/warm")
    assert run["scheduler"] == {"name": "ucb", "options": {"tau": 0.2}}
    assert run["grpo"]["filter_zero_std_groups"] is True and run["model"]["name"] == "/models/warm"
    plain = bench.run_train_config(cfg, tmp_path / "data", tmp_path / "r", "uniform", 3)
    assert plain["scheduler"] == {"name": "uniform", "options": {}} and "filter_zero_std_groups" not in plain.get("grpo", {})


def test_focus_names_the_distributions_of_the_final_column_and_unknown_ones_are_refused(tmp_path):
    from dumpcli.data.recipe import prepare_recipe

    data = tmp_path / "data"
    prepare_recipe({"sources": [{"source": "ladder", "lengths": "1-3", "train": 4, "test": 2}]}, data, overwrite=False)
    plain = bench.BenchConfig(recipe="ladder", target_reward=0.5)
    assert bench.focus_distributions(plain, data) == ["reverse-3"]
    focused = bench.BenchConfig(recipe="ladder", target_reward=0.5, focus=["reverse-1", "reverse-2"])
    assert bench.focus_distributions(focused, data) == ["reverse-1", "reverse-2"]
    from dumpcli.errors import DumpError

    with pytest.raises(DumpError, match="reverse-9"):
        bench.focus_distributions(bench.BenchConfig(recipe="ladder", target_reward=0.5, focus=["reverse-9"]), data)
