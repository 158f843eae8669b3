"""The file edits of a release, as text in and text out: a package's version (static field or
its dynamic source file), a consumer's constraint on a shared package (re-pin), and a
Keep a Changelog entry. Pure: nothing here reads the monorepo or writes a file."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from tomlkit.items import InlineTable, String, Table

from nexusify.errors import Problem
from nexusify.model import Project, relpath
from nexusify.model.dynamic_version import describe_source, version_file
from nexusify.model.project import IndexDependency
from nexusify.syntax.constraints import pep440_specifier, poetry_constraint

KEEP_A_CHANGELOG_HEADER = (
    "# Changelog\n\nAll notable changes to this project are documented in this file.\n\n"
    "The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),\n"
    "and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).\n\n"
    "## [Unreleased]\n"
)


def _walk(doc: tomlkit.TOMLDocument, *keys: str) -> Table | None:
    cur: object = doc
    for k in keys:
        if not hasattr(cur, "get") or k not in cur:  # type: ignore[operator]
            return None
        cur = cur[k]  # type: ignore[index]
    return cur if isinstance(cur, (Table, InlineTable, tomlkit.TOMLDocument)) else None  # type: ignore[return-value]


def set_version(project: Project, new: str, root: Path) -> tuple[list[tuple[Path, str]], Problem | None]:
    """The files that carry ``project``'s version, with ``new`` written in: [(path, new text)]."""
    rel = relpath(project.pyproject, root)
    doc = tomlkit.parse(project.pyproject.read_text(encoding="utf-8"))
    changed = False
    proj, poetry = _walk(doc, "project"), _walk(doc, "tool", "poetry")
    if proj is not None and "version" in proj:
        proj["version"] = new
        changed = True
    if poetry is not None and "version" in poetry and not project.version_dynamic:
        poetry["version"] = new
        changed = True
    pdv = _walk(doc, "tool", "poetry-dynamic-versioning")
    if pdv is not None and pdv.get("enable") is True:
        return [], Problem("error", "version-from-git", rel, None,
                           f"{project.name}: poetry-dynamic-versioning takes the version from git tags",
                           f"tag the release (`git tag v{new}`) or set the version by hand; nothing was written")
    if changed:
        return [(project.pyproject, tomlkit.dumps(doc))], None
    where = version_file(project) if project.version_dynamic else None
    if where is None or not where[0].is_file():
        return [], Problem("error", "version-unwritable", rel, None,
                           f"{project.name}: its version is dynamic ({describe_source(project)}), and nexusify "
                           "cannot write it",
                           f"set it to {new} where the build backend reads it, or make it static; nothing was written")
    path, attr = where
    text = path.read_text(encoding="utf-8")
    if attr is None:
        return [(path, new + "\n")], None
    edited, why = replace_assignment(text, attr, new)
    if edited is None:
        return [], Problem("error", "version-unwritable", relpath(path, root), None,
                           f"{project.name}: {why}", f"set {attr} = \"{new}\" by hand; nothing was written")
    return [(path, edited)], None


def replace_assignment(source: str, attr: str, value: str) -> tuple[str | None, str]:
    """``source`` (a Python module) with the string literal of its one module-level ``attr = "..."``
    (or ``attr: str = "..."``) replaced by ``value``, quotes kept; found through the AST, so a
    docstring, a comment or a nested assignment that looks alike is never touched. (None, why)
    when there is no such assignment, or more than one."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return None, f"the file does not parse (line {exc.lineno}: {exc.msg})"
    found: list[ast.Constant] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value_node = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
            if not (isinstance(value_node, ast.Constant) and isinstance(value_node.value, str)):
                return None, f"`{attr}` is not assigned a plain string at module level"
            found.append(value_node)
    if len(found) != 1:
        return None, (f"no module-level `{attr} = \"...\"` assignment to update" if not found else
                      f"`{attr}` is assigned {len(found)} times at module level (lines "
                      f"{', '.join(str(n.lineno) for n in found)}), so which one to update is unclear")
    const = found[0]
    lines = source.splitlines(keepends=True)
    if const.end_lineno != const.lineno or const.end_col_offset is None:
        return None, f"`{attr}`'s string spans several lines (line {const.lineno})"
    raw = lines[const.lineno - 1].encode("utf-8")  # AST columns count UTF-8 bytes
    literal = raw[const.col_offset:const.end_col_offset].decode("utf-8").lstrip("rRuU")
    quote = literal[:3] if literal[:3] in ('"""', "'''") else literal[:1]
    if literal.count(quote) != 2:  # implicit concatenation ("1" "2") or an odd literal: not ours to rewrite
        return None, f"`{attr}`'s string on line {const.lineno} is not one plain literal"
    new = f"{quote}{value}{quote}".encode()
    lines[const.lineno - 1] = (raw[:const.col_offset] + new + raw[const.end_col_offset:]).decode("utf-8")
    return "".join(lines), ""


