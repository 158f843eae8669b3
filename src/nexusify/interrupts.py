"""Ctrl-C and SIGTERM as one exception, `Interrupted`, that every command's cleanup handles.

Why not let Python raise a plain KeyboardInterrupt: CPython remembers a KeyboardInterrupt that
escaped any `exec`/`eval` of source text (dataclasses and namedtuple do that while a module is
imported) and, even when the program caught it and exited normally, ends the process by killing
itself with SIGINT (exit status -2 instead of nexusify's 130). The check is by exact type, so a
subclass raised from our own handler is caught by every `except KeyboardInterrupt` and leaves
the exit code to nexusify.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """The user or a supervisor (Ctrl-C, `kill`, a CI timeout) asked nexusify to stop."""


@contextlib.contextmanager
def interrupts_raise(*signums: int, once: bool = False) -> Iterator[None]:
    """While active, each of ``signums`` raises `Interrupted` in the main thread. With
    ``once``, a signal is raised once and then ignored, so the cleanup it starts is never itself
    interrupted by a second one. Outside the main thread (where handlers can't be set) this is a
    no-op. The previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if once:
            signal.signal(signum, signal.SIG_IGN)
        raise Interrupted

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@dataclass
class Deferred:
    """The signals that arrived while :func:`interrupts_deferred` held them back."""

    received: list[int] = field(default_factory=list)


@contextlib.contextmanager
def interrupts_deferred(*signums: int) -> Iterator[Deferred]:
    """While active, ``signums`` (default SIGINT and SIGTERM) are recorded instead of acted on,
    so a step that must not stop halfway (renaming a transaction's files into place) finishes.
    The caller looks at ``received`` afterwards and stops (raises `Interrupted`) if it is not
    empty. The previous handlers are restored on exit; outside the main thread this is a no-op."""
    state = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    signums = signums or (signal.SIGINT, signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        state.received.append(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield state
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
