"""`dump --help` (and each command's) is instant: the CLI and config layers load no torch or transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "trl", "datasets")
SHOW_HEAVY = "import sys; print(sorted({m.split('.')[0] for m in sys.modules} & set(%r)))" % (HEAVY,)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["inspect", "--help"],
                                  ["prepare", "--help"], ["schedulers", "--help"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    code = f"from dumpcli.cli import main\ntry:\n    main({argv!r})\nfinally:\n    {SHOW_HEAVY}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_loading_a_config_imports_no_heavy_library() -> None:
    code = f"from dumpcli.config import TrainConfig, apply_sets\napply_sets(TrainConfig(), ['grpo.lr=1e-4'])\n{SHOW_HEAVY}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
