"""`dump prepare`: build a dataset dir (docs/formats.md) from generators, imports or a recipe.

    dump prepare kk --people 3-14 --train 900 --test 100 --seed 42 --out data/kk
    dump prepare arith --ops add,mul --digits 1-3 --out data/arith
    dump prepare ladder --lengths 1-6 --out data/ladder
    dump prepare import train.parquet test.parquet --out data/imported
    dump prepare recipe cpu-demo --out data/cpu-demo
    dump prepare merge data/kk data/arith --out data/mixed
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from dumpcli.config import MAX_SEED
from dumpcli.output import human_console, print_json

if TYPE_CHECKING:
    from dumpcli.data.common import ProgressFn, SourceOutput
    from dumpcli.data.dataset import DatasetDir

app = typer.Typer(
    help=(
        "Build a dataset dir (dataset.yaml + train/test Parquet) from a generator, an import or a recipe.\n\n"
        "Example: dump prepare recipe cpu-demo --out data/cpu-demo"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

OUT = typer.Option(..., "--out", "-o", help="Dataset dir to write (created atomically).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace --out if it exists (only once the new one is complete).")
AS_JSON = typer.Option(False, "--json", help="Print the manifest summary as JSON on stdout.")
SEED = typer.Option(42, "--seed", min=0, max=MAX_SEED, help="Random seed; the same seed gives byte-identical tables.")


@contextmanager
def _progress() -> Iterator[ProgressFn]:
    """A rich progress bar on stderr, one line per distribution, started by the first report (so an
    error before any work is the only line printed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    bar = Progress(
        TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=human_console(), transient=False,
    )  # fmt: skip

    def report(name: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total)
        bar.update(tasks[name], completed=done, total=total)

    try:
        yield report
    finally:
        if tasks:
            bar.stop()


def _finish(ds: DatasetDir, as_json: bool) -> None:
    summary = ds.summary()
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"[bold]{ds.path}[/]", title_justify="left")
    for col in ("distribution", "source", "difficulty", "reward", "train", "test"):
        table.add_column(col, justify="right" if col in ("difficulty", "train", "test") else "left")
    for d in summary["distributions"]:
        table.add_row(d["name"], d["source"], f"{d['difficulty']:g}", d["reward"], str(d["rows"].get("train", 0)), str(d["rows"].get("test", 0)))
    console = human_console()
    console.print(table)
    console.print(f"{len(summary['distributions'])} distributions, {summary['rows']['train']} train / {summary['rows']['test']} test rows")


def _run(out: Path, overwrite: bool, as_json: bool, build: Callable[[ProgressFn], SourceOutput]) -> None:
    """Check --out first (fail before any work), build with a progress bar, write atomically."""
    from dumpcli.data.dataset import check_output_dir, write_dataset_dir

    check_output_dir(out, overwrite)
    with _progress() as report:
        built = build(report)
    _finish(write_dataset_dir(out, built.distributions, built.rows, overwrite=overwrite), as_json)


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


@app.command("kk")
def kk_command(
    people: str = typer.Option("3-14", "--people", help="Inhabitants per puzzle: a range 3-14 or a list 3,5,8; one distribution kk-N each."),
    train: int = typer.Option(900, "--train", help="Train puzzles per distribution."),
    test: int = typer.Option(100, "--test", help="Test puzzles per distribution (never also in train)."),
    seed: int = SEED,
    out: Path = OUT,
    overwrite: bool = OVERWRITE,
    as_json: bool = AS_JSON,
) -> None:
    """Knights and Knaves puzzles with exactly one solution (the DUMP paper's kk-3 .. kk-14).

    Prompts are chat messages (Logic-RL system prompt) with prefill "<think>"; reward `kk`
    (3 / -0.5 / -1 / -3).

    Example: dump prepare kk --people 3-14 --train 900 --test 100 --seed 42 --out data/kk
    """
    from dumpcli.data import kk
    from dumpcli.data.common import parse_int_range

    spec = kk.KKSpec(people=tuple(parse_int_range(people, "--people")), train=train, test=test, seed=seed)
    _run(out, overwrite, as_json, lambda report: kk.build(spec, report))


@app.command("arith")
def arith_command(
    ops: str = typer.Option("add,sub,mul", "--ops", help="Operations, comma-separated: add, sub, mul."),
    digits: str = typer.Option("1-3", "--digits", help="Digits per operand: a range 1-3 or a list 1,2."),
    train: int = typer.Option(200, "--train", help="Train problems per distribution."),
    test: int = typer.Option(50, "--test", help="Test problems per distribution."),
    seed: int = SEED,
    out: Path = OUT,
    overwrite: bool = OVERWRITE,
    as_json: bool = AS_JSON,
) -> None:
    """A graded arithmetic ladder: arith-add-1, arith-mul-2, ... (one distribution per op and digit count).

    Prompts are one short user message with prefill "<answer>"; reward `arith` (+1 right final
    number, +0.2 closed <answer> tag). Levels with few distinct problems (1 digit) repeat them.

    Example: dump prepare arith --ops add,mul --digits 1-3 --train 200 --test 24 --out data/arith
    """
    from dumpcli.data import arith
    from dumpcli.data.common import parse_int_range

    spec = arith.ArithSpec(ops=_words(ops), digits=tuple(parse_int_range(digits, "--digits")), train=train, test=test, seed=seed)
    _run(out, overwrite, as_json, lambda report: arith.build(spec, report))


