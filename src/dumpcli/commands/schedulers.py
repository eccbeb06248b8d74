"""`dump schedulers`: list every installed scheduler plugin and its options."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from dumpcli.output import human_console, print_json


def describe_schedulers() -> list[dict[str, Any]]:
    """Name, description, origin and options of each installed scheduler."""
    # Imported here, not at the top: numpy and the plugins stay out of `dump --help`.
    from dumpcli.scheduler import available_schedulers, get_scheduler_class

    out = []
    for name in available_schedulers():
        cls = get_scheduler_class(name)
        out.append(
            {
                "name": name,
                "description": cls.description(),
                "class": f"{cls.__module__}:{cls.__qualname__}",
                "options": cls.option_specs(),
            }
        )
    return out


def schedulers(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
) -> None:
    """List installed schedulers with their options.

    Schedulers are plugins found through the entry-point group `dumpcli.schedulers`; pass
    options to `dump train` as `--scheduler-option key=value`.

    Example: dump schedulers --json | jq '.[].name'
    """
    described = describe_schedulers()
    if as_json:
        print_json(described)
        return
    console = human_console()
    for sched in described:
        table = Table(
            title=f"[bold]{sched['name']}[/] — {sched['description']}",
            caption=sched["class"],
            title_justify="left",
            caption_justify="left",
            expand=False,
        )
        table.add_column("option")
        table.add_column("type")
        table.add_column("default")
        table.add_column("meaning")
        for opt in sched["options"]:
            table.add_row(opt["name"], opt["type"], _as_typed(opt["default"]), opt["help"])
        if not sched["options"]:
            table.add_row("-", "", "", "no options")
        console.print(table)
        console.print()


def _as_typed(value: Any) -> str:
    """A default as one would type it in `--scheduler-option key=value`."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
