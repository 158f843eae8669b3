"""Append-only deployment history per environment. INTERFACE (in progress).

``<state_path>/deploy/<environment>/history.jsonl``: one JSON object per line, each appended
atomically. Records hold secret version ids, never secret values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.deploy.secrets import SecretBundle

OUTCOMES = ("success", "failed", "unhealthy", "aborted")
ACTIONS = ("deploy", "rollback")


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    version: str  # git SHA (+ "-dirty") the image was built from
    image: str | None = None  # full reference, e.g. 127.0.0.1:5000/api:abc123
    digest: str | None = None  # image id or registry digest (sha256:...)
    previous_version: str | None = None  # what served before this deploy/rollback
    migration_before: str | None = None
    migration_after: str | None = None
    outcome: str | None = None  # per-service outcome when it differs from the deploy's


@dataclass(frozen=True)
class DeploymentRecord:
    environment: str
    action: str  # "deploy" | "rollback"
    outcome: str  # one of OUTCOMES
    started_at: str  # ISO 8601 UTC
    finished_at: str
    duration: float  # seconds
    who: str  # user@host
    services: tuple[ServiceRecord, ...] = ()
    secret_versions: Mapping[str, str] = field(default_factory=dict)  # source id -> version id
    stages: Mapping[str, float] = field(default_factory=dict)  # stage -> seconds
    error: str | None = None  # message only, secrets redacted
    id: str = ""  # set by new_record_id() when empty

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentRecord:
        raise NotImplementedError


def who(env: Mapping[str, str] | None = None) -> str:
    """``user@host`` of the person deploying (NEXUSIFY_DEPLOYER overrides)."""
    raise NotImplementedError


def utc_now() -> str:
    """Now as ISO 8601 UTC with seconds (``2026-01-02T03:04:05Z``)."""
    raise NotImplementedError


def history_path(state_path: Path, environment: str) -> Path:
    """``<state_path>/deploy/<environment>/history.jsonl`` (pass ``settings.state_path``)."""
    raise NotImplementedError


def append_record(state_path: Path, record: DeploymentRecord, *, secrets: SecretBundle | None = None) -> DeploymentRecord:
    """Append one record atomically (O_APPEND of one complete line + fsync); returns it with its id.

    With ``secrets``, any secret value that slipped into the record is replaced by ``<hidden>``.
    """
    raise NotImplementedError


def read_history(state_path: Path, environment: str, *, limit: int | None = None) -> list[DeploymentRecord]:
    """Records oldest first (the last ``limit`` when given); a torn last line is skipped."""
    raise NotImplementedError


def last_successful(state_path: Path, environment: str, service: str) -> list[ServiceRecord]:
    """The service's versions that served successfully, newest first (rollback targets)."""
    raise NotImplementedError
