"""Publish's local state: what was published where, and whether a download proved it.

``.nexusify/publish-state.json`` holds, per index (its URL, credentials masked) and per package,
the record of the last publish: version, fingerprint of the sources, the files and their
digests. A package whose upload did not verify (the index served other bytes, or did not list
the file) keeps a record with ``"unverified"`` set to the reason: the next run does not trust
the index page's hash for it, and checks by downloading until the bytes really match.

A damaged state file is an error naming the file and line, never read as empty: an empty
state would forget which packages are unverified. Writes are atomic, under the publish lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from nexusify.config import Settings
from nexusify.credentials import mask_url
from nexusify.errors import OperationFailed
from nexusify.files import write_atomic

STATE_FILE = "publish-state.json"
STATE_LAYOUT = 1

Record = dict[str, Any]


def state_path(settings: Settings) -> Path:
    return settings.state_file(STATE_FILE)


def _empty() -> dict[str, Any]:
    return {"layout": STATE_LAYOUT, "indexes": {}}


def load_state(settings: Settings) -> dict[str, Any]:
    """The state on disk; empty when there is none (a fresh clone) or it has an older layout."""
    path = state_path(settings)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationFailed(f"cannot read the publish state: {exc}", path=path,
                          hint="fix its permissions, or delete it to re-check every package against the index") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperationFailed(f"the publish state is damaged (invalid JSON: {exc.msg})", path=path,
                              line=exc.lineno, column=exc.colno,
                          hint="delete it: the next publish compares every package with the index again") from exc
    if not isinstance(data, dict) or not isinstance(data.get("indexes", {}), dict):
        raise OperationFailed("this is not a nexusify publish state (a JSON object with \"indexes\")", path=path,
                          hint="delete it: the next publish compares every package with the index again")
    if data.get("layout") != STATE_LAYOUT:
        return _empty()
    data.setdefault("indexes", {})
    return data


def index_key(url: str) -> str:
    return mask_url(url).rstrip("/") + "/"


def records_for(state: Mapping[str, Any], upload_url: str) -> dict[str, Record]:
    """The records of one index (a live part of ``state``: changes are kept)."""
    indexes: dict[str, dict[str, Record]] = state["indexes"]
    return indexes.setdefault(index_key(upload_url), {})


def new_record(version: str, fingerprint: str, files: Mapping[str, Mapping[str, str]],
               build_seconds: float | None, unverified: str | None = None) -> Record:
    record: Record = {
        "version": version, "fingerprint": fingerprint,
        "files": {name: dict(digests) for name, digests in files.items()},
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": build_seconds,
    }
    if unverified:
        record["unverified"] = unverified
    return record


def unverified_reason(record: Mapping[str, Any] | None) -> str | None:
    """Why the last upload of this record was not proven by a download (None when it was)."""
    if not record:
        return None
    reason = record.get("unverified")
    return str(reason) if reason else None


def save_records(settings: Settings, upload_url: str, names: Iterable[str], records: Mapping[str, Record]) -> None:
    """Write this run's records over the state on disk (re-read under the lock, so records of
    packages this run did not touch, e.g. from a run with other PACKAGE arguments, are kept)."""
    state = load_state(settings)
    mine = records_for(state, upload_url)
    for name in names:
        if name in records:
            mine[name] = records[name]
        else:
            mine.pop(name, None)
    write_atomic(state_path(settings), json.dumps(state, indent=2, sort_keys=True) + "\n")


def publish_lock(settings: Settings) -> IO[str]:
    """An exclusive lock on the monorepo's publish state: two runs at once would race on it."""
    import fcntl

    fh = settings.state_file("publish.lock").open("a")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise OperationFailed(
            f"another `nexusify publish` is running on {settings.root}",
            hint="wait for it to finish (its lock is .nexusify/publish.lock), then re-run",
        ) from None
    return fh
