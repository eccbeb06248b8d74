"""scripts/kk-paper.sh (the paper's K&K setting, ucb vs uniform) in its CPU smoke mode, so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "kk-paper.sh"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUMP": str(Path(sys.executable).parent / "dump"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_smoke_trains_both_arms_evaluates_and_compares(tmp_path: Path) -> None:
    out = tmp_path / "kk"
    result = run_script("--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    compare = json.loads((out / "compare.json").read_text())
    assert [r["scheduler"]["name"] for r in compare["runs"]] == ["ucb", "uniform"]
    assert {d["name"] for d in compare["distributions"]} == {"kk-3", "kk-4"}
    for arm in ("ucb", "uniform"):
        final = json.loads((out / f"{arm}-seed0" / "final-eval.json").read_text())
        assert set(final["distributions"]) == {"kk-3", "kk-4"} and final["samples"] == 4
        assert 0.0 <= final["sampled_accuracy"] <= 1.0
    again = run_script("--smoke", "--out", str(out))  # finished runs are kept, not retrained
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((out / "compare.json").read_text())["runs"][0]["step"] == compare["runs"][0]["step"]


def test_a_weights_folder_without_a_config_is_refused() -> None:
    result = run_script("/nonexistent/weights")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kk-paper: /nonexistent/weights has no config.json; pass a local Hugging Face model folder (nothing is downloaded)"
    ]
