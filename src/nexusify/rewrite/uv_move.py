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
* locks (:func:`relock_moves`): the root ``uv.lock`` is re-locked with ``uv lock`` (minimal: uv keeps
  every pin it can) and the member gets its own ``uv.lock``, made in a copy of its folder seeded
  with the root's old lock, so uv keeps the third-party versions the workspace had pinned. When
  locking cannot run, the files are still rewritten and each stale lock is a warning with the
  exact command;
* its Dockerfiles that build inside the workspace: :mod:`nexusify.rewrite.uv_move_dockerfile`.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from packaging.utils import canonicalize_name

from nexusify.credentials import Credentials
from nexusify.errors import Problem
from nexusify.formats.edits import Edit
from nexusify.formats.toml import subtable
from nexusify.model import Project, Workspace, relpath
from nexusify.model.paths import glob_dirs
from nexusify.rewrite.lock import lock_copy
from nexusify.rewrite.plan_data import FilePlan, RewritePlan, ServicePlan, UvMove


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
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
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
        lock = wroot / "uv.lock"
        for project, _ in members:
            move = moves[project.path]
            if lock.is_file():
                move.locks.append(relpath(lock, root))
            move.locks.append(relpath(project.path / "uv.lock", root))
    return problems


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


def stale_move_locks(ws: Workspace, services: Iterable[Project]) -> list[Problem]:
    """Locks a move left behind (it could not lock, or they were edited since): a target service
    whose folder a uv workspace root excludes has no uv.lock of its own, or the root's uv.lock still
    records it as a member. Found statically, so `rewrite --check` reports them too."""
    problems: list[Problem] = []
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
        for p in services:
            if p.path not in excluded or p.workspace_root is not None:
                continue
            if not (p.path / "uv.lock").is_file():
                rel = relpath(p.path / "uv.lock", ws.root)
                problems.append(Problem("warning", "stale-lockfile", rel, None,
                                        f"{p.rel(ws.root)} was taken out of the uv workspace at {wroot.rel(ws.root)} and "
                                        "has no uv.lock of its own",
                                        f"run `uv lock` in {p.rel(ws.root)} (the shared packages must be published)"))
            if p.name and canonicalize_name(p.name) in {canonicalize_name(str(m)) for m in recorded}:
                rel = relpath(lock, ws.root)
                problems.append(Problem("warning", "stale-lockfile", rel, None,
                                        f"{rel} still records {p.name} as a member of the uv workspace",
                                        f"run `uv lock` in {wroot.rel(ws.root)}"))
    return problems


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


def relock_moves(plan: RewritePlan, env: Mapping[str, str], creds: Credentials | None) -> None:
    """Re-lock the workspace root and lock each moved member (see the module docstring). The new
    lockfiles join the plan; a lock that cannot be made is a warning with the exact command."""
    roots: dict[Path, list[ServicePlan]] = {}
    for sp in plan.services:
        if sp.move is not None:
            roots.setdefault(plan.root / sp.move.workspace, []).append(sp)
    for wroot, sps in sorted(roots.items()):
        wroot = wroot.resolve()
        overlay = {f.path: f.new for f in plan.files}
        old_root_lock = (wroot / "uv.lock").read_bytes() if (wroot / "uv.lock").is_file() else None
        if old_root_lock is not None and _lock_into(plan, sps[0], wroot, overlay, None, env, creds):
            for sp in sps:
                assert sp.move is not None
                sp.move.locked.append(relpath(wroot / "uv.lock", plan.root))
        for sp in sps:
            own = sp.path / "uv.lock"
            seed = own.read_bytes() if own.is_file() else old_root_lock
            if _lock_into(plan, sp, sp.path, overlay, seed, env, creds):
                assert sp.move is not None
                sp.move.locked.append(relpath(sp.path / "uv.lock", plan.root))


def _lock_into(plan: RewritePlan, sp: ServicePlan, folder: Path, overlay: Mapping[Path, bytes],
               seed: bytes | None, env: Mapping[str, str], creds: Credentials | None) -> bool:
    """(Re-)make ``folder``'s uv.lock into the plan (a FilePlan of ``sp``); False, with a warning, when
    it cannot be made."""
    lockfile = folder / "uv.lock"
    lrel = relpath(lockfile, plan.root)
    frel = relpath(folder, plan.root)
    with tempfile.TemporaryDirectory(prefix="nexusify-move-") as tmp:
        new, why = lock_copy(folder, Path(tmp) / (folder.name or "root"), overlay, "uv", plan.source, creds, env,
                             seed=seed)
    if new is None:
        plan.problems.append(Problem(
            "warning", "stale-lockfile", lrel, None,
            f"{lrel} could not be {'re-' if lockfile.is_file() else ''}made: {why}",
            f"publish the shared packages (nexusify publish), then run `uv lock` in {frel}"))
        return False
    old = lockfile.read_bytes() if lockfile.is_file() else b""
    if new != old:
        sp.files.append(FilePlan(lockfile, lrel, "lockfile", sp.name, old, new,
                                 [Edit(1, "", "", f"{'re-' if old else ''}locked with `uv lock` against "
                                                  f"{plan.source.name}")]))
    return True


__all__ = [
    "is_member",
    "leftover_workspace_sources",
    "merge_compose_files",
    "moves_out",
    "plan_workspace_edits",
    "relock_moves",
    "stale_move_locks",
]
