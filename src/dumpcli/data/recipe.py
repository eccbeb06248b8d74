"""Recipes: several sources in one dataset dir, from YAML (a file or a built-in name).

    dump prepare recipe cpu-demo --out data/cpu-demo
    dump prepare recipe examples/recipes/mixed.yaml --out data/mixed

    seed: 42                      # default seed of every source
    sources:
      - source: kk                # kk | arith | ladder | import
        people: 3-5               # keys are the options of `dump prepare <source>`
        train: 100
        test: 20
      - source: import
        files: [my.jsonl]         # relative to the recipe file
        reward: arith

Built-ins ship as package data in dumpcli/data/recipes/: cpu-demo, ladder, kk-paper.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from dumpcli.config import MAX_SEED
from dumpcli.data import arith, imports, kk, ladder
from dumpcli.data.common import ProgressFn, SourceOutput, no_progress, parse_int_range
from dumpcli.data.dataset import DatasetDir, check_output_dir, write_dataset_dir
from dumpcli.errors import DumpError

# source name -> (spec dataclass, build function)
SOURCES: dict[str, tuple[type, Callable[..., SourceOutput]]] = {
    "kk": (kk.KKSpec, kk.build),
    "arith": (arith.ArithSpec, arith.build),
    "ladder": (ladder.LadderSpec, ladder.build),
    "import": (imports.ImportSpec, imports.build),
}
RANGE_KEYS = {"people", "digits", "lengths"}
LIST_KEYS = {"ops", "tasks"}
INT_KEYS = {"train", "test", "seed", "depth", "width"}


def builtin_recipes() -> list[str]:
    folder = resources.files("dumpcli.data") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _builtin_text(name: str) -> str:
    return (resources.files("dumpcli.data") / "recipes" / f"{name}.yaml").read_text(encoding="utf-8")


def recipe_source(recipe: str) -> tuple[str, str]:
    """(name, YAML text) of a recipe file or built-in name: what a prepared copy must match."""
    path = Path(recipe)
    if path.is_file():
        return path.stem, _read_text(path)
    if recipe in builtin_recipes():
        return recipe, _builtin_text(recipe)
    raise DumpError(f"no recipe file {recipe} and no built-in recipe of that name; built-ins: {', '.join(builtin_recipes())}")


def load_recipe(recipe: str | Path | dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """The recipe as a dict and the folder its relative paths are resolved against."""
    if isinstance(recipe, dict):
        return recipe, Path.cwd()
    path = Path(recipe)
    if not path.is_file():
        if str(recipe) in builtin_recipes():
            return _parse(_builtin_text(str(recipe)), f"built-in recipe {recipe}"), Path.cwd()
        raise DumpError(f"no recipe file {recipe} and no built-in recipe of that name; built-ins: {', '.join(builtin_recipes())}")
    return _parse(_read_text(path), str(path)), path.resolve().parent


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DumpError(f"recipe {path} is not UTF-8 text; a recipe is a YAML file (see examples/recipes/)") from None
    except OSError as e:
        raise DumpError(f"recipe {path} is unreadable ({e.strerror})") from None


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DumpError(f"{where} is not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise DumpError(f"{where}: a recipe is a mapping with a `sources` list")
    return data


def _value(key: str, value: Any, base: Path, where: str) -> Any:
    if key in RANGE_KEYS:
        return tuple(parse_int_range(value, f"{where}: {key}"))
    if key in LIST_KEYS:
        return tuple(v.strip() for v in _strings(key, value, where, split=True))
    if key == "files":
        return tuple(p if Path(p).is_absolute() else base / p for p in map(Path, _strings(key, value, where)))
    if key in INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DumpError(f"{where}: {key} must be a whole number (got {value!r})")
        if key == "seed":
            check_seed(value, f"{where}: seed")
    return value


def _strings(key: str, value: Any, where: str, split: bool = False) -> list[str]:
    """A YAML string (comma-separated when `split`) or list of strings as a list."""
    if isinstance(value, (str, PathLike)):
        return str(value).split(",") if split else [str(value)]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, PathLike)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise DumpError(f"{where}: {key} must be text or a list of text (got {value!r})")


def check_seed(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise DumpError(f"{what} must be a whole number in [0, 2**63 - 1] (got {value!r})")
    return value


def source_spec(entry: Any, base: Path, default_seed: int, where: str) -> tuple[Any, Callable[..., SourceOutput]]:
    """The spec dataclass and build function of one `sources` entry."""
    if not isinstance(entry, dict) or "source" not in entry:
        raise DumpError(f"{where}: each source needs a `source:` key, one of: {', '.join(SOURCES)}")
    kind = entry["source"]
    if kind not in SOURCES:
        raise DumpError(f"{where}: unknown source {kind!r}; use one of: {', '.join(SOURCES)}")
    spec_cls, build = SOURCES[kind]
    fields = {f.name for f in dataclasses.fields(spec_cls)}
    unknown = sorted(set(entry) - fields - {"source"})
    if unknown:
        raise DumpError(f"{where}: unknown key(s) {', '.join(unknown)} for source {kind}; allowed: {', '.join(sorted(fields))}")
    kwargs = {k: _value(k, v, base, where) for k, v in entry.items() if k != "source"}
    kwargs.setdefault("seed", default_seed)
    if kind == "import" and "files" not in kwargs:
        raise DumpError(f"{where}: an import source needs `files:`")
    return spec_cls(**kwargs), build


def build_recipe(recipe: str | Path | dict[str, Any], progress: ProgressFn = no_progress) -> SourceOutput:
    data, base = load_recipe(recipe)
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise DumpError("a recipe needs a non-empty `sources:` list")
    unknown = sorted(set(data) - {"sources", "seed", "description", "name"})
    if unknown:
        raise DumpError(f"unknown recipe key(s) {', '.join(unknown)}; allowed: name, description, seed, sources")
    seed = check_seed(data.get("seed", 42), "recipe seed")
    out = SourceOutput()
    specs = [source_spec(entry, base, seed, f"recipe source {i + 1}") for i, entry in enumerate(sources)]
    for spec, build in specs:
        out.extend(build(spec, progress))
    return out


def prepare_recipe(
    recipe: str | Path | dict[str, Any], out: Path, overwrite: bool = False, progress: ProgressFn = no_progress
) -> DatasetDir:
    """Build every source of the recipe (a file, a built-in name, or a dict) into one dataset dir."""
    check_output_dir(Path(out), overwrite)
    built = build_recipe(recipe, progress)
    return write_dataset_dir(Path(out), built.distributions, built.rows, overwrite=overwrite)
