"""The rewrite of pip requirements files: each line installing a shared package from a path or
``file:`` URL becomes ``name<constraint>``; a file without an ``--index-url`` gets one, as does one
that names a shared package without a path."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement

from nexusify.credentials import mask_url
from nexusify.errors import NexusifyError, Problem
from nexusify.formats.pyproject_edit import Edit
from nexusify.model import LocalDependency, Project, relpath
from nexusify.rewrite.plan_data import FilePlan, RewritePlan
from nexusify.syntax.constraints import pep440_specifier
from nexusify.syntax.requirements import RequirementsFile, replace_lines, requirement_line, tree_of


def _same_index(a: str, b: str) -> bool:
    return mask_url(a.strip().strip("'\"")).rstrip("/") == mask_url(b).rstrip("/")


def plan_requirements(project: Project, deps: Sequence[LocalDependency], versions: Mapping[str, str], mode: str,
                      url: str, root: Path, shared: Collection[str] = ()) -> tuple[list[FilePlan], list[Problem]]:
    """The edits of ``project``'s requirements files: each line of ``deps`` (all in those
    files) becomes ``name<constraint>``; a file without an ``--index-url`` gets one, and so does a
    file that names a ``shared`` package without a path (pip would ask PyPI for an internal name)."""
    problems: list[Problem] = []
    by_file: dict[Path, list[LocalDependency]] = {}
    for d in deps:
        by_file.setdefault(d.file, []).append(d)
    files = project.requirement_files
    for path in sorted({i.file for i in project.index_deps if i.location[0] == "requirements"
                        and i.normalized in shared and i.file in files}):
        read_with_index = any(o for top in project.requirement_tops for f in tree_of(top.resolve(), files)
                              if path in {g.path for g in tree_of(top.resolve(), files)} for o in f.index_urls())
        if not read_with_index and not any(o for f in tree_of(path, files) for o in f.index_urls()):
            by_file.setdefault(path, [])
    problems.extend(_index_problems(project, set(by_file), url, root))
    plans: list[FilePlan] = []
    for path, file_deps in by_file.items():
        parsed = files.get(path)
        if parsed is None:  # pragma: no cover - every requirements dependency comes from a parsed file
            continue
        has_index = any(o for f in tree_of(path, files) for o in f.index_urls())
        plan, more = _plan_requirements_file(parsed, file_deps, versions, mode, url, root,
                                             project.name or project.rel(root), add_index=not has_index)
        problems.extend(more)
        if plan is not None:
            plans.append(plan)
    return plans, problems


def _index_problems(project: Project, rewritten: set[Path], url: str, root: Path) -> list[Problem]:
    """A different ``--index-url`` in a file pip reads along with a rewritten line (an error:
    the shared packages would not be found) and an ``--extra-index-url`` elsewhere (a warning)."""
    files = project.requirement_files
    seen: set[tuple[Path, int]] = set()
    problems: list[Problem] = []
    tops = [t.resolve() for t in project.requirement_tops]
    for top in [*tops, *rewritten]:
        tree = tree_of(top, files)
        if not rewritten & {f.path for f in tree}:
            continue
        for f in tree:
            for option in f.options:
                if option.option == "--no-index" and (f.path, option.line) not in seen:
                    seen.add((f.path, option.line))
                    problems.append(Problem(
                        "error", "requirements-no-index", relpath(f.path, root), option.line,
                        "--no-index makes pip ignore every index (in any order, even beside --index-url), "
                        "so the shared packages would not be found",
                        f"delete the line so pip installs from {url}; nothing was written"))
            for option in [*f.index_urls(), *f.extra_index_urls()]:
                if (f.path, option.line) in seen or _same_index(option.value, url):
                    continue
                seen.add((f.path, option.line))
                problems.append(_index_problem(f, option.option, option.value, option.line, url, root))
    return problems


def _index_problem(f: RequirementsFile, option: str, value: str, line: int, url: str, root: Path) -> Problem:
    rel = relpath(f.path, root)
    shown = mask_url(value.strip("'\""))
    if option == "--index-url":
        return Problem(
            "error", "requirements-index-conflict", rel, line,
            f"installs from --index-url {shown}, but the shared packages are on {url}: pip reads one index, "
            "so it would not find them",
            f"change the line to `--index-url {url}` (a Nexus group repository that proxies PyPI serves every "
            "package) or delete it so nexusify adds it; nothing was written")
    return Problem(
        "warning", "requirements-extra-index", rel, line,
        f"--extra-index-url {shown}: pip takes the highest version of a name across every index, so a package "
        "there with a shared package's name would be installed instead (dependency confusion)",
        f"delete the line and let {url} (a Nexus group repository) proxy the other index")


def _plan_requirements_file(parsed: RequirementsFile, deps: Sequence[LocalDependency], versions: Mapping[str, str],
                            mode: str, url: str, root: Path, service: str,
                            add_index: bool) -> tuple[FilePlan | None, list[Problem]]:
    rel = relpath(parsed.path, root)
    problems: list[Problem] = []
    try:
        old = parsed.path.read_bytes()
    except OSError as exc:
        return None, [Problem("error", "unreadable", rel, None, f"cannot read: {exc.strerror}")]
    bom = old.startswith(b"\xef\xbb\xbf")
    if old.decode("utf-8-sig", "replace") != parsed.text:
        return None, [Problem("error", "requirements-changed", rel, None, "changed while the monorepo was read",
                              "re-run the rewrite; nothing was written")]
    entries = {e.line: e for e in parsed.entries}
    replacements: dict[int, tuple[int, str]] = {}
    edits: list[Edit] = []
    for d in sorted(deps, key=lambda d: d.line or 0):
        entry = entries.get(d.line or 0)
        version = versions.get(d.normalized)
        if entry is None or version is None:
            problems.append(Problem("error", "version-unknown", rel, d.line,
                                    f"{d.name}: no version known for this shared package",
                                    "give it a version in its pyproject.toml, or publish it (--from-index)"))
            continue
        if "--hash" in entry.options:
            problems.append(Problem(
                "error", "requirements-hash", rel, d.line,
                f"{d.name}: the line carries --hash, which pins the old file; a version range from the index "
                "cannot keep it (pip's hash-checking mode needs `==` and the published file's hash)",
                "remove its --hash options (or regenerate the hashes with pip-compile --generate-hashes after "
                "the rewrite); nothing was written"))
            continue
        try:
            specifier = pep440_specifier(version, mode)
            new = requirement_line(d.name, specifier, entry)
        except (NexusifyError, InvalidRequirement) as exc:
            problems.append(Problem("error", "requirements-unrewritable", rel, d.line,
                                    f"{d.name}: cannot write a requirement for it: {exc}", "fix the line by hand"))
            continue
        replacements[entry.line] = (entry.end, new)
        edits.append(Edit(entry.line, "\n".join(parsed.text.splitlines()[entry.line - 1:entry.end]), new,
                          f"{d.name}: local path {d.written} -> version {specifier} from the index"))
    if problems:
        return None, problems
    first = f"--index-url {url}" if add_index else None
    if first is not None:
        edits.insert(0, Edit(1, "", first, f"pip installs from {url} only (credentials come from ~/.netrc or "
                                           "keyring, never from this file)"))
    text = replace_lines(parsed.text, replacements, first)
    new_bytes = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    return FilePlan(parsed.path, rel, "requirements", service, old, new_bytes, edits), problems


def drop_repeated_files(plan: RewritePlan) -> None:
    """A requirements file several services include is planned once (by the first)."""
    seen: set[Path] = set()
    for sp in plan.services:
        kept = []
        for f in sp.files:
            if f.kind == "requirements" and f.path in seen:
                continue
            seen.add(f.path)
            kept.append(f)
        sp.files = kept


__all__ = ["drop_repeated_files", "plan_requirements"]
