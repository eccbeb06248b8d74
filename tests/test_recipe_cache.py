"""`dump train` prepares a recipe into the cache once, keyed by the recipe's text: an edit re-prepares."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dumpcli.config import DataConfig
from dumpcli.data import recipe as recipe_module
from dumpcli.train.setup import recipe_cache_dir, resolve_dataset

LADDER = "seed: 3\nsources:\n  - source: ladder\n    lengths: 1-2\n    train: {train}\n    test: 2\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DUMP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_built_in_recipe_is_cached_under_the_hash_of_its_text(cache: Path) -> None:
    text = (Path(recipe_module.__file__).parent / "recipes" / "ladder.yaml").read_bytes()
    assert recipe_cache_dir("ladder") == cache / "data" / f"ladder-{hashlib.sha256(text).hexdigest()[:12]}"


def test_editing_a_built_in_recipe_prepares_it_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The package's recipe file as a user's edit would leave it (the real file stays untouched).
    monkeypatch.setattr(recipe_module, "builtin_recipes", lambda: ["ladder"])
    monkeypatch.setattr(recipe_module, "_builtin_text", lambda name: LADDER.format(train=5))
    first = resolve_dataset(DataConfig(recipe="ladder"))
    assert len(first.rows("train")) == 2 * 5
    monkeypatch.setattr(recipe_module, "_builtin_text", lambda name: LADDER.format(train=7))
    second = resolve_dataset(DataConfig(recipe="ladder"))
    assert len(second.rows("train")) == 2 * 7 and second.path != first.path
    assert (first.path / "dataset.yaml").exists()  # the old preparation stays where it was


def test_editing_a_recipe_file_prepares_it_again(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(LADDER.format(train=4))
    assert len(resolve_dataset(DataConfig(recipe=str(path))).rows("train")) == 2 * 4
    path.write_text(LADDER.format(train=6))
    assert len(resolve_dataset(DataConfig(recipe=str(path))).rows("train")) == 2 * 6
