"""``nexusify release``: plan, then execute.

:func:`plan_release` computes, as data, every bump and every file edit (versions, consumers'
constraints, changelogs) and validates them; it writes nothing. :func:`apply_release` writes
every file in one go (:func:`nexusify.transaction.write_files`: staged, journalled, then renamed), then
optionally commits and tags, then optionally publishes exactly the released packages.

1. changed packages: those named, else affected's "changed" against the index (a package whose
   current version is not on the index yet is *pending*: released before, not bumped again);
2. levels: explicit, or ``auto`` from Conventional Commits (:mod:`nexusify.release.bump`);
3. cascade: a shared package whose published requirements change (a dependency it needs at
   runtime got a new version, so its constraint's bounds move) gets a patch bump, transitively;
4. versions written (static fields; ``__version__`` or plain-file dynamic sources);
5. consumers whose constraint no longer admits a new version are re-pinned with the configured
   constraint mode; their lockfiles are reported with the command that refreshes them;
6. a Keep a Changelog entry per released package, in its folder's ``CHANGELOG.md``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nexusify.affected.compute import Changed, build_sees, changed_by_index, project_of
from nexusify.affected.git import Commit, can_commit, commits_touching, tag_exists, top_level
from nexusify.config import Settings
from nexusify.errors import HasProblems, OperationFailed, Problem, ProblemsFound, UsageError
from nexusify.gitsteps import write_and_commit
from nexusify.model import Project, Workspace, relpath, workspace_for
from nexusify.release.bump import LEVELS, auto_level, bump_version, entry_line, section_of
from nexusify.release.edits import changelog, current_spec, repin, set_version
from nexusify.release.lock import StaleLock
from nexusify.syntax.constraints import constraint_admits, pep440_specifier
from nexusify.transaction import write_files


@dataclass
class Bump:
    name: str
    path: str
    old: str
    new: str
    level: str
    why: str  # "changed" | "cascade" | "named"
    notes: list[str] = field(default_factory=list)
    sections: dict[str, list[str]] = field(default_factory=dict)  # Keep a Changelog: Added/Changed/Fixed

    @property
    def tag(self) -> str:
        return f"{self.name}-v{self.new}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "from": self.old, "to": self.new, "level": self.level,
                "why": self.why, "notes": self.notes, "tag": self.tag}


@dataclass
class Repin:
    consumer: str
    file: str
    line: int | None
    package: str
    old: str
    new: str

    def to_dict(self) -> dict[str, Any]:
        return {"consumer": self.consumer, "file": self.file, "line": self.line, "package": self.package,
                "from": self.old, "to": self.new}


@dataclass
class FileChange:
    path: Path
    rel: str
    old: bytes | None
    new: bytes
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.rel, "why": self.why, "new_file": self.old is None}


@dataclass
class ReleasePlan(HasProblems):
    root: Path
    bumps: list[Bump] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # versions released before, not on the index yet
    pending_paths: list[str] = field(default_factory=list)  # their folders, relative to root
    repins: list[Repin] = field(default_factory=list)
    files: list[FileChange] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stale_locks: list[StaleLock] = field(default_factory=list)  # re-pinned consumers' lockfiles

    @property
    def empty(self) -> bool:
        return not self.bumps and not self.pending

    @property
    def to_publish(self) -> list[str]:
        return [b.name for b in self.bumps] + self.pending

    def to_dict(self) -> dict[str, Any]:
        return {"bumps": [b.to_dict() for b in self.bumps], "pending": self.pending,
                "repins": [r.to_dict() for r in self.repins], "files": [f.to_dict() for f in self.files],
                "stale_lockfiles": [relpath(s.lockfile, self.root) for s in self.stale_locks],
                "problems": [p.to_dict() for p in self.problems]}


def _commits(ws: Workspace, p: Project) -> list[Commit]:
    tag = f"{p.name}-v{p.version}"
    since = tag if tag_exists(ws.root, tag) else None
    return commits_touching(ws.root, p.path, since)


def _levels(ws: Workspace, changed: Sequence[Project], bump: str) -> dict[str, tuple[str, list[Commit]]]:
    """Each package's level and the commits its changelog entry lists."""
    from nexusify.affected.git import git

    in_git = git(ws.root, "rev-parse", "--git-dir", check=False).returncode == 0
    out: dict[str, tuple[str, list[Commit]]] = {}
    for p in changed:
        commits = _commits(ws, p) if in_git else []
        level, counted = auto_level(commits)
        out[p.normalized or ""] = (level if bump == "auto" else bump, counted)
    return out


