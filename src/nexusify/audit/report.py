"""``nexusify audit``: the monorepo model as a report, with every problem collected.

The report holds the shared packages, the services and their shared dependencies, the publish
order, and problems (errors and warnings) from every check:

- the monorepo model (:mod:`nexusify.model`): TOML syntax, names, versions, build systems,
  paths, virtual projects, duplicates;
- dependency cycles among shared packages (each strongly connected component, named);
- services' Dockerfiles that COPY/ADD shared code into the image;
- with an index configured and reachable: which local versions are published, which are not,
  and whether a published version's files differ from the local sources;
- with ``check_public``: shared package names that also exist on the public index
  (dependency-confusion hazard).

Nothing here prints; network failures become warnings, never crashes.
"""

from __future__ import annotations

import fnmatch
import io
import logging
import os
import re
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nexusify.config import Settings
from nexusify.credentials import mask_url as _mask_url
from nexusify.errors import (
    AuthError,
    HasProblems,
    IndexServerError,
    NexusifyError,
    Problem,
    Severity,
)
from nexusify.model import CycleError, Project, Workspace, relpath, workspace_for

log = logging.getLogger(__name__)

GRAPH_FORMATS = ("mermaid", "dot")


@dataclass
class AuditReport(HasProblems):
    workspace: Workspace
    publish_order: list[str]
    problems: list[Problem]
    index: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def shared_names(self, project: Project, runtime_only: bool = False) -> list[str]:
        """``project``'s direct dependencies that are shared packages (all groups by default)."""
        ws = self.workspace
        return [n for n in project.internal_names(runtime_only)
                if n in ws.by_name and ws.by_name[n].role == "shared"]

    def to_dict(self) -> dict[str, Any]:
        ws = self.workspace
        root = ws.root

        def deps(p: Project) -> list[dict[str, Any]]:
            return [
                {
                    "name": d.name, "kind": d.kind, "group": d.group, "runtime": d.runtime,
                    "path": d.raw_path, "resolved": relpath(d.resolved, root) if d.resolved else None,
                    "mapped_from": d.mapped_from, "line": d.line, "extras": d.extras, "markers": d.markers,
                    "editable": d.editable,
                }
                for d in p.local_deps
            ]

        def index_deps(p: Project) -> list[dict[str, Any]]:
            return [
                {"name": i.name, "specifier": i.specifier, "group": i.group, "runtime": i.runtime,
                 "source": i.source, "file": relpath(i.file, root), "line": i.line}
                for i in p.index_deps
            ]

        def kinds(p: Project) -> dict[str, str]:
            """How each shared dependency is declared: "path" (in the monorepo) or "index" (by version)."""
            out = {d.normalized: "path" for d in p.local_deps if d.resolved is not None}
            for i in p.index_deps:
                out.setdefault(i.normalized, "index")
            return {n: k for n, k in out.items() if n in ws.by_name and ws.by_name[n].role == "shared"}

        return {
            "root": str(root),
            "packages": [
                {
                    "name": p.name,
                    "normalized_name": p.normalized,
                    "version": p.version,
                    "path": p.rel(root),
                    "build_backend": p.build_backend,
                    "depends_on": self.shared_names(p),
                    "runtime_depends_on": self.shared_names(p, runtime_only=True),
                    "dependencies": deps(p),
                }
                for p in ws.shared
            ],
            "services": [
                {
                    "name": p.name,
                    "path": p.rel(root),
                    "version": p.version,
                    "shared_dependencies": self.shared_names(p),
                    "transitive_shared_dependencies": [
                        n for n in ws.transitive(p, runtime_only=False) if ws.by_name[n].role == "shared"
                    ],
                    "dockerfiles": [relpath(d, root) for d in p.dockerfiles],
                    "dependencies": deps(p),
                    "index_dependencies": index_deps(p),
                    "shared_dependency_kinds": kinds(p),
                }
                for p in ws.services
            ],
            "publish_order": self.publish_order,
            "problems": [p.to_dict() for p in self.problems],
            "summary": {"errors": len(self.errors), "warnings": len(self.warnings)},
            "index": self.index,
            "public": self.public,
        }


