"""The one shared-code rule for Dockerfiles: which lines bring shared package code into an image.

``nexusify audit`` (its ``dockerfile-copies-shared`` warnings) and ``nexusify rewrite`` (the
Dockerfile patch) both ask :func:`judge_dockerfile`, so they cannot disagree: every line the
verdict lists is a line rewrite removes or rewrites, every other line is kept and audit is silent
about it, and a line nobody can decide with certainty is a problem both report (an error).

The verdict, per Dockerfile:

* **the build context**: the one a compose file declares (the model's builds), else decided once
  for the whole file by :func:`nexusify.formats.build_context.decide_context` (sources pointing
  both at the root and at the project folder make it undecidable: a problem). ``COPY --from=<name>``
  of a compose ``additional_contexts`` folder is judged like a COPY from that folder.
* :class:`SharedCopy` for every COPY/ADD whose source is a shared package folder, holds one or
  lies inside one (:class:`SharedCode`), and every ``COPY --from=<stage>`` of a path such a copy
  filled. The whole-context source (``.``) is the project itself, never shared code.
* :class:`PathInstall` for every ``pip install`` / ``pip wheel`` / ``pip download`` / ``uv pip install``
  argument that installs (or builds) a package from the folder a removed copy filled (``/deps/a``, ``-e /deps/a``, ``/deps/a[extra]``,
  resolved against ``WORKDIR``): rewrite installs that package by version from the index instead.
  When the consumer's own install in the same stage (``pip install .``, ``pip install -r
  requirements.txt``, ``poetry install``, ``uv sync``...) already pulls that package, the install
  is ``redundant``: rewrite drops it instead of installing the package twice.
* :class:`~nexusify.formats.dockerfile_runs.RequirementsFilter` for every ``grep -v`` that filters
  a shared package's line out of a requirements file (:mod:`nexusify.formats.dockerfile_runs`).
* a problem for every other use of a path a removed copy filled (a script, a shell loop, a
  ``cd``, ``ENV PYTHONPATH=...``, a heredoc): rewriting it would be a guess.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.formats.build_context import uv_workspace_build
from nexusify.formats.dockerfile_checks import (
    copy_from_problems,
    path_install_problems,
    uv_package_problems,
)
from nexusify.formats.dockerfile_runs import (
    PIP_VALUE_OPTIONS,
    ProjectPulls,
    RequirementsFilter,
    pip_env,
)
from nexusify.formats.dockerfile_stage import (
    Filled,
    Stage,
    abs_path,
    judge_commands,
    project_pulls,
    track_own,
    under,
)
from nexusify.formats.shared_code import SharedCode
from nexusify.model.dockerfiles import decide_context
from nexusify.model.paths import glob_free, is_inside
from nexusify.syntax.dockerfile_parse import (
    Dockerfile,
    DockerfileSyntaxError,
    Instruction,
    parse_file,
)

if TYPE_CHECKING:
    from nexusify.model import Project
    from nexusify.model.project import DockerBuild

# `pip wheel` / `pip download` take requirements and `--index-url` as `pip install` does: a builder stage that
# builds wheels of the shared code (or fetches them by name) resolves from the index too, or the build fails.
PIP_INSTALL = re.compile(
    r"(?<![\w.-])((?:uv\s+pip\s+install|(?:python[\d.]*\s+-m\s+)?pip[\d.]*\s+(?:install|wheel|download)))(?=\s|$)")
_SEGMENT_END = re.compile(r"&&|\|\||;|\||\n")
_WORD = re.compile(r"""(?:"[^"]*"|'[^']*'|[^\s;&|"'])+""")
_EDITABLE = ("-e", "--editable")
_HINT = "install the package by name instead (`pip install NAME`), or drop the line; then re-run `nexusify rewrite`"


# --------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class SharedCopy:
    """A COPY/ADD that brings shared code: its ``sources`` go (the instruction, when ``whole``)."""

    instruction: Instruction
    sources: tuple[str, ...]
    names: tuple[str, ...]
    whole: bool

    @property
    def line(self) -> int:
        return self.instruction.start


