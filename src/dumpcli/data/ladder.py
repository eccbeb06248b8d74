"""A from-scratch ladder: copy or reverse a digit string of length 1, 2, ..., L.

    dump prepare ladder --tasks reverse --lengths 1-6 --train 500 --test 50 --out data/ladder

Names `reverse-1` ... `reverse-6` (and `copy-N`), difficulty = length. The prompt is one plain
user message, "reverse 4821", with prefill "=", so a character-level model without a chat
template sees "reverse 4821\\n=" and should continue with "1284" and stop. It is the test bed
for comparing schedulers on a CPU in minutes: a randomly initialised model learns the short
strings quickly and starts near zero on the long ones (see dumpcli.rewards.ladder).
"""

from __future__ import annotations

from dataclasses import dataclass

from dumpcli.data.common import ProgressFn, SourceOutput, check_counts, draw_problems, no_progress, rng_for
from dumpcli.data.dataset import DistributionInfo, make_row
from dumpcli.errors import DumpError

TASKS = {"reverse": lambda s: s[::-1], "copy": lambda s: s}
MAX_LENGTH = 18


@dataclass(frozen=True)
class LadderSpec:
    tasks: tuple[str, ...] = ("reverse",)
    lengths: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    train: int = 500
    test: int = 50
    seed: int = 42
    reward: str = "ladder"  # or "ladder-exact": 1 for the exact answer, no partial credit


REWARDS = ("ladder", "ladder-exact")


def build(spec: LadderSpec, progress: ProgressFn = no_progress) -> SourceOutput:
    check_counts(spec.train, spec.test)
    unknown = [t for t in spec.tasks if t not in TASKS]
    if unknown:
        raise DumpError(f"unknown ladder task {unknown[0]!r}; use some of: {', '.join(TASKS)}")
    if spec.reward not in REWARDS:
        raise DumpError(f"ladder reward {spec.reward!r} is unknown; use one of: {', '.join(REWARDS)}")
    bad = [n for n in spec.lengths if not 1 <= n <= MAX_LENGTH]
    if bad:
        raise DumpError(f"--lengths must be between 1 and {MAX_LENGTH} (got {bad[0]})")
    out = SourceOutput()
    for task in spec.tasks:
        for length in spec.lengths:
            name = f"{task}-{length}"
            rng = rng_for(spec.seed, 3, list(TASKS).index(task), length)
            train, test = draw_problems(10**length, spec.train, spec.test, rng, lambda i, n=length: f"{i:0{n}d}")
            for split, strings in (("train", train), ("test", test)):
                for i, s in enumerate(strings):
                    prompt = [{"role": "user", "content": f"{task} {s}"}]
                    meta = {"task": task, "input": s, "length": length}
                    out.rows[split].append(make_row(name, split, i, prompt, "=", TASKS[task](s), meta))  # type: ignore[arg-type]
            progress(name, spec.train + spec.test, spec.train + spec.test)
            made = {"generator": "ladder", "task": task, "length": length, "seed": spec.seed}
            rows = {"train": spec.train, "test": spec.test}
            out.distributions.append(DistributionInfo(name, "ladder", float(length), spec.reward, rows, made))
    return out
