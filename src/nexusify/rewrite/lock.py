"""Re-locking consumers, minimally: after a rewrite (the default; ``--no-lock`` skips it) and after
a release (:mod:`nexusify.release.lock`), each consumer's lockfile is updated by its own tool so
that only the shared packages' entries change (shared/notes/tools.md has each tool verified):

* Poetry 2: ``poetry lock`` (keeps every pin that still satisfies the project);
* uv: ``uv lock --upgrade-package <shared>`` (only those are unlocked);
* PDM: ``pdm update --no-sync [-G group] <shared>``, once per locked group naming them
  (``pdm lock --update-reuse`` alone keeps the old path pins).

Each runs in a scratch copy of the consumer's folder holding the rewritten files, so the new
lockfile joins the plan and is written with everything else, or not at all. The result is checked
with the one lockfile reader (:mod:`nexusify.formats.lockfiles`): a shared package still pinned
from a path, or a third-party pin that moved, and the lock is not taken. Whatever cannot be
re-locked (tool missing, the index lacks a package, a timeout) leaves the lockfile as it was and is
a warning with the exact command to run, and where: the rewrite itself still happens.

A uv workspace member moved onto the index (:mod:`nexusify.rewrite.uv_move`) is two jobs of the
same kind: the workspace root's uv.lock (``--upgrade-package <member>``; the member stays a path
source of it, :attr:`LockJob.local`) and the member's new uv.lock, which starts from the root's
pins (:attr:`LockJob.seed`), so the pin check holds it to the workspace's third-party versions.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.credentials import Credentials, Secret
from nexusify.errors import Problem
from nexusify.formats.lockfiles import moved_pins, path_pins
from nexusify.model import relpath
from nexusify.model.project import LOCK_TOOLS
from nexusify.tools import TOOLS, run_tool

LOCK_TIMEOUT = 600.0  # seconds one lock command may take
_COPY_IGNORE = shutil.ignore_patterns(".venv", "venv", "node_modules", "__pycache__", ".git", "dist", "build",
                                      ".nexusify", "*.egg-info", ".mypy_cache", ".pytest_cache", ".ruff_cache")


@dataclass(frozen=True)
class LockJob:
    """One lockfile to bring in line: ``names`` are the shared packages whose entries change,
    ``shared`` every shared package of the monorepo (their entries may move; nothing else may)."""

    consumer: str
    folder: Path  # where the tool runs: the lockfile's folder
    lockfile: Path
    names: tuple[str, ...]
    shared: frozenset[str] = frozenset()
    #: a lockfile that does not exist yet starts from this one's pins (a uv workspace member moved
    #: out of its workspace: its own uv.lock starts from the workspace root's)
    seed: Path | None = None
    #: of ``names``, those the lock keeps taking from a path (a uv workspace root's lock: the moved
    #: members are path sources of it now), so no path pin check for them
    local: frozenset[str] = frozenset()
    #: why it is stale when nothing changes it in this run (found on disk, not by this rewrite)
    stale: str = ""

    @property
    def tool(self) -> str:
        return LOCK_TOOLS[self.lockfile.name]

    def commands(self, pyproject: str | None = None, lock: str | None = None) -> list[list[str]]:
        """The commands that update only ``names``; PDM needs the project (``pyproject`` text,
        default: read from disk) and the lock's groups (``lock`` text)."""
        if self.tool == "pdm":
            if pyproject is None:
                pyproject = _read(self.folder / "pyproject.toml")
            if lock is None:
                lock = _read(self.lockfile if self.lockfile.is_file() or self.seed is None else self.seed)
        return TOOLS[self.tool].relock(self.names, pyproject or "", lock or "")

    def command(self, root: Path, pyproject: str | None = None) -> str:
        """What a user runs by hand: ``cd <folder> && <commands>``."""
        cmds = " && ".join(" ".join(c) for c in self.commands(pyproject))
        return f"cd {relpath(self.folder, root)} && {cmds}"

    def warning(self, root: Path, why: str, pyproject: str | None = None) -> Problem:
        names = ", ".join(self.names) or "the shared packages"
        rel = relpath(self.lockfile, root)
        what = (f"{self.lockfile.name} still pins the old entries of {names}" if self.lockfile.is_file()
                else f"{rel} could not be made")
        return Problem("warning", "stale-lockfile", rel, None, f"{what}: {why}",
                       f"re-lock it once the index serves them: `{self.command(root, pyproject)}`")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass(frozen=True)
class _Failure:
    text: str
    timed_out: bool = False
    interpreter: str | None = None  # uv found no Python for this requires-python (and may not download one)


_NO_INTERPRETER = re.compile(r"No interpreter found for Python (\S+)")


