"""The sources part of verify's static check: the index each consumer's own tool would take
each shared package from, read the way that tool reads its configuration, is the configured
index, and no other index can serve it (dependency confusion). Every finding names the file
and line.

* **uv**: a shared package with ``[tool.uv.sources] name = { index = "X" }`` comes from the
  ``[[tool.uv.index]]`` named X, whose URL must be the configured one; without such a source,
  uv takes it from the first index it consults (non-``explicit`` indexes in order, then PyPI
  unless one is ``default = true``), which must be the configured one, under uv's default
  ``first-index`` strategy (another ``index-strategy`` lets every index serve it);
* **Poetry**: ``source = "X"`` on the dependency (any group) names a ``[[tool.poetry.source]]``
  whose URL must be the configured one; without it, the first primary source (PyPI when none is
  declared) must be;
* **PDM**: ``[[tool.pdm.source]]`` entries are all searched (and PyPI unless one is named
  ``pypi``): each must be the configured index, or the configured one must claim the package
  through ``include_packages``;
* **pip requirements**: an ``--index-url`` other than the configured one, any other
  ``--extra-index-url``, or a file installing a shared package without ``--index-url``;
* **Dockerfiles**: an ``ARG``/``ENV`` default of ``NEXUS_INDEX_URL``, ``PIP_INDEX_URL``,
  ``PIP_EXTRA_INDEX_URL``, ``UV_INDEX_URL``, ``UV_DEFAULT_INDEX``, ``UV_EXTRA_INDEX_URL``,
  ``UV_INDEX`` and a literal ``--index-url``/``--extra-index-url`` on a RUN naming another index.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from nexusify.formats.dockerfile_rules import JudgedDockerfile
from nexusify.model import Project, Workspace, relpath
from nexusify.syntax.requirements import requirement_name
from nexusify.verify.report import Finding

PYPI = "https://pypi.org/simple"
INDEX_VARS = ("NEXUS_INDEX_URL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
              "UV_EXTRA_INDEX_URL", "UV_INDEX")
_HINT = ("point it at the configured index (its source, index or `--index-url` line), or remove the other index; "
         "`nexusify rewrite` writes the source only while it migrates a path dependency")


def same_index(a: str, b: str) -> bool:
    """Whether two index URLs name the same index (scheme/host case, userinfo, trailing / aside)."""
    def norm(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            port = None
        return (parts.scheme.lower(), (parts.hostname or "").lower(),
                port or {"http": 80, "https": 443}.get(parts.scheme.lower()), parts.path.rstrip("/"))
    return norm(a) == norm(b)


def _line_of(text: str, pattern: str, after: int = 0) -> int | None:
    rx = re.compile(pattern, re.M)
    for n, line in enumerate(text.splitlines(), 1):
        if n > after and rx.search(line):
            return n
    return None


def _needed(consumer: Project, ws: Workspace) -> set[str]:
    shared = {p.normalized for p in ws.shared() if p.normalized}
    return (set(ws.closure([consumer], runtime=False)) | set(consumer.internal_names())) & shared


def source_findings(consumer: Project, ws: Workspace, index_url: str,
                    judged: Iterable[JudgedDockerfile] = (), installed: Iterable[str] | None = None,
                    explicit: bool = True) -> list[Finding]:
    """``installed``: the shared packages it installs (what resolve saw; default: every one it
    may reach, optional extras included) and those it declares; ``explicit`` False (the user chose
    ``priority = "supplemental"``, PyPI first for what names no source): a shared package that
    names no source is accepted, one whose source is another index is not."""
    shared = {p.normalized for p in ws.shared() if p.normalized}
    needed = (set(installed) | set(consumer.internal_names())) & shared if installed is not None \
        else _needed(consumer, ws)
    out: list[Finding] = []
    by_path = any(d.resolved is not None and d.normalized in needed for d in consumer.local_deps)
    if needed and not consumer.requirements_only and not by_path:  # paths: the static check's finding
        rel = relpath(consumer.pyproject, ws.root)
        text = consumer.text or ""
        tool = consumer.data.get("tool", {}) if isinstance(consumer.data, dict) else {}
        if isinstance(tool.get("uv"), dict) or consumer.tool == "uv":
            out += _uv(tool.get("uv") or {}, needed, index_url, rel, text, explicit)
        if isinstance(tool.get("poetry"), dict) and consumer.tool == "poetry":
            out += _poetry(tool["poetry"], needed, index_url, rel, text, explicit)
        if consumer.tool == "pdm":
            out += _pdm((tool.get("pdm") or {}).get("source") or [], needed, index_url, rel, text, explicit)
    first: Finding | None = None
    has_index = False
    for req in consumer.requirement_files:  # pip applies an --index-url of any file it reads
        found, indexed, installs = requirements_findings(req, needed, index_url, ws.root)
        out += found
        has_index |= indexed
        first = first or installs
    if first is not None and not has_index:
        out.append(first)
    for jd in judged:
        if jd.content is not None:
            out += dockerfile_index_findings(jd.rel, jd.content.decode("utf-8", "replace"), index_url)
    return out


def _uv(uv: Mapping[str, Any], needed: set[str], url: str, rel: str, text: str, explicit: bool) -> list[Finding]:
    indexes = [i for i in uv.get("index", []) if isinstance(i, dict)]
    by_name = {str(i.get("name")): i for i in indexes}
    sources: dict[str, Any] = {canonicalize_name(k): v for k, v in (uv.get("sources") or {}).items()}
    consulted = [str(i.get("url", "")) for i in indexes if not i.get("explicit")]
    if not any(i.get("default") for i in indexes):
        consulted.append(PYPI)
    strategy = str(uv.get("index-strategy", "first-index"))
    out: list[Finding] = []
    for name in sorted(needed):
        src = sources.get(name)
        entries = src if isinstance(src, list) else [src] if isinstance(src, dict) else []
        if any(not isinstance(e, dict) or "index" not in e for e in entries) and entries:
            continue  # a path or workspace source: the static check reports it
        if entries:
            line = _line_of(text, rf"^\s*{re.escape(name)}\s*=|^\s*\"?{re.escape(name)}\"?\s*=")
            out += [f for e in entries if (f := _named_source(
                "uv index", "[[tool.uv.index]]", name, str(e["index"]), by_name, url, rel, text, line))]
            continue
        if (explicit and not same_index(consulted[0], url)) or (strategy != "first-index" and any(
                not same_index(c, url) for c in consulted)):
            other = next(c for c in consulted if not same_index(c, url))
            out.append(Finding(f"{name} has no uv source on the configured index, so uv may take it from {other} "
                               f"(index-strategy {strategy})", rel, _line_of(text, r"^\s*\[tool\.uv"), _HINT))
    return out


def _named_source(kind: str, table: str, name: str, source: str, declared: Mapping[str, Mapping[str, Any]],
                  url: str, rel: str, text: str, line: int | None) -> Finding | None:
    """The finding for ``name`` taken from the named ``source`` (a uv index, a Poetry source):
    none declares it in ``table``, or it is another index than the configured ``url``; else None."""
    found = declared.get(source)
    if found is None:
        return Finding(f"{name} comes from {kind} {source!r}, which no {table} declares", rel, line, _HINT)
    if same_index(str(found.get("url", "")), url):
        return None
    at = _line_of(text, rf"^\s*name\s*=\s*[\"']{re.escape(source)}[\"']")
    return Finding(f"{name} comes from {kind} {source!r} at {found.get('url')}, not the configured index {url}",
                   rel, at or line, _HINT)


def _poetry_deps(poetry: Mapping[str, Any]) -> dict[str, Any]:
    deps: dict[str, Any] = {canonicalize_name(k): v for k, v in (poetry.get("dependencies") or {}).items()}
    for group in (poetry.get("group") or {}).values():
        for k, v in ((group or {}).get("dependencies") or {}).items():
            deps.setdefault(canonicalize_name(k), v)
    for k, v in (poetry.get("dev-dependencies") or {}).items():
        deps.setdefault(canonicalize_name(k), v)
    return deps


def _poetry(poetry: Mapping[str, Any], needed: set[str], url: str, rel: str, text: str,
            explicit: bool) -> list[Finding]:
    sources = [s for s in poetry.get("source", []) if isinstance(s, dict)]
    by_name = {str(s.get("name")): s for s in sources}
    primary = [str(s.get("url", "")) for s in sources
               if str(s.get("priority", "primary")) in ("primary", "default")] or [PYPI]
    deps = _poetry_deps(poetry)
    out: list[Finding] = []
    for name in sorted(needed):
        spec = deps.get(name)
        if isinstance(spec, dict) and ("path" in spec or "url" in spec or "git" in spec):
            continue  # the static check reports paths
        line = _line_of(text, rf"^\s*\"?{re.escape(name)}\"?\s*=")
        if isinstance(spec, dict) and "source" in spec:
            found = _named_source("Poetry source", "[[tool.poetry.source]]", name, str(spec["source"]), by_name,
                                  url, rel, text, line)
            out += [found] if found else []
            continue
        if explicit and not same_index(primary[0], url):
            out.append(Finding(f"{name} names no Poetry source, so Poetry takes it from {primary[0]}, not the "
                               f"configured index {url}", rel, line, _HINT))
    return out


def _pdm(sources: Iterable[Any], needed: set[str], url: str, rel: str, text: str, explicit: bool) -> list[Finding]:
    entries = [s for s in sources if isinstance(s, dict) and s.get("type", "index") == "index"]
    searched = [(str(s.get("name")), str(s.get("url", "")), s) for s in entries]
    if not any(n == "pypi" for n, _u, _s in searched):
        searched.append(("pypi", PYPI, {}))
    out: list[Finding] = []
    for name in sorted(needed):
        claimed = [u for _n, u, s in searched
                   if any(fnmatch.fnmatch(name, str(p)) for p in s.get("include_packages", []) or [])]
        if claimed and all(same_index(u, url) for u in claimed):
            continue
        others = [(n, u) for n, u, s in searched if not same_index(u, url)
                  and not any(fnmatch.fnmatch(name, str(p)) for p in s.get("exclude_packages", []) or [])]
        if others and (explicit or not any(n == "pypi" for n, _u in others) or len(others) > 1):
            n, u = next((o for o in others if o[0] != "pypi" or explicit), others[0])
            at = _line_of(text, rf"^\s*name\s*=\s*[\"']{re.escape(n)}[\"']") or _line_of(text, r"^\s*\[\[tool\.pdm")
            out.append(Finding(f"PDM searches every source, so {name} may come from {n!r} at {u}, not only from the "
                               f"configured index {url}", rel, at, "give the configured source "
                               f"`include_packages = [\"{name}\"]`, or remove the other sources"))
    return out


_REQ_INDEX = re.compile(r"^\s*(-i|--index-url|--extra-index-url)(?:\s*=\s*|\s+)(\S+)")


def requirements_findings(req: Path, needed: set[str], url: str,
                          root: Path) -> tuple[list[Finding], bool, Finding | None]:
    """(other indexes it names, whether it sets --index-url, a finding at its first line installing
    a shared package by name in case no file of the consumer sets one)."""
    try:
        lines = req.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return [], False, None
    rel = relpath(req, root)
    out: list[Finding] = []
    has_index = False
    installs: int | None = None
    for n, line in enumerate(lines, 1):
        m = _REQ_INDEX.match(line)
        if m:
            value = m.group(2)
            if m.group(1) != "--extra-index-url":
                has_index = True
            if "$" not in value and not same_index(value, url):
                what = "extra index" if m.group(1) == "--extra-index-url" else "index"
                out.append(Finding(f"pip takes packages from the {what} {value}, not only from the configured "
                                   f"index {url}", rel, n, _HINT))
            continue
        name = requirement_name(line)
        if name and name in needed and installs is None:
            installs = n
    missing = None if installs is None else Finding(
        "installs a shared package but no requirements file sets --index-url: pip takes it from PyPI or "
        "whatever index its environment names", rel, installs, "add `--index-url <the index>` as the first line "
        "(`nexusify rewrite`)")
    return out, has_index, missing


_RUN_INDEX = re.compile(r"(--index-url|--extra-index-url|--default-index|--index|-i)(?:\s*=\s*|\s+)([\"']?)(\S+?)\2(?=\s|$)")


def dockerfile_index_findings(rel: str, text: str, url: str) -> list[Finding]:
    """Index URLs a Dockerfile gives its installs, as defaults or literally, that are not ``url``."""
    from nexusify.syntax.dockerfile_parse import DockerfileSyntaxError, parse

    try:
        instructions = parse(text)
    except DockerfileSyntaxError:
        return []  # the shared-code rule reports it
    out: list[Finding] = []
    for instr in instructions:
        found: list[tuple[str, str]] = []
        if instr.keyword in ("ARG", "ENV"):
            words = list(instr.words)
            if instr.keyword == "ENV" and len(words) == 2 and "=" not in words[0]:
                words = [f"{words[0]}={words[1]}"]
            for word in words:
                key, eq, value = word.partition("=")
                if eq and key in INDEX_VARS:
                    found += [(key, v) for v in value.strip("'\"").split()]
        elif instr.keyword == "RUN":
            found += [(m.group(1), m.group(3)) for m in _RUN_INDEX.finditer(instr.args)]
        for key, value in found:
            if value and "$" not in value and "://" in value and not same_index(value, url):
                out.append(Finding(f"{instr.keyword} {key} names the index {value}, not the configured index {url}: "
                                   "a build that does not override it installs from there", rel, instr.start, _HINT))
    return out


__all__ = ["dockerfile_index_findings", "requirements_findings", "same_index", "source_findings"]