@dataclass(frozen=True)
class PathInstall:
    """An install argument naming a folder a removed copy filled: becomes ``name`` from the index."""

    instruction: Instruction
    word: str  # the argument as written (quotes included)
    editable: str | None  # the -e/--editable word before it, as written
    name: str
    extras: str  # "[x,y]" or ""
    segment: tuple[str, ...] = ()  # the words of its pip install command, as written
    env: tuple[str, ...] = ()  # where it installs (:func:`~nexusify.formats.dockerfile_runs.pip_env`)
    redundant: bool = False  # the consumer's own install in this stage pulls it from the index


@dataclass
class DockerfileVerdict:
    path: str
    context: Path | None
    dockerfile: Dockerfile | None
    copies: list[SharedCopy] = field(default_factory=list)
    installs: list[PathInstall] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    filters: list[RequirementsFilter] = field(default_factory=list)

    @property
    def rewrite_refuses(self) -> str | None:
        """Why rewrite leaves this whole Dockerfile alone (``line N: [code]``), or None: a line it
        cannot decide or replace with certainty refuses the file (the rule
        :func:`nexusify.rewrite.dockerfile_patch.patch` follows), so no hint may send the user
        to rewrite for it."""
        if not self.problems and self.dockerfile is not None:
            return None
        first = self.problems[0] if self.problems else None
        if first is None:
            return "it cannot be read"
        return f"line {first.line}: [{first.code}]" if first.line else f"[{first.code}]"

    def fix_hint(self, by_rewrite: str) -> str:
        """The hint of a shared copy, install or filter: ``by_rewrite`` when rewrite will fix it,
        else what the user has to do by hand, and why."""
        why = self.rewrite_refuses
        if why is None:
            return by_rewrite
        return (f"rewrite leaves this Dockerfile alone ({why}): install the shared packages by version from the "
                "index by hand, or fix that line first")

    @property
    def changes(self) -> bool:
        """Whether rewrite has something to change here (or a problem to report)."""
        return bool(self.copies or self.installs or self.filters or self.problems)

    def audit_problems(self) -> list[Problem]:
        """What audit reports: a warning per shared copy rewrite will remove, and the problems
        (errors of rewrite, which refuses the file; warnings of audit, like every Dockerfile finding:
        the monorepo itself is fine, the migration needs a hand edit)."""
        out = [replace(p, severity="warning") for p in self.problems]
        for c in self.copies:
            shown = ", ".join(c.names[:4]) + (f" and {len(c.names) - 4} more" if len(c.names) > 4 else "")
            what = f"shared code ({shown})" if shown else "shared code"
            msg = f"{c.instruction.keyword} {' '.join(c.sources)} copies {what} into the image"
            if any(s.startswith("..") for s in c.sources):
                msg += "; it is outside the build context"
            out.append(Problem("warning", "dockerfile-copies-shared", self.path, c.line, msg,
                               self.fix_hint("install the shared packages from the index instead: "
                                             "`nexusify publish`, then `nexusify rewrite`")))
        for f in self.filters:
            out.append(Problem("warning", "dockerfile-filters-shared", self.path, f.instruction.start,
                               f"`grep` filters {', '.join(f.names)} out of {f.file}: once rewritten to a version "
                               "from the index, the image would not install it",
                               self.fix_hint("`nexusify rewrite` drops the filter for the shared packages")))
        return out


