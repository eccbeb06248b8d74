"""A graded arithmetic ladder: `arith-add-1`, `arith-sub-2`, `arith-mul-3`, ... (op x digits).

    dump prepare arith --ops add,mul --digits 1-3 --train 200 --test 50 --out data/arith

Each operand has exactly d digits (1..9 for d = 1); subtraction keeps a >= b so answers are
never negative. Prompts are one short user message. The row's prefill (`prefill` option):

  equation (default)  "<answer>17 + 22 =": the model starts inside the tag with the problem
                      written out, so the only thing left to write is the result (" 39</answer>").
                      The working "a op b = c" that makes SmolLM2 right is always there, and no
                      length limit can push it out.
  tag                 "<answer>": the model writes the working itself (or skips it).

The `arith` reward gives +1 for the right final number, plus +0.2 for a closed tag only when
the number is right (benchmarks/DEMO.md: a tag credit on its own taught SmolLM2 to skip the
working). SmolLM2-135M-Instruct solves most 1-digit problems, some 2-digit sums and almost no
3-digit ones: the low levels are solved, the middle ones learnable, the high ones out of reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dumpcli.data.common import ProgressFn, SourceOutput, check_counts, draw_problems, no_progress, rng_for
from dumpcli.data.dataset import DistributionInfo, make_row
from dumpcli.errors import DumpError

OPS = {"add": ("+", 0.0), "sub": ("-", 0.25), "mul": ("*", 0.5)}  # symbol, difficulty offset
TEMPLATE = "What is {a} {sym} {b}? Reply with the number in <answer></answer>."
PREFILLS = {"equation": "<answer>{a} {sym} {b} =", "tag": "<answer>"}


@dataclass(frozen=True)
class ArithSpec:
    ops: tuple[str, ...] = ("add", "sub", "mul")
    digits: tuple[int, ...] = (1, 2, 3)
    train: int = 200
    test: int = 50
    seed: int = 42
    prefill: str = "equation"  # a key of PREFILLS


def operand_range(digits: int) -> tuple[int, int]:
    """Smallest and largest operand with exactly `digits` digits (1..9 for one digit)."""
    return (1 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1


def problem_space(op: str, digits: int) -> tuple[int, object]:
    """Number of distinct problems and a decoder index -> (a, b)."""
    lo, hi = operand_range(digits)
    count = hi - lo + 1
    if op == "sub":  # triangular numbering of pairs a >= b

        def decode_sub(k: int) -> tuple[int, int]:
            a = (math.isqrt(8 * k + 1) - 1) // 2
            return lo + a, lo + k - a * (a + 1) // 2

        return count * (count + 1) // 2, decode_sub
    return count * count, lambda k: (lo + k // count, lo + k % count)


def solve(op: str, a: int, b: int) -> int:
    return {"add": a + b, "sub": a - b, "mul": a * b}[op]


def build(spec: ArithSpec, progress: ProgressFn = no_progress) -> SourceOutput:
    check_counts(spec.train, spec.test)
    unknown = [op for op in spec.ops if op not in OPS]
    if unknown:
        raise DumpError(f"unknown arithmetic op {unknown[0]!r}; use some of: {', '.join(OPS)}")
    bad = [d for d in spec.digits if not 1 <= d <= 9]
    if bad:
        raise DumpError(f"--digits must be between 1 and 9 (got {bad[0]})")
    if spec.prefill not in PREFILLS:
        raise DumpError(f"unknown arithmetic prefill {spec.prefill!r}; use one of: {', '.join(PREFILLS)}")
    out = SourceOutput()
    for digits in spec.digits:
        for op in spec.ops:
            name = f"arith-{op}-{digits}"
            space, decode = problem_space(op, digits)
            rng = rng_for(spec.seed, 2, list(OPS).index(op), digits)
            train, test = draw_problems(space, spec.train, spec.test, rng, decode)  # type: ignore[arg-type]
            for split, problems in (("train", train), ("test", test)):
                for i, (a, b) in enumerate(problems):  # type: ignore[misc]
                    prompt = [{"role": "user", "content": TEMPLATE.format(a=a, sym=OPS[op][0], b=b)}]
                    prefill = PREFILLS[spec.prefill].format(a=a, sym=OPS[op][0], b=b)
                    meta = {"op": op, "a": a, "b": b, "digits": digits}
                    out.rows[split].append(make_row(name, split, i, prompt, prefill, str(solve(op, a, b)), meta))
            progress(name, spec.train + spec.test, spec.train + spec.test)
            made = {"generator": "arith", "op": op, "digits": digits, "seed": spec.seed, "distinct_problems": space,
                    "prefill": spec.prefill}
            rows = {"train": spec.train, "test": spec.test}
            out.distributions.append(DistributionInfo(name, "arith", digits + OPS[op][1], "arith", rows, made))
    return out
