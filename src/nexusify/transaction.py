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
overwritten: recovery stops with an error naming it.

A journal is only acted on when :func:`distrust` finds nothing against it: it is not tracked by
git (a repository can ship a ``.nexusify/txn/`` folder with ``git add -f``), it carries an
HMAC made with this user's journal key (kept outside every repository, see
:func:`journal_key_path`, so only nexusify on this machine can have written it), it belongs to
this root, and every target it names is confined (:func:`nexusify.files.confined`: inside the
root, outside ``.git/``); a staged file is renamed only if it holds the content the journal
names. Any other journal is reported in one line and left alone, whatever it names.

One lock (``flock`` on the ``txn`` folder) serialises writers and recovery, so recovery never
touches a live transaction; the kernel drops it when a process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.errors import ConfigError, OperationFailed
from nexusify.files import confined, relpath
from nexusify.interrupts import Interrupted, interrupts_deferred

TXN_DIR = Path(".nexusify") / "txn"
JOURNAL = "journal.json"
JOURNAL_VERSION = 2  # 2: signed (``mac``) and bound to its root
KEY_ENV = "NEXUSIFY_JOURNAL_KEY"  # a path: where the journal key is kept (tests point it elsewhere)


@dataclass(frozen=True)
class Recovered:
    """What :func:`recover` did with one interrupted transaction."""

    command: str
    action: str  # "completed" | "rolled-back" | "left-alone"
    files: tuple[str, ...]
    reason: str = ""  # left-alone: why the folder was not trusted

    def __str__(self) -> str:
        if self.action == "left-alone":
            return (f"{self.files[0]}: left alone, not recovered: {self.reason} "
                    "(delete it unless you know where it comes from)")
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


def _fsync_all(paths: Iterable[Path]) -> None:
    """fsync every file or folder of ``paths``, and return when all are on disk (the first error
    raised). Issued together from a few threads (fsync waits on the disk, not the CPU), so the
    file system commits them in a few journal transactions instead of one per file."""
    todo = list(dict.fromkeys(paths))
    if len(todo) < 8:
        for path in todo:
            _fsync_dir(path)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(todo))) as pool:
        for _ in pool.map(_fsync_dir, todo):
            pass


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[Path]:
    # plain: through a symlink to another folder of the repository, recovery would clear that one
    base = confined(root, TXN_DIR, source=TXN_DIR.as_posix(), what="the transaction folder", plain=True)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperationFailed(f"cannot create the transaction folder: {exc.strerror or exc}", path=TXN_DIR.as_posix(),
                              hint="nothing was written; make it a writable folder (not a file) and re-run") from exc
    fd = os.open(base, os.O_RDONLY)
    try:
        _acquire(root, base, fd)
        _HELD[base] = fd  # the git steps pass it on (write_and_commit)
        yield base
    finally:
        _HELD.pop(base, None)
        os.close(fd)  # releases the lock


#: seconds to wait for the transaction lock (another nexusify, or a git command it started, holds it)
LOCK_WAIT = 600.0
_HELD: dict[Path, int] = {}  # the lock's descriptor per locked txn folder


def _acquire(root: Path, base: Path, fd: int) -> None:
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OperationFailed(
                    f"{relpath(base, root)} stayed locked for {LOCK_WAIT:g} s: another nexusify, or a git command "
                    "it started (a commit whose hook still runs), is writing this monorepo",
                    hint=f"wait for it to end (fuser -v {base} names it), then re-run") from None
            time.sleep(0.1)


def write_files(root: Path, changes: Sequence[tuple[Path, bytes | str]], *, command: str) -> None:
    """Write every ``(path, content)`` of ``changes`` (paths under ``root``) or none of them."""
    root = root.resolve()
    if not changes:
        return
    changes = [(confined(root, path, source=relpath(Path(os.path.abspath(path)), root), what=f"`{command}` target"), data)
               for path, data in changes]
    key = journal_key()
    with _locked(root) as base:
        _recover_locked(root, base)
        folder, entries = _stage_journaled(root, base, changes, command, key)
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
        os.chmod(folder / f"{n}.new", mode)
        entries.append({"target": relpath(target, root), "n": n, "old": old_sha, "new": _sha(raw)})
    _fsync_all(folder / f"{e['n']}.new" for e in entries)  # every staged copy on disk before the journal
    _fsync_dir(folder)
    return entries