def judge_dockerfile(path: str, text: str, *, project_dir: Path, root: Path, shared: SharedCode,
                     context: Path | None = None, additional: Mapping[str, Path] | None = None,
                     pulls: ProjectPulls | None = None,
                     arg_sets: Sequence[Mapping[str, str]] = ({},)) -> DockerfileVerdict:
    """The shared-code verdict for one Dockerfile (see the module docstring). ``path`` names the
    file in problems; ``context`` overrides the build context the rule would decide; ``pulls``:
    what the consumer's own install pulls (None: no install is found redundant); ``arg_sets``:
    the build args of each build of it (:mod:`nexusify.formats.dockerfile_checks`)."""
    try:
        df = parse_file(text)
    except DockerfileSyntaxError as exc:
        return DockerfileVerdict(path, None, None, problems=[
            Problem("error", "dockerfile-syntax", path, exc.line, exc.message,
                    "fix the Dockerfile; nexusify cannot tell what it copies")])
    shared = shared.without(project_dir)
    verdict = DockerfileVerdict(path, context, df)
    if context is None:
        verdict.context, problem = decide_context(path, df, project_dir, root)
        if problem is not None:
            verdict.problems.append(problem)
            return verdict
    assert verdict.context is not None
    _walk(verdict, df, project_dir, shared, additional or {}, pulls)
    verdict.problems += path_install_problems(path, df, project_dir=project_dir, context=verdict.context,
                                              shared=shared, handled=[(i.instruction.start, i.word)
                                                                      for i in verdict.installs])
    verdict.problems += copy_from_problems(path, df, verdict.context, shared)
    verdict.problems += uv_package_problems(path, df, context=verdict.context, root=root, arg_sets=arg_sets)
    if verdict.copies or _copies_context_holding_shared(df, verdict.context, project_dir, shared):
        problem = uv_workspace_build(path, df, root, verdict.context, additional)
        if problem is not None:
            verdict.problems.append(problem)
    return verdict


def _copies_context_holding_shared(df: Dockerfile, context: Path, project_dir: Path, shared: SharedCode) -> bool:
    """Whether a COPY/ADD of the whole build context (``COPY . .``) brings shared code: the context
    is not the project's own folder and holds a shared package. The rule counts ``.`` as the
    project itself, so only the uv workspace check (a root-context ``uv sync``) asks this."""
    ctx = os.path.normpath(str(context))
    if ctx == os.path.normpath(str(project_dir)) or not any(
            folder.startswith(ctx + os.sep) for folder, _name in shared.packages):
        return False
    return any(instr.keyword in ("COPY", "ADD") and not instr.has_flag("from")
               and any(glob_free(s).removeprefix("./").strip("/") in ("", ".") for s in instr.sources)
               for instr in df.instructions)


def judge_file(dockerfile: Path, rel: str, *, project_dir: Path, root: Path, shared: SharedCode,
               contexts: Iterable[Path] = (), additional: Mapping[str, Path] | None = None,
               pulls: ProjectPulls | None = None,
               arg_sets: Sequence[Mapping[str, str]] = ({},)) -> tuple[bytes | None, DockerfileVerdict]:
    """Read ``dockerfile`` and judge it: (its bytes, the verdict). ``rel`` names it in problems;
    ``contexts``: the build contexts declared for it (compose ``build.context``), which the rule then
    takes instead of deciding; ``additional``: named contexts (compose ``additional_contexts``)."""
    declared = sorted(set(contexts))
    if len(declared) > 1:
        shown = ", ".join(relpath(c, root) for c in declared)
        return None, DockerfileVerdict(rel, None, None, problems=[Problem(
            "error", "dockerfile-context-unknown", rel, None,
            f"built from several contexts ({shown}): what it copies differs between them",
            "give each context its own Dockerfile")])
    try:
        raw = dockerfile.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        return None, DockerfileVerdict(rel, None, None, problems=[
            Problem("error", "unreadable", rel, None, f"cannot read: {exc.strerror}")])
    except UnicodeDecodeError:
        return None, DockerfileVerdict(rel, None, None, problems=[
            Problem("error", "unreadable", rel, None, "not UTF-8 text: nexusify cannot tell what it copies",
                    "save the Dockerfile as UTF-8")])
    return raw, judge_dockerfile(rel, text, project_dir=project_dir, root=root, shared=shared,
                                 context=declared[0] if declared else None, additional=additional, pulls=pulls,
                                 arg_sets=arg_sets)