def plan_release(settings: Settings, packages: Sequence[str] = (), *, bump: str = "auto",
                 env: Mapping[str, str] | None = None, workspace: Workspace | None = None,
                 today: datetime.date | None = None, publish: bool = False) -> ReleasePlan:
    """Every bump and file edit of a release (see the module docstring); writes nothing.
    ``publish``: the release will be published, so the index must be readable."""
    if bump != "auto" and bump not in LEVELS:
        raise UsageError(f"--bump {bump}: unknown level", hint="use patch, minor, major or auto")
    ws = workspace or workspace_for(settings)
    root = ws.root
    plan = ReleasePlan(root)
    if bump == "auto":
        top_level(root, why="--bump auto reads the Conventional Commits since each package's last release tag",
                  hint="run it in a git checkout, or give the level: --bump patch|minor|major")
    pending: set[str] = set()
    on_index = _versions_on_index(plan, ws, settings, env or {}, named=bool(packages), publish=publish)
    if packages:
        changed = [project_of(ws, n) for n in packages]
        why = "named"
    else:
        found = on_index.changed
        changed = [ws.by_name[canonicalize_name(c.name)] for c in found if c.published]
        pending = {canonicalize_name(c.name) for c in found if not c.published}
        why = "changed"
    changed = [p for p in changed if _has_version(plan, p)]
    levels = _levels(ws, changed, bump)
    new: dict[str, str] = {}
    for p in changed:
        level, commits = levels[p.normalized or ""]
        assert p.version is not None and p.normalized is not None  # _has_version
        new[p.normalized] = bump_version(p.version, level, explicit=bump != "auto")
        if level == "major" and Version(new[p.normalized]).major == Version(p.version).major:
            level = "minor (breaking, 0.x rule)"
        sections: dict[str, list[str]] = {}
        for c in commits:
            sections.setdefault(section_of(c), []).append(entry_line(c))
        if not sections:
            sections["Changed"] = [f"{level} release: the sources changed"]
        notes = [n for lines in sections.values() for n in lines]
        plan.bumps.append(Bump(p.name or p.normalized, p.rel(root), p.version, new[p.normalized], level, why,
                               notes, sections))
    # cascade: every shared package needing a new version at runtime, transitively
    chains = ws.dependents(sorted(set(new) | pending))
    for name in sorted(chains, key=lambda n: (len(chains[n]), n)):
        if name in new or name in pending or not chains[name]:
            continue
        dep = chains[name][0]
        p = ws.by_name[name]
        if not _has_version(plan, p):
            continue
        assert p.version is not None  # _has_version
        dep_old = ws.by_name[dep].version or ""
        dep_new = new.get(dep, dep_old)
        if dep in new and pep440_specifier(dep_old, settings.constraint) == pep440_specifier(dep_new, settings.constraint):
            continue  # pragma: no cover - every constraint mode bounds by the version itself
        new[name] = bump_version(p.version, "patch")
        dep_name = ws.by_name[dep].name or dep
        note = f"Requires {dep_name} {dep_new}"
        plan.bumps.append(Bump(p.name or name, p.rel(root), p.version, new[name], "patch", "cascade",
                               [note], {"Changed": [note]}))
    plan.pending = sorted(ws.by_name[n].name or n for n in pending)
    plan.pending_paths = sorted(ws.by_name[n].rel(root) for n in pending)
    _version_taken(plan, ws, on_index.versions)
    if plan.bumps:
        _plan_files(plan, ws, settings, new, today or datetime.date.today())
    # the one gate of writing verbs: every error in a project the release writes or publishes
    touched = {*new, *pending}
    targets = [p for p in ws.projects if p.normalized in touched or set(p.internal_names()) & touched]
    plan.problems[:0] = ws.errors_reaching(targets)
    return plan


@dataclass
class _OnIndex:
    changed: list[Changed] = field(default_factory=list)  # the unnamed form's packages to release
    versions: dict[str, list[str]] = field(default_factory=dict)  # normalised name -> versions on the index


def _versions_on_index(plan: ReleasePlan, ws: Workspace, settings: Settings, env: Mapping[str, str], *,
                       named: bool, publish: bool) -> _OnIndex:
    """What the index holds, read once for both forms of the release: the unnamed form releases
    what differs from it, and both refuse a version it holds already (:func:`_version_taken`).
    A named release that does not publish may go on without the index, with a warning that the
    check was not made; one that publishes may not."""
    out = _OnIndex()
    unchecked = "so whether the new versions are taken there was not checked"
    if named and not publish and not settings.upload_simple_url:
        plan.problems.append(Problem("warning", "index-unchecked", None, None, f"no index is configured, {unchecked}",
                                     "configure the index (nexus-url/repository or --repository-url) to have it "
                                     "checked"))
        return out
    hint = "check the index settings and credentials; a release must know what the index holds"
    try:
        found, problems = changed_by_index(ws, settings, env, out.versions, hint=hint)
    except OperationFailed as exc:
        if not named or publish:
            raise
        plan.problems.append(Problem("warning", "index-unchecked", None, None, f"{exc.message}; {unchecked}",
                                     "check before publishing: a version on the index cannot be published again"))
        return out
    out.changed = found
    plan.problems.extend(p for p in problems if not named or p.code != "version-unknown")
    return out


