"""The Dockerfile patch of ``nexusify rewrite``: shared packages come from the index.

What to change comes from the one shared-code rule (:func:`nexusify.formats.dockerfile_rules.judge_dockerfile`,
also behind audit's warnings); this module only edits text:

* drops the shared sources of ``COPY``/``ADD`` instructions the verdict lists (the whole
  instruction when no source remains, a ``COPY --from=<stage>`` of a folder those copies filled too);
* a ``pip install`` of a folder such a copy filled (``/deps/a``, ``-e /deps/a``, ``/deps/a[x]``)
  installs that package by version instead (``"a[x]>=0.1.0,<0.2.0"``), or goes when the
  service's own install in that stage already pulls it; a ``grep -v`` filtering shared packages
  out of a requirements file loses those patterns (:mod:`.dockerfile_commands`);
* declares ``ARG NEXUS_INDEX_URL=<index>`` in each stage that installs, right before the first
  install step, and adds ``--index-url "$NEXUS_INDEX_URL"`` to every ``pip install`` /
  ``pip wheel`` / ``pip download`` / ``uv pip install`` (Poetry, ``uv sync`` and PDM read the source written into pyproject.toml);
* when the index needs credentials, mounts a netrc as a BuildKit secret on those steps:
  ``RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install ...``. The password
  never goes into an ``ARG`` or ``ENV`` (both are kept in the image history). pdm reads them
  only from ``${NEXUS_USERNAME}:${NEXUS_PASSWORD}@`` in its source URL, so a ``pdm install``
  gets both variables, read from that netrc, for that one command.

Every other line is kept byte for byte. Shapes that cannot be patched safely (an exec-form
``RUN`` that installs, a different ``--index-url`` already given, an install step running as
a non-root ``USER`` with credentials...) are reported as problems with file:line, and the
file is left untouched.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nexusify.config import url_problem
from nexusify.credentials import PDM_URL_VARS
from nexusify.errors import ConfigError, Problem
from nexusify.formats.dockerfile_rules import PIP_INSTALL, DockerfileVerdict, PathInstall
from nexusify.formats.dockerfile_runs import RequirementsFilter
from nexusify.formats.edits import Edit
from nexusify.rewrite.dockerfile_commands import edit_commands
from nexusify.syntax.dockerfile_parse import Dockerfile, Instruction

INDEX_ARG = "NEXUS_INDEX_URL"
SECRET_ID = "netrc"
SECRET_TARGET = "/root/.netrc"
_OTHER_INSTALL = re.compile(r"(?<![\w.-])(poetry\s+install|uv\s+sync|pdm\s+(?:install|sync))(?=\s|$)")
# pdm reads the index credentials only from ${NEXUS_USERNAME}:${NEXUS_PASSWORD}@ in its source URL:
# the install step sets both from the mounted netrc, for that one command (never ENV/ARG, never a layer)
_PDM = re.compile(r"(?<![\w.=-])pdm\s+(?:install|sync|lock|update|add)(?=\s|$)")
_PDM_CREDENTIALS = "".join(
    f"""{var}="$(awk '{{for(i=1;i<NF;i++)if($i=="{field}")print $(i+1)}}' {SECRET_TARGET})" """
    for var, field in zip(PDM_URL_VARS, ("login", "password"), strict=True))
_INDEX_OPT = re.compile(r"(?:--index-url|-i)(?:\s+|=)(\S+)")


@dataclass
class PatchResult:
    path: Path
    text: str
    edits: list[Edit]
    problems: list[Problem]

    @property
    def changed(self) -> bool:
        return bool(self.edits)


@dataclass
class _Change:
    start: int  # 0-based first line replaced
    end: int  # 0-based exclusive
    new: list[str]  # replacement lines (with endings)
    reason: str


def one_line_url(url: str) -> str:
    """``url``, which a Dockerfile line is about to hold: a ConfigError if it could break out of
    that line (a newline would start an instruction of its own)."""
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"index URL not written into a Dockerfile: {problem}",
                          hint="give an http:// or https:// URL without spaces or control characters")
    return url


def patch(
    path: Path,
    text: str,
    verdict: DockerfileVerdict,
    *,
    index_url: str,
    requirement: Callable[[str, str], str | None],
    auth: bool = False,
    arg_name: str = INDEX_ARG,
    secret_id: str = SECRET_ID,
) -> PatchResult:
    """Patch one Dockerfile from its shared-code ``verdict`` (see the module docstring).
    ``requirement(name, extras)`` is the requirement a path install becomes (None: no version
    known). Problems leave the text unchanged."""
    one_line_url(index_url)
    rel = str(path)
    df = verdict.dockerfile
    if df is None or verdict.rewrite_refuses is not None:  # one rule with the hints audit and verify give
        return PatchResult(path, text, [], list(verdict.problems))
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    nl = df.newline
    lines = df.lines
    problems: list[Problem] = []
    changes: list[_Change] = []
    for copy in verdict.copies:
        instr = copy.instruction
        drop = list(copy.sources)
        if copy.whole:
            changes.append(_Change(instr.start - 1, instr.end, [], f"drop {instr.keyword} of shared code "
                                   f"({', '.join(drop)}): shared packages come from the index"))
            continue
        new = _remove_sources(lines[instr.start - 1:instr.end], drop, instr, df.escape)
        if new is None:
            problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                    f"{instr.keyword} mixes shared code ({', '.join(drop)}) with other sources in a "
                                    "shape that cannot be edited safely",
                                    "split the instruction: one COPY for the shared folders, one for the rest"))
            continue
        changes.append(_Change(instr.start - 1, instr.end, new,
                               f"drop shared source(s) {', '.join(drop)} from {instr.keyword}"))
    installs: dict[int, list[PathInstall]] = {}
    for install in verdict.installs:
        installs.setdefault(install.instruction.start, []).append(install)

    filters: dict[int, list[RequirementsFilter]] = {}
    for f in verdict.filters:
        filters.setdefault(f.instruction.start, []).append(f)

    _patch_installs(df, rel, index_url, auth, arg_name, secret_id, nl, changes, problems, installs,
                    requirement, filters)

    if problems:
        return PatchResult(path, text, [], problems)
    if not changes:
        return PatchResult(path, text, [], [])
    changes.sort(key=lambda c: (c.start, c.end))
    out: list[str] = []
    edits: list[Edit] = []
    pos = 0
    for ch in changes:
        if ch.start < pos:  # overlapping edits of one instruction: merged by construction
            continue
        out.extend(lines[pos:ch.start])
        before = "".join(lines[ch.start:ch.end])
        out.extend(ch.new)
        edits.append(Edit(ch.start + 1, before.rstrip("\r\n").replace("\r\n", "\n"),
                          "".join(ch.new).rstrip("\r\n").replace("\r\n", "\n"), ch.reason))
        pos = ch.end
    out.extend(lines[pos:])
    new_text = bom + "".join(out)
    return PatchResult(path, new_text, edits, [])


def _remove_sources(raw: list[str], drop: list[str], instr: Instruction, escape: str) -> list[str] | None:
    """The instruction's lines without the ``drop`` sources, or None when that is not safe."""
    if instr.json_form:
        if len(raw) != 1:
            return None
        line = raw[0]
        body_end = len(line.rstrip("\r\n"))
        ending = line[body_end:]
        prefix = line[: line.index("[")]
        items = [w for w in instr.words if w not in drop]
        return [prefix + json.dumps(items) + ending]
    out = list(raw)
    for src in drop:
        hits = [(k, m) for k, line in enumerate(out) for m in re.finditer(rf"(?<=\s){re.escape(src)}(?=\s|$)", line)]
        if len(hits) != 1:
            return None
        k, m = hits[0]
        line = out[k]
        before, after = line[: m.start()], line[m.end():]
        if not before.strip() and after.strip() in ("", escape):
            del out[k]  # the source had its own continuation line
            continue
        # the source goes with the blanks before it; what followed keeps its own spacing
        out[k] = before.rstrip(" \t") + after
    return out