@dataclass(frozen=True)
class JudgedDockerfile:
    path: Path
    rel: str
    content: bytes | None  # None: unreadable (the verdict says why)
    verdict: DockerfileVerdict
    # how compose builds it (what a real build of it must be given): named contexts, build args
    additional_contexts: tuple[tuple[str, Path], ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()


def judge_project(project: Project, root: Path, shared: SharedCode) -> list[JudgedDockerfile]:
    """The verdict for every Dockerfile that builds ``project`` (the model's builds: a context a
    compose file declares is taken as is, else the rule decides it). What audit and rewrite ask."""
    builds: dict[Path, list[DockerBuild]] = {df: [] for df in project.dockerfiles}
    for b in project.docker_builds:
        builds.setdefault(b.dockerfile, []).append(b)
    out: list[JudgedDockerfile] = []
    for df, found in sorted(builds.items()):
        rel = relpath(df, root)
        additional = {name: folder for b in found for name, folder in b.additional_contexts}
        content, verdict = judge_file(
            df, rel, project_dir=project.path, root=root, shared=shared,
            # a declared context (compose, CI), or the folder of a Dockerfile outside its project's folder
            # (attached by `--package`, name or file name): it is built from where it sits, not from the project
            contexts=[b.context for b in found if b.origin.startswith(("compose", "ci:"))
                      or not is_inside(b.dockerfile.parent, project.path)], additional=additional,
            pulls=project_pulls(project, shared), arg_sets=[dict(b.build_args) for b in found] or [{}])
        args = dict(arg for b in found for arg in b.build_args)
        out.append(JudgedDockerfile(df, rel, content, verdict, tuple(sorted(additional.items())),
                                    tuple(sorted(args.items()))))
    return out


def _walk(verdict: DockerfileVerdict, df: Dockerfile, project_dir: Path, shared: SharedCode,
          additional: Mapping[str, Path], pulls: ProjectPulls | None) -> None:
    ctx = verdict.context
    assert ctx is not None
    stages: list[Stage] = []
    names: dict[str, int] = {}
    stage = Stage()
    own = os.path.normpath(str(project_dir))
    for instr in df.instructions:
        kw = instr.keyword
        if kw == "FROM":
            base = instr.image or ""
            parent = names.get(base.lower(), int(base) if base.isdigit() and int(base) < len(stages) else None)
            stage = Stage(stages[parent].workdir, list(stages[parent].filled),
                           list(stages[parent].own)) if parent is not None else Stage()
            stages.append(stage)
            if instr.alias:
                names[instr.alias.lower()] = len(stages) - 1
            continue
        if kw in ("COPY", "ADD") and not instr.heredocs:
            src_from = instr.flag("from")
            if src_from is None:
                _judge_copy(verdict, instr, stage, ctx, own, shared)
                track_own(instr, stage, ctx, project_dir)
            else:
                index = names.get(src_from.lower(), int(src_from) if src_from.isdigit() else None)
                if index is not None and index < len(stages):
                    _judge_copy_from(verdict, instr, stage, stages[index])
                elif src_from in additional:  # a named build context: a folder of the monorepo
                    _judge_copy(verdict, instr, stage, additional[src_from], own, shared)
                    track_own(instr, stage, additional[src_from], project_dir)
            continue
        if kw == "RUN" and not instr.json_form and not instr.heredocs:
            judge_commands(verdict.path, instr, stage, df, [n for _f, n in shared.packages], pulls,
                           verdict.filters, verdict.problems)
        if not stage.filled:
            if kw == "WORKDIR" and instr.words:
                stage.workdir = abs_path(instr.words[0], stage.workdir)
            continue
        if kw == "RUN":
            _judge_run(verdict, instr, stage, df)
        elif kw in ("ENV", "WORKDIR", "CMD", "ENTRYPOINT", "VOLUME", "ARG"):
            _uses(verdict, instr, instr.words, stage)
        if kw == "WORKDIR" and instr.words:
            stage.workdir = abs_path(instr.words[0], stage.workdir)
    for k, install in enumerate(verdict.installs):  # the consumer's own install already pulls it
        owns = stages[install.instruction.stage].installs if 0 <= install.instruction.stage < len(stages) else []
        if any(canonicalize_name(install.name) in o.names and o.env in (None, install.env) for o in owns):
            verdict.installs[k] = replace(install, redundant=True)


def _judge_copy(verdict: DockerfileVerdict, instr: Instruction, stage: Stage, ctx: Path, own: str,
                shared: SharedCode) -> None:
    drop: list[str] = []
    names: list[str] = []
    filled: list[tuple[str | None, str | None]] = []  # (relative folder under dest, package)
    for src in instr.sources:
        hits = shared.match(src, ctx)
        if hits is None:
            continue
        resolved = os.path.normpath(os.path.join(str(ctx), glob_free(src).lstrip("/")))
        if own == resolved or own.startswith(resolved + os.sep):
            verdict.problems.append(Problem(
                "error", "dockerfile-copies-shared", verdict.path, instr.start,
                f"{instr.keyword} {src} brings shared code together with the project's own folder: rewrite "
                "cannot drop one without the other", "copy the project's folder and the shared packages with "
                "separate COPY lines"))
            return
        drop.append(src)
        exact = not any(c in src for c in "*?[")
        for name, rel in hits:
            names.append(name)
            filled.append((rel if exact else None, name if exact and rel is not None else None))
        if not hits:
            filled.append(("", None))
    if not drop:
        return
    dest = instr.dest or ""
    if "$" in dest:
        verdict.problems.append(Problem(
            "error", "dockerfile-uses-shared-code", verdict.path, instr.start,
            f"{instr.keyword} puts shared code at {dest}, a path named by a variable: its uses cannot be traced",
            "write the destination literally"))
        return
    whole = len(drop) == len(instr.sources)
    if not whole and instr.json_form and instr.start != instr.end:
        verdict.problems.append(Problem(
            "error", "dockerfile-unpatchable", verdict.path, instr.start,
            f"{instr.keyword} mixes shared code ({', '.join(drop)}) with other sources in a multi-line JSON form "
            "that cannot be edited safely", "split the instruction: one COPY for the shared folders, one for the "
            "rest"))
        return
    base = abs_path(dest, stage.workdir)
    for rel, pkg in filled if whole else ():  # a partial copy merges into what the kept sources fill
        stage.filled.append(Filled(abs_path(rel, base) if rel else base, pkg, instr.start))
    verdict.copies.append(SharedCopy(instr, tuple(drop), tuple(dict.fromkeys(names)), whole))


def _judge_copy_from(verdict: DockerfileVerdict, instr: Instruction, stage: Stage, source: Stage) -> None:
    if not source.filled:
        return
    base = abs_path(instr.dest or ".", stage.workdir)
    drop: list[str] = []
    names: list[str] = []
    for src in instr.sources:
        s = abs_path(glob_free(src), "/")
        inside = [f for f in source.filled if under(s, f.path)]
        if inside:
            drop.append(src)
            names.extend(f.name for f in inside if f.name)
            for f in inside:
                stage.filled.append(Filled(base, f.name if s == f.path else None, instr.start))
            continue
        for f in source.filled:  # a parent folder: what it held lands under the destination
            if under(f.path, s):
                stage.filled.append(Filled(abs_path(posixpath.relpath(f.path, s), base), f.name, instr.start))
    if drop:
        verdict.copies.append(SharedCopy(instr, tuple(drop), tuple(dict.fromkeys(names)),
                                         len(drop) == len(instr.sources)))


def _judge_run(verdict: DockerfileVerdict, instr: Instruction, stage: Stage, df: Dockerfile) -> None:
    if instr.json_form or instr.heredocs:
        words = list(instr.words)
        for h in instr.heredocs:
            words += " ".join(df.lines[h.first_line - 1:h.last_line]).split()
        _uses(verdict, instr, words, stage, "a script")
        return
    args = instr.args
    handled: set[int] = set()  # offsets of words read as install arguments
    for m in PIP_INSTALL.finditer(args):
        end = _SEGMENT_END.search(args, m.end())
        segment_end = end.start() if end else len(args)
        found = list(_WORD.finditer(args, m.end(), segment_end))
        k = 0
        while k < len(found):
            word = found[k].group(0)
            if word in PIP_VALUE_OPTIONS:
                k += 2
                continue
            editable = word if word in _EDITABLE else None
            target = found[k + 1] if editable and k + 1 < len(found) else found[k]
            if word.startswith("-") and not editable:
                k += 1
                continue
            install = _path_install(verdict, instr, stage, target.group(0), editable, m.group(1),
                                    tuple(f.group(0) for f in found))
            if install is not None:
                handled.update({found[k].start(), target.start()})
            k += 2 if editable else 1
    rest = [w.group(0) for w in _WORD.finditer(args) if w.start() not in handled]
    filtered = {w for f in verdict.filters if f.instruction is instr for w in (f.file, f.out)}
    _uses(verdict, instr, [w for w in rest if w not in filtered], stage)


def _path_install(verdict: DockerfileVerdict, instr: Instruction, stage: Stage, word: str,
                  editable: str | None, cmd: str, args: tuple[str, ...]) -> PathInstall | None:
    raw = word.strip("'\"")
    m = re.fullmatch(r"(?:file:(?://)?)?(.*?)(\[[^\]]*\])?", raw)
    if m is None or "$" in raw or "://" in raw.removeprefix("file://"):
        return None
    where = abs_path(m.group(1), stage.workdir)
    hits = [f for f in stage.filled if f.path == where]
    if not hits:
        return None
    found = {f.name for f in hits}
    if len(found) != 1 or None in found:
        return None  # left to _uses: a problem
    cmd = " ".join(cmd.split())
    install = PathInstall(instr, word, editable, hits[0].name or "", m.group(2) or "", (*cmd.split(), *args),
                          pip_env((*cmd.split(), *args), len(cmd.split()), cmd))
    verdict.installs.append(install)
    return install


def _uses(verdict: DockerfileVerdict, instr: Instruction, words: Iterable[str], stage: Stage,
          what: str = "") -> None:
    """A problem for the first word that names a path a removed copy filled, or a folder above it
    through a glob or a ``cd``."""
    previous = ""
    for word in words:
        after_cd, previous = previous == "cd", word
        for piece in re.split(r"[=:,]", word.strip("'\"")):
            piece = piece.strip("'\"")
            if not piece or piece.startswith("-") or "$" in piece or piece.startswith("//"):
                continue
            where = abs_path(glob_free(piece), stage.workdir)
            above, inside = (after_cd or glob_free(piece) != piece) and where != "/", where.rstrip("/") + "/"
            for f in stage.filled:  # under() inlined (every word x every copied folder)
                if where == f.path or where.startswith(f.path.rstrip("/") + "/") or (above and f.path.startswith(inside)):
                    shape = what or f"`{piece}`"
                    verdict.problems.append(Problem(
                        "error", "dockerfile-uses-shared-code", verdict.path, instr.start,
                        f"{instr.keyword} uses {f.path}, shared code the copy at line {f.line} brings, "
                        f"through {shape}: rewrite cannot replace that with an install from the index "
                        "with certainty", _HINT + ""))
                    return


__all__ = [
    "PIP_INSTALL",
    "DockerfileVerdict",
    "JudgedDockerfile",
    "PathInstall",
    "SharedCode",
    "SharedCopy",
    "judge_dockerfile",
    "judge_file",
    "judge_project",
]
