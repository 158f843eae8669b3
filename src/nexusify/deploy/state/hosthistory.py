"""The deployment history kept on the hosts, so ``nexusify history`` from any clone shows it.

Every host of an environment holds a named volume ``nexusify-ENV-history`` with one file per
record (``<record id>.json``, the same redacted JSON line as the local ``history.jsonl``). A
record is added by creating a container (never started) that mounts the volume and putting one
file into it (``put_archive``): no read-modify-write, so two machines appending at once cannot
lose each other's record. Reading copies the folder out (``get_archive``) the same way. Each
host keeps its own copy; a reader merges the copies and the local file by record id.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets as _random
import tarfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath

from nexusify.deploy.runtime.engine import ROLE_HISTORY, Engine
from nexusify.deploy.runtime.objects import (
    HISTORY_MOUNT,
    create_marker_container,
    history_exists,
    history_volume,
    object_labels,
    remove_container,
)
from nexusify.deploy.runtime.sdk import Conflict
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state.history import DeploymentRecord, record_line
from nexusify.deploy.state.hostset import Host
from nexusify.errors import DeployError


@dataclass(frozen=True)
class HostRecords:
    """What one host's history volume holds (``error``: why it could not be read)."""

    host: str
    records: tuple[DeploymentRecord, ...] = ()
    error: str | None = None


def _ensure_volume(engine: Engine, environment: str) -> str:
    name = history_volume(environment)
    if history_exists(engine, environment):
        return name
    with contextlib.suppress(Conflict):  # created by another machine meanwhile: the same volume
        engine.client.api.create_volume(name, labels=object_labels(environment, ROLE_HISTORY))
    return name


def _helper_name(environment: str) -> str:
    return f"nexusify-{environment}-history-{_random.token_hex(4)}"


def write_record(engine: Engine, environment: str, record_id: str, line: str) -> None:
    """Put one record file into the host's history volume (the volume is created the first time)."""
    volume = _ensure_volume(engine, environment)
    ident = create_marker_container(engine, _helper_name(environment), object_labels(environment, ROLE_HISTORY),
                                    volume=volume)
    try:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as tf:
            info = tarfile.TarInfo(f"{record_id}.json")
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tf.addfile(info, io.BytesIO(data))
        if not engine.client.api.put_archive(ident, HISTORY_MOUNT, tar.getvalue()):
            raise DeployError(f"the engine refused to store history record {record_id}")
    finally:
        remove_container(engine, ident)


def append_on_hosts(hosts: Sequence[Host], record: DeploymentRecord, secrets: SecretBundle | None = None) -> list[str]:
    """Store ``record`` (redacted like the local copy) on every host; the hosts where it failed,
    each as a message (the deploy happened: a missing copy is a warning, not a failure)."""
    line = record_line(record, secrets)

    def store(host: Host) -> str | None:
        name, engine = host
        try:
            write_record(engine, record.environment, record.id, line)
        except DeployError as exc:  # the engine's typed errors included (nexusify.deploy.runtime.sdk)
            text = exc.message
            return f"host {name}: history record {record.id} not stored: " + (secrets.redact(text) if secrets else text)
        return None

    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:  # hosts answer in parallel
        return [msg for msg in pool.map(store, hosts) if msg is not None]


def read_records(engine: Engine, environment: str) -> list[DeploymentRecord]:
    """Every record in this host's history volume (none when the volume does not exist)."""
    api = engine.client.api
    if not history_exists(engine, environment):
        return []
    ident = create_marker_container(engine, _helper_name(environment), object_labels(environment, ROLE_HISTORY),
                                    volume=history_volume(environment))
    try:
        stream, _stat = api.get_archive(ident, HISTORY_MOUNT + "/")
        raw = b"".join(stream)
    finally:
        remove_container(engine, ident)
    out: list[DeploymentRecord] = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        for member in tf.getmembers():
            if not member.isfile() or not member.name.endswith(".json"):
                continue
            fh = tf.extractfile(member)
            if fh is None:
                continue
            try:
                out.append(DeploymentRecord.from_dict(json.loads(fh.read())))
            except (ValueError, TypeError, KeyError) as exc:
                raise DeployError(f"history record {PurePosixPath(member.name).name} in volume "
                                  f"{history_volume(environment)} is damaged: {exc}",
                                  hint="remove that file from the volume; the other hosts keep their copy") from None
    return out


def read_on_hosts(hosts: Sequence[Host], environment: str) -> list[HostRecords]:
    """Each host's records, or why they could not be read (one unreachable host hides no other)."""
    found: list[HostRecords] = []
    for name, engine in hosts:
        try:
            found.append(HostRecords(name, tuple(read_records(engine, environment))))
        except DeployError as exc:
            text = exc.message
            found.append(HostRecords(name, error=text))
    return found


def merge_records(*sources: Iterable[DeploymentRecord]) -> list[DeploymentRecord]:
    """One list, each record once (by id; the first source's copy wins), oldest first."""
    seen: dict[str, DeploymentRecord] = {}
    for source in sources:
        for rec in source:
            seen.setdefault(rec.id or f"{rec.started_at}|{rec.who}|{rec.action}", rec)
    return sorted(seen.values(), key=lambda r: (r.started_at, r.id))


__all__ = ["HostRecords", "append_on_hosts", "merge_records", "read_on_hosts", "read_records", "write_record"]
