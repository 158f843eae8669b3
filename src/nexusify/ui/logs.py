"""Logging for one nexusify run: every log record of every logger is redacted where it is made.

Libraries log secrets in ways call sites cannot see: httpx's ``HTTP Request: GET http://u:p@host/``
lines (``-v``), httpcore's header dumps (``-vv``), a traceback holding a URL. So redaction is not
done by the code that logs, but once, structurally: while :func:`logging_for_run` is active the
log record factory replaces each record's message (and its formatted traceback) with the
redacted text before any handler, filter or formatter sees it. That covers every logger and
every handler (ours on stderr, pytest's caplog, one a library adds), with the same
:class:`~nexusify.credentials.Redactor` the output layer uses.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from nexusify.credentials import Redactor

FORMAT = "%(levelname)s %(name)s: %(message)s"


def level_for(verbose: int) -> int:
    return logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING


def _redacting_factory(previous: Any, redactor: Redactor) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep its parts, redacted, rather than fail
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redactor(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redactor("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = redactor(record.stack_info)
        return record

    return factory


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def logging_for_run(redactor: Redactor, verbose: int = 0) -> Iterator[None]:
    """Redact every log record while active; show records at the level ``-v``/``-vv`` ask for on
    stderr. Restores the previous record factory, root level and handlers on exit."""
    root = logging.getLogger()
    previous_factory = logging.getLogRecordFactory()
    previous_level = root.level
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.setLogRecordFactory(_redacting_factory(previous_factory, redactor))
    root.addHandler(handler)
    root.setLevel(level_for(verbose))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        logging.setLogRecordFactory(previous_factory)


def set_verbosity(verbose: int) -> None:
    """Change the level once the command line is parsed (``-v`` may follow the verb)."""
    logging.getLogger().setLevel(level_for(verbose))