def _version_taken(plan: ReleasePlan, ws: Workspace, on_index: Mapping[str, list[str]]) -> None:
    """A published version is immutable: never release one twice."""
    for b in plan.bumps:
        taken = on_index.get(canonicalize_name(b.name), [])
        if b.new in taken or any(Version(v) == Version(b.new) for v in taken if _valid(v)):
            p = ws.by_name[canonicalize_name(b.name)]
            plan.problems.append(Problem(
                "error", "version-taken", relpath(p.pyproject, ws.root), None,
                f"{b.name} {b.new} is on the index already (the local {b.old} is behind it)",
                f"set {b.name}'s version to the newest on the index ({taken[-1]}), or "
                "release it with a higher --bump; nothing was written"))


def _valid(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _has_version(plan: ReleasePlan, p: Project) -> bool:
    """A package without a version nexusify can read (an unresolvable dynamic one) cannot be
    bumped: one ``version-unknown`` error for it, in either form of the release."""
    if p.version is not None:
        return True
    rel = relpath(p.pyproject, plan.root)
    if not any(q.code == "version-unknown" and q.path == rel for q in plan.problems):
        plan.problems.append(Problem("error", "version-unknown", rel, None,
                                     f"{p.name or rel}: no version nexusify can read, so it cannot be bumped",
                                     "give it a static version, or a dynamic one nexusify can read "
                                     "(a `__version__ = \"...\"` attribute or a plain file)"))
    return False


def _add(plan: ReleasePlan, path: Path, text: str, why: str, edits: dict[Path, FileChange]) -> None:
    if path in edits:
        edits[path].new = text.encode("utf-8")
        edits[path].why += "; " + why
        return
    old = path.read_bytes() if path.exists() else None
    change = FileChange(path, relpath(path, plan.root), old, text.encode("utf-8"), why)
    edits[path] = change
    plan.files.append(change)


def _text(edits: dict[Path, FileChange], path: Path) -> str:
    return edits[path].new.decode("utf-8") if path in edits else path.read_text(encoding="utf-8")


def _plan_files(plan: ReleasePlan, ws: Workspace, settings: Settings, new: Mapping[str, str],
                today: datetime.date) -> None:
    edits: dict[Path, FileChange] = {}
    for b in plan.bumps:
        p = ws.by_name[canonicalize_name(b.name)]
        files, problem = set_version(p, b.new, ws.root)
        if problem is not None:
            plan.problems.append(problem)
        for path, text in files:
            _add(plan, path, text, f"{b.name} {b.old} -> {b.new}", edits)
        log = p.path / "CHANGELOG.md"
        old_text = _text(edits, log) if log.exists() or log in edits else None
        _add(plan, log, changelog(old_text, b.new, today.isoformat(), b.sections), f"changelog {b.new}", edits)
    # re-pin every consumer whose constraint no longer admits a new version
    stale: dict[Path, set[str]] = {}
    for project in ws.projects:
        for dep in project.index_deps:
            version = new.get(dep.normalized)
            if version is None:
                continue
            text = _text(edits, dep.file)
            written = current_spec(text, dep)
            ok = constraint_admits(written, version, poetry=dep.location[0] == "poetry")
            if ok:
                continue
            done = repin(text, dep, version, settings.constraint)
            rel = relpath(dep.file, ws.root)
            if done is None:
                plan.problems.append(Problem(
                    "error", "repin-unwritable", rel, dep.line,
                    f"{dep.name}: the constraint {written!r} does not admit {version}, and nexusify cannot rewrite "
                    "this entry", f"change it by hand to admit {version}; nothing was written"))
                continue
            new_text, new_spec = done
            _add(plan, dep.file, new_text, f"re-pin {dep.name} {new_spec}", edits)
            plan.repins.append(Repin(project.name or project.rel(ws.root), rel, dep.line, dep.name, written, new_spec))
            stale.setdefault(project.path, set()).add(dep.normalized)
    for folder, names in sorted(stale.items()):
        consumer = ws.project_at(folder)
        for lock in ws.lockfiles_of(consumer) if consumer is not None else []:
            plan.stale_locks.append(StaleLock(consumer.name or consumer.rel(ws.root) if consumer else "", folder,
                                              lock, tuple(sorted(names)),
                                              frozenset(p.normalized for p in ws.shared() if p.normalized)))


def apply_release(plan: ReleasePlan, *, commit: bool = False) -> str | None:
    """Write every file of ``plan`` at once (or nothing); with ``commit``, the files, the commit
    and the tags are one transaction (:func:`nexusify.gitsteps.write_and_commit`: done
    together, or completed or undone by the next command). Returns the commit's sha."""
    if plan.errors:
        raise ProblemsFound(f"{len(plan.errors)} problem(s) prevent the release; nothing was written:\n  "
                            + "\n  ".join(str(p) for p in plan.errors), hint="fix them and re-run")
    if commit:
        can_commit(plan.root, [b.tag for b in plan.bumps], [f.path for f in plan.files])
    for f in plan.files:
        now = f.path.read_bytes() if f.path.exists() else None
        if now != f.old:
            raise OperationFailed(f"{f.rel} changed while the release was planned", path=f.rel,
                                  hint="nothing was written; re-run the release")
    changes = [(f.path, f.new) for f in plan.files]
    if not commit:
        write_files(plan.root, changes, command="release")
        return None
    message = "release: " + ", ".join(f"{b.name} {b.new}" for b in plan.bumps)
    return write_and_commit(plan.root, changes, command="release", message=message, tags=[b.tag for b in plan.bumps])


def check_worktree(plan: ReleasePlan, *, committing: bool) -> None:
    """Git states a release must not start from, as problems on ``plan``. ``committing``
    (``--commit`` or ``--publish``): what is committed, tagged and uploaded must be what the
    tree holds, so uncommitted or untracked files in a released package, or in a file the
    release writes, are an error; so is a shallow clone, whose grafted oldest commit looks as if
    it touched every package (each would get its bump). Without it, a shallow clone is a warning."""
    from nexusify.affected.git import dirty, git, is_shallow

    if git(plan.root, "rev-parse", "--git-dir", check=False).returncode != 0:
        return
    if is_shallow(plan.root):
        plan.problems.append(Problem(
            "error" if committing else "warning", "git-shallow", None, None,
            "this is a shallow clone: its oldest commit looks as if it touched every package, so the bumps and "
            "changelogs read from git would be wrong" + ("; nothing was written" if committing else ""),
            "fetch the whole history (git fetch --unshallow; in CI: fetch-depth: 0), then re-run"))
    if git(plan.root, "symbolic-ref", "--quiet", "HEAD", check=False).returncode != 0:
        plan.problems.append(Problem(
            "warning", "git-detached", None, None,
            "HEAD is detached: a release commit would be on no branch (tags keep it, a branch does not)",
            "check out the branch to release from (git switch main), then re-run"))
    if not committing:
        return
    released = [plan.root / b.path for b in plan.bumps] + [plan.root / p for p in plan.pending_paths]
    written = {f.path for f in plan.files}
    changed: list[str] = []
    for path in dirty(plan.root, sorted({*released, *(f for f in written if f.exists())})):
        owner = max((r for r in released if r == path or r in path.parents), key=lambda r: len(r.parts), default=None)
        if path in written or owner is None or build_sees(path.relative_to(owner).parts):
            changed.append(relpath(path, plan.root))  # what the commit or the upload would take
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        plan.problems.append(Problem(
            "error", "git-dirty", None, None,
            f"uncommitted or untracked files where the release commits or publishes: {shown}; a release commits, "
            "tags and uploads what git holds, so nothing was written",
            "commit or stash them (git stash -u), or add build output to .gitignore, then re-run"))


def publish_released(settings: Settings, plan: ReleasePlan, env: Mapping[str, str]) -> Any:
    """Publish exactly the released (and pending) packages, with publish's own plan and execution."""
    from nexusify.publish import PublishOptions, execute_plan, plan_publish

    options = PublishOptions(packages=tuple(plan.to_publish), env=env)
    publish_plan = plan_publish(settings, options)
    return execute_plan(publish_plan, options, lambda *_: None)


def refresh_locks(settings: Settings, plan: ReleasePlan, env: Mapping[str, str], *,
                  published: bool, commit: bool) -> tuple[list[str], str | None]:
    """After the release is written (and published): refresh the re-pinned consumers' lockfiles,
    write them at once, and commit them when the release was committed. Each lockfile that could
    not be refreshed becomes a warning on ``plan`` with the command to run. Returns the
    refreshed lockfiles and the commit's sha."""
    from nexusify.release.lock import refresh

    if not plan.stale_locks:
        return [], None
    if not published:
        plan.problems.extend(s.warning(plan.root, "the new versions must be on the index first: --publish")
                             for s in plan.stale_locks)
        return [], None
    changes, warnings = refresh(settings, plan.stale_locks, env)
    plan.problems.extend(warnings)
    if not changes:
        return [], None
    rels = [relpath(path, plan.root) for path, _ in changes]
    if not commit:
        write_files(settings.root, changes, command="release")
        return rels, None
    return rels, write_and_commit(plan.root, changes, command="release",
                                  message="release: refresh the lockfiles of re-pinned consumers")