def _no_interpreter(job: LockJob, spec: str, root: Path) -> str:
    """Why a uv re-lock failed when no Python matches the project's requires-python."""
    pyproject = relpath(job.folder / "pyproject.toml", root)
    return (f"uv needs a Python matching requires-python `{spec}` ({pyproject}) and none is installed; nexusify "
            f"does not let uv download one (UV_PYTHON_DOWNLOADS=never): install it (`uv python install '{spec}'`), "
            "or set UV_PYTHON_DOWNLOADS=automatic where uv can reach its Python downloads")


def _run_all(cmds: Sequence[list[str]], cwd: Path, env: Mapping[str, str], timeout: float,
             secret: Secret | None) -> _Failure | None:
    """Run ``cmds`` in order; why the first one that failed did (None: all passed)."""
    for cmd in cmds:
        run = run_tool(cmd, cwd, env, secret, timeout)
        if run.returncode == -1:  # it did not run to the end: the runner says why
            return _Failure(run.output, timed_out=run.timed_out)
        if not run.ok:
            tail = " | ".join(ln.strip() for ln in run.output.splitlines()[-4:] if ln.strip())
            missing = _NO_INTERPRETER.search(run.output)
            return _Failure(f"`{' '.join(cmd)}` failed: {tail}", interpreter=missing.group(1) if missing else None)
    return None


def relock(jobs: Sequence[LockJob], root: Path, source_name: str, env: Mapping[str, str], creds: Credentials | None,
           *, overrides: Mapping[Path, bytes] | None = None, timeout: float | None = None,
           which: Callable[[str], str | None] = shutil.which) -> tuple[list[tuple[LockJob, bytes]], list[Problem]]:
    """Re-lock each job (see the module docstring) in a scratch copy of its folder, with
    ``overrides`` (path -> new bytes: the rewritten files) applied. Returns the new contents of
    the lockfiles that changed, and a warning for each one that could not be re-locked."""
    limit = LOCK_TIMEOUT if timeout is None else timeout
    secret = creds.password if creds else None
    changes: list[tuple[LockJob, bytes]] = []
    problems: list[Problem] = []
    for job in jobs:
        files = {p: b for p, b in (overrides or {}).items() if p.is_relative_to(job.folder)}
        pyproject = files.get(job.folder / "pyproject.toml")
        project_text = pyproject.decode("utf-8", "replace") if pyproject is not None else None
        old = _start(job)
        cmds = job.commands(project_text, old.decode("utf-8", "replace"))
        shown = " && ".join(" ".join(c) for c in cmds)
        if which(job.tool) is None:
            problems.append(job.warning(root, f"`{job.tool}` is not installed", project_text))
            continue
        lock_env = TOOLS[job.tool].environment(source_name, creds, env)
        with tempfile.TemporaryDirectory(prefix="nexusify-lock-") as tmp:
            scratch = Path(tmp) / (job.folder.name or "project")
            shutil.copytree(job.folder, scratch, ignore=_COPY_IGNORE)
            for path, data in files.items():
                target = scratch / path.relative_to(job.folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if old and not job.lockfile.is_file():
                (scratch / job.lockfile.name).write_bytes(old)  # a new lock starts from the seed's pins
            why = _run_all(cmds, scratch, lock_env, limit, secret)
            if why is not None and not why.timed_out and why.interpreter is None and job.tool != "pdm":
                # a lock the tool refuses (hand-edited, another tool version): lock afresh; the pin
                # check below still refuses a result that moved a third-party pin. Not for PDM: a
                # plain `pdm lock` would drop the optional groups the old lock held
                (scratch / job.lockfile.name).unlink(missing_ok=True)
                if _run_all([[job.tool, "lock"]], scratch, lock_env, limit, secret) is None:
                    why = None
            new = (scratch / job.lockfile.name).read_bytes() if why is None else old
        if why is not None:
            text = why.text if why.interpreter is None else _no_interpreter(job, why.interpreter, root)
            problems.append(job.warning(root, text, project_text))
            continue
        text = new.decode("utf-8", "replace")
        left = path_pins(text, job.lockfile.name, set(job.names) - job.local)
        moved = moved_pins(old.decode("utf-8", "replace"), text, set(job.shared) | set(job.names))
        refused = (f"`{shown}` left {'; '.join(p.message for p in left)}" if left else
                   f"`{shown}` would move third-party pins ({'; '.join(moved)}), so its result was not taken"
                   if moved else None)
        if refused is not None:
            problems.append(job.warning(root, refused, project_text))
        elif new != old or not job.lockfile.is_file():
            changes.append((job, new))
    return changes, problems


def _start(job: LockJob) -> bytes:
    """The lock a job starts from: its lockfile, else (a new one) its seed's pins, else nothing."""
    if job.lockfile.is_file():
        return job.lockfile.read_bytes()
    if job.seed is not None and job.seed.is_file():
        return job.seed.read_bytes()
    return b""


__all__ = ["LOCK_TIMEOUT", "LockJob", "relock"]
