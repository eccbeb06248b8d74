"""benchmarks/inspect_speed.py runs end to end (small) and reports its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "inspect_speed.py"


def test_speed_benchmark_generates_a_run_and_times_the_command(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), "--steps", "300", "--distributions", "4", "--repeats", "1", "--dir", str(tmp_path), "--json"]
    result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert (result["steps"], result["distributions"]) == (300, 4)
    assert 0 < result["load_s"] < result["command_s"] and result["command_cpu_s"] > 0
    assert (tmp_path / "run-300-4" / "metrics.jsonl").read_text().count("\n") == 300
