"""Pieces every data source shares: its output, ranges like `3-14`, progress, problem sampling."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dumpcli.data.dataset import SPLITS, DistributionInfo
from dumpcli.errors import DumpError

# Called with (distribution name, rows done so far, rows wanted); the CLI draws a rich bar from it.
ProgressFn = Callable[[str, int, int], None]


def no_progress(name: str, done: int, total: int) -> None:
    """The progress callback for library use and tests."""


@dataclass
class SourceOutput:
    """What one source contributes to a dataset dir."""

    distributions: list[DistributionInfo] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {s: [] for s in SPLITS})

    def extend(self, other: SourceOutput) -> None:
        self.distributions.extend(other.distributions)
        for s in SPLITS:
            self.rows[s].extend(other.rows.get(s, []))


def parse_int_range(text: str | int | list[int], what: str) -> list[int]:
    """`"3-14"` -> [3..14], `"3,5,8"` -> [3, 5, 8], `7` -> [7]; a list passes through."""
    if isinstance(text, bool):
        raise DumpError(f"{what}: expected a number or a range like 3-14, got {text!r}")
    if isinstance(text, int):
        return [text]
    if isinstance(text, list):
        return [v for item in text for v in parse_int_range(item, what)]
    out: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise DumpError(f"{what}: expected a number or a range like 3-14 or 3,5,8, got {text!r}") from None
    return out


def check_counts(train: int, test: int) -> None:
    if train < 0 or test < 0:
        raise DumpError(f"row counts must be >= 0 (got train={train}, test={test})")
    if train + test == 0:
        raise DumpError("asked for 0 rows; pass --train and/or --test above 0")


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """One independent stream per (seed, distribution): adding a level never changes the others."""
    return np.random.default_rng([seed, *key])


def draw_problems(
    space: int, n_train: int, n_test: int, rng: np.random.Generator, decode: Callable[[int], Hashable]
) -> tuple[list[Hashable], list[Hashable]]:
    """Draw problem indices from a space of `space` problems for train and test.

    Test problems are distinct and never in train while the space allows; when a level has fewer
    problems than rows asked for (1-digit sums, short ladder strings), problems repeat, and train
    shares problems with test only when nothing else is left.
    """
    if space >= 4 * (n_train + n_test):  # sparse: rejection sampling on a set
        seen: set[int] = set()
        order: list[int] = []
        while len(order) < n_train + n_test:
            i = int(rng.integers(space))
            if i not in seen:
                seen.add(i)
                order.append(i)
        test, train = order[:n_test], order[n_test:]
    else:
        perm = [int(i) for i in rng.permutation(space)]
        test = [perm[i % space] for i in range(n_test)]
        rest = perm[n_test:] or perm
        train = [rest[i % len(rest)] for i in range(n_train)]
    return [decode(i) for i in train], [decode(i) for i in test]

