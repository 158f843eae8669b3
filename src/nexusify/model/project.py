"""The monorepo's projects as data: a :class:`Project` and its :class:`LocalDependency` entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nexusify.files import relpath
from nexusify.syntax.requirements import RequirementsFile
from nexusify.syntax.toml import TomlLines
from nexusify.tools import TOOLS

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "node_modules", "__pycache__",
    "build", "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".nexusify", "site-packages", ".eggs", ".idea", ".vscode", ".cache", "htmlcov", ".pdm-build",
})
SHARED_GLOBS = ("shared/packages/*", "libs/*", "packages/*")
SERVICE_GLOBS = ("services/*", "apps/*", "projects/*", "jobs/*")
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
DOCKERFILE_DIRS = ("", "docker", "deploy", ".docker")

#: lockfile name -> the tool that writes it
LOCK_TOOLS = {t.lockfile: t.name for t in TOOLS.values() if t.lockfile}

DepKind = Literal["poetry-path", "pep508-file", "uv-path", "uv-workspace", "requirements"]




@dataclass
class LocalDependency:
    """A dependency on another project of the monorepo, by path, file URL or workspace.

    ``location`` says where it is written, for the writers:
    - ("poetry", table_path, key): a Poetry dependency table entry, e.g.
      (("tool","poetry","group","dev","dependencies"), "maestro-x")
    - ("pep508", array_path, index): a requirement string in a PEP 621/735 array
    - ("requirements", (), line): a line of a pip requirements file (``file``), whose path is
      resolved relative to that file's folder; a bare path gets its name from the project it
      resolves to
    ``source_key`` names the ``[tool.uv.sources]`` entry when the path lives there;
    ``source_file`` is the file holding that entry when it is inherited from a uv workspace root.
    """

    name: str
    normalized: str
    kind: DepKind
    raw_path: str | None
    resolved: Path | None
    group: str  # "main", "dev", a Poetry/PEP 735 group, or "extra:<name>"
    runtime: bool
    file: Path
    line: int | None
    location: tuple[str, tuple[str, ...], str | int]
    extras: list[str] = field(default_factory=list)
    markers: str | None = None
    editable: bool = False
    optional: bool = False
    specifier: str = ""
    source_key: str | None = None
    mapped_from: str | None = None  # an absolute container path mapped onto the monorepo
    source_line: int | None = None  # line of the [tool.uv.sources] entry
    source_file: Path | None = None  # file of the [tool.uv.sources] entry (a workspace root's)
    written: str | None = None  # the path or URL exactly as written

    @property
    def target(self) -> str:
        return self.normalized

    @property
    def path_line(self) -> int | None:
        """The line where the path itself is written (the uv source entry, else the dependency)."""
        if self.source_line is not None and (self.source_file is None or self.source_file == self.file):
            return self.source_line
        return self.line


@dataclass(frozen=True)
class DockerBuild:
    """One way a Dockerfile is built: its context folder, and where that is said."""

    dockerfile: Path
    context: Path
    origin: str  # "compose:<file>:<service>", "folder" (beside its project), or "tree" (elsewhere)
    additional_contexts: tuple[tuple[str, Path], ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()  # compose ``build.args`` with a value (a bare name: none)
    target: str = ""  # the stage built (compose ``build.target``, a workflow's ``target``/``--target``)


@dataclass
class IndexDependency:
    """A dependency on a shared package of the monorepo by name and version (what ``rewrite``
    writes): ``maestro-core-config = {version = "^0.1.0", source = "nexus"}``, a PEP 508 range
    (with a uv index source), or a named line of a requirements file. ``location`` has the
    shape of :attr:`LocalDependency.location`; ``source`` names the index when the file says."""

    name: str
    normalized: str
    specifier: str
    group: str
    runtime: bool
    file: Path
    line: int | None
    location: tuple[str, tuple[str, ...], str | int]
    source: str | None = None


@dataclass
class Project:
    path: Path  # folder
    pyproject: Path
    data: dict[str, Any]
    text: str
    name: str | None = None
    normalized: str | None = None
    version: str | None = None
    version_dynamic: bool = False
    version_error: str | None = None  # why a dynamic version could not be resolved (the backend's words)
    build_backend: str | None = None
    build_requires: list[str] = field(default_factory=list)
    has_build_system: bool = False
    style: str = "unknown"  # "poetry", "pep621", "poetry+pep621"
    package_mode: bool = True
    workspace_members: list[Path] = field(default_factory=list)
    local_deps: list[LocalDependency] = field(default_factory=list)
    index_deps: list[IndexDependency] = field(default_factory=list)  # shared packages named by version
    dockerfiles: list[Path] = field(default_factory=list)  # the Dockerfiles that build it (model.dockerfiles)
    docker_builds: list[DockerBuild] = field(default_factory=list)  # each with its build context
    lockfiles: list[Path] = field(default_factory=list)  # its own, or its uv workspace root's uv.lock
    workspace_root: Path | None = None  # the uv workspace this project is a member of
    virtual_reason: str | None = None  # why it is not installable, when it is not
    legacy_manifest: Path | None = None  # setup.py or setup.cfg of a library without pyproject.toml
    name_computed: tuple[int, str] | None = None  # (line, source) of a setup(name=...) nobody can read
    requirements_only: bool = False  # a service folder with requirements files and no pyproject.toml
    requirement_tops: list[Path] = field(default_factory=list)  # its requirements*.txt, requirements/*.txt
    requirement_files: dict[Path, RequirementsFile] = field(default_factory=dict)  # those and their includes
    _lines: TomlLines | None = field(default=None, repr=False, compare=False)

    @property
    def is_virtual(self) -> bool:
        """Not installable as a package (Poetry package-mode = false, uv workspace root...)."""
        return (self.virtual_reason is not None or not self.package_mode
                or (bool(self.workspace_members) and not self.has_build_system))

    @property
    def lines(self) -> TomlLines:
        if self._lines is None:
            self._lines = TomlLines(self.text)
        return self._lines

    def rel(self, root: Path) -> str:
        return relpath(self.path, root)

    @property
    def manifest(self) -> Path:
        """The file that declares the project: its pyproject.toml, its setup.py/setup.cfg when it
        has only those, or for a requirements-only service its first requirements file."""
        if self.requirements_only and self.requirement_tops:
            return self.requirement_tops[0]
        return self.legacy_manifest or self.pyproject

    @property
    def tool(self) -> str:
        """The tool that installs this project: "uv", "poetry", "pdm", "hatch" or "pip" (its lockfile
        says first, then its own tables)."""
        for lock in self.lockfiles:
            return LOCK_TOOLS[lock.name]
        tool = self.data.get("tool", {}) if isinstance(self.data.get("tool"), dict) else {}
        if self.requirements_only:
            return "pip"
        if self.workspace_root is not None:
            return "uv"
        for name in ("uv", "poetry", "pdm"):
            if name in tool:
                return name
        if isinstance(tool.get("hatch"), dict) and "envs" in tool["hatch"]:
            return "hatch"
        return "pip"

    def internal_names(self, runtime_only: bool = False) -> list[str]:
        """The shared packages this project depends on, by path or by version."""
        seen: dict[str, None] = {}
        for d in self.local_deps:
            if d.resolved is not None and (d.runtime or not runtime_only):
                seen.setdefault(d.normalized, None)
        for i in self.index_deps:
            if i.runtime or not runtime_only:
                seen.setdefault(i.normalized, None)
        return list(seen)
