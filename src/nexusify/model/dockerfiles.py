"""Which Dockerfiles build which consumer, and from which build context.

Dockerfiles are found wherever they are: beside a project (and in its ``docker/``, ``deploy/``,
``.docker/`` folders), anywhere else in the tree (``docker/Dockerfile.api``,
``terraform/docker/...``), and through compose files (``build.context``, ``build.dockerfile``,
``additional_contexts``). Each is matched to a consumer by its build context and what it
COPY/ADDs and installs: a context that is a project's folder builds that project; a root context
builds the project whose folder its COPY/ADD sources or RUN commands name
(``COPY services/api ...``, ``uv sync --directory services/api``). A Dockerfile that matches no
project, or several, is left unmatched (audit lists it) rather than guessed.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.build_sources import ci_builds, compose_builds
from nexusify.model.paths import glob_free, is_inside, is_local
from nexusify.model.project import DOCKERFILE_DIRS, SKIP_DIRS, DockerBuild, Project
from nexusify.model.tree import is_virtualenv, walk
from nexusify.syntax.dockerfile_parse import (
    Dockerfile,
    DockerfileSyntaxError,
    Instruction,
    parse,
    parse_file,
)
from nexusify.syntax.requirements import requirement_name

COMPOSE_NAMES = re.compile(r"^(docker-)?compose(\.[\w.-]+)?\.ya?ml$")


def is_dockerfile_name(name: str) -> bool:
    low = name.lower()
    return (name == "Dockerfile" or name.startswith("Dockerfile.") or low.endswith(".dockerfile")
            or low == "containerfile" or low.startswith("containerfile."))


def scan(root: Path, exclude_dirs: frozenset[str] = SKIP_DIRS) -> tuple[list[Path], list[Path]]:
    """(every Dockerfile, every compose file) under ``root``, skipping VCS/virtualenv/build folders."""
    dockerfiles: list[Path] = []
    composes: list[Path] = []
    for dirpath, dirnames, filenames in walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude_dirs and not d.endswith(".egg-info")
                             and not is_virtualenv(os.path.join(dirpath, d)))
        for n in sorted(filenames):
            if is_dockerfile_name(n):
                dockerfiles.append(Path(dirpath) / n)
            elif COMPOSE_NAMES.match(n):
                composes.append(Path(dirpath) / n)
    return dockerfiles, composes


def _names_project(text: str, rel: str) -> bool:
    """Does a Dockerfile (built from the root) name ``rel`` (a project folder) as what it copies or
    installs: ``COPY services/api ...``, ``--directory services/api``, ``cd services/api``,
    ``-r services/api/requirements.txt``?"""
    if rel not in text and "\\" not in text and "`" not in text:
        return False  # no continuation or escape can join rel from pieces: no word holds it
    try:
        instructions = parse(text)
    except DockerfileSyntaxError:
        return False
    for instr in instructions:
        if instr.keyword in ("COPY", "ADD") and not instr.has_flag("from"):
            if any(_names(src.removeprefix("./"), rel) for src in instr.sources):
                return True
        elif instr.keyword == "RUN" and _names(instr.args, rel):
            return True
    return False


def decide_context(path: str, df: Dockerfile, project_dir: Path, root: Path) -> tuple[Path | None, Problem | None]:
    """The build context a Dockerfile beside its project is written for, when no compose file
    declares it: the one decision the model attaches builds with and the shared-code rule judges
    with. The monorepo root when a COPY/ADD source names the project's folder from the root or
    exists only from there (a folder between them when a source names the project's folder from
    there), or (no source saying either way) a RUN names that folder; the project
    folder when sources exist only there or climb out of it (``../../shared``); undecidable (a
    problem) when sources point both ways."""
    try:
        rel = project_dir.relative_to(root).as_posix()
    except ValueError:
        return project_dir, None
    if rel in ("", "."):
        return project_dir, None
    from_root: Instruction | None = None
    from_project: Instruction | None = None
    # folders between the project's and the root (services/ for services/metrics): a context a
    # compose file beside the services builds from (`COPY metrics/requirements.txt`, `COPY shared`)
    between = [(a, project_dir.relative_to(a).as_posix()) for a in project_dir.parents
               if a != root and is_inside(a, root)]
    for instr in df.instructions:
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from"):
            continue
        for src in instr.sources:
            if not is_local(src):
                continue
            clean = glob_free(src).removeprefix("./").strip("/")
            if clean == rel or clean.startswith(rel + "/"):
                return root, None  # names the project's own folder from the root
            for above, own in between:
                if ((clean == own or clean.startswith(own + "/")) and (above / clean).exists()
                        and not (project_dir / clean).exists()):
                    return above, None  # names the project's own folder from a folder above it
            if clean.startswith(".."):
                from_project = from_project or instr  # written from the project folder
                continue
            here, there = (project_dir / clean).exists(), (root / clean).exists()
            if here and not there:
                from_project = from_project or instr
            elif there and not here:
                from_root = from_root or instr
    if from_root is None:
        if from_project is None and any(i.keyword == "RUN" and _names(i.args, rel) for i in df.instructions):
            return root, None  # `uv sync --directory services/api`: run from the root
        return project_dir, None
    if from_project is None:
        return root, None
    return None, Problem(
        "error", "dockerfile-context-unknown", path, from_root.start,
        f"the build context cannot be decided: line {from_root.start} copies a path found only from the "
        f"monorepo root, line {from_project.start} one found only in {rel}",
        f"make every COPY/ADD source relative to one context (the monorepo root: `COPY {rel}/... `, or "
        f"{rel})")


def _names(text: str, rel: str) -> bool:
    return re.search(rf"(^|[\s=\"'/.])(\./)?{re.escape(rel)}(/|$|[\s\"'])", text) is not None


def match_builds(root: Path, projects: list[Project], depended: set[Path],
                 problems: list[Problem]) -> tuple[dict[Path, list[DockerBuild]], list[DockerBuild]]:
    """(project folder -> the builds of its Dockerfiles, builds matched to no project). Every
    Dockerfile under ``root`` is considered; ``depended`` (folders other projects depend on) breaks
    ties toward the consumer when a Dockerfile copies a library beside it."""
    dockerfiles, composes = scan(root)
    by_dockerfile: dict[Path, list[DockerBuild]] = {}
    for compose in composes:
        for b in compose_builds(compose, problems, root):
            by_dockerfile.setdefault(b.dockerfile, []).append(b)
    for b in ci_builds(root, problems):
        by_dockerfile.setdefault(b.dockerfile, []).append(b)
    folders = {p.path for p in projects}
    keys: dict[str, set[Path]] = {}
    for p in projects:
        for key in {p.normalized, canonicalize_name(p.path.name)} - {None, ""}:
            keys.setdefault(str(key), set()).add(p.path)
    out: dict[Path, list[DockerBuild]] = {}
    unmatched: list[DockerBuild] = []
    for df in sorted(set(dockerfiles) | set(by_dockerfile)):
        for build in by_dockerfile.get(df) or [_implicit_build(df, folders, root)]:
            owner = _owner(build, folders, depended, root, keys)
            if owner is None:
                unmatched.append(build)
            else:
                out.setdefault(owner, []).append(build)
    return out, unmatched


def _home(df: Path, folders: set[Path]) -> Path | None:
    """The project folder a Dockerfile sits in, or whose docker/, deploy/, .docker/ folder holds it."""
    if df.parent in folders:
        return df.parent
    if df.parent.name in DOCKERFILE_DIRS and df.parent.parent in folders:
        return df.parent.parent
    return None


def _implicit_build(df: Path, folders: set[Path], root: Path) -> DockerBuild:
    """A Dockerfile no compose file or workflow names: built from the project folder it belongs to
    (or the root, when what it copies says so), else, beside no project, from its own folder when
    what it copies is found only there (``docs/samples/app/Dockerfile``: ``COPY requirements.txt``),
    else from the monorepo root (``docker build -f docker/Dockerfile.api .``)."""
    home = _home(df, folders)
    if home is None and df.parent != root and df.parent.name not in DOCKERFILE_DIRS:
        try:
            parsed = parse_file(df.read_text(encoding="utf-8", errors="replace"))
        except (OSError, DockerfileSyntaxError):
            return DockerBuild(df, root, "tree")
        context, _undecided = decide_context(relpath(df, root), parsed, df.parent, root)
        return DockerBuild(df, df.parent if context == df.parent else root, "tree")
    if home is not None and home != root:
        try:
            parsed = parse_file(df.read_text(encoding="utf-8", errors="replace"))
        except (OSError, DockerfileSyntaxError):
            return DockerBuild(df, home, "folder")
        context, _undecided = decide_context(relpath(df, root), parsed, home, root)  # the rule says why
        if context == root:  # COPY projects/worker /src: `docker build -f ... .`
            return DockerBuild(df, root, "folder, built from the root")
        if context is not None and context != home:  # COPY metrics/requirements.txt: built from services/
            return DockerBuild(df, context, f"folder, built from {relpath(context, root)}")
        return DockerBuild(df, home, "folder")
    return DockerBuild(df, root, "folder" if home == root else "tree")


def _owner(build: DockerBuild, folders: set[Path], depended: set[Path], root: Path,
           keys: dict[str, set[Path]]) -> Path | None:
    """The project a build builds: the project folder it is built from; else the one project it
    copies or installs by folder (``COPY services/api``, ``--directory services/api``), by name
    (``uv sync --package api``, ``${APP}`` filled from compose build args or ARG defaults), or
    that its file name (``Dockerfile.api``, ``docker/api/Dockerfile``) or compose service names;
    else the root project (it builds itself), else the project it sits beside; else none."""
    try:
        text = build.dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if build.context in folders and build.context != root:
        return build.context if installs_context(build, text, folders) else None
    if build.origin.startswith("folder"):
        home = _home(build.dockerfile, folders)
        if home is not None and home != root:
            return home  # built from the root (``COPY projects/worker /src``): it names its project
    named = [f for f in sorted(folders) if f != build.context and is_inside(f, build.context)
             and _names_project(text, relpath(f, build.context))]
    consumers = [f for f in named if f not in depended]  # a library it copies is not what it builds
    if len(consumers) == 1:
        return consumers[0]
    for hint in _name_hints(build, text):
        found = [f for f in sorted(keys.get(hint, ())) if is_inside(f, build.context)]
        if len(found) == 1 and (not consumers or found[0] in consumers):
            return found[0]
    if build.context in folders:
        return build.context  # the root project builds itself (with the libraries it copies)
    if not consumers and len(named) == 1:
        return named[0]  # it builds the one library it names (deployed itself)
    home = _home(build.dockerfile, folders)
    return home if home is not None and home != root else None


_MANIFEST = re.compile(r"pyproject\.toml|requirements[\w.-]*\.(?:txt|in)|setup\.(?:py|cfg)|\w+\.lock\b|Pipfile"
                       r"|\b(?:uv\s+(?:sync|pip\s+install)|poetry\s+install|pdm\s+(?:install|sync)"
                       r"|pip3?\s+install\s+(?:[^\n;&|]*\s)?(?:-e\s+)?[./]|\s(?:-r|-c|--requirement|--constraint)[\s=])")


def installs_context(build: DockerBuild, text: str, folders: set[Path]) -> bool:
    """Does a Dockerfile built from a project's folder install that project: copy the whole folder
    (``COPY . /app``, ``COPY *.toml``), a folder holding its manifest, or a manifest, lock or
    requirements file, or name one (a bind mount, ``pip install -r``), or run its tool's install?
    One that copies another project's code (``COPY ../../libs /libs``) installs it for this one.
    One that copies a script and ``pip install``s third-party names (``Dockerfile.duckdb``: a side
    image from the same folder) or only prepares a base (``Dockerfile.dev``: ``pip install poetry``)
    builds no project. Unreadable or unparsable: assumed to (attached, judged with its project)."""
    try:
        instructions = parse(text)
    except DockerfileSyntaxError:
        return True
    for instr in instructions:
        if instr.keyword in ("COPY", "ADD") and not instr.has_flag("from"):
            for src in instr.sources:
                if not is_local(src):
                    continue
                host = Path(os.path.normpath(os.path.join(str(build.context), glob_free(src).lstrip("/"))))
                if any(is_inside(f, host) or (is_inside(host, f) and not is_inside(build.context, f)) for f in folders):
                    return True  # holds the project, or copies another project's code
                if _MANIFEST.search(host.name) or (
                        host.is_dir() and any((host / m).exists() for m in ("pyproject.toml", "setup.py", "setup.cfg"))):
                    return True
        elif instr.keyword in ("RUN", "ENTRYPOINT", "CMD") and _MANIFEST.search(instr.args):
            return True
    return False


_PACKAGE = re.compile(r"--package(?:=|\s+)[\"']?([^\s\"';&|]+)")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def _name_hints(build: DockerBuild, text: str) -> list[str]:
    """Project names a build points at, strongest first: ``--package NAME`` in its RUN lines
    (variables filled from compose build args, else ARG defaults), its compose service's name, its
    file name (``Dockerfile.api``, ``api.Dockerfile``), the folder it sits in (not docker/)."""
    try:
        instructions = parse(text)
    except DockerfileSyntaxError:
        instructions = []
    values = {k: v for i in instructions if i.keyword == "ARG"
              for k, _, v in [i.args.strip().partition("=")] if v}
    values.update(dict(build.build_args))
    hints: list[str] = []
    for instr in instructions:
        if instr.keyword == "RUN":
            for m in _PACKAGE.finditer(instr.args):
                hints.append(_VAR.sub(lambda v: values.get(v.group(1), v.group(0)), m.group(1)).strip("\"'"))
    if build.target:
        hints.append(build.target)  # the stage built (`FROM libcommon AS cache_maintenance`)
    if build.origin.startswith("compose:"):
        hints.append(build.origin.rsplit(":", 1)[1])
    name = build.dockerfile.name
    low = name.lower()
    for prefix in ("dockerfile.", "containerfile."):
        if low.startswith(prefix):
            hints.append(name[len(prefix):])
    if low.endswith(".dockerfile"):
        hints.append(name[: -len(".dockerfile")])
    if build.dockerfile.parent.name not in DOCKERFILE_DIRS:
        hints.append(build.dockerfile.parent.name)
    return [canonicalize_name(h) for h in hints if h and "$" not in h]


_PIP_INSTALL = re.compile(r"(?:^|[\s;&|(])(?:python[\d.]*\s+-m\s+)?(?:uv\s+)?pip[\d.]*\s+install\s+([^;&|\n]*)")
_PIP_VALUED = frozenset({"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f",
                         "--find-links", "-t", "--target", "--prefix", "--root", "--src", "--cache-dir",
                         "--trusted-host", "--cert", "--client-cert", "--timeout", "--retries", "--proxy",
                         "--python", "-p", "--config-settings", "-C", "--upgrade-strategy", "--platform",
                         "--python-version", "--implementation", "--abi", "--only-binary", "--no-binary"})


def installed_names(build: DockerBuild, names: set[str]) -> set[str]:
    """The names among ``names`` (normalised) that ``build``'s RUN lines install from an index by
    name (``pip install 'shared>=0.1'``): an image takes the package that way after a rewrite."""
    return {name for name, _, _ in installed_requirements(build, names)}


def installed_requirements(build: DockerBuild, names: set[str]) -> list[tuple[str, str, int]]:
    """(normalised name, requirement as written, line) of every install by name of one of ``names``
    in ``build``'s RUN lines (see :func:`installed_names`)."""
    try:
        instructions = parse(build.dockerfile.read_text(encoding="utf-8", errors="replace"))
    except (OSError, DockerfileSyntaxError):
        return []
    found: list[tuple[str, str, int]] = []
    for instr in instructions:
        if instr.keyword != "RUN" or instr.json_form:
            continue
        for m in _PIP_INSTALL.finditer(instr.args):
            try:
                words = shlex.split(m.group(1))
            except ValueError:
                continue
            skip = False
            for w in words:
                if skip or w.startswith("-"):
                    skip = not skip and w in _PIP_VALUED
                    continue
                if "/" in w or w.startswith(".") or "$" in w:
                    continue
                name = requirement_name(w)
                if name is not None and name in names:
                    found.append((name, w, instr.start))
    return found


def copied_folders(build: DockerBuild, folders: set[Path], *, by_name: bool = False) -> set[Path]:
    """The folders among ``folders`` that ``build`` copies into its image (a COPY/ADD source from
    its context, or a named additional context, that is such a folder, holds it, or is inside it;
    ``by_name``: that is such a folder or inside it, not a folder holding it): how roles tell that
    an image installs shared code its manifest never names."""
    try:
        instructions = parse(build.dockerfile.read_text(encoding="utf-8", errors="replace"))
    except (OSError, DockerfileSyntaxError):
        return set()
    named = dict(build.additional_contexts)
    found: set[Path] = set()
    for instr in instructions:
        if instr.keyword not in ("COPY", "ADD"):
            continue
        base = build.context if not instr.has_flag("from") else named.get(instr.flag("from") or "")
        if base is None:
            continue
        for src in instr.sources:
            if not is_local(src):
                continue
            host = Path(os.path.normpath(os.path.join(str(base), glob_free(src).lstrip("/"))))
            if host == build.context:
                continue  # the whole context: what it holds is the project's own build
            found |= {f for f in folders if is_inside(host, f) or (not by_name and is_inside(f, host))}
    return found
