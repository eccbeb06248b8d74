"""The scheduler plugin interface and its registry.

A scheduler decides which distribution each prompt slot of the next batch comes from. Plugins
register a `Scheduler` subclass under the entry-point group `dumpcli.schedulers`:

    [project.entry-points."dumpcli.schedulers"]
    my-sched = "my_package.module:MyScheduler"

The built-ins (ucb, uniform, sequential, thompson) live in the top-level `schedulers/` folder and
register the same way. The trainer only ever calls `build_scheduler(name, ...)`.
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.values import coerce, type_name

ENTRY_POINT_GROUP = "dumpcli.schedulers"


@dataclass(frozen=True)
class Distribution:
    """What a scheduler knows of one distribution of the mixture."""

    name: str
    size: int  # training prompts available
    difficulty: float  # larger is harder; orders the sequential baseline


@dataclass
class NoOptions:
    """For schedulers without options."""


class Scheduler(ABC):
    """Base class of every scheduler.

    Subclasses set `options_class` to a dataclass whose fields (with `metadata={"help": ...}`)
    are the scheduler's options; the first line of the class docstring is its description.
    Randomness comes only from `self.rng`, so `state_dict()` captures everything needed to
    continue the exact same draws.
    """

    options_class: ClassVar[type] = NoOptions

    def __init__(self, distributions: Sequence[Distribution], rng: np.random.Generator, options: Any) -> None:
        if not distributions:
            raise DumpError("a scheduler needs at least one distribution; the dataset has none")
        self.distributions = list(distributions)
        self.rng = rng
        self.options = options

    @property
    def num_distributions(self) -> int:
        return len(self.distributions)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.distributions]

    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """Probability of each distribution for the next batch: float64 [K], sums to 1."""

    def draw(self, num_slots: int) -> np.ndarray:
        """Distribution index of each prompt slot of the next batch: int64 [num_slots]."""
        p = self.probabilities()
        return self.rng.choice(self.num_distributions, size=num_slots, p=p).astype(np.int64)

    @abstractmethod
    def update(self, advantages: Sequence[np.ndarray], rewards: Sequence[np.ndarray]) -> None:
        """Learn from one training step.

        `advantages[j]` and `rewards[j]` are float arrays with one entry per completion drawn
        from distribution j in that step (empty when j was not drawn); both lists have length K.
        Values must be finite (ValueError otherwise: that is a trainer bug, not a user error).
        """

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, RNG included. Subclasses extend it with their own statistics."""
        return {"distributions": self.names, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output; a state saved for other distributions is refused."""
        saved = state_value(state, "distributions")
        if list(saved) != self.names:
            raise DumpError(
                f"the scheduler state is for distributions {list(saved)}, but this run has {self.names};"
                " resume with the dataset the run was started with"
            )
        self.rng.bit_generator.state = state_value(state, "rng")

    # ---- description, for `dump schedulers` ----
    @classmethod
    def description(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def option_specs(cls) -> list[dict[str, Any]]:
        """Name, type, default and help of each option."""
        specs = []
        hints = typing.get_type_hints(cls.options_class)
        for f in dataclasses.fields(cls.options_class):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            )
            specs.append(
                {
                    "name": f.name,
                    "type": type_name(hints[f.name], prose=False),
                    "default": default,
                    "help": f.metadata.get("help", ""),
                }
            )
        return specs


# ---------------------------------------------------------------- helpers for implementations


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(scores / temperature), computed stably: the max is subtracted before dividing, so
    huge scores or tiny temperatures underflow to 0 instead of overflowing to inf/NaN."""
    z = (scores - scores.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


def flatten_by_distribution(values: Sequence[Any], num_distributions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step's per-distribution arrays -> (index [M], flat float64 [M], lengths int64 [K]).

    `index[i]` is the distribution of `flat[i]`; values stay grouped by distribution, in order.
    One concatenate instead of a Python loop per distribution keeps updates cheap at K = 1000.
    """
    if len(values) != num_distributions:
        raise ValueError(f"expected one array per distribution ({num_distributions}), got {len(values)}")
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=num_distributions)
    if not lengths.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0), lengths
    # Concatenating only the non-empty ones: at K = 1000 most are empty, and this is 20x faster.
    flat = np.concatenate([np.asarray(values[j]).reshape(-1) for j in np.flatnonzero(lengths).tolist()])
    flat = flat.astype(np.float64, copy=False)
    if not np.isfinite(flat).all():
        raise ValueError("scheduler update got a NaN or infinite value; advantages and rewards must be finite")
    return np.repeat(np.arange(num_distributions), lengths), flat, lengths


class RingWindow:
    """The last `size` values of each row (distribution), in one fixed-size ring buffer per row.

    Unfilled slots hold 0, so a row's sum is the sum of its window. `push` is vectorised over
    all rows; only touched rows are re-summed, from the buffer, so sums never drift.
    """

    def __init__(self, num_rows: int, size: int) -> None:
        self.size = size
        self.values = np.zeros((num_rows, size))
        self.next = np.zeros(num_rows, dtype=np.int64)  # slot the next value goes to
        self.count = np.zeros(num_rows, dtype=np.int64)  # values in the window, <= size
        self.sums = np.zeros(num_rows)

    def push(self, index: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> None:
        """Append values given as `flatten_by_distribution` returns them (grouped by row, in order)."""
        if values.size == 0:
            return
        starts = np.cumsum(lengths) - lengths
        rank = np.arange(values.size) - starts[index]  # position within its row's batch
        # Values older than the last `size` of a row's batch would be overwritten by the same batch.
        keep = rank >= lengths[index] - self.size
        rows = index[keep]
        self.values[rows, (self.next[rows] + rank[keep]) % self.size] = values[keep]
        self.next = (self.next + lengths) % self.size
        self.count = np.minimum(self.count + lengths, self.size)
        touched = np.flatnonzero(lengths)
        self.sums[touched] = self.values[touched].sum(axis=1)

    def means(self) -> np.ndarray:
        """Mean of each row's window; 0 for a row with no values yet."""
        out = np.zeros_like(self.sums)
        np.divide(self.sums, self.count, out=out, where=self.count > 0)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "values": self.values.tolist(), "next": self.next.tolist(), "count": self.count.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state_value(state, "size") != self.size:
            raise DumpError(
                f"the scheduler state has a window of {state['size']}, but the options say {self.size};"
                " resume with the scheduler options the run was started with"
            )
        self.values = state_array(state, "values", self.values.shape)
        self.next = state_array(state, "next", self.next.shape, np.int64)
        self.count = state_array(state, "count", self.count.shape, np.int64)
        self.sums = self.values.sum(axis=1)


def state_value(state: Mapping[str, Any], key: str) -> Any:
    """`state[key]`, or a DumpError saying the state is not this scheduler's."""
    if key not in state:
        raise DumpError(f"the scheduler state has no {key!r}; was it saved by another scheduler? resume with the same one")
    return state[key]


def state_array(state: Mapping[str, Any], key: str, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """`state[key]` as an array of the expected shape, or a DumpError."""
    out = np.asarray(state_value(state, key), dtype=dtype)
    if out.shape != shape:
        raise DumpError(f"the scheduler state's {key!r} has shape {out.shape}, expected {shape}; was it saved for another dataset?")
    return out


# ---------------------------------------------------------------- registry


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_schedulers() -> list[str]:
    """Names of every installed scheduler, sorted."""
    return sorted(_entry_points())


def get_scheduler_class(name: str) -> type[Scheduler]:
    eps = _entry_points()
    if name not in eps:
        raise DumpError(
            f"unknown scheduler {name!r}; installed: {', '.join(available_schedulers()) or 'none'}"
            " (see `dump schedulers`)"
        )
    try:
        cls = eps[name].load()
    except (ImportError, AttributeError) as e:
        raise DumpError(
            f"scheduler {name!r} is registered as {eps[name].value} but does not load ({e});"
            " reinstall the package that provides it"
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        raise DumpError(f"scheduler {name!r} ({eps[name].value}) is not a dumpcli.scheduler.Scheduler subclass")
    return cls


def parse_options(name: str, cls: type[Scheduler], raw: Mapping[str, Any]) -> Any:
    """Build the options dataclass from config/CLI values (strings are converted by type).

    Unknown or ill-typed options raise DumpError naming the option and the allowed ones.
    Range checks belong in the options dataclass's `__post_init__` (raise DumpError there).
    """
    options_class = cls.options_class
    hints = typing.get_type_hints(options_class)
    fields = {f.name: f for f in dataclasses.fields(options_class)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        key_norm = key.replace("-", "_")
        if key_norm not in fields:
            allowed = ", ".join(fields) or "none"
            raise DumpError(f"scheduler {name!r} has no option {key!r}; its options: {allowed}")
        try:
            values[key_norm] = coerce(value, hints[key_norm])
        except (TypeError, ValueError) as e:
            raise DumpError(
                f"scheduler {name!r} option {key!r} must be {type_name(hints[key_norm])}, got {value!r}"
            ) from e
    return options_class(**values)


def build_scheduler(
    name: str, distributions: Sequence[Distribution], seed: int, options: Mapping[str, Any] | None = None
) -> Scheduler:
    """Look a scheduler up by name, validate its options and build it with a seeded RNG."""
    cls = get_scheduler_class(name)
    parsed = parse_options(name, cls, options or {})
    return cls(distributions, np.random.default_rng(seed), parsed)


def resolve_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of scheduler `name`, defaults filled in and values typed, for config.yaml.

    Validates exactly as `build_scheduler` does, so a bad option fails before a run starts.
    """
    cls = get_scheduler_class(name)
    return dataclasses.asdict(parse_options(name, cls, options or {}))


def parse_option_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """`["window=100", "c=0.5"]` -> `{"window": "100", "c": "0.5"}` (values converted later by type)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DumpError(f"scheduler option {pair!r} must look like key=value, e.g. --scheduler-option window=100")
        out[key.strip()] = value.strip()
    return out
