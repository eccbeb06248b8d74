"""`dump prepare` through the CLI: imports, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dumpcli.cli import main
from dumpcli.data.dataset import load_dataset_dir
from dumpcli.rewards import get_reward

KK_TRUTH = "(1) Ava is a knight\n(2) Noah is a knave"


def _write_verl_parquet(path: Path, split: str, sources: list[str]) -> None:
    """A verl / Logic-RL style file: chat prompt ending in the prefill, ground_truth per source."""
    from datasets import Dataset

    rows = []
    for i, source in enumerate(sources):
        kk = "kk" in source
        ground_truth = {"solution_text_format": KK_TRUTH, "statements": "(...)"} if kk else "7"
        rows.append({
            "data_source": source,
            "prompt": [{"role": "user", "content": f"Puzzle {i}.\n<|im_start|>assistant\n<think>" if kk else f"Sum {i}?"}],
            "ability": "logic",
            "reward_model": {"style": "rule", "ground_truth": ground_truth},
            "extra_info": {"split": split, "index": i},
        })  # fmt: skip
    Dataset.from_list(rows).to_parquet(str(path))


@pytest.fixture
def verl_files(tmp_path: Path) -> list[Path]:
    kk_sources = ["logic_kk_3", "logic_kk_5", "logic_kk_3"]
    _write_verl_parquet(tmp_path / "train.parquet", "train", kk_sources)
    _write_verl_parquet(tmp_path / "test.parquet", "test", kk_sources)
    _write_verl_parquet(tmp_path / "gsm_easy.parquet", "train", ["gsm_easy", "gsm_easy"])
    return [tmp_path / "train.parquet", tmp_path / "test.parquet", tmp_path / "gsm_easy.parquet"]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dump")]
    assert len(err_lines) == 1, err_lines
    return err_lines[0]


def test_import_maps_verl_parquet_to_distributions_and_rewards(tmp_path: Path, verl_files: list[Path]) -> None:
    out = tmp_path / "imp"
    assert main(["prepare", "import", *map(str, verl_files), "--reward", "arith", "--out", str(out)]) == 0
    ds = load_dataset_dir(out)
    assert ds.names == ["logic_kk_3", "logic_kk_5", "gsm_easy"]
    assert {d.name: d.reward for d in ds.distributions} == {"logic_kk_3": "kk", "logic_kk_5": "kk", "gsm_easy": "arith"}
    assert {d.name: d.rows for d in ds.distributions}["logic_kk_3"] == {"train": 2, "test": 2}
    assert {d.name: d.rows for d in ds.distributions}["gsm_easy"] == {"train": 2, "test": 0}
    assert [d.difficulty for d in ds.distributions] == [3.0, 5.0, 3.0]


def test_imported_kk_rows_get_the_think_prefill_and_score_3_with_the_ground_truth(tmp_path: Path, verl_files: list[Path]) -> None:
    main(["prepare", "import", *map(str, verl_files), "--reward", "arith", "--out", str(tmp_path / "imp")])
    row = next(r for r in load_dataset_dir(tmp_path / "imp").rows("train") if r["distribution"] == "logic_kk_5")
    assert row["prefill"] == "<think>" and not row["prompt"][-1]["content"].endswith("<think>")
    assert row["answer"] == KK_TRUTH
    assert json.loads(row["meta"])["extra_info"] == {"split": "train", "index": 1}
    gsm = next(r for r in load_dataset_dir(tmp_path / "imp").rows("train") if r["distribution"] == "gsm_easy")
    assert gsm["answer"] == "7" and gsm["prefill"] == ""
    completion = row["prefill"] + "reasoning</think><answer>" + row["answer"] + "</answer>"
    assert get_reward("kk")(completion, row["answer"]).reward == 3.0


def test_import_reads_a_dict_ground_truth_like_logic_rl(tmp_path: Path) -> None:
    rows = [{"data_source": "kk", "prompt": [{"role": "user", "content": "p"}],
             "reward_model": {"ground_truth": {"solution_text_format": KK_TRUTH, "statements": "s"}, "style": "rule"}}]  # fmt: skip
    (tmp_path / "kk.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    main(["prepare", "import", str(tmp_path / "kk.jsonl"), "--out", str(tmp_path / "o")])
    assert load_dataset_dir(tmp_path / "o").rows("train")[0]["answer"] == KK_TRUTH


def test_import_plain_jsonl_with_a_chosen_distribution_column_and_holdout(tmp_path: Path) -> None:
    lines = [json.dumps({"prompt": f"What is {i} + 1?", "answer": str(i + 1), "level": f"lvl{i % 2}"}) for i in range(20)]
    (tmp_path / "plain.jsonl").write_text("\n".join(lines) + "\n")
    args = ["prepare", "import", str(tmp_path / "plain.jsonl"), "--distribution-column", "level", "--reward", "arith",
            "--test-fraction", "0.2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    ds = load_dataset_dir(tmp_path / "o")
    assert [(d.name, d.rows) for d in ds.distributions] == [("lvl0", {"train": 8, "test": 2}), ("lvl1", {"train": 8, "test": 2})]
    assert ds.rows("train")[0]["prompt"][0]["role"] == "user" and ds.rows("train")[0]["prefill"] == ""


def _bad_parquet(tmp: Path) -> list[str]:
    (tmp / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    return ["import", str(tmp / "bad.parquet"), "--reward", "arith"]


def _no_answer_column(tmp: Path) -> list[str]:
    (tmp / "x.jsonl").write_text(json.dumps({"prompt": "hi", "distribution": "d"}) + "\n")
    return ["import", str(tmp / "x.jsonl"), "--reward", "arith"]


def _no_distribution_column(tmp: Path) -> list[str]:
    (tmp / "x.jsonl").write_text(json.dumps({"prompt": "hi", "answer": "1"}) + "\n")
    return ["import", str(tmp / "x.jsonl"), "--reward", "arith"]


def _no_reward(tmp: Path) -> list[str]:
    (tmp / "x.jsonl").write_text(json.dumps({"prompt": "hi", "answer": "1", "distribution": "d"}) + "\n")
    return ["import", str(tmp / "x.jsonl")]


def _unknown_source(tmp: Path) -> list[str]:
    (tmp / "r.yaml").write_text("sources:\n  - source: sudoku\n    train: 5\n")
    return ["recipe", str(tmp / "r.yaml")]


BAD_INPUTS = {
    "unknown source": (_unknown_source, "unknown source 'sudoku'"),
    "unknown recipe": (lambda tmp: ["recipe", "no-such-recipe"], "no recipe file"),
    "people below 2": (lambda tmp: ["kk", "--people", "1-3"], "--people must be >= 2"),
    "more puzzles than exist": (lambda tmp: ["kk", "--people", "2", "--train", "900", "--test", "100"], "ask for fewer"),
    "missing import file": (lambda tmp: ["import", str(tmp / "nope.parquet")], "does not exist"),
    "missing answer column": (_no_answer_column, "missing required column"),
    "missing distribution column": (_no_distribution_column, "missing required column `distribution`"),
    "unreadable parquet": (_bad_parquet, "not a readable Parquet file"),
    "no reward for a non-kk import": (_no_reward, "pass --reward"),
    "unknown arith op": (lambda tmp: ["arith", "--ops", "div"], "unknown arithmetic op 'div'"),
    "bad range": (lambda tmp: ["ladder", "--lengths", "6-1"], "range like 3-14"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_line_exit_2_and_no_dataset_dir(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_args, message = BAD_INPUTS[case]
    args = make_args(tmp_path)
    out = tmp_path / "out"
    assert main(["prepare", *args, "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert line.startswith("dump: error:") and message in line
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_existing_output_dir_without_overwrite_is_refused_and_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["prepare", "ladder", "--lengths", "1", "--out", str(out)]) == 2
    assert "--overwrite" in _error_line(capsys)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_overwrite_replaces_an_existing_dataset_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["prepare", "ladder", "--lengths", "1", "--out", str(out)]) == 0
    assert main(["prepare", "ladder", "--lengths", "2", "--out", str(out), "--overwrite"]) == 0
    assert load_dataset_dir(out).names == ["reverse-2"]


def test_merge_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["prepare", "ladder", "--lengths", "1", "--out", str(tmp_path / "a")])
    main(["prepare", "ladder", "--tasks", "copy", "--lengths", "1", "--out", str(tmp_path / "b")])
    capsys.readouterr()
    assert main(["prepare", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m"), "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)["distributions"]] == ["reverse-1", "copy-1"]


def test_every_prepare_command_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("kk", "arith", "ladder", "import", "recipe", "merge"):
        assert main(["prepare", sub, "--help"]) == 0
        assert "Example: dump prepare" in capsys.readouterr().out