def run_audit(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    check_public: bool = False,
    index: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> AuditReport:
    """Audit the monorepo. ``index``: look the shared packages up on the configured index (when
    one is configured); ``check_public``: look their names up on the public index.
    ``transport`` replaces the HTTP layer (tests)."""
    ws = workspace_for(settings)
    problems = list(ws.problems)
    try:
        order = ws.publish_order()
    except CycleError:
        order = []
    shared_dirs = [(str(p.path), p) for p in ws.shared]
    for svc in ws.services:
        for dockerfile in svc.dockerfiles:
            problems.extend(shared_copies(dockerfile, svc, ws, shared_dirs))
    report = AuditReport(ws, order, problems)
    report.index = {"url": None, "reachable": None, "packages": []}
    if index and settings.upload_simple_url:
        try:
            report.index, index_problems = index_status(ws, settings, env or {}, transport)
        except (NexusifyError, httpx.HTTPError, ValueError) as exc:  # a malformed URL, an odd answer
            report.index["url"] = _mask(settings.upload_simple_url)
            index_problems = [Problem(
                "warning", "index-unreachable", None, None,
                f"the index {_mask(settings.upload_simple_url)} could not be read: {_reason(exc)}",
                "check --index-url/--nexus-url, or pass --offline",
            )]
        problems.extend(index_problems)
    if check_public:
        try:
            report.public, public_problems = check_public_names(ws, settings, transport)
        except (NexusifyError, httpx.HTTPError, ValueError) as exc:
            report.public = {"url": _mask(settings.public_index_url), "checked": False, "names": {}}
            public_problems = [Problem(
                "warning", "public-index-unreachable", None, None,
                f"the public index {_mask(settings.public_index_url)} could not be read: {_reason(exc)}",
                "set --public-index-url to a reachable index, or drop --check-public",
            )]
        problems.extend(public_problems)
    problems.sort(key=lambda p: (p.severity != "error", p.path or "", p.line or 0))
    return report


def _mask(url: str) -> str:
    """``url`` without credentials, even when it is too malformed to parse."""
    try:
        return _mask_url(url)
    except ValueError:
        return re.sub(r"//[^/@\s]+@", "//***@", url)


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, NexusifyError) else (str(exc) or type(exc).__name__)


# --------------------------------------------------------------------------- Dockerfiles


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^git@", re.I)


def shared_copies(dockerfile: Path, service: Project, ws: Workspace,
                  shared_dirs: list[tuple[str, Project]] | None = None) -> list[Problem]:
    """Problems for every COPY/ADD in ``dockerfile`` that brings shared package code into the
    image. Sources are taken relative to the service folder (the usual build context) and,
    when they do not exist there, to the monorepo root (``docker build -f svc/Dockerfile .``)."""
    root = ws.root
    try:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [Problem("warning", "unreadable", relpath(dockerfile, root), None, f"cannot read: {exc.strerror}")]
    own = str(service.path)
    shared = [(path, p) for path, p in (shared_dirs or [(str(p.path), p) for p in ws.shared]) if path != own]
    if not shared:
        return []
    from nexusify.formats.dockerfile import DockerfileSyntaxError, parse

    try:
        instructions = parse(text)
    except DockerfileSyntaxError as exc:
        return [Problem("warning", "dockerfile-syntax", relpath(dockerfile, root), exc.line, exc.message)]
    out: list[Problem] = []
    for instr in instructions:
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from"):
            continue
        for src in instr.sources:
            if _URL.match(src) or src.startswith("<<") or "$" in src:
                continue
            hits, outside = _copied_packages(src, service.path, root, shared)
            if not hits:
                continue
            names = sorted(p.name or p.rel(root) for p in hits)
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            msg = f"{instr.keyword} {src} copies shared code ({shown}) into the image"
            if outside:
                msg += f"; it is outside the build context {service.rel(root)}"
            out.append(Problem(
                "warning", "dockerfile-copies-shared", relpath(dockerfile, root), instr.start, msg,
                "install the shared packages from the index instead: `nexusify publish`, then `nexusify rewrite`",
            ))
    return out


def _glob_free(path: str) -> str:
    """The leading part of ``path`` before its first segment holding a glob character."""
    kept = []
    for seg in path.split("/"):
        if any(c in seg for c in "*?["):
            break
        kept.append(seg)
    return "/".join(kept)


