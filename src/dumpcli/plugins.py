"""The one plugin registry: schedulers and rewards, found through entry points.

    [project.entry-points."dumpcli.schedulers"]      my-sched = "my_package.module:MyScheduler"
    [project.entry-points."dumpcli.rewards"]         my-reward = "my_package.rewards:my_reward"

The built-ins register exactly like a third-party package (dump's own pyproject.toml). Plugins
are looked up lazily, once per process and setting, never as an import side effect.

DUMP_LOAD_PLUGINS limits what loads, as `llm`'s LLM_LOAD_PLUGINS does: unset loads every
installed plugin; "" (empty) loads only dump's built-ins, which keeps a test suite hermetic from
what happens to be installed; "pkg-a,pkg-b" loads the built-ins plus those distributions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dumpcli.errors import DumpError

ENV_VAR = "DUMP_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "dumpcli"


@dataclass(frozen=True)
class PluginKind:
    group: str  # entry-point group
    noun: str  # for messages: "scheduler", "reward"
    listing: str | None  # the command that lists them, if any


SCHEDULERS = PluginKind("dumpcli.schedulers", "scheduler", "dump schedulers")
REWARDS = PluginKind("dumpcli.rewards", "reward", None)


def _allowed() -> frozenset[str] | None:
    """Distributions allowed besides the built-ins; None = all."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return frozenset(name.strip().lower().replace("_", "-") for name in value.split(",") if name.strip())


@cache
def _entry_points(group: str, allowed: frozenset[str] | None) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        dist = (ep.dist.name if ep.dist is not None else "").lower().replace("_", "-")
        if allowed is None or dist == BUILTIN_DISTRIBUTION or dist in allowed:
            found[ep.name] = ep
    return found


def plugin_names(kind: PluginKind) -> list[str]:
    """Names of every loadable plugin of `kind`, sorted."""
    return sorted(_entry_points(kind.group, _allowed()))


def entry_point(kind: PluginKind, name: str) -> EntryPoint:
    eps = _entry_points(kind.group, _allowed())
    if name not in eps:
        installed = ", ".join(sorted(eps)) or "none"
        see = f" (see `{kind.listing}`)" if kind.listing else ""
        raise DumpError(f"unknown {kind.noun} {name!r}; installed: {installed}{see}")
    return eps[name]


def load_plugin(kind: PluginKind, name: str) -> Any:
    """The object plugin `name` registers; DumpError when it is unknown or does not import."""
    ep = entry_point(kind, name)
    try:
        return ep.load()
    except (ImportError, AttributeError) as e:
        raise DumpError(f"{kind.noun} {name!r} is registered as {ep.value} but does not load ({e}); "
                        "reinstall the package that provides it") from e
