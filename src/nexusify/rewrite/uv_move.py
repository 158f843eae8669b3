"""Moving a uv workspace member onto the index: ``nexusify rewrite <member>`` takes it out of the workspace.

uv refuses a workspace whose member takes a fellow member from an index (``uv lock``: "references
a registry in tool.uv.sources"), so rewriting a member's sources alone would break ``uv lock`` for the
whole workspace. Naming a member as a rewrite target (or rewriting every service) therefore moves it,
as part of the one rewrite plan (written all or nothing, the same plan ``rewrite --check`` shows):

* the workspace root's ``[tool.uv.workspace] exclude`` gets the member's folder (the ``members``
  globs are kept: other members matched by them stay);
* every project of the workspace (the root included) whose ``[tool.uv.sources]`` takes the member
  with ``{ workspace = true }`` takes it by ``{ path = "...", editable = true }`` instead: uv
  accepts a path dependency on a folder outside the workspace (verified with uv 0.13: the root's
  dev group keeps the member, and ``uv lock --check`` passes), and a dev environment keeps the code;
* the member's own pyproject.toml is rewritten like any uv project's (index sources, versions,
  ``[[tool.uv.index]]``), by :mod:`nexusify.formats.pyproject_edit`;
* locks: two lock jobs (:class:`nexusify.rewrite.lock.LockJob`), run by the rewrite's one re-lock
  step like every other lockfile (same runner, same tool environment, same third-party pin check,
  skipped by ``--no-lock`` and dry runs): the root ``uv.lock`` is re-locked (``uv lock
  --upgrade-package <member>``: every other pin kept) and the member gets its own ``uv.lock``,
  made in a copy of its folder seeded with the root's old lock, so uv keeps the third-party
  versions the workspace had pinned (a result that moves one is not taken). A lock that cannot be
  made leaves the files rewritten and is a ``stale-lockfile`` warning with the exact command; the
  next ``rewrite`` makes it (:func:`stale_move_locks`);
* its Dockerfiles that build inside the workspace: :mod:`nexusify.rewrite.uv_move_dockerfile`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.formats.edits import Edit, changed_blocks
from nexusify.model import Project, Workspace, relpath
from nexusify.model.paths import glob_dirs
from nexusify.rewrite.lock import LockJob
from nexusify.rewrite.plan_data import FilePlan, RewritePlan, ServicePlan, UvMove
from nexusify.syntax.toml import subtable


def is_member(project: Project) -> bool:
    """A member of a uv workspace (not its root)."""
    return project.workspace_root is not None and project.workspace_root != project.path


def moves_out(project: Project, shared: Collection[str | None]) -> bool:
    """Whether rewriting ``project`` moves it out of its uv workspace: a member that takes a shared
    package from the workspace (uv would refuse it once that package comes from the index)."""
    return is_member(project) and any(
        d.kind == "uv-workspace" and d.normalized in shared for d in project.local_deps)


def _line_edits(old: str, new: str, reason: str) -> list[Edit]:
    a, b = old.splitlines(), new.splitlines()
    out = []
    for i1, i2, j1, j2 in changed_blocks(a, b):
        out.append(Edit(i1 + 1, "\n".join(a[i1:i2]), "\n".join(b[j1:j2]), reason))
    return out


def _workspace_sources(data: Mapping[str, Any]) -> dict[str, Any]:
    return subtable(dict(data), "tool", "uv", "sources")


def plan_workspace_edits(ws: Workspace, moving: list[tuple[Project, ServicePlan]]) -> list[Problem]:
    """Add the workspace-side edits of every move to the plan (see the module docstring): per
    workspace root one FilePlan for its pyproject.toml, one per other project whose sources change.
    The member's own files are planned by the rewrite itself."""
    problems: list[Problem] = []
    root = ws.root
    by_root: dict[Path, list[tuple[Project, ServicePlan]]] = {}
    for project, sp in moving:
        assert project.workspace_root is not None
        by_root.setdefault(project.workspace_root, []).append((project, sp))
    for wroot, members in sorted(by_root.items()):
        owner = members[0][1]
        wrel = relpath(wroot, root)
        names = {canonicalize_name(p.name or ""): p for p, _ in members}
        moves = {p.path: UvMove(p.rel(root), wrel, relpath(p.path, wroot)) for p, _ in members}
        for project, sp in members:
            sp.move = moves[project.path]
        edited: dict[Path, tuple[str, Any]] = {}
        holders = [p for p in ws.projects if p.workspace_root == wroot and p.path not in moves]
        for holder in holders:
            sources = _workspace_sources(holder.data)
            for key, entry in sources.items():
                target = names.get(canonicalize_name(key))
                if target is None or not (isinstance(entry, dict) and entry.get("workspace") is True):
                    continue
                text, doc = edited.get(holder.path) or (holder.text, tomlkit.parse(holder.text))
                table = doc["tool"]["uv"]["sources"]
                new = tomlkit.inline_table()
                new.update({"path": relpath(target.path, holder.path), "editable": True})
                table[key] = new
                edited[holder.path] = (text, doc)
                line = holder.lines.key(("tool", "uv", "sources"), key)
                moves[target.path].switched.append(f"{relpath(holder.pyproject, root)}:{line or '?'}")
        root_project = ws.project_at(wroot)
        if root_project is None:
            problems.append(Problem("error", "uv-move-unreadable", f"{wrel}/pyproject.toml", None,
                                    "the uv workspace root cannot be read, so its members cannot be moved out of it",
                                    "fix it first (`nexusify audit`); nothing was written"))
            continue
        text, doc = edited.get(wroot) or (root_project.text, tomlkit.parse(root_project.text))
        table = doc["tool"]["uv"]["workspace"]
        exclude = table.get("exclude")
        wanted = [m.exclude for m in moves.values()]
        if exclude is None:
            arr = tomlkit.array()
            arr.extend(wanted)
            table["exclude"] = arr
        elif isinstance(exclude, list):
            exclude.extend(w for w in wanted if w not in exclude)
        else:
            problems.append(Problem("error", "uv-move-unrewritable", relpath(root_project.pyproject, root),
                                    root_project.lines.key(("tool", "uv", "workspace"), "exclude"),
                                    "[tool.uv.workspace] exclude is not a list", "make it a list; nothing was written"))
            continue
        edited[wroot] = (text, doc)
        for folder, (old_text, new_doc) in sorted(edited.items()):
            found = ws.project_at(folder)
            assert found is not None
            new_text = re.sub(r'= \{path = ("[^"]*"), editable = true\}', r'= { path = \1, editable = true }',
                              tomlkit.dumps(new_doc))
            rel = relpath(found.pyproject, root)
            who = ", ".join(m.member for m in moves.values())
            owner.files.append(FilePlan(found.pyproject, rel, "pyproject", owner.name, old_text.encode("utf-8"),
                                        new_text.encode("utf-8"),
                                        _line_edits(old_text, new_text, f"move {who} out of the uv workspace")))
        _move_lock_jobs(ws, wroot, members, moves)
    return problems


