"""`dump schedulers`: every installed scheduler with its description and options."""

from __future__ import annotations

import json

import pytest

from dumpcli.cli import main

BUILT_INS = {"ucb", "uniform", "sequential", "thompson"}


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["schedulers", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_every_built_in_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    by_name = {s["name"]: s for s in listed(capsys)}
    assert BUILT_INS <= set(by_name)
    assert by_name["ucb"]["description"].startswith("DUMP's UCB curriculum")
    assert by_name["ucb"]["class"] == "dump_schedulers.ucb:UCBScheduler"


def test_json_gives_each_option_name_type_default_and_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    ucb = next(s for s in listed(capsys) if s["name"] == "ucb")
    assert [(o["name"], o["type"], o["default"]) for o in ucb["options"]] == [
        ("window", "int", 300),
        ("c", "float", 1.0),
        ("tau", "float", 0.1),
    ]
    assert all(o["help"] for o in ucb["options"])


def test_json_shows_optional_and_list_types(capsys: pytest.CaptureFixture[str]) -> None:
    seq = next(s for s in listed(capsys) if s["name"] == "sequential")
    types = {o["name"]: (o["type"], o["default"]) for o in seq["options"]}
    assert types["order"] == ("list of str or none", None)
    assert types["steps"] == ("int or none", 10)


def test_human_listing_goes_to_stderr_and_keeps_stdout_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedulers"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    for name in BUILT_INS:
        assert name in err
    assert "weight_by_size" in err and "reward_threshold" in err
    assert "none" in err  # defaults shown as one would type them, not as Python reprs


def test_unknown_flag_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedulers", "--bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--bogus" in err
