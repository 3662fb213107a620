"""Stop signals: SIGINT and SIGTERM end a run cleanly, and never in the middle of a save.

A scheduler, Ray or ``timeout`` sends SIGTERM; a person presses Ctrl-C (SIGINT). Both are
handled alike: :func:`stop_on_signals` turns the first one into a request the training loop
reads after the update in progress (the run then saves, prints its final line and exits with
``128 + signal``), and a second one into :class:`Interrupted` at once. :func:`signals_held`
delays both while a file is written, so that no signal leaves half a checkpoint.

Handlers can only be set in the main thread; elsewhere both are no-ops (Python delivers
signals to the main thread only).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal: a ``KeyboardInterrupt``, so scripts stop as on Ctrl-C.

    Attributes:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        exit_code: the shell's status for it: 130 after SIGINT, 143 after SIGTERM.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


def exit_code(error: KeyboardInterrupt) -> int:
    """The exit status of a run that ended with ``error`` (a bare Ctrl-C: 130)."""
    return error.exit_code if isinstance(error, Interrupted) else 128 + signal.SIGINT


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signals_held() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held; deliver those that came once it is done."""
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    for s in STOP_SIGNALS:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(received):  # each signal once, in arrival order
            _deliver(signum, previous[signum])


def _deliver(signum: int, handler: Any) -> None:
    """Do what ``handler`` (a saved ``signal.getsignal`` value) would have done."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)  # the default action, now that the handler is back


@dataclass
class StopRequest:
    """Set by the first stop signal; the training loop reads ``signum`` after each update."""

    signum: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: stop now, mid-update
            raise Interrupted(signum)
        self.signum = signum


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, the first SIGINT/SIGTERM sets ``request.signum`` and the second raises
    :class:`Interrupted`; the previous handlers come back afterwards."""
    request = StopRequest()
    if not _in_main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, request.handle)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
