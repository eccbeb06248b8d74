"""`dump inspect`: what a run (or several) is doing, as a table, JSON, a live view or a figure."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from dumpcli.errors import DumpError
from dumpcli.output import human_console, print_json

if TYPE_CHECKING:
    from dumpcli.rundir import RunReader


def inspect(
    runs: list[Path] = typer.Argument(..., help="Run dir(s) written by `dump train`; several are compared."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep the table live while the run trains; ends when it finishes."),
    as_json: bool = typer.Option(False, "--json", help="Print everything in the table as one JSON document on stdout."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Print the summary as one JSON line; with --follow, one line per new step."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw sampling probabilities, rewards and evals to this PNG."),
    target: float | None = typer.Option(None, "--target", help="Report the first step whose mean training reward reaches this."),
    window: int = typer.Option(20, "--window", min=1, help="Steps averaged for recent reward, tokens/s, ETA and smoothing."),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between reads with --follow."),
) -> None:
    """Show how a run is going: per distribution, the scheduler's probability, prompts drawn,
    recent reward and |advantage|, latest eval and its change; several runs side by side.

    Example: dump inspect runs/ucb --json | jq '.distributions[] | select(.probability > 0.2)'
    """
    from dumpcli.inspect.summary import compare_runs, load_runs, summarize_run  # numpy: not at `dump --help` time

    if as_json and jsonl:
        raise DumpError("--json and --jsonl are two output formats; pass one of them")
    if follow and len(runs) > 1:
        raise DumpError("--follow watches one run; pass one run dir (or drop --follow to compare runs)")
    if plot is not None:
        from dumpcli.inspect.plots import check_png_path

        check_png_path(plot)
    console = human_console()
    if follow:
        reader = follow_run(runs[0], window=window, target=target, interval=interval, jsonl=jsonl, console=console)
        loaded = [reader.run()]
    else:
        loaded = load_runs(runs)
    summary = summarize_run(loaded[0], window=window, target=target) if len(loaded) == 1 else compare_runs(loaded, window=window, target=target)
    if as_json:
        print_json(summary)
    elif jsonl and not follow:
        _print_line(summary)
    elif not follow:  # the live view already left the final table on screen
        console.print(render(summary))
    if plot is not None:
        from dumpcli.inspect.plots import plot_runs

        plot_runs(loaded, plot, window=window)
        console.print(f"wrote {plot}", soft_wrap=True, highlight=False)  # a path stays on one line


def render(summary: dict[str, Any]) -> RenderableType:
    """The human view of `summarize_run` or `compare_runs` output."""
    return render_comparison(summary) if summary["kind"] == "comparison" else render_run(summary)


def follow_run(path: Path, *, window: int, target: float | None, interval: float, jsonl: bool, console: Console) -> RunReader:
    """Keep a live table of `path` on `console` until the run reaches its total steps.

    Ends with a DumpError when the run is unfinished and no trainer holds its lock: it was
    stopped or killed, and nothing more will come.
    """
    from rich.live import Live

    from dumpcli.inspect.summary import summarize_run
    from dumpcli.rundir import RunDir, RunReader
    from dumpcli.rundir.reader import total_steps

    if path.exists() and not path.is_dir():
        raise DumpError(f"{path} is not a directory; pass the run dir `dump train` writes to")
    if path.is_dir() and not (path / "config.yaml").exists() and any((p / "config.yaml").is_file() for p in path.iterdir()):
        raise DumpError(f"{path} holds run dirs rather than being one; --follow one of them, e.g. {path}/<run>")
    reader, run_dir = RunReader(path), RunDir(path)
    if not console.is_terminal:  # a log file gets no live redraws: say what is happening once
        console.print(_waiting(path) if not run_dir.exists() else f"following {path} until the run ends", soft_wrap=True)
    with Live(_waiting(path), console=console, refresh_per_second=4, transient=False) as live:
        while True:
            before = len(reader.metrics)
            trainer = run_dir.lock_holder()  # asked before reading, so a trainer that just ended has written all
            reader.poll()
            if reader.started and len(reader.metrics):
                run = reader.run()
                if jsonl:  # one line per new step; on the first read, only the current state
                    for upto in range(len(run.metrics) if before == 0 else before + 1, len(run.metrics) + 1):
                        _print_line(summarize_run(run, window=window, target=target, upto=upto))
                live.update(render_run(summarize_run(run, window=window, target=target)))
                if run.finished:
                    break
            if reader.started and trainer is None:
                if not len(reader.metrics):
                    live.update(Text(""))
                break
            time.sleep(interval)
    if not console.is_terminal and len(reader.metrics):
        console.line()  # rich ends the last render with a newline only on terminals
    if reader.run().finished:
        return reader
    total = total_steps(reader.config or {})
    raise DumpError(f"no dump train is writing {path} (its lock is free) and the run stopped at step "
                    f"{reader.run().step or 0} of {total or '?'}; continue it with dump train --resume {path}")


def _waiting(path: Path) -> Text:
    return Text(f"waiting for {path} to log its first step (Ctrl-C to stop)…", style="dim")


def _print_line(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, allow_nan=False) + "\n")
    sys.stdout.flush()


def render_run(s: dict[str, Any]) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, caption=_run_caption(s), caption_justify="left")
    for name, justify in (("distribution", "left"), ("p(next)", "left"), ("prompts", "right"), ("reward", "right"),
                          ("|adv|", "right"), ("eval acc Δ", "right"), ("eval rew Δ", "right")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for d in s["distributions"]:
        best, worst = d["name"] == s["best"], d["name"] == s["worst"]
        table.add_row(
            ("[bold green]▲[/] " if best else "[bold red]▼[/] " if worst else "  ") + d["name"],
            _bar(d["probability"]),
            f"{d['prompts']} {_pct(d['prompt_share']):>4}",
            _num(d["recent_reward"]),
            _num(d["recent_abs_advantage"]),
            f"{_num(d['eval_accuracy'])} {_delta(d['eval_accuracy_change'])}",
            f"{_num(d['eval_reward'])} {_delta(d['eval_reward_change'])}",
            style="green" if best else "red" if worst else None,
        )
    return Group(Text.from_markup(_run_title(s)), _run_header(s), table)


def _run_title(s: dict[str, Any]) -> str:
    sched = s["scheduler"]
    options = ", ".join(f"{k}={v}" for k, v in sched["options"].items())
    return f"[bold]{s['path']}[/]  scheduler [bold cyan]{sched['name']}[/]" + (f" ({options})" if options else "") + (
        f"  model {s['model']}" if s["model"] else ""
    )


def _run_header(s: dict[str, Any]) -> Text:
    total, progress = s["total_steps"], s["progress"]
    head = f"step {s['step']}/{total if total is not None else '?'}"
    if progress is not None:
        filled = round(min(progress, 1.0) * 12)
        head += f" [cyan]{'━' * filled}[/][dim]{'━' * (12 - filled)}[/] {progress:.0%}"
    head += "  finished" if s["finished"] else f"  ETA {_duration(s['eta_s'])}"
    head += f", elapsed {_duration(s['elapsed_s'])}, {_num(s['step_time_s'], '.2f')} s/step"
    if s["checkpoint_step"] is not None:
        head += f", checkpoint {s['checkpoint_step']}"
    lines = [head, f"train reward {_num(s['reward'])} (last {s['window_steps']} steps), {_num(s['tokens_per_second'], '.0f')} tok/s"]
    if s["target"] is not None:
        hit = s["steps_to_target"]
        lines[-1] += f", ≥ {s['target']:g} at step {hit}" if hit is not None else f", ≥ {s['target']:g} not reached"
    e = s["eval"]
    if e:
        lines.append(
            f"eval @ step {e['step']}: accuracy {_num(e['accuracy'])} ({_plain_delta(e['accuracy_change'])} since step "
            f"{e['first_step']}), reward {_num(e['reward'])} ({_plain_delta(e['reward_change'])})"
        )
    return Text.from_markup("\n".join(lines))


def _run_caption(s: dict[str, Any]) -> str:
    ranked = {"eval_accuracy": "latest eval accuracy", "eval_reward": "latest eval reward", "recent_reward": "recent reward"}
    by = f"; best/worst by {ranked[s['ranked_by']]}" if s["ranked_by"] else ""
    return (
        f"p(next): the scheduler's latest probability; reward, |adv|: mean over each distribution's last "
        f"{s['recent_prompts']} prompts (the window the scheduler sees); Δ: change since the first eval{by}"
    )


def render_comparison(c: dict[str, Any]) -> RenderableType:
    runs = c["runs"]
    overview = _table("runs", "bold green: best of the runs; reward AUC: area under the training reward curve")
    # (header, value per run, format, better is higher)
    numeric = [
        ("reward", [s["reward"] for s in runs], ".3f", True),
        ("eval acc", [(s["eval"] or {}).get("accuracy") for s in runs], ".3f", True),
        ("eval rew", [(s["eval"] or {}).get("reward") for s in runs], ".3f", True),
        ("reward AUC", [s["reward_auc"] for s in runs], ".1f", True),
    ]
    if c["target"] is not None:
        numeric.append((f"steps to {c['target']:g}", [s["steps_to_target"] for s in runs], "d", False))
    overview.add_column("run", no_wrap=True)
    overview.add_column("step", justify="right", no_wrap=True)
    for header, *_ in numeric:
        overview.add_column(header, justify="right", no_wrap=True)
    for i, s in enumerate(runs):
        sched = s["scheduler"]["name"] or "?"
        cells = [s["name"] if s["name"] == sched else f"{s['name']} [dim]({sched})[/]", f"{s['step']}/{s['total_steps'] or '?'}"]
        for header, values, fmt, higher in numeric:
            present = [v for v in values if v is not None]
            best = (max if higher else min)(present, default=None)
            v = values[i]
            text = ("never" if fmt == "d" else "–") if v is None else format(v, fmt)
            cells.append(f"[bold green]{text}[/]" if v is not None and v == best and len(runs) > 1 else text)
        overview.add_row(*cells)
    accuracies = {v["accuracy"] for d in c["distributions"] for v in d["final_eval"].values() if v and v["accuracy"] is not None}
    metric = "accuracy" if len(accuracies) > 1 else "reward"  # all-equal accuracies (say all 0) tell nothing
    per_dist = _table(f"final eval {metric} per distribution (prompts drawn)", "bold green: the best run on that distribution")
    per_dist.add_column("distribution", no_wrap=True)
    for s in runs:
        per_dist.add_column(s["name"], justify="right", no_wrap=True)
    for d in c["distributions"]:
        values = {name: (v or {}).get(metric) for name, v in d["final_eval"].items()}
        best = max((v for v in values.values() if v is not None), default=None)
        cells = []
        for s in runs:
            v = values.get(s["name"])
            cell = f"{_num(v)} ({d['prompts'].get(s['name'], 0)})"
            cells.append(f"[bold green]{cell}[/]" if v is not None and v == best and len(runs) > 1 else cell)
        per_dist.add_row(d["name"], *cells)
    return Group(overview, Text(""), per_dist)


def _table(title: str, caption: str) -> Table:
    return Table(
        title=f"[bold]{title}[/]", title_justify="left", caption=caption, caption_justify="left",
        box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
    )  # fmt: skip


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "–" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _bar(p: float | None, width: int = 5) -> str:
    if p is None:
        return "–"
    filled = round(p * width)
    return f"{p:.3f} [cyan]{'█' * filled}[/][dim]{'·' * (width - filled)}[/]"


def _delta(value: float | None) -> str:
    if value is None:
        return "    "
    color = "green" if value > 0 else "red" if value < 0 else "dim"
    return f"[{color}]{value:+.2f}[/]"


def _plain_delta(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s" if m else f"{sec}s"