def _copied_packages(src: str, service_dir: Path, root: Path, shared: list[tuple[str, Project]]) -> tuple[list[Project], bool]:
    """The shared packages a COPY/ADD source brings in (the package folder itself, a folder
    holding it, or files inside it), and whether the source escapes the service folder."""
    cleaned = src.lstrip("/") or "."
    has_glob = any(c in cleaned for c in "*?[")
    base = _glob_free(cleaned) if has_glob else cleaned
    # the build context: the service folder, else the monorepo root when the source is there
    ctx = service_dir
    if service_dir != root and not (service_dir / base).exists() and (root / base).exists():
        ctx = root
    target = os.path.normpath(ctx / cleaned)
    prefix = os.path.normpath(ctx / base) if base else str(ctx)
    svc = str(service_dir)
    outside = ctx == service_dir and not (target == svc or target.startswith(svc + os.sep))
    if ctx == service_dir and not outside and not any(p.startswith(svc + os.sep) for p, _ in shared):
        return [], False  # inside the service folder, which holds no shared package (fast path)
    hits: list[Project] = []
    for p, project in shared:
        if has_glob:
            inside_pattern = prefix.startswith(p + os.sep) or prefix == p
            holder = p.startswith(prefix + os.sep) and (
                fnmatch.fnmatchcase(p, target)
                or any(fnmatch.fnmatchcase(str(a), target) for a in project.path.parents if str(a).startswith(prefix)))
            hit = inside_pattern or holder
        else:
            hit = p == target or p.startswith(target + os.sep) or target.startswith(p + os.sep)
        if hit:
            hits.append(project)
    return hits, outside and bool(hits)


# --------------------------------------------------------------------------- graph


def _node_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def render_graph(report: AuditReport, fmt: str) -> str:
    """The dependency graph of shared packages and services as Mermaid or Graphviz dot.
    Solid edges are runtime dependencies, dashed ones dev/test-only."""
    ws = report.workspace
    nodes = [p for p in ws.projects if p.normalized and p.role in ("shared", "service")]
    known = {p.normalized for p in nodes}
    edges = [(a, b, r) for a, b, r in ws.edges() if a in known and b in known]
    if fmt == "mermaid":
        lines = ["graph LR"]
        for p in nodes:
            assert p.normalized is not None
            label = f"{p.name} {p.version}" if p.role == "shared" and p.version else (p.name or p.normalized)
            shape = ('["', '"]') if p.role == "shared" else ('(["', '"])')
            lines.append(f"    {_node_id(p.normalized)}{shape[0]}{label}{shape[1]}")
        for a, b, runtime in edges:
            arrow = "-->" if runtime else "-. dev .->"
            lines.append(f"    {_node_id(a)} {arrow} {_node_id(b)}")
        lines.append("    classDef service fill:#e8f1ff,stroke:#3b6fb6")
        services = [_node_id(p.normalized) for p in nodes if p.role == "service" and p.normalized]
        if services:
            lines.append(f"    class {','.join(services)} service")
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        lines = ["digraph nexusify {", "    rankdir=LR;", '    node [fontname="Helvetica"];']
        for p in nodes:
            label = f"{p.name}\\n{p.version}" if p.role == "shared" and p.version else (p.name or "")
            node_shape = "box" if p.role == "shared" else "ellipse"
            lines.append(f'    "{p.normalized}" [label="{label}", shape={node_shape}];')
        for a, b, runtime in edges:
            style = "" if runtime else ' [style=dashed, label="dev"]'
            lines.append(f'    "{a}" -> "{b}"{style};')
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown graph format {fmt!r}; use one of {', '.join(GRAPH_FORMATS)}")


# --------------------------------------------------------------------------- index status


def _client(settings: Settings, env: Mapping[str, str], transport: httpx.BaseTransport | None, auth_url: str | None) -> Any:
    from nexusify.credentials import resolve_credentials
    from nexusify.index.nexus import make_client

    creds = resolve_credentials(settings.username, settings.upload_url or auth_url, env) if auth_url else None
    return make_client(
        timeout=float(settings.timeout), credentials=creds,
        auth_origins=tuple(u for u in (auth_url, settings.upload_url, settings.simple_url) if u),
        retries=1, backoff=0.2, transport=transport,
    )


