"""``nexusify init``: a commented ``nexusify.toml`` written from what audit finds."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from nexusify.config import Settings
from nexusify.errors import UsageError
from nexusify.model import SERVICE_GLOBS, SHARED_GLOBS, Project, Workspace, workspace_for
from nexusify.transaction import write_files


@dataclass
class InitResult:
    path: Path
    text: str
    shared: list[str]
    services: list[str]
    notes: list[str]


def _globs_for(projects: list[Project], ws: Workspace) -> list[str]:
    """Globs covering exactly ``projects``: ``parent/*`` where every project of that folder is
    one of them, the project's own folder otherwise (so pinning never reclassifies a project);
    ``"."`` for the root project."""
    root = ws.root
    chosen = {p.path for p in projects if p.path != root}
    by_parent: dict[Path, list[Path]] = {}
    for p in ws.projects:
        if p.path != root:
            by_parent.setdefault(p.path.parent, []).append(p.path)
    globs: list[str] = []
    for parent in sorted({path.parent for path in chosen}):
        siblings = by_parent.get(parent, [])
        rel = parent.relative_to(root).as_posix()
        if all(s in chosen for s in siblings):
            globs.append(f"{rel}/*" if rel != "." else "*")
        else:
            globs.extend(sorted(s.relative_to(root).as_posix() for s in siblings if s in chosen))
    if any(p.path == root for p in projects):
        globs.insert(0, ".")  # the root project itself (a PDM root that consumes its own packages)
    return globs


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def _setting(key: str, value: str | None, example: str) -> str:
    """``key = "value"`` for a value given (flag, environment; never with credentials: the
    settings hold URLs without them), else the example, commented out."""
    return f"{key} = {json.dumps(value)}" if value else f"# {key} = {json.dumps(example)}"


def render_config(ws: Workspace, settings: Settings) -> tuple[str, list[str], list[str]]:
    root = ws.root
    shared = _globs_for(ws.shared(), ws)
    services = _globs_for(ws.consumers(), ws)
    conventional = set(SHARED_GLOBS) | set(SERVICE_GLOBS)
    layout_is_conventional = all(g in conventional for g in shared + services)
    lines = [
        "# nexusify configuration, written by `nexusify init` from what audit found.",
        "# Precedence: command-line flag > environment variable > this file > default.",
        "# Reference: docs/configuration.md (every key, its flag, variable and default).",
        "",
        "# Your Nexus instance. Uploads go to {nexus-url}/repository/{repository}/;",
        "# installs resolve from {nexus-url}/repository/{index-repository or repository}/simple/.",
        "# Credentials never belong here: set NEXUS_USERNAME and NEXUS_PASSWORD (or use .pypirc/keyring).",
        _setting("nexus-url", settings.nexus_url, "https://nexus.example.com"),
        # a full upload URL without a Nexus base overrides `repository`: the default is not written as if it applied
        _setting("repository", None if settings.repository_url and not settings.nexus_url else settings.repository,
                 settings.repository),
        _setting("index-repository", settings.index_repository, "pypi-group")
        + "  # a group (hosted + PyPI proxy) for installs",
        "",
        "# For a non-Nexus index (pypiserver, devpi...), give full URLs instead:",
        _setting("repository-url", settings.repository_url, "http://127.0.0.1:8080/"),
        _setting("index-url", settings.index_url, "http://127.0.0.1:8080/simple/"),
        "",
        "# Name of the package source written into services ([[tool.poetry.source]], [[tool.uv.index]]).",
        f'source-name = "{settings.source_name}"',
        "# How services constrain shared packages: caret (^0.1.0), tilde (~0.1.0), exact, minimum.",
        f'constraint = "{settings.constraint}"',
        "# explicit: shared packages resolve from the Nexus source only (safe against dependency",
        "# confusion); supplemental: the seed's layout, where a same-named public package can win.",
        f'priority = "{settings.priority}"',
        "",
        f"# Layout found: {len(ws.shared())} shared package(s), {len(ws.consumers())} consumer(s).",
    ]
    if layout_is_conventional:
        lines.append("# These folders are conventional, so discovery needs no globs; uncomment to pin them.")
        lines.append(f"# shared = {_toml_list(shared)}")
        lines.append(f"# services = {_toml_list(services)}")
    else:
        lines.append(f"shared = {_toml_list(shared)}")
        lines.append(f"services = {_toml_list(services)}")
    for svc in ws.consumers():
        deps = ", ".join(svc.internal_names()) or "no shared dependency"
        lines.append(f"#   consumer {svc.rel(root)}: {deps}")
    mapped = sorted({d.mapped_from.rsplit("/", 1)[0] for p in ws.projects for d in p.local_deps if d.mapped_from})
    if mapped:
        lines.append("")
        lines.append("# Absolute container paths found in services, mapped onto this monorepo:")
        pairs = []
        for prefix in mapped:
            target = next(
                (d.resolved.parent.relative_to(root).as_posix() for p in ws.projects for d in p.local_deps
                 if d.mapped_from and d.mapped_from.startswith(prefix + "/") and d.resolved),
                None,
            )
            if target:
                pairs.append(f'"{prefix}" = "{target}"')
        if pairs:
            lines.append("path-aliases = { " + ", ".join(pairs) + " }")
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # never write a file audit would refuse
    return text, shared, services


def run_init(settings: Settings, *, force: bool = False) -> InitResult:
    path = settings.root / "nexusify.toml"
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", path=path, hint="pass --force to overwrite it")
    pyproject = settings.root / "pyproject.toml"
    if pyproject.is_file() and "[tool.nexusify" in pyproject.read_text(encoding="utf-8"):
        raise UsageError(
            "settings already live in [tool.nexusify] of pyproject.toml", path=pyproject,
            hint="keep them there, or move them into nexusify.toml yourself",
        )
    ws = workspace_for(settings)
    text, shared, services = render_config(ws, settings)
    write_files(settings.root, [(path, text)], command="init")
    notes = []
    if settings.url_credentials_in:
        notes.append(f"the credentials in {settings.url_credentials_in} were not written to {path.name}: "
                     "credentials belong in NEXUS_USERNAME and NEXUS_PASSWORD (or .pypirc, or keyring), "
                     "and the URL without them")
    return InitResult(path, text, shared, services, notes)