def _move_lock_jobs(ws: Workspace, wroot: Path, members: list[tuple[Project, ServicePlan]],
                    moves: Mapping[Path, UvMove]) -> None:
    """The locks of the moves out of one workspace, as lock jobs (see the module docstring): the
    root's uv.lock re-locked (a job of the first member's plan), each member's own uv.lock (made
    from the root's pins when it has none)."""
    shared = frozenset(p.normalized for p in ws.shared() if p.normalized)
    lock = wroot / "uv.lock"
    owner = members[0][1]
    moved = frozenset(canonicalize_name(p.name) for p, _ in members if p.name)
    if lock.is_file():
        owner.lock_jobs.insert(0, LockJob(owner.name, wroot, lock, tuple(sorted(moved)), shared, local=moved))
    for project, sp in members:
        move = moves[project.path]
        if lock.is_file():
            move.locks.append(relpath(lock, ws.root))
        own = project.path / "uv.lock"
        move.locks.append(relpath(own, ws.root))
        if not any(j.lockfile == own for j in sp.lock_jobs):
            names = tuple(sorted(set(sp.shared) | set(sp.added)))
            sp.lock_jobs.append(LockJob(sp.name, project.path, own, names, shared,
                                        seed=lock if lock.is_file() else None))


def merge_compose_files(plan: RewritePlan) -> None:
    """Several moved members built by one compose file: each planned its own lines of it (single-line
    edits of its service's ``build``); the file is written once, with all of them, by the first."""
    first: dict[Path, FilePlan] = {}
    for sp in plan.services:
        kept = []
        for f in sp.files:
            if f.kind != "compose":
                kept.append(f)
                continue
            if f.path not in first:
                first[f.path] = f
                kept.append(f)
                continue
            base = first[f.path]
            lines = base.new.decode("utf-8").splitlines(keepends=True)
            for e in f.edits:
                ending = lines[e.line - 1][len(lines[e.line - 1].rstrip("\r\n")):]
                lines[e.line - 1] = e.after + ending
            base.new = "".join(lines).encode("utf-8")
            base.edits = sorted(base.edits + f.edits, key=lambda e: e.line)
        sp.files = kept


