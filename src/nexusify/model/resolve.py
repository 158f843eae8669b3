"""Resolution: every local dependency to the project it names (relative paths, workspace
members, absolute container paths mapped onto the monorepo), or a problem saying why not."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.paths import (
    PathMapper,
    is_inside,
    is_project_relative,
    matches_glob,
    requirements_base,
)
from nexusify.model.project import LocalDependency, Project


def resolve_dependency(
    dep: LocalDependency,
    owner: Project,
    root: Path,
    by_path: dict[Path, Project],
    by_name: dict[str, Project],
    mapper: PathMapper,
    broken: set[Path],
    exclude: list[str],
    problems: list[Problem],
) -> None:
    rel = relpath(dep.file, root)
    where = relpath(dep.source_file, root) if dep.source_file and dep.source_file != dep.file else rel
    line = dep.path_line if where == rel else dep.source_line
    if dep.kind == "uv-workspace":
        target = by_name.get(dep.normalized)
        ws_root = by_path.get(owner.workspace_root) if owner.workspace_root else None
        members = set(ws_root.workspace_members) | {ws_root.path} if ws_root else set()
        if target is not None and target.path in members:
            dep.resolved = target.path
            return
        if ws_root is None:
            msg = f"{dep.name} is declared `workspace = true` but {relpath(owner.path, root)} is in no uv workspace"
            hint = "add [tool.uv.workspace] members = [...] to the workspace root's pyproject.toml"
        else:
            msg = f"{dep.name} is declared `workspace = true` but no member of the workspace at {relpath(ws_root.path, root)} has that name"
            hint = ("add its folder to [tool.uv.workspace] members" if target is not None
                    else "fix the name, or add the package to the workspace members")
        problems.append(Problem("error", "workspace-member-missing", where, line, msg, hint))
        return
    raw = dep.raw_path or ""
    written_abs = os.path.isabs(raw) and not (dep.written and is_project_relative(dep.written))
    base = requirements_base(dep.file, owner.path, raw) if dep.kind == "requirements" else owner.path
    candidate = Path(os.path.normpath(Path(raw) if os.path.isabs(raw) else base / os.path.expanduser(raw)))
    if candidate in by_path:
        dep.resolved = candidate
    elif candidate.is_dir():
        if candidate in broken:
            dep.resolved = candidate  # its invalid-toml problem is reported already
            return
        if dep.kind == "requirements" and is_inside(candidate, owner.path):
            return  # code vendored inside the service folder ships with it: not a shared package
        if not is_inside(candidate, root):
            problems.append(Problem(
                "error", "outside-monorepo", where, line,
                f"{dep.name}: {raw} is outside the monorepo root",
                "run nexusify with --root at the monorepo's top folder",
            ))
            return
        if (candidate / "pyproject.toml").is_file():
            relc = relpath(candidate, root)
            skipped = exclude and any(matches_glob("/".join(relc.split("/")[:i]), exclude)
                                      for i in range(1, relc.count("/") + 2))
            problems.append(Problem(
                "error", "excluded-dependency", where, line,
                f"{dep.name}: {relc} is " + ("excluded by the `exclude` setting" if skipped
                                             else "inside a folder audit skips (virtualenv, build or cache)"),
                "stop excluding it, or move the package",
            ))
            return
        legacy = (candidate / "setup.py").is_file() or (candidate / "setup.cfg").is_file()
        problems.append(Problem(
            "error", "not-a-project", where, line,
            f"{dep.name}: {relpath(candidate, root)} has no pyproject.toml" + (" (setup.py only)" if legacy else ""),
            "add a pyproject.toml with [project] name and version and a [build-system]" if legacy
            else "point the dependency at a project folder",
        ))
        return
    elif candidate.is_file():
        problems.append(Problem(
            "warning", "file-dependency", where, line,
            f"{dep.name}: {raw} is a file (a built wheel or sdist), not a project folder; nexusify leaves it alone",
            "depend on the project's folder instead, or publish that file to the index yourself",
        ))
        return
    elif written_abs:
        mapped = mapper.map(raw)
        if isinstance(mapped, Path):
            dep.resolved = mapped
            dep.mapped_from = raw
        elif mapped == "ambiguous":
            problems.append(Problem(
                "error", "ambiguous-path", where, line,
                f"{dep.name}: {raw} does not exist here and its trailing folders match several projects",
                'map it with path-aliases = {"<container prefix>" = "<monorepo folder>"} in nexusify.toml',
            ))
            return
        else:
            problems.append(Problem(
                "error", "unresolvable-path", where, line,
                f"{dep.name}: {raw} does not exist here (a path inside a container?) and matches no project of the monorepo",
                f'map it with path-aliases = {{"{PurePosixPath(raw).parent.as_posix()}" = "<monorepo folder>"}} '
                "in nexusify.toml, or fix the path",
            ))
            return
    elif (why := _broken_path(candidate)) is not None:
        problems.append(Problem(
            "error", "broken-path", where, line, f"{dep.name}: path {raw} {why}",
            "fix the link or the folder's permissions; it is resolved relative to the folder of the file that declares it",
        ))
        return
    else:
        guess = mapper.map(raw)
        by_dep_name = by_name.get(dep.normalized)
        suggestion = (relpath(guess, root) if isinstance(guess, Path)
                      else relpath(by_dep_name.path, root) if by_dep_name else None)
        problems.append(Problem(
            "error", "missing-path", where, line,
            f"{dep.name}: path {raw} does not exist" + (f" (did you mean {suggestion}?)" if suggestion else ""),
            "fix the path; it is resolved relative to the folder of the file that declares it",
        ))
        return
    target = by_path.get(dep.resolved) if dep.resolved is not None else None
    if target is not None and target.normalized and dep.normalized and target.normalized != dep.normalized:
        problems.append(Problem(
            "error", "name-mismatch", where, dep.line,
            f"{dep.name} points at {relpath(target.path, root)}, whose project is named {target.name!r}",
            f"rename the dependency to {target.name}",
        ))



def adopt_target_name(dep: LocalDependency, by_path: dict[Path, Project]) -> None:
    """A bare path in a requirements file, or PDM's unnamed ``-e`` form, is named by the project it
    resolves to."""
    if dep.normalized or dep.resolved is None:
        return
    target = by_path.get(dep.resolved)
    if target is not None and target.name and target.normalized:
        dep.name, dep.normalized = target.name, target.normalized


def _broken_path(candidate: Path) -> str | None:
    """Why a path that is there cannot be used (a dangling or looping link, no permission), or
    None when it simply does not exist: each cause gets its own message."""
    try:
        candidate.stat()
    except FileNotFoundError:
        if not os.path.lexists(candidate):
            return None
        try:
            return f"is a symbolic link to {os.readlink(candidate)}, which does not exist"
        except OSError:
            return "is a symbolic link that leads nowhere"
    except PermissionError:
        return "cannot be read here (permission denied)"
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            return "is a symbolic link loop"
        return f"cannot be read: {exc.strerror}"
    return None
