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

from nexusify.affected.compute import changed_by_index, project_of
from nexusify.affected.git import Commit, commits_touching, tag_exists, top_level
from nexusify.config import Settings
from nexusify.errors import HasProblems, OperationFailed, Problem, ProblemsFound, UsageError
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
                 today: datetime.date | None = None) -> ReleasePlan:
    """Every bump and file edit of a release (see the module docstring); writes nothing."""
    if bump != "auto" and bump not in LEVELS:
        raise UsageError(f"--bump {bump}: unknown level", hint="use patch, minor, major or auto")
    ws = workspace or workspace_for(settings)
    root = ws.root
    plan = ReleasePlan(root)
    if bump == "auto":
        top_level(root)  # auto reads commits: a git repository is required
    pending: set[str] = set()
    on_index: dict[str, list[str]] = {}
    if packages:
        changed = [project_of(ws, n) for n in packages]
        why = "named"
    else:
        found, problems = changed_by_index(ws, settings, env or {}, on_index)
        plan.problems.extend(problems)
        changed = [ws.by_name[canonicalize_name(c.name)] for c in found if c.published]
        pending = {canonicalize_name(c.name) for c in found if not c.published}
        why = "changed"
    levels = _levels(ws, changed, bump)
    new: dict[str, str] = {}
    for p in changed:
        level, commits = levels[p.normalized or ""]
        assert p.version is not None and p.normalized is not None
        new[p.normalized] = bump_version(p.version, level, explicit=bump != "auto")
        if level == "major" and new[p.normalized].split(".")[0] == p.version.split(".")[0]:
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
        assert p.version is not None
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
    for b in plan.bumps:  # a published version is immutable: never release one twice
        if b.new in on_index.get(canonicalize_name(b.name), []):
            p = ws.by_name[canonicalize_name(b.name)]
            plan.problems.append(Problem(
                "error", "version-taken", relpath(p.pyproject, root), None,
                f"{b.name} {b.new} is on the index already (the local {b.old} is behind it)",
                f"set {b.name}'s version to the newest on the index ({on_index[canonicalize_name(b.name)][-1]}), or "
                "release it with a higher --bump; nothing was written"))
    if plan.bumps:
        _plan_files(plan, ws, settings, new, today or datetime.date.today())
    # the one gate of writing verbs: every error in a project the release writes or publishes
    touched = {*new, *pending}
    targets = [p for p in ws.projects if p.normalized in touched or set(p.internal_names()) & touched]
    plan.problems[:0] = ws.errors_reaching(targets)
    return plan


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
    """Write every file of ``plan`` at once (or nothing), then commit and tag when asked;
    returns the commit's sha."""
    if plan.errors:
        raise ProblemsFound(f"{len(plan.errors)} problem(s) prevent the release; nothing was written:\n  "
                            + "\n  ".join(str(p) for p in plan.errors), hint="fix them and re-run")
    if commit:
        for b in plan.bumps:
            if tag_exists(plan.root, b.tag):
                raise OperationFailed(f"tag {b.tag} exists already; nothing was written",
                                      hint="delete the tag, or bump past it")
    for f in plan.files:
        now = f.path.read_bytes() if f.path.exists() else None
        if now != f.old:
            raise OperationFailed(f"{f.rel} changed while the release was planned", path=f.rel,
                                  hint="nothing was written; re-run the release")
    write_files(plan.root, [(f.path, f.new) for f in plan.files], command="release")
    if not commit:
        return None
    from nexusify.affected.git import commit_and_tag

    message = "release: " + ", ".join(f"{b.name} {b.new}" for b in plan.bumps)
    return commit_and_tag(plan.root, [f.path for f in plan.files], message, [b.tag for b in plan.bumps])


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
    write_files(settings.root, changes, command="release")
    rels = [relpath(path, plan.root) for path, _ in changes]
    if not commit:
        return rels, None
    from nexusify.affected.git import commit_and_tag

    return rels, commit_and_tag(plan.root, [path for path, _ in changes],
                                "release: refresh the lockfiles of re-pinned consumers", [])