def repin(text: str, dep: IndexDependency, version: str, mode: str) -> tuple[str, str] | None:
    """``text`` (the file holding ``dep``) with ``dep``'s constraint set to admit ``version``
    under ``mode``, and the new constraint; None when the entry is not where the model says."""
    kind, path, key = dep.location
    if kind == "setuptools":
        return None  # setup.cfg / setup.py install_requires: left to the user (repin-unwritable)
    if kind == "requirements":
        return _repin_requirement_line(text, int(key), version, mode)
    doc = tomlkit.parse(text)
    table = _walk(doc, *path[:-1]) if kind == "pep508" else _walk(doc, *path)
    if table is None:
        return None
    if kind == "poetry":
        new_spec = poetry_constraint(version, mode)
        item = table.get(str(key))
        if isinstance(item, (InlineTable, Table)) and "version" in item:
            item["version"] = new_spec
        elif isinstance(item, (str, String)):
            table[str(key)] = new_spec
        else:
            return None
        return tomlkit.dumps(doc), new_spec
    arr = table.get(path[-1])
    if arr is None or not isinstance(key, int) or key >= len(arr):
        return None
    new_spec = pep440_specifier(version, mode)
    rewritten = _with_specifier(str(arr[key]), new_spec)
    if rewritten is None:
        return None
    arr[key] = rewritten
    return tomlkit.dumps(doc), new_spec


def _with_specifier(requirement: str, specifier: str) -> str | None:
    """``requirement`` with its version specifier replaced; name, extras and the marker text as
    written stay."""
    head, semi, marker = requirement.partition(";")
    try:
        req = Requirement(head.strip())
    except InvalidRequirement:
        return None
    if req.url:
        return None
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{specifier}" + (f";{marker}" if semi else "")


def _repin_requirement_line(text: str, line: int, version: str, mode: str) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    if not 0 < line <= len(lines):
        return None
    raw = lines[line - 1]
    body, nl = raw.rstrip("\r\n"), raw[len(raw.rstrip("\r\n")):]
    m = re.match(r"^(.*?)(\s+#.*)?$", body)
    code, comment = (m.group(1), m.group(2) or "") if m else (body, "")
    if code.rstrip().endswith("\\") or " --" in code:
        return None  # continuation lines or per-requirement options: left to the user
    new_spec = pep440_specifier(version, mode)
    rewritten = _with_specifier(code.strip(), new_spec)
    if rewritten is None:
        return None
    lines[line - 1] = rewritten + comment + nl
    return "".join(lines), new_spec


def current_spec(text: str, dep: IndexDependency) -> str:
    """The constraint as written now (requirements lines: read from the line itself)."""
    if dep.location[0] != "requirements":
        return dep.specifier
    lines = text.splitlines()
    line = int(dep.location[2])
    code = lines[line - 1].partition(" #")[0].strip() if 0 < line <= len(lines) else ""
    try:
        return str(Requirement(code).specifier)
    except InvalidRequirement:
        return ""


def changelog(text: str | None, version: str, date: str, sections: Mapping[str, Sequence[str]]) -> str:
    """``text`` (a CHANGELOG.md, or None) with a Keep a Changelog entry for ``version`` below
    ``## [Unreleased]`` (or above the newest entry)."""
    body = [f"## [{version}] - {date}\n"]
    for name in ("Added", "Changed", "Fixed"):
        if sections.get(name):
            body += ["\n", f"### {name}\n", "\n", *[f"- {line}\n" for line in sections[name]]]
    entry = "".join(body)
    if not text:
        return KEEP_A_CHANGELOG_HEADER + "\n" + entry
    lines = text.splitlines(keepends=True)
    unreleased = next((i for i, ln in enumerate(lines) if re.match(r"^## \[?unreleased\]?", ln, re.I)), None)
    start = 0 if unreleased is None else unreleased + 1
    nxt = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), None)
    if nxt is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join(lines) + "\n" + entry
    return "".join(lines[:nxt]) + entry + "\n" + "".join(lines[nxt:])
