"""Output for people and machines: rich tables and progress on a terminal, JSON with --json.

Everything printed goes through :meth:`Output.redact` (one :class:`~nexusify.credentials.Redactor`,
shared with the log handler, see :mod:`nexusify.ui.logs`), which removes the index password, URL
credentials and Authorization headers: a secret cannot reach the terminal or a CI log by accident.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from nexusify.credentials import Redactor, Secret, secrets_in_env

if TYPE_CHECKING:  # rich is imported when something is rendered with it (not for --json output)
    from rich.console import Console
    from rich.progress import Progress


class Output:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        verbose: int = 0,
        env: Mapping[str, str] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        env = env or {}
        self.json_mode = json_mode
        self.verbose = verbose
        self.redactor = redactor or Redactor(secrets_in_env(env))
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self._no_color = "NO_COLOR" in env
        self._console: Console | None = None
        self._err: Console | None = None

    @property
    def console(self) -> Console:
        """The rich console on stdout (made when first used)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=cast(IO[str], _Redacting(self._stdout, self)), no_color=self._no_color,
                                    highlight=False, soft_wrap=True,
                                    force_terminal=None if self._stdout.isatty() else False,
                                    width=None if self._stdout.isatty() else 160)
        return self._console

    @property
    def err(self) -> Console:
        """The rich console on stderr (made when first used)."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(file=cast(IO[str], _Redacting(self._stderr, self)), no_color=self._no_color,
                                highlight=False, soft_wrap=True,
                                force_terminal=None if self._stderr.isatty() else False)
        return self._err

    @property
    def interactive(self) -> bool:
        return not self.json_mode and self._stderr.isatty()

    def redact(self, text: str) -> str:
        return self.redactor(text)

    def add_secret(self, value: Secret | str | None) -> None:
        """Hide ``value`` too from now on (a password found in a URL given as a flag)."""
        self.redactor.add(value)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.json_mode:
            self.err.print(*objects, **kwargs)
        else:
            self.console.print(*objects, **kwargs)

    def info(self, message: str) -> None:
        """A progress line (stderr), shown unless --json."""
        if not self.json_mode:
            self.err.print(message, markup=False)

    def debug(self, message: str) -> None:
        if self.verbose:
            self.err.print(f"[dim]{message}[/dim]")

    def json(self, data: Any) -> None:
        self._stdout.write(self.redact(json.dumps(data, indent=2, sort_keys=False, default=str)) + "\n")
        self._stdout.flush()

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        from rich.table import Table

        table = Table(title=title, show_lines=False, title_justify="left")
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        self.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[_Progress]:
        """A progress bar on a terminal; silent otherwise (CI logs, pipes, --json)."""
        if not self.interactive:
            yield _Progress(None, None)
            return
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                       TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                       console=self.err, transient=True)
        with bar:
            task = bar.add_task(description, total=total)
            yield _Progress(bar, task)


class _Progress:
    def __init__(self, bar: Progress | None, task: Any) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: int = 1, description: str | None = None) -> None:
        if self._bar is not None:
            kwargs: dict[str, Any] = {"advance": n}
            if description:
                kwargs["description"] = description
            self._bar.update(self._task, **kwargs)


class _Redacting:
    """A text stream wrapper that redacts secrets from whatever is written."""

    def __init__(self, inner: IO[str], out: Output) -> None:
        self._inner = inner
        self._out = out

    def write(self, s: str) -> int:
        return self._inner.write(self._out.redact(s))

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._inner, "encoding", "utf-8") or "utf-8"

