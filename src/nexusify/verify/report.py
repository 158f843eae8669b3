"""What ``verify`` found, as data: per consumer, one :class:`Check` per kind (static, lock,
resolve, build), each ok / fail / n/a with its findings at file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nexusify.errors import format_location

Status = Literal["ok", "fail", "n/a"]
CHECKS = ("static", "lock", "resolve", "build")


@dataclass(frozen=True)
class Finding:
    """One reason a check failed, where it is (a file relative to the root, and a line when known)."""

    message: str
    path: str | None = None
    line: int | None = None
    hint: str | None = None

    @property
    def location(self) -> str:
        return format_location(self.path, self.line)

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message, "hint": self.hint}


@dataclass
class Check:
    name: str
    status: Status
    findings: list[Finding] = field(default_factory=list)
    detail: str = ""  # what was run or proved (ok), or why it does not apply (n/a)
    packages: list[str] = field(default_factory=list)  # shared packages it proved (normalised names)

    @classmethod
    def ok(cls, name: str, detail: str = "") -> Check:
        return cls(name, "ok", [], detail)

    @classmethod
    def na(cls, name: str, why: str) -> Check:
        return cls(name, "n/a", [], why)

    @classmethod
    def failed(cls, name: str, findings: list[Finding], detail: str = "") -> Check:
        return cls(name, "fail", findings, detail)

    @classmethod
    def of(cls, name: str, findings: list[Finding], detail: str = "") -> Check:
        """Failed with ``findings`` if any, else ok with ``detail`` (what it proved)."""
        return cls.failed(name, findings) if findings else cls.ok(name, detail)

    @property
    def cell(self) -> str:
        """The table cell: ok, n/a, or FAIL with the first reason."""
        if self.status == "fail":
            first = str(self.findings[0]) if self.findings else self.detail
            more = f" (+{len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
            return f"FAIL {first}{more}"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class ConsumerResult:
    name: str
    path: str  # folder relative to the root
    tool: str
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "tool": self.tool, "ok": not self.failed,
                "checks": {k: c.to_dict() for k, c in self.checks.items()}}


@dataclass
class VerifyReport:
    root: str
    index_url: str
    consumers: list[ConsumerResult] = field(default_factory=list)
    build: bool = False

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.consumers)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def columns(self) -> list[str]:
        return [c for c in CHECKS if c != "build" or self.build]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "index_url": self.index_url, "ok": not self.failed,
                "checks": self.columns, "consumers": [c.to_dict() for c in self.consumers]}
