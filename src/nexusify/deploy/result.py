"""What a deploy or rollback reports: progress events, the result as data, and the error that carries
the partial result when it stops partway (one reporter in ``commands/deploy.py`` renders both)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nexusify.errors import DeployError, NexusifyError

EventSink = Callable[["Event"], None]


@dataclass(frozen=True)
class Event:
    """Progress of the pipeline: ``kind`` is start, done, skip, info or fail."""

    kind: str
    stage: str
    message: str = ""
    seconds: float | None = None


@dataclass
class DeployResult:
    environment: str
    action: str
    version: str | None
    outcome: str = "success"
    stages: dict[str, float] = field(default_factory=dict)
    services: list[dict[str, Any]] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    secret_versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    record_id: str | None = None
    recovered: list[str] = field(default_factory=list)
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment, "action": self.action, "version": self.version,
            "outcome": self.outcome, "duration": round(self.duration, 3),
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
            "services": self.services, "migrations": self.migrations, "images": self.images,
            "secret_versions": self.secret_versions, "record_id": self.record_id,
            "recovered": self.recovered, "error": self.error,
        }



class NotSwitched(DeployError):
    """A green was unhealthy (or a switch failed): traffic did not move to the new version.
    The message says what happened to the other services of the deploy (removed, switched back)."""


class DeployFailed(DeployError):
    """A deploy or rollback stopped partway. Carries the cause's message, location, hint and exit
    code, and ``result``: the partial :class:`DeployResult` (what was switched, what was recorded)."""

    def __init__(self, cause: NexusifyError, result: DeployResult, *, message: str | None = None) -> None:
        super().__init__(message if message is not None else cause.message, hint=cause.hint, path=cause.path,
                         line=cause.line, column=cause.column)
        self.cause = cause
        self.result = result
        self.exit_code = cause.exit_code

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "error": type(self.cause).__name__}


class Stage:
    """Times one stage of ``result`` and reports its start, end or failure to ``sink``."""

    def __init__(self, result: DeployResult, sink: EventSink, name: str) -> None:
        self.result, self.sink, self.name = result, sink, name

    def __enter__(self) -> Stage:
        self.t0 = time.monotonic()
        self.sink(Event("start", self.name))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        took = time.monotonic() - self.t0
        self.result.stages[self.name] = took
        if exc is None:
            self.sink(Event("done", self.name, seconds=took))
        elif isinstance(exc, Exception):
            self.sink(Event("fail", self.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, took))


def no_events(_e: Event) -> None:
    return None


__all__ = ["DeployFailed", "DeployResult", "Event", "EventSink", "NotSwitched", "Stage", "no_events"]
