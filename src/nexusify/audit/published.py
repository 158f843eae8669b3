"""The audit's index status: which local versions the upload repository already holds, and
whether a published version's files differ from the local sources (compared file by file with
the published sdist, or the wheel when there is none; nothing is built). Requests go through
the one index client (:func:`~nexusify.index.client.index_client`), archives are read by the
one archive reader (:func:`~nexusify.dists.archives.archive_members`)."""

from __future__ import annotations

import re
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from nexusify.audit.messages import shown_url
from nexusify.config import Settings
from nexusify.errors import AuthError, NexusifyError, Problem
from nexusify.model import Project, Workspace, relpath

if TYPE_CHECKING:  # audit --offline never talks HTTP: httpx is imported when a request is made
    import httpx


@dataclass
class PublishedPackage:
    """What the index holds of one shared package: its versions there, whether the local version is
    one of them, and whether the published files differ from the local sources."""

    name: str
    local_version: str | None
    published_versions: list[str]
    published: bool = False
    differs: bool | None = None  # None: not compared (nothing published, or no readable file)
    compared_with: str | None = None  # "sdist" or "wheel"
    changed_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexStatus:
    """The upload repository's view of the shared packages (audit shows it, affected compares with it)."""

    url: str
    reachable: bool = False
    packages: list[PublishedPackage] = field(default_factory=list)

    def of(self, name: str) -> PublishedPackage | None:
        return next((p for p in self.packages if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "reachable": self.reachable, "packages": [p.to_dict() for p in self.packages]}


def index_status(
    ws: Workspace, settings: Settings, env: Mapping[str, str], transport: httpx.BaseTransport | None = None,
) -> tuple[IndexStatus, list[Problem]]:
    """Which local versions the upload repository already holds, and whether those published
    files differ from the local sources (compared file by file against the published sdist,
    or the wheel when there is no sdist; no build needed)."""
    from nexusify.index.client import index_client
    from nexusify.index.pages import SimpleIndex, same_version

    url = settings.upload_simple_url
    assert url is not None
    status = IndexStatus(shown_url(url))
    problems: list[Problem] = []
    root = ws.root
    credentials = settings.credentials(env)
    with index_client(settings, credentials, retries=1, backoff=0.2, transport=transport) as client:
        index = SimpleIndex(client, url)
        for p in ws.shared():
            if not p.name:
                continue
            try:
                files = index.project_files(p.name)
            except AuthError as exc:
                problems.append(Problem("warning", "index-auth", None, None,
                                        f"cannot read {shown_url(url)}: {exc.message}", exc.hint))
                return status, problems
            except NexusifyError as exc:
                problems.append(Problem(
                    "warning", "index-unreachable", None, None,
                    f"the index {shown_url(url)} could not be read, so published versions are unknown: {exc.message}",
                    "check --index-url/--nexus-url and that the server is up, or pass --offline",
                ))
                return status, problems
            status.reachable = True
            versions = sorted({f.version for f in files if f.version}, key=_version_key)
            entry = PublishedPackage(p.name, p.version, versions)
            status.packages.append(entry)
            if p.version is None:
                continue
            mine = [f for f in files if f.version and same_version(f.version, p.version)]
            entry.published = bool(mine)
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
            entry.compared_with = compared
            if compared is not None:
                entry.differs = bool(changed)
                entry.changed_files = changed
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
    kind = "sdist" if chosen in sdists else "wheel"
    members = _members(data, chosen.filename, kind)
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


def _members(data: bytes, filename: str, kind: str) -> dict[str, bytes] | None:
    """The published archive's files, read by THE archive reader (:func:`archive_members`):
    an sdist's files inside its top folder; a wheel's importable files (no ``.dist-info``,
    ``.data`` or ``.pth``). None when the archive cannot be read."""
    from nexusify.dists.archives import archive_members

    try:
        members = archive_members(data, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return None
    out = {}
    for name, content in members.items():
        if content.startswith(b"symlink:"):
            continue  # a link, not a file of the sources
        if kind == "wheel" and (name.split("/", 1)[0].endswith((".dist-info", ".data")) or name.endswith(".pth")):
            continue
        out[name] = content
    return out