def index_status(
    ws: Workspace, settings: Settings, env: Mapping[str, str], transport: httpx.BaseTransport | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Which local versions the upload repository already holds, and whether those published
    files differ from the local sources (compared file by file against the published sdist,
    or the wheel when there is no sdist; no build needed)."""
    from nexusify.index.nexus import SimpleIndex, same_version

    url = settings.upload_simple_url
    assert url is not None
    status: dict[str, Any] = {"url": _mask(url), "reachable": False, "packages": []}
    problems: list[Problem] = []
    root = ws.root
    with _client(settings, env, transport, url) as client:
        index = SimpleIndex(client, url)
        for p in ws.shared:
            if not p.name:
                continue
            try:
                files = index.project_files(p.name)
            except AuthError as exc:
                problems.append(Problem("warning", "index-auth", None, None,
                                        f"cannot read {_mask(url)}: {exc.message}", exc.hint))
                return status, problems
            except NexusifyError as exc:
                problems.append(Problem(
                    "warning", "index-unreachable", None, None,
                    f"the index {_mask(url)} could not be read, so published versions are unknown: {exc.message}",
                    "check --index-url/--nexus-url and that the server is up, or pass --offline",
                ))
                return status, problems
            status["reachable"] = True
            versions = sorted({f.version for f in files if f.version}, key=_version_key)
            entry: dict[str, Any] = {
                "name": p.name, "local_version": p.version, "published_versions": versions,
                "published": False, "differs": None, "compared_with": None, "changed_files": [],
            }
            status["packages"].append(entry)
            if p.version is None:
                continue
            mine = [f for f in files if f.version and same_version(f.version, p.version)]
            entry["published"] = bool(mine)
            newer = [v for v in versions if _version_key(v) > _version_key(p.version)]
            if newer:
                problems.append(Problem(
                    "warning", "version-behind", relpath(p.pyproject, root), None,
                    f"{p.name} {p.version} is older than {newer[-1]}, already on the index",
                    "bump the local version above the published one before publishing",
                ))
            if not mine:
                continue
            try:
                compared, changed = _compare_published(index, mine, p)
            except NexusifyError as exc:
                problems.append(Problem("warning", "index-unreachable", None, None,
                                        f"could not download {p.name} {p.version} to compare it: {exc.message}"))
                continue
            entry["compared_with"] = compared
            if compared is not None:
                entry["differs"] = bool(changed)
                entry["changed_files"] = changed
                if changed:
                    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
                    problems.append(Problem(
                        "error", "published-differs", relpath(p.pyproject, root), None,
                        f"{p.name} {p.version} is already on the index, but the local sources differ from "
                        f"the published {compared} ({shown})",
                        "bump the version: an index keeps one set of files per version",
                    ))
    return status, problems


def _version_key(v: str) -> tuple[int, Any]:
    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


# files a backend generates into an sdist (compared only when the sources have them too)
_GENERATED = re.compile(r"^(PKG-INFO|setup\.py|setup\.cfg|pyproject\.toml|MANIFEST\.in|\.[^/]+)$|(^|/)[^/]+\.egg-info/")
_EGG_INFO_SECTION = re.compile(rb"\n*\[egg_info\]\n(?:[^\[\n][^\n]*\n?)*")


def _compare_published(index: Any, files: list[Any], project: Project) -> tuple[str | None, list[str]]:
    """("sdist"|"wheel", changed relative paths) comparing a published file to the sources."""
    sdists = [f for f in files if f.filename.endswith(".tar.gz")]
    wheels = [f for f in files if f.filename.endswith(".whl")]
    chosen = sdists[0] if sdists else wheels[0] if wheels else None
    if chosen is None:
        return None, []
    data: bytes = index.download(chosen)
    members: dict[str, bytes] | None
    if chosen in sdists:
        members = _sdist_members(data)
        kind = "sdist"
    else:
        members = _wheel_members(data)
        kind = "wheel"
    if members is None:
        return None, []
    changed: list[str] = []
    folders: set[Path] = set()
    for rel, content in sorted(members.items()):
        if kind == "sdist" and _GENERATED.search(rel) and not (project.path / rel).is_file():
            continue
        if kind == "sdist" and rel == "setup.cfg":
            content = _EGG_INFO_SECTION.sub(b"\n", content).rstrip() + b"\n"
        if kind == "sdist" and rel == "pyproject.toml":
            continue  # publish rewrites path dependencies into versions in the staged copy
        local = _local_file(project.path, rel, kind)
        if local is None:
            changed.append(f"{rel} (removed locally)")
            continue
        folders.add(local.parent)
        try:
            mine = local.read_bytes()
            if rel == "setup.cfg":
                mine = mine.rstrip() + b"\n"
            if mine != content:
                changed.append(rel)
        except OSError:
            changed.append(rel)
    published_locals = {(_local_file(project.path, rel, kind) or Path()) for rel in members}
    for folder in sorted(folders):
        if folder == project.path:
            continue
        for f in sorted(folder.glob("*.py")):
            if f not in published_locals:
                changed.append(f"{relpath(f, project.path)} (new locally)")
    return kind, changed


def _local_file(folder: Path, rel: str, kind: str) -> Path | None:
    candidates = [folder / rel]
    if kind == "wheel":
        candidates += [folder / "src" / rel, folder / "lib" / rel]
    for c in candidates:
        if c.is_file():
            return c
    return None


def _sdist_members(data: bytes) -> dict[str, bytes] | None:
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                parts = PurePosixPath(m.name).parts
                if len(parts) < 2:
                    continue
                fh = tar.extractfile(m)
                if fh is not None:
                    out["/".join(parts[1:])] = fh.read()
    except (tarfile.TarError, OSError, EOFError):
        return None
    return out


def _wheel_members(data: bytes) -> dict[str, bytes] | None:
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                first = info.filename.split("/", 1)[0]
                if info.is_dir() or first.endswith((".dist-info", ".data")) or info.filename.endswith(".pth"):
                    continue
                out[info.filename] = zf.read(info)
    except (zipfile.BadZipFile, OSError):
        return None
    return out


# --------------------------------------------------------------------------- public names


def check_public_names(
    ws: Workspace, settings: Settings, transport: httpx.BaseTransport | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Look every shared package's name up on the public index: a name that exists there can
    be served instead of the internal package by a client that consults both
    (``--extra-index-url``, Poetry ``supplemental``): the dependency-confusion hazard."""
    from nexusify.index.nexus import make_client, origin

    base = settings.public_index_url.rstrip("/") + "/"
    result: dict[str, Any] = {"url": _mask(base), "checked": False, "names": {}}
    problems: list[Problem] = []
    severity: Severity = "error" if settings.priority == "supplemental" else "warning"
    with make_client(timeout=float(settings.timeout), retries=1, backoff=0.2, transport=transport) as client:
        for p in ws.shared:
            if not p.normalized:
                continue
            url = f"{base}{canonicalize_name(p.normalized)}/"
            try:
                found: bool | None = None
                for _hop in range(3):
                    response = client.get(url, headers={"Accept": "text/html"})
                    code = response.status_code
                    if code in (301, 302, 303, 307, 308):
                        target = urljoin(url, response.headers.get("Location", ""))
                        if origin(target) != origin(url):
                            found = False  # a fallback redirect: this index does not hold it
                            break
                        url = target
                        continue
                    found = True if code == 200 else (False if code in (404, 410) else None)
                    break
            except IndexServerError as exc:
                problems.append(Problem(
                    "warning", "public-index-unreachable", None, None,
                    f"the public index {_mask(base)} could not be reached, names were not checked: {exc.message}",
                    "set --public-index-url to a reachable index (a PyPI mirror), or drop --check-public",
                ))
                return result, problems
            result["checked"] = True
            result["names"][p.normalized] = found
            if found is None:
                problems.append(Problem("warning", "public-check-failed", None, None,
                                        f"{_mask(url)} answered HTTP {code}: {p.name} was not checked"))
            elif found:
                problems.append(Problem(
                    severity, "public-name-exists", relpath(p.pyproject, ws.root), None,
                    f"{p.name} also exists on the public index ({_mask(url)}): a client that consults both "
                    "indexes may install the public one (dependency confusion)",
                    "rename the package with a company prefix, or keep priority = \"explicit\" and install "
                    "only from the Nexus group repository (never --extra-index-url)",
                ))
    return result, problems