def _stage_journaled(root: Path, base: Path, changes: Sequence[tuple[Path, bytes | str]], command: str,
                     key: bytes, git: dict[str, object] | None = None) -> tuple[Path, list[dict[str, object]]]:
    """A new transaction folder under ``base`` with every change staged and the signed journal
    written (``git``: the steps that follow the files); on any failure the folder is gone."""
    folder = base / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        (folder / "command").write_text(command, encoding="utf-8")
        entries = _stage(root, folder, changes)
        _write_journal(root, folder, command, entries, key, git)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OperationFailed(f"could not stage the changes: {exc}",
                                  hint="nothing was written; fix the cause and re-run") from exc
        raise
    return folder, entries


def _write_journal(root: Path, folder: Path, command: str, entries: list[dict[str, object]], key: bytes,
                   git: dict[str, object] | None = None) -> None:
    tmp = folder / (JOURNAL + ".tmp")
    data: dict[str, object] = {"version": JOURNAL_VERSION, "command": command, "root": str(root),
                               "pid": os.getpid(), "started": time.time(), "files": entries}
    if git is not None:
        data["git"] = git  # the git steps that follow the files (see gitsteps.write_and_commit)
    data["mac"] = _mac(key, data)
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / JOURNAL)
    _fsync_dir(folder)


def _target(root: Path, entry: dict[str, object]) -> Path:
    t = Path(str(entry["target"]))
    return t if t.is_absolute() else root / t


def _commit(root: Path, folder: Path, entries: list[dict[str, object]], *, clean: bool = True) -> None:
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
    _fsync_all(_target(root, e).parent for e in entries)
    if clean:
        _clean(folder)


def _undo(root: Path, folder: Path, done: list[dict[str, object]]) -> None:
    for e in reversed(done):
        target = _target(root, e)
        old = folder / f"{e['n']}.old"
        if e["old"] is None:
            target.unlink(missing_ok=True)
        elif old.exists():
            os.replace(old, target)


def _not_staged(folder: Path) -> str | None:
    """The first entry of ``folder`` that is not a file a transaction stages (None: all are), so
    rolling back never removes anything nexusify did not put there."""
    try:
        for entry in folder.iterdir():
            name = entry.name
            ours = name in ("command", JOURNAL + ".tmp") or (name.endswith((".new", ".old"))
                                                             and name.split(".")[0].isdigit())
            if not ours or entry.is_symlink() or not entry.is_file():
                return name
    except OSError as exc:
        return f"an unreadable folder ({exc.strerror})"
    return None


def _clean(folder: Path) -> None:
    (folder / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


#: settles a journal that records steps after its files: (root, folder, command, entries, record)
Settle = Callable[[Path, Path, str, list[dict[str, object]], object], Recovered]
#: the settler of each such journal key: "git" (a release's commit and tags, :mod:`nexusify.gitsteps`,
#: registered when it is imported, which the CLI does before it recovers anything)
STEPS: dict[str, Settle] = {"git": lambda root, folder, *_: _unsettled(root, folder)}


def _unsettled(root: Path, folder: Path) -> Recovered:
    raise OperationFailed(f"{relpath(folder, root)}: an interrupted release with git steps, which this program cannot "
                          "settle (nexusify.gitsteps is not loaded)", hint="run any nexusify command: it settles it")


def recover(root: Path) -> list[Recovered]:
    """Finish every transaction an earlier nexusify left behind in ``root`` (see the module docstring)."""
    root = root.resolve()
    if not (root / TXN_DIR).is_dir():
        return []
    with _locked(root) as base:
        return _recover_locked(root, base)


def _recover_locked(root: Path, base: Path) -> list[Recovered]:
    done: list[Recovered] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() or p.is_symlink()):
        journal = folder / JOURNAL
        rel = relpath(folder, root)
        if folder.is_symlink() or _tracked_by_git(root, folder):
            why = "a symlink" if folder.is_symlink() else "it is tracked by git, so it came with the repository"
            done.append(Recovered("?", "left-alone", (rel,), why))
            continue
        if not journal.exists():
            stray = _not_staged(folder)
            if stray is not None:
                done.append(Recovered("?", "left-alone", (rel,), f"it holds {stray!r}, which nexusify never stages"))
                continue
            try:
                command = (folder / "command").read_text(encoding="utf-8").strip() or "?"
            except OSError:
                command = "?"
            shutil.rmtree(folder, ignore_errors=True)
            done.append(Recovered(command, "rolled-back", ()))
            continue
        try:
            data = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            done.append(Recovered("?", "left-alone", (relpath(journal, root),), f"unreadable journal ({exc})"))
            continue
        reason = distrust(root, folder, data)
        if reason is not None:
            done.append(Recovered("?", "left-alone", (relpath(journal, root),), reason))
            continue
        entries: list[dict[str, object]] = list(data["files"])
        command = str(data.get("command", "?"))
        steps = next((k for k in STEPS if data.get(k) is not None), None)
        if steps is not None:  # files, then further steps (a release's commit and tags)
            done.append(STEPS[steps](root, folder, command, entries, data[steps]))
            continue
        for e in entries:
            target = _target(root, e)
            staged = folder / f"{e['n']}.new"
            current = _sha(target.read_bytes()) if target.is_file() else None
            if current == e["new"]:
                continue
            if not staged.is_file() or staged.is_symlink() or _sha(staged.read_bytes()) != e["new"] \
                    or current != e["old"] or (current is None and (target.exists() or target.is_symlink())):
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


