"""The demo's report: steps (each timed, with what it proved), progress events, and the
runner that records a step into the report while emitting its events."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.credentials import redact
from nexusify.errors import NexusifyError
from nexusify.verify import VerifyReport

STEP_TITLES: dict[str, str] = {
    "prepare": "copy the sample monorepo",
    "index": "start the local index",
    "audit": "audit",
    "publish": "publish",
    "rewrite": "rewrite",
    "install": "clean install",
    "verify": "verify",
    "build": "build image",
    "verify-build": "verify --build",
    "deploy-v1": "deploy v1",
    "deploy-v2": "deploy v2",
    "rollback": "roll back",
    "cleanup": "clean up",
}
STEP_DOING: dict[str, str] = {
    "prepare": "copying the sample monorepo to the working folder",
    "index": "starting a local PyPI index (pypiserver) on a free loopback port",
    "audit": "finding the shared packages, the services and their path dependencies",
    "publish": "building every shared package and uploading it in dependency order",
    "rewrite": "making the services depend on the shared packages by version from the index",
    "install": "installing a rewritten service's shared packages into a new virtualenv from the index alone",
    "verify": "proving the migration per consumer: no path left, locks accepted, resolves from the index alone",
    "build": "building the service's image with its rewritten folder as the only build context",
    "verify-build": "building the service's image as `nexusify verify --build` does and importing the shared packages",
    "deploy-v1": "deploying v1 behind a private nginx",
    "deploy-v2": "deploying v2 blue-green while a client keeps asking",
    "rollback": "rolling back to v1 (its kept container; no build)",
    "cleanup": "removing the demo's containers, images and nginx",
}
ENGINE_STEPS = ("build", "verify-build", "deploy-v1", "deploy-v2", "rollback", "cleanup")
# The engine steps' time budget in seconds, on 2 cores with the caches warm (the whole demo: 20 s):
# the summary shows each step's time against its budget, so a step that grew is seen at once.
STEP_BUDGET: dict[str, float] = {
    "build": 3.0, "verify-build": 3.0, "deploy-v1": 2.5, "deploy-v2": 3.0, "rollback": 1.0, "cleanup": 1.5,
}


@dataclass(frozen=True)
class DemoEvent:
    """Progress: ``kind`` is start, done, skip, fail or info."""

    kind: str
    step: str
    message: str = ""
    seconds: float | None = None


EventSink = Callable[[DemoEvent], None]


@dataclass
class DemoOptions:
    workdir: Path
    engine: bool = True  # False: --no-engine
    env: Mapping[str, str] | None = None  # DOCKER_HOST, PATH, HOME... (default: os.environ)
    cache_dir: Path | None = None  # build envs and backend wheels (default: user cache dir)
    settings: Mapping[str, Any] = field(default_factory=dict)  # constraint, priority, source_name, jobs


@dataclass
class Step:
    name: str
    status: str = "pending"  # ok | skipped | failed | pending
    seconds: float = 0.0
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)

    @property
    def budget(self) -> float | None:
        """The step's time budget in seconds (:data:`STEP_BUDGET`; None: the step has none)."""
        return STEP_BUDGET.get(self.name)

    @property
    def over_budget(self) -> bool:
        return self.status == "ok" and self.budget is not None and self.seconds > self.budget

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "seconds": round(self.seconds, 3),
                "budget": self.budget, "over_budget": self.over_budget, "summary": self.summary,
                "details": self.details}


@dataclass
class DemoReport:
    workdir: Path
    steps: list[Step] = field(default_factory=list)
    index_url: str | None = None
    index_port: int | None = None
    index_stopped: bool = False
    engine_skipped: str | None = None  # why the container steps were skipped
    notes: list[str] = field(default_factory=list)
    environment: str | None = None  # the deploy environment, once something was deployed
    seconds: float = 0.0
    error: NexusifyError | None = None
    verify: VerifyReport | None = None  # what `nexusify verify` said about the rewritten sample

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.status in ("ok", "skipped") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "workdir": str(self.workdir), "seconds": round(self.seconds, 3),
            "index": {"url": self.index_url, "port": self.index_port, "stopped": self.index_stopped},
            "engine_skipped": self.engine_skipped, "notes": self.notes, "environment": self.environment,
            "steps": [s.to_dict() for s in self.steps],
            "verify": self.verify.to_dict() if self.verify else None,
            "error": self.error.to_dict() if self.error else None,
        }


class StepRunner:
    """Runs the demo's steps: times each, records it in the report, emits its events, and keeps
    the run's secrets (``hide``) out of every message."""

    def __init__(self, report: DemoReport, sink: EventSink, hide: list[str]) -> None:
        self.report = report
        self.sink = sink
        self.hide = hide

    def clean(self, text: str) -> str:
        return redact(text, *self.hide)

    def info(self, step: str, message: str) -> None:
        self.sink(DemoEvent("info", step, self.clean(message)))

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        self.report.steps.append(step)
        self.sink(DemoEvent("start", name, STEP_DOING.get(name, step.title)))
        t0 = time.monotonic()
        try:
            yield step
        except NexusifyError as exc:
            step.seconds = time.monotonic() - t0
            step.status = "failed"
            exc.message = self.clean(exc.message)
            exc.args = (exc.message,)
            if name in ENGINE_STEPS:
                skip = "`nexusify demo --no-engine` runs the rest without the container steps"
                exc.hint = f"{exc.hint}; {skip}" if exc.hint else skip
            step.summary = exc.message.splitlines()[0]
            self.sink(DemoEvent("fail", name, step.summary, step.seconds))
            raise
        except BaseException as exc:
            step.seconds = time.monotonic() - t0
            step.status = "failed"
            step.summary = "internal error" if isinstance(exc, Exception) else "interrupted"
            raise
        step.seconds = time.monotonic() - t0
        if step.status == "pending":
            step.status = "ok"
        step.summary = self.clean(step.summary)
        self.sink(DemoEvent("done" if step.status == "ok" else "skip", name, step.summary, step.seconds))

    def skip(self, name: str, why: str) -> None:
        step = Step(name, "skipped", 0.0, why)
        self.report.steps.append(step)
        self.sink(DemoEvent("skip", name, why, 0.0))
