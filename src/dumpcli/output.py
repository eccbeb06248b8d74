"""Where output goes: JSON for pipelines on stdout, everything for humans on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console


def human_console() -> Console:
    """Rich console for tables, progress and messages: always stderr, so stdout stays clean for --json."""
    return Console(stderr=True)


def print_json(obj: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