def _rewrite_path_installs(body: str, installs: list[PathInstall], requirement: Callable[[str, str], str | None],
                           rel: str, problems: list[Problem]) -> str | None:
    """``body`` with each path install replaced by the package's requirement from the index."""
    for install in installs:
        wanted = requirement(install.name, install.extras)
        line = install.instruction.start
        if wanted is None:
            problems.append(Problem("error", "version-unknown", rel, line,
                                    f"{install.name}: no version known for this shared package",
                                    "give it a version in its pyproject.toml, or publish it (--from-index)"))
            return None
        flag = rf"{re.escape(install.editable)}(?:\s+|=)" if install.editable else ""
        pattern = re.compile(rf"(?<![^\s]){flag}{re.escape(install.word)}(?=\s|$|;|&|\|)")
        hits = list(pattern.finditer(body))
        if len(hits) != 1:
            problems.append(Problem("error", "dockerfile-unpatchable", rel, line,
                                    f"cannot rewrite `{install.word}` safely ({len(hits)} matches in the instruction)",
                                    f"install {install.name} by name instead: pip install {install.name}"))
            return None
        body = body[:hits[0].start()] + shlex.quote(wanted) + body[hits[0].end():]
    return body


def _patch_installs(df: Dockerfile, rel: str, index_url: str, auth: bool, arg_name: str, secret_id: str, nl: str,
                    changes: list[_Change], problems: list[Problem], installs: dict[int, list[PathInstall]],
                    requirement: Callable[[str, str], str | None],
                    filters: dict[int, list[RequirementsFilter]]) -> None:
    lines = df.lines
    arg_declared: set[int] = set()
    user_by_stage: dict[int, str] = {}
    for instr in df.instructions:
        if instr.keyword == "ARG" and instr.words and instr.words[0].split("=", 1)[0] == arg_name:
            arg_declared.add(instr.stage)
            name, eq, default = instr.words[0].partition("=")
            line = lines[instr.start - 1]
            simple = instr.start == instr.end and len(instr.words) == 1 and default.strip("\"'") == default
            if eq and default != index_url and simple and default in line:
                # rewritten before, with another index URL: bring its default in line
                start = line.index(default, line.index(name))
                changes.append(_Change(instr.start - 1, instr.end,
                                       [line[:start] + index_url + line[start + len(default):]],
                                       f"index URL default: {default} -> {index_url}"))
        if instr.keyword == "USER" and instr.words:
            user_by_stage[instr.stage] = instr.words[0]
        if instr.keyword != "RUN":
            continue
        original = "".join(lines[instr.start - 1:instr.end])
        body = original
        why: list[str] = []
        if instr.start in installs or instr.start in filters:
            edited, why = edit_commands(
                body, filters.get(instr.start, []), installs.get(instr.start, []), df.escape, rel, problems,
                lambda text, keep: _rewrite_path_installs(text, keep, requirement, rel, problems))
            if edited is None:
                continue
            if edited == "":  # nothing of the RUN is left
                changes.append(_Change(instr.start - 1, instr.end, [], "; ".join(why)))
                continue
            body = edited
        if instr.json_form:
            words = " ".join(instr.words)
            if not (PIP_INSTALL.search(words) or _OTHER_INSTALL.search(words)):
                continue
            problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                    "an exec-form (JSON) RUN installs packages; it cannot expand $" + arg_name,
                                    "write it in shell form: RUN pip install ..."))
            continue
        pip_hits = list(PIP_INSTALL.finditer(body))
        other_hits = list(_OTHER_INSTALL.finditer(body))
        if not pip_hits and not other_hits:
            continue
        new_body = body
        if pip_hits:
            pieces: list[str] = []
            pos = 0
            for m in pip_hits:
                tail = body[m.end():]
                line_rest = re.split(r"&&|\|\||;|\n", tail, maxsplit=1)[0]
                opt = _INDEX_OPT.search(line_rest)
                if opt is not None:
                    if arg_name in opt.group(1):
                        continue
                    problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                            f"the install step already names an index ({opt.group(1)})",
                                            f"replace it with --index-url \"${arg_name}\" or remove it"))
                    continue
                pieces.append(body[pos:m.end()] + f' --index-url "${arg_name}"')
                pos = m.end()
            pieces.append(body[pos:])
            new_body = "".join(pieces)
        mount = f"--mount=type=secret,id={secret_id}"
        if auth and mount not in body:
            user = user_by_stage.get(instr.stage, "root")
            if user not in ("root", "0", "0:0", "root:root"):
                problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                        f"the install step runs as USER {user}; the index credentials are mounted for root",
                                        f"move `USER {user}` after the install step"))
                continue
            new_body = re.sub(r"^(\s*RUN)(\s+)", rf"\1 {mount},target={SECRET_TARGET}\2", new_body, count=1,
                              flags=re.IGNORECASE)
        pdm = auth and _PDM.search(new_body) is not None and PDM_URL_VARS[0] + "=" not in new_body
        if pdm:
            new_body = _PDM.sub(lambda m: _PDM_CREDENTIALS + m.group(0), new_body)
        if new_body == original and instr.stage in arg_declared:
            continue
        new_lines = new_body.splitlines(keepends=True)
        if instr.stage not in arg_declared and (pip_hits or auth):
            indent = re.match(r"\s*", lines[instr.start - 1]).group(0)  # type: ignore[union-attr]
            new_lines.insert(0, f"{indent}ARG {arg_name}={index_url}{nl}")
            arg_declared.add(instr.stage)
        if new_lines == lines[instr.start - 1:instr.end]:
            continue
        if pip_hits:
            why.append(f"install from ${arg_name}")
        if auth:
            why.append("index credentials from a BuildKit secret (netrc), never an ARG/ENV")
        if pdm:
            why.append(f"pdm reads them as ${PDM_URL_VARS[0]}/${PDM_URL_VARS[1]} (its source URL), set from that "
                       "secret for this command only")
        changes.append(_Change(instr.start - 1, instr.end, new_lines, "; ".join(why) or "declare the index URL"))


__all__ = ["INDEX_ARG", "SECRET_ID", "PatchResult", "patch"]
