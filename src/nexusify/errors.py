"""Every error nexusify raises, under one root, each with its exit code and a hint.

The CLI turns these into messages and exit codes in exactly one place (``cli.main``).
Exit codes: 0 success, 1 the operation found problems or failed, 2 usage or configuration,
70 an internal error (EX_SOFTWARE, as sysexits.h: a bug in nexusify, never "problems found").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning"]


def format_location(path: str | None, line: int | None = None, column: int | None = None) -> str:
    """``path:line:column`` (as far as known), the one form every message and problem uses."""
    loc = path or ""
    if loc and line:
        loc += f":{line}"
        if column:
            loc += f":{column}"
    return loc


class NexusifyError(Exception):
    """Root of every error nexusify raises on purpose."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column

    @property
    def location(self) -> str | None:
        if self.path is None:
            return None
        return format_location(self.path, self.line, self.column)

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "exit_code": self.exit_code,
        }


EX_SOFTWARE = 70  # sysexits.h: an internal software error


class InternalError(NexusifyError):
    """nexusify broke one of its own invariants (a bug): nothing was written; report it."""

    exit_code = EX_SOFTWARE


class UsageError(NexusifyError):
    """The command line is wrong."""

    exit_code = 2


class ConfigError(NexusifyError):
    """A setting or configuration file is wrong."""

    exit_code = 2


class ConfigErrors(ConfigError):
    """Several configuration problems, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__(
            f"{len(errors)} configuration problem(s):\n" + "\n".join(f"  {e}" for e in errors)
        )

    def __str__(self) -> str:
        return self.message


class TomlError(ConfigError):
    """A TOML file could not be parsed."""


class NotImplementedYet(NexusifyError):
    """A verb whose issue has not landed."""

    exit_code = 2


class ProblemsFound(NexusifyError):
    """The operation ran and found error-severity problems (audit, rewrite --check)."""


class OperationFailed(NexusifyError):
    """The operation could not complete."""


class IndexServerError(OperationFailed):
    """The package index (Nexus or another PyPI server) refused or failed a request."""


class AuthError(IndexServerError):
    """The index rejected the credentials (401) or lacks a privilege (403)."""


class BuildError(OperationFailed):
    """A package failed to build."""


class DeployError(OperationFailed):
    """A deploy stage failed."""


class LockHeld(DeployError):
    """Another deploy holds the environment's lock."""


class ExtraMissing(UsageError):
    """A verb needs an optional part of nexusify that is not installed (``pip install 'nexusify[X]'``)."""


# --------------------------------------------------------------------------- problems


@dataclass
class Problem:
    severity: Severity
    code: str
    path: str | None
    line: int | None
    message: str
    hint: str | None = None
    column: int | None = None
    subjects: tuple[str, ...] = ()  # the package names a graph problem concerns (cycle members, a duplicate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity, "code": self.code, "path": self.path,
            "line": self.line, "column": self.column, "message": self.message, "hint": self.hint,
        }

    @property
    def location(self) -> str:
        return format_location(self.path, self.line, self.column)

    def __str__(self) -> str:
        loc = self.location
        text = f"{loc}: {self.severity}[{self.code}]: {self.message}" if loc else f"{self.severity}[{self.code}]: {self.message}"
        return text + (f" (hint: {self.hint})" if self.hint else "")


class HasProblems:
    """For reports holding a ``problems`` list: its errors and warnings."""

    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]