# --------------------------------------------------------------------------- trust


def journal_key_path(env: Mapping[str, str] | None = None) -> Path:
    """Where this user's journal key lives, outside every repository: ``$NEXUSIFY_JOURNAL_KEY``,
    else ``$XDG_STATE_HOME/nexusify/journal.key``, else ``~/.local/state/nexusify/journal.key``."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return Path(env[KEY_ENV]).expanduser()
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state) / "nexusify" / "journal.key"


def journal_key(env: Mapping[str, str] | None = None, *, create: bool = True) -> bytes:
    """The secret journals are signed with (created 0600 on first use). An OperationFailed when it
    cannot be kept: nothing is written then, since a journal nobody can trust could not be recovered."""
    path = journal_key_path(env)
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            raise
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    except FileExistsError:
        pass  # another nexusify created it meanwhile
    except OSError as exc:
        raise OperationFailed(f"{path}: cannot create the journal key ({exc.strerror or exc})", path=path,
                              hint=f"nothing was written; make its folder writable, or set {KEY_ENV} (or "
                                   "XDG_STATE_HOME) to a writable place outside the repository") from exc
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    st = path.stat()
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise OperationFailed(f"{path}: the journal key must belong to you and be readable by you only",
                              path=path, hint=f"chmod 600 {path} (or delete it: a new one is made)")
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise OperationFailed(f"{path}: the journal key is too short", path=path, hint="delete it: a new one is made")
    return key


def _mac(key: bytes, data: Mapping[str, object]) -> str:
    body = json.dumps({k: v for k, v in data.items() if k != "mac"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _tracked_by_git(root: Path, path: Path) -> bool:
    """True when git tracks ``path`` or a file under it (outside a git work tree: False)."""
    try:
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", relpath(path, root)],
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip(b"\0"))


def distrust(root: Path, folder: Path, data: object) -> str | None:
    """Why the journal ``data`` of ``folder`` must not be recovered, or None when it may be: it was
    written by nexusify for this user on this machine (its HMAC), for this root, and names only
    confined targets with sane entries. (Git tracking is checked for the whole folder before.)"""
    if not isinstance(data, dict) or data.get("version") != JOURNAL_VERSION:
        return "not a journal this nexusify writes (unknown version)"
    try:
        key = journal_key(create=False)
    except FileNotFoundError:
        return f"no journal key at {journal_key_path()}, so no journal here was written by nexusify as you"
    except OperationFailed as exc:
        return exc.message
    mac = data.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, data)):
        return "its signature does not match your journal key: it was not written by nexusify as you on this machine"
    if data.get("root") != str(root):
        return f"it was written for another folder ({data.get('root')})"
    files = data.get("files")
    if not isinstance(files, list):
        return "it lists no files"
    for e in files:
        if not (isinstance(e, dict) and isinstance(e.get("n"), int) and isinstance(e.get("target"), str)
                and isinstance(e.get("new"), str) and (e.get("old") is None or isinstance(e.get("old"), str))):
            return "an entry is malformed"
        if Path(e["target"]).is_absolute():
            return f"target {e['target']!r} is an absolute path"
        try:
            confined(root, e["target"], source=relpath(folder / JOURNAL, root), what="target")
        except ConfigError as exc:
            return exc.message
    return None


__all__ = ["TXN_DIR", "Recovered", "distrust", "journal_key", "journal_key_path", "recover", "write_files"]
