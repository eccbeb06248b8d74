"""`dump prepare import` of the real DUMP / Logic-RL K&K file shapes, scored by the real reward.

The Parquet files are written with pyarrow in the exact schema of the DUMP authors' and
Logic-RL's preprocessing scripts; their puzzles come from the project's K&K generator, so every
solution is real. Gold completions are built from each puzzle's names and solution, never from
what the importer stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dumpcli.cli import main
from dumpcli.data import kk
from dumpcli.data.dataset import load_dataset_dir
from dumpcli.data.recipe import prepare_recipe
from dumpcli.errors import DumpError
from dumpcli.rewards.kk import kk_reward

PEOPLE = tuple(range(3, 15))  # the paper's kk-3 .. kk-14
PER_SOURCE = 100  # the DUMP test file: 12 sources x 100
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
EXTRA_INFO = pa.struct([("split", pa.string()), ("index", pa.int64())])
LOGIC_RL_TRUTH = pa.struct([("solution_text_format", pa.string()), ("statements", pa.string())])
Puzzle = dict[str, Any]  # source, quiz, names, solution, statements, text


def _schema(truth_type: pa.DataType) -> pa.Schema:
    reward_model = pa.struct([("ground_truth", truth_type), ("style", pa.string())])
    return pa.schema([("data_source", pa.string()), ("prompt", MESSAGES), ("ability", pa.string()),
                      ("reward_model", reward_model), ("extra_info", EXTRA_INFO)])  # fmt: skip


@pytest.fixture(scope="module")
def puzzles() -> list[Puzzle]:
    out = kk.build(kk.KKSpec(people=PEOPLE, train=0, test=PER_SOURCE, seed=11))
    result = []
    for row in out.rows["test"]:
        meta = json.loads(row["meta"])
        result.append({
            "source": f"kk_logic_{meta['people']}", "quiz": row["prompt"][1]["content"],
            "names": meta["names"], "solution": meta["solution"], "statements": repr(meta["statements"]),
            "text": kk.solution_text(meta["names"], tuple(meta["solution"])),
        })  # fmt: skip
    return result


def _dump_prompt(quiz: str) -> str:
    """DUMP's `qwen-instruct` content: a chat template as text, with no <think> at its end."""
    return f"<|im_start|>system\n{kk.SYSTEM_PROMPT}\n<|im_end|>\n<|im_start|>user\n{quiz}\n"


def _logic_rl_prompt(quiz: str) -> str:
    """Logic-RL's `normal` template: it ends with the assistant header and <think>."""
    return f"<|im_start|>system\n{kk.SYSTEM_PROMPT}\n<|im_end|>\n<|im_start|>user\n{quiz}\n<|im_end|>\n<|im_start|>assistant\n<think>"


def _write(path: Path, puzzles: list[Puzzle], truths: list[Any], prompts: list[str], truth_type: pa.DataType) -> Path:
    rows = [{"data_source": p["source"], "prompt": [{"role": "user", "content": prompt}], "ability": "logic",
             "reward_model": {"ground_truth": truth, "style": "rule"}, "extra_info": {"split": "test", "index": i}}
            for i, (p, truth, prompt) in enumerate(zip(puzzles, truths, prompts))]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema(truth_type)), path)
    return path


def _dump_truth(p: Puzzle) -> str:
    """DUMP's generate_combined_kk.py: json.dumps of solution_text_format and statements."""
    return json.dumps({"solution_text_format": p["text"], "statements": p["statements"]})


def _write_dump(path: Path, puzzles: list[Puzzle]) -> Path:
    return _write(path, puzzles, [_dump_truth(p) for p in puzzles], [_dump_prompt(p["quiz"]) for p in puzzles], pa.string())


def _lines(names: list[str], roles: list[bool]) -> str:
    return "\n".join(f"({i + 1}) {name} is a {'knight' if k else 'knave'}" for i, (name, k) in enumerate(zip(names, roles)))


def _model_text(p: Puzzle, kind: str, think: str = "<think>") -> str:
    """What a model writes after the prefill: gold, only the first person, or one role flipped."""
    names, roles = list(p["names"]), list(p["solution"])
    if kind == "first":
        names, roles = names[:1], roles[:1]
    elif kind == "flipped":
        roles[-1] = not roles[-1]
    return f"{think}Checking each statement in turn.</think><answer>{_lines(names, roles)}</answer>"


def _import(files: list[Path], out: Path, *extra: str) -> list[dict[str, Any]]:
    assert main(["prepare", "import", *map(str, files), "--out", str(out), *extra]) == 0
    return load_dataset_dir(out).rows("test")


