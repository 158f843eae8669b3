"""Check 1, static: a consumer reaches no shared package through a path, a ``file:`` URL or a
workspace any more, in its manifest, its requirements files, its lockfiles or the Dockerfiles
that build it. Every finding names the file and line.

Lockfiles are read by :mod:`nexusify.formats.lockfiles`: a shared package's entry (or uv's
recorded requirement) whose source is a folder or file is a finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from nexusify.formats.dockerfile_rules import JudgedDockerfile
from nexusify.formats.lockfiles import path_pins
from nexusify.model import Project, Workspace, relpath
from nexusify.rewrite.lock import LockJob
from nexusify.verify.report import Check, Finding


def lockfile_findings(lock: Path, shared: Iterable[str], root: Path, owner: str | None = None) -> list[Finding]:
    """Every place ``lock`` installs one of the ``shared`` packages (normalised names) from a path
    (:func:`nexusify.formats.lockfiles.path_pins`, the reader the re-lock checks its result with)."""
    rel = relpath(lock, root)
    try:
        text = lock.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(f"cannot read the lockfile ({exc})", rel)]
    pins = path_pins(text, lock.name, shared, owner)
    if not pins:
        return []
    # the command rewrite's re-lock runs (and names in its warnings): only these packages change
    job = LockJob(owner or "", lock.parent, lock, tuple(sorted({p.name for p in pins})))
    hint = f"re-lock against the index: `{job.command(root)}` (or `nexusify rewrite`)"
    return [Finding(pin.message, rel, pin.line, hint) for pin in pins]


def dockerfile_findings(judged: JudgedDockerfile) -> list[Finding]:
    """What the one shared-code rule (:func:`judge_project`, the rule audit and rewrite ask) finds
    in a Dockerfile that builds the consumer: COPY/ADD of shared code (in any stage, ``COPY --from``
    of what such a copy filled), installs from a folder such a copy filled, ``grep -v`` filters of
    shared packages' requirement lines, and every line it cannot decide (an error: not proven)."""
    v = judged.verdict
    out = [Finding(f"{c.instruction.keyword} {' '.join(c.sources)} copies shared code"
                   f"{' (' + ', '.join(c.names) + ')' if c.names else ''} into the image", v.path, c.line,
                   v.fix_hint("`nexusify rewrite` installs it from the index instead")) for c in v.copies]
    out += [Finding(f"installs {i.name} from the copied folder `{i.word}`", v.path, i.instruction.start,
                    v.fix_hint("install it by version from the index (`nexusify rewrite`)")) for i in v.installs]
    out += [Finding(f"`grep` filters {', '.join(f.names)} out of {f.file}, so the image does not install "
                    f"{'them' if len(f.names) > 1 else 'it'} from the index", v.path, f.instruction.start,
                    v.fix_hint("drop the filter for the shared packages (`nexusify rewrite`)")) for f in v.filters]
    out += [Finding(p.message, p.path or v.path, p.line, p.hint) for p in v.problems if p.severity == "error"]
    return sorted(out, key=lambda f: (f.path or "", f.line or 0))


def manifest_findings(consumer: Project, ws: Workspace, shared: set[str]) -> list[Finding]:
    """Dependencies on shared packages by path, file URL or workspace (pyproject and requirements)."""
    out: list[Finding] = []
    for d in consumer.local_deps:
        target = ws.project_at(d.resolved) if d.resolved is not None else None
        if d.normalized not in shared and not ws.is_shared(target):
            continue
        how = {"uv-workspace": "the uv workspace"}.get(d.kind, f"`{d.written or d.raw_path}`")
        out.append(Finding(f"{d.name} is still installed from {how}", relpath(d.file, ws.root), d.path_line,
                           "`nexusify rewrite` makes it a version from the index"))
    return out


def static_check(consumer: Project, ws: Workspace, judged: list[JudgedDockerfile]) -> Check:
    """``judged``: the verdicts on the Dockerfiles that build ``consumer`` (:func:`judge_project`)."""
    shared = {p.normalized for p in ws.shared() if p.normalized}
    needed = set(ws.closure([consumer], runtime=False)) | set(consumer.internal_names())
    findings = manifest_findings(consumer, ws, shared)
    for lock in ws.lockfiles_of(consumer):
        # its own lockfile holds nothing shared by path; a workspace root's lock only what it needs
        if lock.parent == consumer.path and not consumer.workspace_members:
            findings += lockfile_findings(lock, shared, ws.root)
        else:  # a uv workspace's lock records every member: only what this consumer needs counts
            findings += lockfile_findings(lock, needed & shared, ws.root, consumer.normalized)
    for jd in judged:
        findings += dockerfile_findings(jd)
    looked = ["manifest"] + (["requirements"] if consumer.requirement_files else []) + \
        (["lockfile"] if ws.lockfiles_of(consumer) else []) + (["Dockerfile"] if judged else [])
    return Check.of("static", findings, "no path to a shared package in its " + ", ".join(looked))
