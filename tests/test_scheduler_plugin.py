"""A scheduler from another installed package is found, listed and used with no change to dumpcli.

The package is examples/scheduler-plugin, really installed with pip (into a temp dir on
PYTHONPATH, so the venv stays untouched); the checks run in fresh interpreters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dumpcli.scheduler import available_schedulers

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scheduler-plugin"

USE_IT = """
import json, sys
import numpy as np
from dumpcli.errors import DumpError
from dumpcli.scheduler import Distribution, build_scheduler
dists = [Distribution(n, 10, float(i)) for i, n in enumerate(["a", "b", "c"])]
s = build_scheduler("epsilon-greedy", dists, seed=0, options={"epsilon": "0.3"})
cold = s.probabilities().tolist()
s.update(np.array([0, 0, 0, 0, 1, 1]), np.array([0.0, 0.0, 0.0, 0.0, 1.0, -1.0]), np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
try:
    build_scheduler("epsilon-greedy", dists, seed=0, options={"epsilon": "2"})
    error = None
except DumpError as e:
    error = str(e)
print(json.dumps({"cold": cold, "after": s.probabilities().tolist(), "draws": s.draw(200).tolist(), "error": error}))
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    # Build from a copy so setuptools' build/ and egg-info never land in the repo.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=120,
    )
    return target


def run_with_plugin(plugin_path: Path, *args: str, allow: str | None = "dump-epsilon-greedy") -> subprocess.CompletedProcess[str]:
    """Run python with the plugin on the path; `allow` is DUMP_LOAD_PLUGINS (None: unset, load all)."""
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    env.pop("DUMP_LOAD_PLUGINS", None)
    if allow is not None:
        env["DUMP_LOAD_PLUGINS"] = allow
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=60, check=True)


def test_plugin_is_not_installed_in_this_interpreter() -> None:
    # So the checks below prove the pip install is what made it appear.
    assert "epsilon-greedy" not in available_schedulers()


def test_dump_schedulers_lists_the_plugin_with_its_options(plugin_path: Path) -> None:
    listed = json.loads(run_with_plugin(plugin_path, "-m", "dumpcli", "schedulers", "--json").stdout)
    plugin = next(s for s in listed if s["name"] == "epsilon-greedy")
    assert plugin["class"] == "dump_epsilon_greedy:EpsilonGreedyScheduler"
    assert plugin["description"].startswith("Epsilon-greedy")
    assert [(o["name"], o["type"], o["default"]) for o in plugin["options"]] == [("epsilon", "float", 0.1), ("window", "int", 300)]
    assert {"ucb", "uniform", "sequential", "thompson"} <= {s["name"] for s in listed}


@pytest.mark.parametrize("allow", [None, "dump-epsilon-greedy", "other-package, dump_epsilon_greedy"])
def test_an_installed_plugin_loads_unless_the_switch_leaves_it_out(plugin_path: Path, allow: str | None) -> None:
    listed = json.loads(run_with_plugin(plugin_path, "-m", "dumpcli", "schedulers", "--json", allow=allow).stdout)
    assert "epsilon-greedy" in {s["name"] for s in listed}


def test_an_empty_switch_loads_only_the_built_ins(plugin_path: Path) -> None:
    listed = json.loads(run_with_plugin(plugin_path, "-m", "dumpcli", "schedulers", "--json", allow="").stdout)
    assert {s["name"] for s in listed} == {"ucb", "uniform", "sequential", "thompson"}
    result = subprocess.run([sys.executable, "-m", "dumpcli", "train", "--scheduler", "epsilon-greedy"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(plugin_path), "DUMP_LOAD_PLUGINS": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dump: error: unknown scheduler 'epsilon-greedy'; installed: sequential, thompson, ucb, uniform (see `dump schedulers`)"
    ]


def test_plugin_is_built_by_name_and_used(plugin_path: Path) -> None:
    result = json.loads(run_with_plugin(plugin_path, "-c", USE_IT).stdout)
    assert result["cold"] == pytest.approx([1 / 3] * 3, abs=1e-12)
    # "b" has the largest mean |advantage|: it gets 1 - 0.3 on top of its 0.3 / 3.
    assert result["after"] == pytest.approx([0.1, 0.8, 0.1], abs=1e-12)
    assert set(result["draws"]) <= {0, 1, 2}
    assert result["error"] == "epsilon-greedy option epsilon must be in [0, 1], got 2.0"