def _score_all(rows: list[dict[str, Any]], puzzles: list[Puzzle], kind: str, think: str = "<think>") -> list[Any]:
    return [kk_reward(r["prefill"] + _model_text(puzzles[json.loads(r["meta"])["row"]], kind, think), r["answer"]) for r in rows]


def test_dump_test_file_gold_scores_3_on_every_row_and_partial_answers_do_not(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    rows = _import([_write_dump(tmp_path / "combined_logic_datasets_test.parquet", puzzles)], tmp_path / "o")
    ds = load_dataset_dir(tmp_path / "o")
    assert ds.names == [f"kk_logic_{n}" for n in PEOPLE] and len(rows) == len(PEOPLE) * PER_SOURCE
    assert {d.reward for d in ds.distributions} == {"kk"} and all(d.rows == {"train": 0, "test": PER_SOURCE} for d in ds.distributions)
    assert {r["prefill"] for r in rows} == {""}  # DUMP's prompts carry no <think>: the model writes it
    gold = _score_all(rows, puzzles, "gold")
    assert [(g.reward, g.correct) for g in gold] == [(3.0, True)] * len(rows)
    first = _score_all(rows, puzzles, "first")
    assert {(f.parts["answer"], f.correct) for f in first} == {(-2.0, False)}
    flipped = _score_all(rows, puzzles, "flipped")
    assert {(f.parts["answer"], f.reward, f.correct) for f in flipped} == {(-1.5, -0.5, False)}


def test_imported_rows_keep_the_prompt_and_the_solution_text(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    rows = _import([_write_dump(tmp_path / "test.parquet", puzzles[:30])], tmp_path / "o")
    for row in rows:
        p = puzzles[json.loads(row["meta"])["row"]]
        assert row["answer"] == p["text"]
        assert row["prompt"] == [{"role": "user", "content": _dump_prompt(p["quiz"])}]


def test_the_reward_decodes_a_raw_dump_ground_truth_itself(puzzles: list[Puzzle]) -> None:
    """A dataset imported before the fix stored the JSON string: it must still score right."""
    for p in puzzles[::37]:
        assert kk_reward(_model_text(p, "gold"), _dump_truth(p)).reward == 3.0
        assert not kk_reward(_model_text(p, "first"), _dump_truth(p)).correct


def test_prefill_think_sets_the_prefill_and_the_model_then_writes_no_think(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    rows = _import([_write_dump(tmp_path / "test.parquet", puzzles[:50])], tmp_path / "o", "--prefill", "<think>")
    assert {r["prefill"] for r in rows} == {"<think>"}
    assert {g.reward for g in _score_all(rows, puzzles, "gold", think="")} == {3.0}
    assert {g.reward for g in _score_all(rows, puzzles, "gold")} == {-3.0}  # a second <think>: invalid format


def test_logic_rl_struct_ground_truth_and_trailing_think(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    """Logic-RL: ground_truth is a struct; the prompt ends with <think>, which becomes the prefill."""
    chosen = puzzles[::10]
    truths = [{"solution_text_format": p["text"], "statements": p["statements"]} for p in chosen]
    path = _write(tmp_path / "test.parquet", chosen, truths, [_logic_rl_prompt(p["quiz"]) for p in chosen], LOGIC_RL_TRUTH)
    assert pq.read_table(path).schema.field("reward_model").type.field("ground_truth").type == LOGIC_RL_TRUTH
    rows = _import([path], tmp_path / "o")
    assert {r["prefill"] for r in rows} == {"<think>"}
    assert all(r["prompt"][0]["content"].endswith("<|im_start|>assistant") for r in rows)
    by_row = {json.loads(r["meta"])["row"]: r for r in rows}
    scores = [kk_reward(r["prefill"] + _model_text(chosen[i], "gold", think=""), r["answer"]) for i, r in by_row.items()]
    assert {(s.reward, s.correct) for s in scores} == {(3.0, True)} and len(scores) == len(chosen)
    firsts = [kk_reward(r["prefill"] + _model_text(chosen[i], "first", think=""), r["answer"]) for i, r in by_row.items()]
    assert {f.parts["answer"] for f in firsts} == {-2.0}


def test_plain_text_ground_truth_in_verl_parquet(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    chosen = puzzles[5::25]
    path = _write(tmp_path / "test.parquet", chosen, [p["text"] for p in chosen], [p["quiz"] for p in chosen], pa.string())
    rows = _import([path], tmp_path / "o")
    assert [r["answer"] for r in rows] == [chosen[json.loads(r["meta"])["row"]]["text"] for r in rows]
    assert {g.reward for g in _score_all(rows, chosen, "gold")} == {3.0}


def test_plain_jsonl_prefill_column_wins_then_the_flag_then_think_for_kk(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    p = puzzles[0]
    lines = [{"prompt": p["quiz"], "distribution": "kk-3", "answer": p["text"], "prefill": "<think>\nLet me"},
             {"prompt": p["quiz"], "distribution": "kk-3", "answer": p["text"]}]  # fmt: skip
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    default = _import_train(tmp_path / "plain.jsonl", tmp_path / "a")
    assert [r["prefill"] for r in default] == ["<think>\nLet me", "<think>"]
    empty = _import_train(tmp_path / "plain.jsonl", tmp_path / "b", "--prefill", "")
    assert [r["prefill"] for r in empty] == ["<think>\nLet me", ""]


def _import_train(path: Path, out: Path, *extra: str) -> list[dict[str, Any]]:
    assert main(["prepare", "import", str(path), "--out", str(out), *extra]) == 0
    return load_dataset_dir(out).rows("train")


def test_recipes_pass_prefill_through_to_the_import(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    _write_dump(tmp_path / "test.parquet", puzzles[:12])
    recipe = {"name": "r", "sources": [{"source": "import", "files": ["test.parquet"], "prefill": "<think>"}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["prepare", "recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "o")]) == 0
    assert {r["prefill"] for r in load_dataset_dir(tmp_path / "o").rows("test")} == {"<think>"}
    recipe["sources"][0]["prefill"] = 1
    with pytest.raises(DumpError, match="prefill must be text"):
        prepare_recipe({"sources": [{**recipe["sources"][0], "files": [tmp_path / "test.parquet"]}]}, tmp_path / "p")


def test_the_same_import_twice_gives_byte_identical_files(tmp_path: Path, puzzles: list[Puzzle]) -> None:
    path = _write_dump(tmp_path / "test.parquet", puzzles[::3])
    _import([path], tmp_path / "a")
    _import([path], tmp_path / "b")
    assert {f.name: f.read_bytes() for f in (tmp_path / "a").iterdir()} == {f.name: f.read_bytes() for f in (tmp_path / "b").iterdir()}


# Bad ground truths: each is a user error at import, one line, exit 2, nothing written.

GOOD = "(1) Emma is a knight\n(2) Liam is a knave"
BAD_TRUTHS = {
    "json without solution_text_format": (json.dumps({"statements": "(...)", "solution": [True, False]}), "no text `solution_text_format`"),
    "broken json": ('{"solution_text_format": "(1) Emma is a knight', "broken JSON"),
    "solution_text_format not text": (json.dumps({"solution_text_format": ["Emma is a knight"]}), "no text `solution_text_format`"),
    "no person at all": ("Emma and Liam", "not every person can be read"),
    "a line without a person": ("(1) Emma is a knight\n(2) ???", "not every person can be read"),
    "a name twice": ("(1) Emma is a knight\n(2) Emma is a knave", "not every person can be read"),
    "a name the reward cannot match": ("(1) Zoë is a knight\n(2) Liam is a knave", "not every person can be read"),
    "empty": ("", "not every person can be read"),
    "escaped newlines": (GOOD.replace("\n", "\\n"), "not every person can be read"),
    "names disagree": (json.dumps({"solution_text_format": GOOD, "names": ["Emma", "Noah"]}), "`names` are"),
    "solution disagrees": (json.dumps({"solution_text_format": GOOD, "names": ["Emma", "Liam"], "solution": [True, True]}), "disagree with its `solution`"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_TRUTHS))
def test_a_bad_kk_ground_truth_is_one_line_exit_2_and_nothing_written(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth, message = BAD_TRUTHS[case]
    good = {"data_source": "kk_logic_2", "prompt": [{"role": "user", "content": "q"}], "ability": "logic",
            "reward_model": {"ground_truth": GOOD, "style": "rule"}, "extra_info": {"split": "test", "index": 0}}  # fmt: skip
    bad = {**good, "reward_model": {"ground_truth": truth, "style": "rule"}, "extra_info": {"split": "test", "index": 1}}
    pq.write_table(pa.Table.from_pylist([good, bad], schema=_schema(pa.string())), tmp_path / "test.parquet")
    assert main(["prepare", "import", str(tmp_path / "test.parquet"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"dump: error: {tmp_path / 'test.parquet'} row 1: ") and message in lines[0]
    assert "solution_text_format" in lines[0] or "fix the row" in lines[0]  # the fix is named
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.parquet"]


def test_a_null_struct_ground_truth_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = {"data_source": "kk_logic", "prompt": [{"role": "user", "content": "q"}], "ability": "logic",
           "reward_model": {"ground_truth": None, "style": "rule"}, "extra_info": {"split": "test", "index": 0}}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([row], schema=_schema(LOGIC_RL_TRUTH)), tmp_path / "test.parquet")
    assert main(["prepare", "import", str(tmp_path / "test.parquet"), "--out", str(tmp_path / "out")]) == 2
    assert "ground truth is missing (null)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
