"""The one exception type for problems the user can fix.

Raised anywhere; turned into one line on stderr and exit code 2 only at the CLI boundary
(`dumpcli.cli.main`). Set DUMP_DEBUG=1 to get the traceback instead.
"""

from __future__ import annotations


class DumpError(Exception):
    """A problem with the user's input: the message names the problem and the fix."""

    exit_code = 2
