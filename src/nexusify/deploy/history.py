"""Append-only deployment history per environment.

``<state_path>/deploy/<environment>/history.jsonl`` holds one JSON object per line: who
(``user@host``), when, action (deploy or rollback), outcome, duration, stage timings, and per
service the version, image, digest, what served before and the migration revisions; plus the
secret version ids (AWS ``VersionId``), never secret values.

Each append writes one complete line with a single ``write`` on an ``O_APPEND`` descriptor under
an exclusive ``flock`` and ``fsync``s it, so concurrent writers never interleave and a crash
leaves at most a torn last line, which readers skip (and the next append starts on a new line).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nexusify.deploy.secrets import SecretBundle
from nexusify.errors import DeployError
from nexusify.files import confined

OUTCOMES = ("success", "failed", "unhealthy", "aborted")
ACTIONS = ("deploy", "rollback")
SCHEMA_VERSION = 1


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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
    id: str = ""  # set by append_record when empty

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["services"] = [asdict(s) for s in self.services]
        data["secret_versions"] = dict(self.secret_versions)
        data["stages"] = {k: round(v, 3) for k, v in self.stages.items()}
        data["duration"] = round(self.duration, 3)
        return {"schema": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["services"] = tuple(ServiceRecord.from_dict(s) for s in data.get("services", []))
        values["secret_versions"] = dict(data.get("secret_versions", {}))
        values["stages"] = dict(data.get("stages", {}))
        return cls(**values)

    def service(self, name: str) -> ServiceRecord | None:
        return next((s for s in self.services if s.name == name), None)


def who(env: Mapping[str, str] | None = None) -> str:
    """``user@host`` of the person deploying (NEXUSIFY_DEPLOYER overrides)."""
    env = env if env is not None else os.environ
    if env.get("NEXUSIFY_DEPLOYER"):
        return env["NEXUSIFY_DEPLOYER"]
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def utc_now() -> str:
    """Now as ISO 8601 UTC with seconds (``2026-01-02T03:04:05Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_record_id() -> str:
    """Sortable id: UTC timestamp plus a random suffix (``20260102T030405Z-1a2b3c``)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def history_path(state_path: Path, environment: str) -> Path:
    """``<state_path>/deploy/<environment>/history.jsonl`` (pass ``settings.state_path``)."""
    if not environment or "/" in environment or environment in (".", ".."):
        raise DeployError(f"invalid environment name {environment!r}")
    return confined(state_path, Path("deploy", environment, "history.jsonl"),
                    source=str(Path(state_path, "deploy", environment, "history.jsonl")), what="deploy history", plain=True)


def record_line(record: DeploymentRecord, secrets: SecretBundle | None = None) -> str:
    """The record as stored: one line of JSON, any secret value of ``secrets`` replaced by
    ``<hidden>`` (the local file and the copies on the hosts hold the same text)."""
    line = json.dumps(record.to_dict(), sort_keys=False, separators=(",", ":"), default=str)
    return secrets.redact(line) if secrets is not None else line


def append_record(state_path: Path, record: DeploymentRecord, *, secrets: SecretBundle | None = None) -> DeploymentRecord:
    """Append one record atomically (O_APPEND of one complete line + fsync); returns it with its id.

    With ``secrets``, any secret value that slipped into the record is replaced by ``<hidden>``.
    """
    if record.action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {record.action!r}")
    if record.outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {record.outcome!r}")
    if not record.id:
        record = replace(record, id=new_record_id())
    data = (record_line(record, secrets) + "\n").encode("utf-8")
    path = history_path(state_path, record.environment)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DeployError(f"cannot open the deployment history: {exc.strerror}", path=path) from exc
    size = 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size:
            # a crash mid-append may have left a torn line: start ours on a fresh line
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):  # pragma: no cover - regular files write whole buffers
            raise DeployError(f"short write to the deployment history ({written} of {len(data)} bytes)", path=path)
        os.fsync(fd)
    except OSError as exc:
        raise DeployError(f"cannot append to the deployment history: {exc.strerror}", path=path) from exc
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    if size == 0:
        # a new file: make its directory entry durable too
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    return record


def read_history(state_path: Path, environment: str, *, limit: int | None = None) -> list[DeploymentRecord]:
    """Records oldest first (the last ``limit`` when given); a torn last line is skipped."""
    path = history_path(state_path, environment)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DeployError(f"cannot read the deployment history: {exc.strerror}", path=path) from exc
    records: list[DeploymentRecord] = []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            records.append(DeploymentRecord.from_dict(data))
        except (ValueError, TypeError, KeyError) as exc:
            if number == len(lines) or _torn(line, exc):  # the last piece has no newline: cut short
                continue  # an append interrupted mid-write (the next append starts on a fresh line)
            column = exc.colno if isinstance(exc, json.JSONDecodeError) else None
            raise DeployError(f"the deployment history is damaged at line {number}: {exc}", path=path, line=number,
                              column=column,
                              hint="the file is append-only JSON lines; remove or fix that line") from None
    return records[-limit:] if limit else records


def _torn(line: bytes, exc: Exception) -> bool:
    """An append cut short: the JSON parser ran out of input (the error is at the line's end).
    Any other unreadable line is damage, reported with its line number."""
    if not isinstance(exc, json.JSONDecodeError):
        return False
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(line.decode("utf-8", "replace").rstrip())


def last_successful(state_path: Path, environment: str, service: str) -> list[ServiceRecord]:
    """The service's versions that served successfully, newest first (rollback targets)."""
    seen: set[str] = set()
    out: list[ServiceRecord] = []
    for rec in reversed(read_history(state_path, environment)):
        if rec.outcome != "success":
            continue
        svc = rec.service(service)
        if svc is None or svc.outcome not in (None, "success") or svc.version in seen:
            continue
        seen.add(svc.version)
        out.append(svc)
    return out


__all__ = [
    "ACTIONS", "OUTCOMES", "DeploymentRecord", "ServiceRecord", "append_record", "history_path", "last_successful",
    "new_record_id", "read_history", "record_line", "utc_now", "who",
]
