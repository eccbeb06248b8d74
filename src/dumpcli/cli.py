"""The `dump` command line: one Typer app; each command lives in `dumpcli/commands/`.

User errors (DumpError, and click's usage errors) become one line on stderr and exit code 2
here, and only here; so does an OSError or UnicodeError that escaped the code that should have
named it (a backstop). DUMP_DEBUG=1 re-raises them with the traceback. A stop signal during
`dump train` exits with 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import os
import sys

import typer
from typer.exceptions import TyperException

from dumpcli import __version__
from dumpcli.commands import eval as eval_cmd
from dumpcli.commands import inspect as inspect_cmd
from dumpcli.commands import prepare as prepare_cmd
from dumpcli.commands import schedulers as schedulers_cmd
from dumpcli.commands import train as train_cmd
from dumpcli.errors import DumpError

app = typer.Typer(
    name="dump",
    help=(
        "Post-train language models with GRPO + LoRA over a mixture of data distributions, "
        "with a pluggable curriculum scheduler (DUMP's UCB, uniform, sequential, Thompson).\n\n"
        "Example: dump train --scheduler ucb"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dump {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """dump: GRPO + LoRA with a distribution-level curriculum."""


app.command("schedulers")(schedulers_cmd.schedulers)
app.add_typer(prepare_cmd.app, name="prepare")
app.command("inspect")(inspect_cmd.inspect)
app.command("train")(train_cmd.train)
app.command("eval")(eval_cmd.eval_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dump` script; returns the exit code."""
    command = typer.main.get_command(app)
    debug = bool(os.environ.get("DUMP_DEBUG"))
    try:
        result = command.main(args=argv, prog_name="dump", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except DumpError as e:
        if debug:
            raise
        print(f"dump: error: {e}", file=sys.stderr)
        code = e.exit_code
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        print("dump: aborted", file=sys.stderr)
        code = 130
    except (OSError, UnicodeError) as e:  # a backstop: the places that read and write turn these into DumpError
        if debug:
            raise
        print(f"dump: error: {' '.join(str(e).split())}", file=sys.stderr)
        code = 2
    except TyperException as e:  # click's usage errors: unknown option, bad value, missing argument
        if debug:
            raise
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        ctx = getattr(e, "ctx", None)
        where = f"dump {ctx.command_path.split(' ', 1)[1]}" if ctx and " " in ctx.command_path else "dump"
        print(f"{where}: error: {message} (see --help)", file=sys.stderr)
        code = getattr(e, "exit_code", 2) or 2
    sys.stdout.flush()
    return code


def run() -> None:  # pragma: no cover - thin wrapper for `python -m dumpcli`
    sys.exit(main())
