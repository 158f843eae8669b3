"""The checks ``rewrite --check`` shares with verify, over the whole monorepo whatever the
targets or ``--no-dockerfiles`` say (flags narrow what rewrite writes, never what it judges):

* every Dockerfile no consumer owns whose context holds shared code or a consumer
  (:func:`~nexusify.verify.dockerfiles.unowned_dockerfiles`): its shared copies and errors;
* every consumer's Dockerfile lines that fail its build or install shared code by path
  (:mod:`nexusify.formats.dockerfile_checks`), targeted or not;
* the sources of every consumer rewrite would leave unchanged
  (:func:`~nexusify.verify.sources.source_findings`, for the shared packages it declares): an index other than the configured one that serves them, in its
  manifest, its requirements files or the Dockerfiles that build it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from nexusify.errors import Problem
from nexusify.formats.dockerfile_checks import CODES, uv_package_problems
from nexusify.formats.dockerfile_rules import JudgedDockerfile, judge_project
from nexusify.formats.shared_code import SharedCode
from nexusify.model import Project, Workspace, stays_in_workspace
from nexusify.model.staying import workspace_of
from nexusify.syntax.dockerfile_parse import DockerfileSyntaxError, parse_file
from nexusify.verify.dockerfiles import unowned_dockerfiles
from nexusify.verify.report import Finding
from nexusify.verify.sources import dockerfile_index_findings, source_findings
from nexusify.verify.static import dockerfile_findings


def broken_builds(judged: Iterable[JudgedDockerfile]) -> list[Problem]:
    """What fails the build of a consumer that stays in its uv workspace (taking shared code by path
    is its way, so only these count): ``uv sync --package`` of a non-member, ``COPY --from`` of a
    path its stage no longer makes."""
    return [p for jd in judged for p in jd.verdict.problems
            if p.code in ("dockerfile-uv-package", "dockerfile-copy-from-missing")]


def _problem(code: str, f: Finding) -> Problem:
    return Problem("error", code, f.path, f.line, f.message, f.hint)


def check_problems(ws: Workspace, consumers: Sequence[Project], shared: SharedCode, index_url: str,
                   explicit: bool = True, settled: Collection[Path] | None = None,
                   judged: Mapping[Path, list[JudgedDockerfile]] | None = None) -> list[Problem]:
    """Errors ``rewrite --check`` adds to its plan's (see the module docstring); ``consumers``:
    every consumer of ``ws`` (:meth:`nexusify.model.Workspace.consumers`); ``settled``: the folders of
    the consumers rewrite would leave unchanged, the only ones whose sources are judged (what
    rewrite would change, its plan already reports; None: every consumer); ``judged``: consumers'
    Dockerfiles judged already (with the same ``shared``), by folder."""
    out: list[Problem] = []
    for jd in unowned_dockerfiles(ws, shared, consumers):
        findings = dockerfile_findings(jd)
        if jd.content is not None:
            findings += dockerfile_index_findings(jd.rel, jd.content.decode("utf-8", "replace"), index_url)
        out += [_problem("dockerfile-unowned", f) for f in findings]
    for consumer in consumers:
        found = judged.get(consumer.path) if judged is not None else None
        verdicts = found if found is not None else judge_project(consumer, ws.root, shared)
        wroot = workspace_of(consumer)
        if wroot is not None and stays_in_workspace(consumer, ws):
            out += broken_builds(verdicts)
            continue
        # whatever the targets: a build that fails, or installs shared code by path, is an error
        out += [p for jd in verdicts for p in jd.verdict.problems if p.code in CODES]
        if settled is None or consumer.path in settled:
            out += [_problem("index-elsewhere", f)
                    for f in source_findings(consumer, ws, index_url, verdicts, (), explicit)]
    seen: set[tuple[str | None, int | None, str]] = set()
    unique = []
    for p in out:
        if (p.path, p.line, p.message) not in seen:
            seen.add((p.path, p.line, p.message))
            unique.append(p)
    return unique


def moved_member_problems(ws: Workspace, consumers: Sequence[Project], shared: SharedCode,
                          moves: Mapping[Path, Collection[str]],
                          planned: Mapping[Path, bytes] | None = None) -> list[Problem]:
    """``dockerfile-uv-move`` for every Dockerfile of the monorepo (a consumer's, or one no consumer
    owns) that runs ``uv sync/run --package NAME`` over a uv workspace rewrite is about to move NAME
    out of (``moves``: workspace root -> normalised member names): the rule ``--check`` and verify
    apply after the move (:func:`~nexusify.formats.dockerfile_checks.uv_package_problems`), asked
    before it, so rewrite refuses and writes nothing. ``planned``: the text rewrite will write for a
    Dockerfile (a moved member's builds alone, ``--directory`` instead of ``--package``), judged instead."""
    judged: list[tuple[JudgedDockerfile, list[dict[str, str]]]] = []
    for consumer in consumers:
        for jd in judge_project(consumer, ws.root, shared):
            args = [dict(b.build_args) for b in consumer.docker_builds if b.dockerfile == jd.path] or [{}]
            judged.append((jd, args))
    judged += [(jd, [dict(jd.build_args)]) for jd in unowned_dockerfiles(ws, shared, consumers)]
    out: list[Problem] = []
    for jd, args in judged:
        df, context = jd.verdict.dockerfile, jd.verdict.context
        if jd.path in (planned or {}):
            try:
                df = parse_file((planned or {})[jd.path].decode("utf-8"))
            except (DockerfileSyntaxError, UnicodeDecodeError):
                df = None
        if df is None or context is None:
            continue
        out += [p for p in uv_package_problems(jd.rel, df, context=context, root=ws.root, arg_sets=args,
                                               leaving=moves) if p.code == "dockerfile-uv-move" and p not in out]
    return out


__all__ = ["check_problems", "moved_member_problems"]
