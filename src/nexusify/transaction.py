"""Writing several files of the monorepo as one transaction: all of them, or none.

Every command that writes more than one file of the monorepo (``rewrite`` with its re-locked
lockfiles, ``init --force``) calls :func:`write_files`. It works in ``<root>/.nexusify/txn/<id>/``,
outside every service folder, so a ``COPY . .`` never picks a staged file up (a Dockerfile whose
build context is the monorepo root should list ``.nexusify/`` in its ``.dockerignore``):

1. **stage**: each new content is written to ``<n>.new`` and fsynced; each existing target gets a
   hard link ``<n>.old`` (its old content, for undo). A failure here removes the folder: nothing
   was written.
2. **journal**: ``journal.json`` lists every target with the SHA-256 of its old and new content;
   it is written to a temporary name, fsynced and renamed. Its presence is the commit point.
3. **commit**: each ``<n>.new`` is renamed over its target (SIGINT/SIGTERM are held back until
   the last rename; then the command stops, saying the write was finished first). A failing
   rename undoes the ones before it from the ``.old`` links.
4. **clean**: the journal and the folder are removed.

A process killed at any point leaves the folder behind. :func:`recover`, which the CLI runs
before any command, finishes it: with a journal, the commit is rolled forward (every target gets
its new content); without one, nothing had been renamed yet and the staged files are removed.
A target changed by hand since the crash (neither its old nor its new content) is never
overwritten: recovery stops with an error naming it. One lock (``flock`` on the ``txn`` folder)
serialises writers and recovery, so recovery never touches a live transaction; the kernel
drops it when a process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.errors import OperationFailed
from nexusify.files import relpath
from nexusify.interrupts import Interrupted, interrupts_deferred

TXN_DIR = Path(".nexusify") / "txn"
JOURNAL = "journal.json"


@dataclass(frozen=True)
class Recovered:
    """What :func:`recover` did with one interrupted transaction."""

    command: str
    action: str  # "completed" | "rolled-back"
    files: tuple[str, ...]

    def __str__(self) -> str:
        if self.action == "completed":
            return (f"an interrupted `nexusify {self.command}` was completed first: its {len(self.files)} file(s) "
                    f"now hold the new content ({', '.join(self.files)})")
        return (f"an interrupted `nexusify {self.command}` was rolled back first: it had not replaced any file "
                "yet, and its staged copies were removed")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[Path]:
    base = root / TXN_DIR
    base.mkdir(parents=True, exist_ok=True)
    fd = os.open(base, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield base
    finally:
        os.close(fd)  # releases the lock


def write_files(root: Path, changes: Sequence[tuple[Path, bytes | str]], *, command: str) -> None:
    """Write every ``(path, content)`` of ``changes`` (paths under ``root``) or none of them."""
    root = root.resolve()
    if not changes:
        return
    with _locked(root) as base:
        _recover_locked(root, base)
        folder = base / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        try:
            (folder / "command").write_text(command, encoding="utf-8")
            entries = _stage(root, folder, changes)
            _write_journal(folder, command, entries)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, OSError):
                raise OperationFailed(f"could not stage the changes: {exc}",
                                      hint="nothing was written; fix the cause and re-run") from exc
            raise
        with interrupts_deferred() as deferred:
            _commit(root, folder, entries)
        if deferred.received:
            raise Interrupted(f"the `{command}` write in progress was finished first: "
                              f"all {len(entries)} file(s) hold their new content")


def _stage(root: Path, folder: Path, changes: Sequence[tuple[Path, bytes | str]]) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    device = folder.stat().st_dev
    for n, (target, data) in enumerate(changes):
        target = Path(os.path.abspath(target))
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if target.parent.stat().st_dev != device:
            raise OperationFailed(
                f"{target} is on another filesystem than {folder.parent}, so it cannot be replaced atomically",
                hint="nothing was written; keep the monorepo on one filesystem",
            )
        old_sha: str | None = None
        mode = 0o644
        if target.exists():
            old_sha = _sha(target.read_bytes())
            mode = target.stat().st_mode & 0o7777
            try:
                os.link(target, folder / f"{n}.old")
            except OSError:
                shutil.copy2(target, folder / f"{n}.old")
        with open(folder / f"{n}.new", "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(folder / f"{n}.new", mode)
        entries.append({"target": relpath(target, root), "n": n, "old": old_sha, "new": _sha(raw)})
    _fsync_dir(folder)
    return entries


def _write_journal(folder: Path, command: str, entries: list[dict[str, object]]) -> None:
    tmp = folder / (JOURNAL + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"version": 1, "command": command, "pid": os.getpid(), "started": time.time(),
                   "files": entries}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / JOURNAL)
    _fsync_dir(folder)


def _target(root: Path, entry: dict[str, object]) -> Path:
    t = Path(str(entry["target"]))
    return t if t.is_absolute() else root / t


def _commit(root: Path, folder: Path, entries: list[dict[str, object]]) -> None:
    done: list[dict[str, object]] = []
    try:
        for e in entries:
            os.replace(folder / f"{e['n']}.new", _target(root, e))
            done.append(e)
    except OSError as exc:
        _undo(root, folder, done)
        shutil.rmtree(folder, ignore_errors=True)
        raise OperationFailed(f"could not write {e['target']}: {exc.strerror or exc}",
                              hint="nothing was written (the files already replaced were restored); "
                                   "fix the cause and re-run") from exc
    for parent in {_target(root, e).parent for e in entries}:
        _fsync_dir(parent)
    _clean(folder)


def _undo(root: Path, folder: Path, done: list[dict[str, object]]) -> None:
    for e in reversed(done):
        target = _target(root, e)
        old = folder / f"{e['n']}.old"
        if e["old"] is None:
            target.unlink(missing_ok=True)
        elif old.exists():
            os.replace(old, target)


def _clean(folder: Path) -> None:
    (folder / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def recover(root: Path) -> list[Recovered]:
    """Finish every transaction an earlier nexusify left behind in ``root`` (see the module docstring)."""
    root = root.resolve()
    if not (root / TXN_DIR).is_dir():
        return []
    with _locked(root) as base:
        return _recover_locked(root, base)


def _recover_locked(root: Path, base: Path) -> list[Recovered]:
    done: list[Recovered] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        journal = folder / JOURNAL
        if not journal.exists():
            try:
                command = (folder / "command").read_text(encoding="utf-8").strip() or "?"
            except OSError:
                command = "?"
            shutil.rmtree(folder, ignore_errors=True)
            done.append(Recovered(command, "rolled-back", ()))
            continue
        try:
            data = json.loads(journal.read_text(encoding="utf-8"))
            entries: list[dict[str, object]] = list(data["files"])
            command = str(data.get("command", "?"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OperationFailed(f"{journal}: unreadable transaction journal ({exc})", path=journal,
                                  hint="check the files it names by hand (git status), then delete its folder") from exc
        for e in entries:
            target = _target(root, e)
            staged = folder / f"{e['n']}.new"
            current = _sha(target.read_bytes()) if target.is_file() else None
            if current == e["new"]:
                continue
            if not staged.exists() or current != e["old"]:
                raise OperationFailed(
                    f"{e['target']} changed after an interrupted `nexusify {command}`: it holds neither its old nor "
                    "its new content, so it was left alone", path=relpath(target, root),
                    hint=f"check it by hand (git diff), then delete {relpath(folder, root)} and re-run",
                )
        for e in entries:
            staged = folder / f"{e['n']}.new"
            if staged.exists():
                os.replace(staged, _target(root, e))
        for parent in {_target(root, e).parent for e in entries}:
            _fsync_dir(parent)
        _clean(folder)
        done.append(Recovered(command, "completed", tuple(str(e["target"]) for e in entries)))
    return done


__all__ = ["TXN_DIR", "Recovered", "recover", "write_files"]
