"""Dataset dir: round trip, atomic writes, refusal of bad dirs, merging."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dumpcli.data import ladder
from dumpcli.data.dataset import (
    DistributionInfo,
    load_dataset_dir,
    make_row,
    merge_dataset_dirs,
    write_dataset_dir,
)
from dumpcli.errors import DumpError


def _tiny(out: Path, name: str = "reverse", overwrite: bool = False) -> None:
    built = ladder.build(ladder.LadderSpec(tasks=(name,), lengths=(1, 2), train=5, test=2))
    write_dataset_dir(out, built.distributions, built.rows, overwrite=overwrite)


def test_written_dir_loads_back_with_the_same_rows_and_manifest(tmp_path: Path) -> None:
    built = ladder.build(ladder.LadderSpec(lengths=(1, 3), train=7, test=3))
    write_dataset_dir(tmp_path / "d", built.distributions, built.rows)
    ds = load_dataset_dir(tmp_path / "d")
    assert ds.distributions == built.distributions
    assert ds.rows("train") == built.rows["train"] and ds.rows("test") == built.rows["test"]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["dataset.yaml", "test.parquet", "train.parquet"]


def test_summary_counts_rows_and_rewards(tmp_path: Path) -> None:
    _tiny(tmp_path / "d")
    s = load_dataset_dir(tmp_path / "d").summary()
    assert s["rows"] == {"train": 10, "test": 4} and s["rewards"] == ["ladder"]
    assert [d["name"] for d in s["distributions"]] == ["reverse-1", "reverse-2"]


def test_existing_dir_is_kept_without_overwrite(tmp_path: Path) -> None:
    _tiny(tmp_path / "d")
    before = (tmp_path / "d" / "train.parquet").read_bytes()
    with pytest.raises(DumpError, match="--overwrite"):
        _tiny(tmp_path / "d", name="copy")
    assert (tmp_path / "d" / "train.parquet").read_bytes() == before


def test_overwrite_replaces_the_dir_and_leaves_no_temp_dirs(tmp_path: Path) -> None:
    _tiny(tmp_path / "d")
    _tiny(tmp_path / "d", name="copy", overwrite=True)
    assert load_dataset_dir(tmp_path / "d").names == ["copy-1", "copy-2"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_rows_naming_an_undeclared_distribution_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    info = DistributionInfo("a", "ladder", 1.0, "ladder", {"train": 1, "test": 0})
    row = make_row("b", "train", 0, [{"role": "user", "content": "x"}], "", "y", {})
    with pytest.raises(DumpError, match="undeclared"):
        write_dataset_dir(tmp_path / "d", [info], {"train": [row]})
    assert not any(tmp_path.iterdir())


def test_loading_another_format_version_names_the_fix(tmp_path: Path) -> None:
    _tiny(tmp_path / "d")
    manifest = yaml.safe_load((tmp_path / "d" / "dataset.yaml").read_text())
    manifest["format_version"] = 99
    (tmp_path / "d" / "dataset.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(DumpError, match="format_version 99"):
        load_dataset_dir(tmp_path / "d")


@pytest.mark.parametrize("broken", ["missing-dir", "no-manifest", "bad-table"])
def test_loading_a_broken_dir_raises_one_clear_error(tmp_path: Path, broken: str) -> None:
    _tiny(tmp_path / "d")
    if broken == "missing-dir":
        target = tmp_path / "nope"
    elif broken == "no-manifest":
        (tmp_path / "d" / "dataset.yaml").unlink()
        target = tmp_path / "d"
    else:
        (tmp_path / "d" / "train.parquet").write_bytes(b"not parquet")
        target = tmp_path / "d"
    with pytest.raises(DumpError):
        load_dataset_dir(target).rows("train")


def test_merge_keeps_every_distribution_and_row(tmp_path: Path) -> None:
    _tiny(tmp_path / "a")
    _tiny(tmp_path / "b", name="copy")
    merged = merge_dataset_dirs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert merged.names == ["reverse-1", "reverse-2", "copy-1", "copy-2"]
    assert len(load_dataset_dir(tmp_path / "m").rows("train")) == 20


def test_merge_refuses_clashing_distribution_names(tmp_path: Path) -> None:
    _tiny(tmp_path / "a")
    _tiny(tmp_path / "b")
    with pytest.raises(DumpError, match="used twice"):
        merge_dataset_dirs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert not (tmp_path / "m").exists()
