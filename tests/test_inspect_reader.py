"""Reading run dirs for `dump inspect`: live files, partial lines, large files, odd runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from inspect_fixtures import NAMES, config_dict, create_run, metrics_row, write_config, write_run

from dumpcli.errors import DumpError
from dumpcli.inspect.summary import load_run
from dumpcli.rundir import RunReader


def test_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=6, total=10)
    line = json.dumps(metrics_row(7, 10))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(line[:40])
    assert load_run(run_dir).step == 6


def test_complete_last_line_without_newline_is_read(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=6, total=10)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(metrics_row(7, 10)))
    assert load_run(run_dir).step == 7


def test_poll_reads_only_what_was_appended_and_finishes_a_half_line(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=3, total=10)
    reader = RunReader(run_dir)
    assert reader.poll() == 3
    line = json.dumps(metrics_row(4, 10))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(line[:100])
    assert reader.poll() == 0
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(line[100:] + "\n")
    assert reader.poll() == 1
    assert list(reader.metrics.columns["step"]) == [1, 2, 3, 4]


def test_poll_starts_over_when_metrics_file_is_rewritten(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=8, total=10)
    reader = RunReader(run_dir)
    reader.poll()
    (run_dir / "metrics.jsonl").write_text(json.dumps(metrics_row(1, 10)) + "\n")
    reader.poll()
    assert list(reader.metrics.columns["step"]) == [1]


def test_poll_starts_over_when_resume_replaces_metrics_with_a_longer_file(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=3, total=10)
    reader = RunReader(run_dir)
    reader.poll()
    lines = [json.dumps(metrics_row(s, 10, seed=1)) + "\n" for s in range(1, 6)]
    (run_dir / "metrics.new").write_text("".join(lines))
    (run_dir / "metrics.new").replace(run_dir / "metrics.jsonl")  # atomic rewrite, as --resume does
    reader.poll()
    assert list(reader.metrics.columns["step"]) == [1, 2, 3, 4, 5]
    assert reader.metrics.columns["reward"][0] == metrics_row(1, 10, seed=1)["reward"]


def test_run_without_files_yet_is_not_started(tmp_path: Path) -> None:
    reader = RunReader(tmp_path / "not-yet")
    assert reader.poll() == 0
    assert not reader.started


def test_corrupt_line_in_the_middle_is_named(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=5, total=10)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    lines[2] = lines[2][:50]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DumpError, match=r"metrics.jsonl:3: not valid JSON"):
        load_run(run_dir)


def test_a_line_without_step_is_named(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=4, total=10)
    row = metrics_row(5, 10)
    del row["step"]
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write("\n" + json.dumps(row) + "\n")
    with pytest.raises(DumpError, match=r'metrics.jsonl:6: has no "step"'):
        load_run(run_dir)


def test_corrupt_line_appended_later_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=5, total=10)
    reader = RunReader(run_dir)
    reader.poll()
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(metrics_row(6, 10)) + "\n" + "{oops\n" + json.dumps(metrics_row(7, 10)) + "\n")
    with pytest.raises(DumpError, match=r"metrics.jsonl:7: not valid JSON"):
        reader.poll()


def test_newline_landing_after_a_complete_object_adds_no_step(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=2, total=10)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(metrics_row(3, 10)))
    reader = RunReader(run_dir)
    assert reader.poll() == 3
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write("\n" + json.dumps(metrics_row(4, 10)) + "\n")
    assert reader.poll() == 1
    assert list(reader.metrics.columns["step"]) == [1, 2, 3, 4]


def test_columns_match_a_line_by_line_json_read_of_a_multi_block_file(tmp_path: Path) -> None:
    # ~2.5 MB: pyarrow parses it in several blocks, which must line up with json.loads per line
    run_dir = write_run(tmp_path / "run", steps=2000, total=2000, names=[f"kk-{i}" for i in range(3, 13)], eval_every=0)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    m = load_run(run_dir).metrics
    assert np.array_equal(m.columns["step"], [r["step"] for r in rows])
    assert np.allclose(m.columns["reward"], [r["reward"] for r in rows])
    expected = [r["distributions"]["kk-7"]["reward"] for r in rows]
    assert np.array_equal(np.isnan(m.dists["kk-7"]["reward"]), [v is None for v in expected])
    assert m.dists["kk-12"]["prompts"].sum() == sum(r["distributions"]["kk-12"]["prompts"] for r in rows)


def test_distribution_absent_from_early_steps_reads_zero_prompts_there(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_config(run_dir, config_dict(10))
    first = [json.dumps(metrics_row(s, 10, NAMES)) for s in (1, 2)]
    later = [json.dumps(metrics_row(s, 10, NAMES + ["late"])) for s in (3, 4)]
    (run_dir / "metrics.jsonl").write_text("\n".join(first) + "\n")
    reader = RunReader(run_dir)
    reader.poll()
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write("\n".join(later) + "\n")
    reader.poll()
    late = reader.metrics.dists["late"]
    assert list(late["prompts"][:2]) == [0, 0]
    assert np.isnan(late["probability"][:2]).all() and not np.isnan(late["probability"][2:]).any()


def test_checkpoint_being_written_is_not_reported(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=12, total=20, eval_every=5)
    (run_dir / "checkpoints" / ".step-000012.abc.tmp" / "adapter").mkdir(parents=True)
    assert load_run(run_dir).checkpoint_step == 10


def run_with_names(tmp_path: Path, names: list[str], difficulties: list[float] | None = None) -> Path:
    writer = create_run(tmp_path / "run", 4, names, difficulties=difficulties)
    writer.append_metrics(metrics_row(1, 4, names))
    return writer.run.path


def test_distributions_are_ordered_by_the_difficulty_the_run_recorded(tmp_path: Path) -> None:
    run = load_run(run_with_names(tmp_path, ["hard", "easy", "mid"], [9, 1, 5]))
    assert run.distribution_names() == ["easy", "mid", "hard"]
    assert run.difficulty == {"hard": 9.0, "easy": 1.0, "mid": 5.0}


def test_a_run_without_a_dataset_record_sorts_names_naturally(tmp_path: Path) -> None:
    run_dir = run_with_names(tmp_path, ["kk-10", "kk-9", "kk-3"], [1, 2, 3])
    (run_dir / "dataset.json").unlink()  # as a run written before dump kept one
    assert load_run(run_dir).distribution_names() == ["kk-3", "kk-9", "kk-10"]


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=2)
    write_config(run_dir, config_dict(2) | {"format_version": 2})
    with pytest.raises(DumpError, match="newer dump"):
        load_run(run_dir)


def test_parent_of_run_dirs_is_refused_with_the_runs_it_holds(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "ucb", steps=2)
    write_run(tmp_path / "runs" / "uniform", steps=2)
    with pytest.raises(DumpError, match=r"not a run dir .*runs/ucb .*runs/uniform"):
        load_run(tmp_path / "runs")


def test_run_with_no_steps_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path / "run", config_dict(5))
    with pytest.raises(DumpError, match="no steps yet"):
        load_run(tmp_path / "run")
