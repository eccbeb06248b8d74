"""`dump inspect --plot`: a real PNG with one column of panels per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inspect_fixtures import write_run

from dumpcli.cli import main
from dumpcli.errors import DumpError
from dumpcli.inspect.summary import load_run
from dumpcli.inspect.plots import plot_runs


def image(path: Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_plot_of_one_run_is_a_non_trivial_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(tmp_path / "run", steps=60, total=60, names=[f"kk-{i}" for i in range(3, 9)], eval_every=10)
    out = tmp_path / "figs" / "run.png"
    assert main(["inspect", str(run_dir), "--plot", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    pixels = image(out)
    height, width = pixels.shape[:2]
    assert out.stat().st_size > 40_000 and width > 900 and height > 900
    # stacked areas and curves in many colours, not a blank canvas
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2])[:, :3].round(2), axis=0)) > 200


def test_plot_of_several_runs_gets_a_column_per_run(tmp_path: Path) -> None:
    one = plot_runs([load_run(write_run(tmp_path / "ucb", steps=20))], tmp_path / "one.png")
    runs = [load_run(write_run(tmp_path / s, steps=20, scheduler=s)) for s in ("uniform", "sequential", "thompson")]
    three = plot_runs(runs, tmp_path / "three.png")
    assert image(three).shape[1] > 1.4 * image(one).shape[1]
    assert image(three).shape[0] == image(one).shape[0]


def test_plot_of_a_run_without_evals_still_draws(tmp_path: Path) -> None:
    out = plot_runs([load_run(write_run(tmp_path / "run", steps=5, eval_every=0))], tmp_path / "p.png")
    assert out.stat().st_size > 20_000


def test_plot_wants_a_png_name(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="ending in .png"):
        plot_runs([load_run(write_run(tmp_path / "run", steps=3))], tmp_path / "p.pdf")
    assert not (tmp_path / "p.pdf").exists()