@app.command("ladder")
def ladder_command(
    tasks: str = typer.Option("reverse", "--tasks", help="Tasks, comma-separated: reverse, copy."),
    lengths: str = typer.Option("1-6", "--lengths", help="Digit-string lengths: a range 1-6 or a list."),
    train: int = typer.Option(500, "--train", help="Train strings per distribution."),
    test: int = typer.Option(50, "--test", help="Test strings per distribution."),
    reward: str = typer.Option("ladder", "--reward", help="ladder (partial credit) or ladder-exact (1 for the exact answer, else 0)."),
    seed: int = SEED,
    out: Path = OUT,
    overwrite: bool = OVERWRITE,
    as_json: bool = AS_JSON,
) -> None:
    """Copy/reverse digit strings (reverse-1 .. reverse-6): the fast from-scratch scheduler test bed.

    Prompt "reverse 4821", prefill "=", answer "1284"; reward `ladder` (partial credit: leading
    digits right, right digit count, exact match).

    Example: dump prepare ladder --tasks reverse --lengths 1-6 --out data/ladder
    """
    from dumpcli.data import ladder
    from dumpcli.data.common import parse_int_range

    spec = ladder.LadderSpec(tasks=_words(tasks), lengths=tuple(parse_int_range(lengths, "--lengths")), train=train, test=test, seed=seed,
                              reward=reward)
    _run(out, overwrite, as_json, lambda report: ladder.build(spec, report))


@app.command("import")
def import_command(
    files: list[Path] = typer.Argument(..., help="Parquet or JSONL files; names containing 'test'/'val' fill the test split."),
    reward: str | None = typer.Option(None, "--reward", help="Reward for distributions whose name lacks 'kk' (those get `kk`)."),
    distribution_column: str | None = typer.Option(None, "--distribution-column", help="Column naming the distribution [default: data_source, else distribution]."),
    split: str = typer.Option("auto", "--split", help="auto (from each file name), train or test: the split for every file."),
    test_fraction: float = typer.Option(0.0, "--test-fraction", help="With no test file, hold out this share of each distribution."),
    prefill: str | None = typer.Option(
        None, "--prefill",
        help="Prefill of rows without a `prefill` column, e.g. '<think>' or ''. Default: none for verl rows (a prompt's trailing <think> moves here); <think> for plain K&K rows.",
    ),  # fmt: skip
    seed: int = SEED,
    out: Path = OUT,
    overwrite: bool = OVERWRITE,
    as_json: bool = AS_JSON,
) -> None:
    """Import verl / Logic-RL / DUMP Parquet (prompt, data_source, reward_model.ground_truth) or plain JSONL.

    Plain JSONL rows have `prompt` (string or chat messages), `answer`, `distribution` and
    optionally `prefill`. K&K ground truths are decoded to "(1) NAME is a knight/knave" lines
    (JSON string or struct with `solution_text_format`, or that text); one that does not name every
    person is an error. See docs/formats.md.

    Example: dump prepare import kk/train.parquet kk/test.parquet --out data/kk-imported
    """
    from dumpcli.data import imports
    from dumpcli.errors import DumpError

    if split not in ("auto", "train", "test"):
        raise DumpError(f"--split must be auto, train or test (got {split!r})")
    spec = imports.ImportSpec(tuple(files), reward, distribution_column, split, test_fraction, seed, prefill)
    _run(out, overwrite, as_json, lambda report: imports.build(spec, report))


@app.command("recipe")
def recipe_command(
    recipe: str = typer.Argument(..., help="A recipe YAML file, or a built-in name: cpu-demo, ladder, kk-paper."),
    out: Path = OUT,
    overwrite: bool = OVERWRITE,
    as_json: bool = AS_JSON,
) -> None:
    """Several sources into one dataset dir, from a YAML recipe (see examples/recipes/).

    Built-ins: cpu-demo (arith add/mul 1-3 digits for SmolLM2 on CPU), ladder (reverse-1..6
    for a tiny from-scratch model), kk-paper (kk-3..kk-14, 900/100).

    Example: dump prepare recipe cpu-demo --out data/cpu-demo
    """
    from dumpcli.data.recipe import build_recipe

    _run(out, overwrite, as_json, lambda report: build_recipe(recipe, report))


@app.command("merge")
def merge_command(
    dirs: list[Path] = typer.Argument(..., help="Dataset dirs to merge; distribution names must not clash."),
    out: Path = OUT,
    overwrite: bool = OVERWRITE,
    as_json: bool = AS_JSON,
) -> None:
    """Merge dataset dirs into one.

    Example: dump prepare merge data/kk data/arith --out data/mixed
    """
    from dumpcli.data.dataset import merge_dataset_dirs

    _finish(merge_dataset_dirs(dirs, out, overwrite=overwrite), as_json)
