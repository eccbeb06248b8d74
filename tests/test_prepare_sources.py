"""Arithmetic and ladder generators, recipes, and same-seed determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dumpcli.cli import main
from dumpcli.data import arith, ladder
from dumpcli.data.recipe import builtin_recipes, load_recipe, prepare_recipe
from dumpcli.errors import DumpError

REPO = Path(__file__).resolve().parents[1]


def test_arith_answers_are_the_true_results_of_the_prompted_problems() -> None:
    out = arith.build(arith.ArithSpec(ops=("add", "sub", "mul"), digits=(1, 2, 3), train=40, test=10))
    for row in out.rows["train"] + out.rows["test"]:
        a, sym, b = re.search(r"What is (\d+) ([-+*]) (\d+)\?", row["prompt"][0]["content"]).groups()
        assert int(row["answer"]) == {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[sym]
        assert int(row["answer"]) >= 0
        digits = json.loads(row["meta"])["digits"]
        assert len(a) == len(b) == digits
        assert row["prefill"] == f"<answer>{a} {sym} {b} =" and row["id"].startswith(row["distribution"] + "/")


def test_arith_tag_prefill_leaves_the_working_to_the_model_and_unknown_prefills_are_refused() -> None:
    out = arith.build(arith.ArithSpec(ops=("add",), digits=(1,), train=5, test=2, prefill="tag"))
    assert {row["prefill"] for row in out.rows["train"] + out.rows["test"]} == {"<answer>"}
    with pytest.raises(DumpError, match="unknown arithmetic prefill 'chat'; use one of: equation, tag"):
        arith.build(arith.ArithSpec(ops=("add",), digits=(1,), train=5, test=2, prefill="chat"))


def test_arith_distribution_names_and_difficulties_rise_with_digits() -> None:
    out = arith.build(arith.ArithSpec(ops=("add", "mul"), digits=(1, 2), train=5, test=2))
    assert [d.name for d in out.distributions] == ["arith-add-1", "arith-mul-1", "arith-add-2", "arith-mul-2"]
    assert [d.difficulty for d in out.distributions] == [1.0, 1.5, 2.0, 2.5]


def test_arith_test_problems_are_distinct_and_not_in_train_when_the_level_is_large_enough() -> None:
    out = arith.build(arith.ArithSpec(ops=("add",), digits=(2,), train=100, test=30))
    test = {r["prompt"][0]["content"] for r in out.rows["test"]}
    train = {r["prompt"][0]["content"] for r in out.rows["train"]}
    assert len(test) == 30 and not test & train


def test_small_levels_repeat_problems_but_keep_test_out_of_train() -> None:
    out = arith.build(arith.ArithSpec(ops=("add",), digits=(1,), train=200, test=24))
    test = {r["prompt"][0]["content"] for r in out.rows["test"]}
    train = {r["prompt"][0]["content"] for r in out.rows["train"]}
    assert len(out.rows["train"]) == 200 and len(train) == 81 - 24 and not test & train


def test_ladder_answers_reverse_or_copy_the_prompted_digits() -> None:
    out = ladder.build(ladder.LadderSpec(tasks=("reverse", "copy"), lengths=(1, 4), train=20, test=5))
    assert [d.name for d in out.distributions] == ["reverse-1", "reverse-4", "copy-1", "copy-4"]
    for row in out.rows["train"]:
        task, digits = row["prompt"][0]["content"].split(" ")
        assert row["answer"] == (digits[::-1] if task == "reverse" else digits)
        assert len(digits) == json.loads(row["meta"])["length"] and row["prefill"] == "="


def test_builtin_recipes_are_listed_and_examples_are_symlinks_to_them() -> None:
    assert builtin_recipes() == ["cpu-demo", "kk-paper", "ladder"]
    for name in ("kk-paper", "cpu-demo"):
        link = REPO / "examples" / "recipes" / f"{name}.yaml"
        assert link.is_symlink()
        assert link.resolve() == (REPO / "src" / "dumpcli" / "data" / "recipes" / f"{name}.yaml").resolve()


def test_prepare_recipe_builds_a_builtin_by_name(tmp_path: Path) -> None:
    ds = prepare_recipe("ladder", tmp_path / "ladder")
    assert ds.names == [f"reverse-{n}" for n in range(1, 7)]
    assert ds.summary()["rows"] == {"train": 3000, "test": 300}


def test_cpu_demo_recipe_names(tmp_path: Path) -> None:
    ds = prepare_recipe("cpu-demo", tmp_path / "c")
    assert ds.names == ["arith-add-1", "arith-mul-1", "arith-add-2", "arith-mul-2", "arith-add-3", "arith-mul-3"]
    assert ds.summary()["rows"] == {"train": 1200, "test": 6 * 48}  # 48 test rows a level: one row is 2 points
    assert all(row["prefill"].endswith(" =") for row in ds.rows("test"))


def test_kk_paper_recipe_asks_for_the_papers_twelve_distributions() -> None:
    data, _ = load_recipe("kk-paper")
    assert data["sources"] == [{"source": "kk", "people": "3-14", "train": 900, "test": 100}]


def test_mixed_example_recipe_builds_with_its_import(tmp_path: Path) -> None:
    ds = prepare_recipe(REPO / "examples" / "recipes" / "mixed.yaml", tmp_path / "m")
    sources = {d.source for d in ds.distributions}
    assert sources == {"kk", "arith", "import"}


def test_recipe_as_dict_with_seed_default(tmp_path: Path) -> None:
    recipe = {"seed": 5, "sources": [{"source": "ladder", "lengths": "2", "train": 3, "test": 1}]}
    ds = prepare_recipe(recipe, tmp_path / "d")
    assert ds.distributions[0].made["seed"] == 5


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    recipe = {"sources": [{"source": "kk", "people": "3-4", "train": 30, "test": 5},
                          {"source": "arith", "ops": "add", "digits": "1-2", "train": 10, "test": 3}]}  # fmt: skip
    prepare_recipe(recipe, tmp_path / "a")
    prepare_recipe(recipe, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_another_seed_gives_other_puzzles(tmp_path: Path) -> None:
    for seed, name in ((1, "a"), (2, "b")):
        assert main(["prepare", "kk", "--people", "3", "--train", "5", "--test", "1", "--seed", str(seed), "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a" / "train.parquet").read_bytes() != (tmp_path / "b" / "train.parquet").read_bytes()


def test_cli_json_summary_lists_distributions_rows_and_rewards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prepare", "kk", "--people", "3-4", "--train", "9", "--test", "2", "--out", str(tmp_path / "kk"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d["name"] for d in summary["distributions"]] == ["kk-3", "kk-4"]
    assert summary["rows"] == {"train": 18, "test": 4} and summary["rewards"] == ["kk"]


def test_manifest_records_how_each_distribution_was_made(tmp_path: Path) -> None:
    main(["prepare", "arith", "--ops", "mul", "--digits", "2", "--train", "4", "--test", "1", "--seed", "9", "--out", str(tmp_path / "a")])
    made = yaml.safe_load((tmp_path / "a" / "dataset.yaml").read_text())["distributions"][0]["made"]
    assert made == {"generator": "arith", "op": "mul", "digits": 2, "seed": 9, "distinct_problems": 8100,
                    "prefill": "equation"}
