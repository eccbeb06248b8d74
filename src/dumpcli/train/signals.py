"""Stop signals: Ctrl-C, `timeout`/Slurm/docker/systemd's SIGTERM and a closed terminal's SIGHUP
all stop training the same way: finish (or roll back) the step, checkpoint, exit 128 + signal.

    with stop_signals():          # the three signals raise StopRequested in the main thread
        with deferred():          # ... held until the block ends: a step is all-or-nothing
            update()
        with shielded():          # ... held for good: the last checkpoint is never abandoned
            save()

After the first stop, later signals are only recorded: a second Ctrl-C a few milliseconds after
the first must not cut the checkpoint that the first one asked for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalExit:
    """What an exception caused by stop signal `signum` exits with: 128 + signal (130, 143, 129)."""

    signum: int

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class StopRequested(SignalExit, KeyboardInterrupt):
    """A stop signal arrived; `exit_code` is what the process should exit with."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    installed = 0  # nesting depth of stop_signals()
    holding = 0  # nesting depth of deferred() / shielded()
    stopping = False  # a StopRequested was raised: later signals are only recorded
    pending: list[int] = []  # noqa: RUF012 - one process-wide state
    arrivals: list[int] = []  # noqa: RUF012 - stop signals in the order they arrived
    wakeup: int | None = None  # read end of the pipe the C-level handler writes each signal number to


def _first_arrived(fallback: int) -> int:
    """The stop signal that arrived first. Python runs the handlers of signals pending together in
    signal-number order (SIGINT before SIGTERM), so the order comes from the wakeup pipe, which the
    C-level handler writes as they arrive."""
    if _State.wakeup is not None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := os.read(_State.wakeup, 64):
                _State.arrivals += [s for s in chunk if s in STOP_SIGNALS]
    return _State.arrivals[0] if _State.arrivals else fallback


def _handler(signum: int, frame: Any) -> None:
    first = _first_arrived(signum)
    if _State.holding or _State.stopping:
        _State.pending.append(signum)
        return
    _State.stopping = True
    raise StopRequested(first)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into StopRequested within the block (nests; main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _State.installed:
        _State.installed += 1
        try:
            yield
        finally:
            _State.installed -= 1
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    previous = {s: signal.signal(s, _handler) for s in STOP_SIGNALS}
    _State.installed, _State.stopping, _State.pending, _State.arrivals = 1, False, [], []
    _State.wakeup = read_end
    try:
        yield
    finally:
        _State.installed, _State.wakeup = 0, None
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(read_end)
        os.close(write_end)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold stop signals until the block ends, then raise the first as StopRequested."""
    with stop_signals(), _holding():
        yield
    if not _State.holding and _State.pending and not _State.stopping:
        _State.stopping = True
        raise StopRequested(_first_arrived(_State.pending[0]))


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold stop signals through the block and drop them after: the stop is already under way."""
    with stop_signals(), _holding():
        yield


@contextlib.contextmanager
def _holding() -> Iterator[None]:
    _State.holding += 1
    try:
        yield
    finally:
        _State.holding -= 1