def stale_move_locks(ws: Workspace, plan: RewritePlan, services: Iterable[Project]) -> None:
    """Locks a move left behind (it could not lock, ``--no-lock``, or they were edited since): a
    target service whose folder a uv workspace root excludes has no uv.lock of its own, or the
    root's uv.lock still records it as a member. Found statically, they become lock jobs of the
    plan: the next ``rewrite`` makes them, and ``rewrite --check`` reports them."""
    shared = frozenset(p.normalized for p in ws.shared() if p.normalized)
    plans = {sp.path: sp for sp in plan.services}
    for wroot in ws.projects:
        excludes = subtable(wroot.data, "tool", "uv", "workspace").get("exclude")
        if not isinstance(excludes, list):
            continue
        excluded = {d for e in excludes for d in glob_dirs(wroot.path, e)}
        lock = wroot.path / "uv.lock"
        try:
            recorded = tomlkit.parse(lock.read_text(encoding="utf-8")).unwrap().get("manifest", {}).get("members", [])
        except (OSError, ValueError):
            recorded = []
        members = {canonicalize_name(str(m)) for m in recorded}
        still: list[tuple[str, ServicePlan]] = []
        for p in services:
            sp = plans.get(p.path)
            if sp is None or p.path not in excluded or p.workspace_root is not None:
                continue
            own = p.path / "uv.lock"
            if not own.is_file() and not any(j.lockfile == own for j in sp.lock_jobs):
                names = tuple(sorted(set(sp.shared) | set(sp.added) | set(sp.by_version)))
                sp.lock_jobs.append(LockJob(
                    sp.name, p.path, own, names, shared, seed=lock if lock.is_file() else None,
                    stale=f"{p.rel(ws.root)} was taken out of the uv workspace at {wroot.rel(ws.root)} "
                          "and has no uv.lock of its own"))
            if p.name and canonicalize_name(p.name) in members:
                still.append((canonicalize_name(p.name), sp))
        if still and not any(j.lockfile == lock for sp in plan.services for j in sp.lock_jobs):
            moved = frozenset(n for n, _ in still)
            who = ", ".join(sorted(moved))
            still[0][1].lock_jobs.insert(0, LockJob(
                still[0][1].name, wroot.path, lock, tuple(sorted(moved)), shared, local=moved,
                stale=f"it still records {who} as {'a member' if len(moved) == 1 else 'members'} of the uv workspace"))


def leftover_workspace_sources(sp: ServicePlan, project: Project, root: Path) -> list[Problem]:
    """After the rewrite, a moved member must take nothing from the workspace it leaves: any
    ``{ workspace = true }`` left (a fellow member that is not a shared package) is an error."""
    new = next((f for f in sp.files if f.path == project.pyproject), None)
    data = tomlkit.parse(new.new.decode("utf-8")).unwrap() if new is not None else project.data
    left = [k for k, v in _workspace_sources(data).items() if isinstance(v, dict) and v.get("workspace") is True]
    if not left:
        return []
    rel = relpath(project.pyproject, root)
    return [Problem("error", "uv-move-workspace-source", rel, project.lines.key(("tool", "uv", "sources"), left[0]),
                    f"{sp.rel} takes {', '.join(left)} from the uv workspace, and {'it is' if len(left) == 1 else 'they are'} "
                    "not a shared package: it cannot be moved out of the workspace onto the index",
                    "publish it as a shared package, or leave this member out of the rewrite targets; "
                    "nothing was written")]


__all__ = [
    "is_member",
    "leftover_workspace_sources",
    "merge_compose_files",
    "moves_out",
    "plan_workspace_edits",
    "stale_move_locks",
]
