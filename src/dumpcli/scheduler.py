"""The scheduler plugin interface.

A scheduler decides which distribution each prompt slot of the next batch comes from. Plugins
register a `Scheduler` subclass under the entry-point group `dumpcli.schedulers` (the registry is
`dumpcli.plugins`):

    [project.entry-points."dumpcli.schedulers"]
    my-sched = "my_package.module:MyScheduler"

The built-ins (ucb, uniform, sequential, thompson) live in the top-level `schedulers/` folder and
register the same way. The trainer only ever calls `build_scheduler(name, ...)`; options are typed
by the config layer (`dumpcli.config.scheduler_options`).
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.plugins import SCHEDULERS, load_plugin, plugin_names
from dumpcli.values import type_name


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
    def update(self, distribution: np.ndarray, advantages: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from one training step: one entry per completion of the step, all [N].

        `distribution[i]` is the index (0..K-1) of completion i's distribution, `advantages[i]`
        its group-normalised advantage and `rewards[i]` its reward. Values must be finite
        (ValueError otherwise: that is a trainer bug, not a user error).
        `by_distribution` groups them per distribution cheaply.
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


def by_distribution(distribution: np.ndarray, values: np.ndarray, num_distributions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step's flat arrays -> (index [N], values [N] float64, lengths int64 [K]), grouped by distribution.

    `index[i]` is the distribution of `values[i]`; values of one distribution stay in step order
    (a stable sort), which is what `RingWindow.push` needs. Checks the shapes, the indices and
    that every value is finite.
    """
    distribution = np.asarray(distribution).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if distribution.shape != values.shape:
        raise ValueError(f"scheduler update got {distribution.size} distribution indices for {values.size} values")
    if distribution.size and (distribution.min() < 0 or distribution.max() >= num_distributions):
        raise ValueError(f"scheduler update got a distribution index outside 0..{num_distributions - 1}")
    if not np.isfinite(values).all():
        raise ValueError("scheduler update got a NaN or infinite value; advantages and rewards must be finite")
    order = np.argsort(distribution, kind="stable")
    index = distribution[order].astype(np.int64, copy=False)
    return index, values[order], np.bincount(index, minlength=num_distributions).astype(np.int64)


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
        """Append values given as `by_distribution` returns them (grouped by row, in order)."""
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


# ---------------------------------------------------------------- lookup


def available_schedulers() -> list[str]:
    """Names of every installed scheduler, sorted."""
    return plugin_names(SCHEDULERS)


def get_scheduler_class(name: str) -> type[Scheduler]:
    cls = load_plugin(SCHEDULERS, name)
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        raise DumpError(f"scheduler {name!r} is registered, but it is not a dumpcli.scheduler.Scheduler subclass")
    return cls


def build_scheduler(
    name: str, distributions: Sequence[Distribution], seed: int, options: Mapping[str, Any] | None = None
) -> Scheduler:
    """Look a scheduler up by name, validate its options and build it with a seeded RNG."""
    from dumpcli.config import scheduler_options

    return get_scheduler_class(name)(distributions, np.random.default_rng(seed), scheduler_options(name, options or {}))
