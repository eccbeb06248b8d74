"""The run dir's lock: one `dump train` at a time writes a run dir.

An exclusive `flock` on RUN/.lock, which holds the holder's pid. The kernel drops the lock when the
process ends however it ends (kill -9 included), so a stale lock never blocks anyone; a lock that
is free on an unfinished run means its trainer is gone (what `dump inspect --follow` checks).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any

from dumpcli.errors import DumpError
from dumpcli.rundir.layout import LOCK


class RunLock:
    """A held lock; released by `release()`, by leaving its `with` block, or when the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, run_path: Path) -> RunLock:
        path = Path(run_path) / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise DumpError(f"cannot write to run dir {run_path} ({e.strerror}); pick a writable --out") from None
        for _ in range(8):  # a reader's probe (`lock_holder`) holds it for microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.025)
        else:
            pid = _read_pid(fd)
            os.close(fd)
            raise held_by(run_path, pid)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def held_by(run_path: Path, pid: int) -> DumpError:
    who = f"pid {pid}" if pid else "another process"
    return DumpError(f"run dir {run_path} is being trained by another dump train ({who}); "
                     f"wait for it to end or stop it, then resume with dump train --resume {run_path}")


def refuse_if_held(run_path: Path) -> None:
    """DumpError naming the pid when a trainer holds the run dir: checked before reading a run to
    resume, since a new run holds its lock before its config.yaml exists. Creates nothing."""
    pid = lock_holder(run_path)
    if pid is not None:
        raise held_by(run_path, pid)


def lock_holder(run_path: Path) -> int | None:
    """The pid holding RUN/.lock (0 when it cannot be read), or None when nobody holds it."""
    try:
        fd = os.open(Path(run_path) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (OSError, ValueError):
        return 0
