"""What a change touches: the shared packages whose content changed, every shared package that
depends on them (their published requirements change too), and every consumer that uses any of
them, each with the chain that explains why.

Two baselines for "changed":

- the index (default): for each shared package, what the index holds for its current version,
  compared file by file with the sources (audit's published-vs-local comparison); a version the
  index does not hold yet counts as changed too (publishing it changes what consumers get);
- git (``since``): the files of a package's folder that differ from that ref, minus what its
  build never sees (build output, caches, virtualenvs). Needs no index.

The graph is the model's (:class:`~nexusify.model.Workspace`): runtime edges, by path or by version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.config import Settings
from nexusify.errors import HasProblems, OperationFailed, Problem, UsageError
from nexusify.model import Project, Workspace, relpath, workspace_for


@dataclass
class Changed:
    name: str
    path: str
    why: str
    files: list[str] = field(default_factory=list)
    version: str | None = None
    published: bool | None = None  # False: the index does not hold this version yet (None: not asked)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "version": self.version, "why": self.why,
                "files": self.files, "published": self.published}


@dataclass
class Reached:
    """A shared package or consumer reached from a changed package: ``because`` is the chain from
    its dependency down to the changed package (empty for a changed package itself)."""

    name: str
    path: str
    because: list[str]

    def chain(self) -> str:
        return " <- ".join([self.name, *self.because]) if self.because else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "because": self.because, "chain": self.chain()}


@dataclass
class Affected(HasProblems):
    baseline: str  # "index <url>" or "git <ref>"
    changed: list[Changed] = field(default_factory=list)
    packages: list[Reached] = field(default_factory=list)  # changed ones first, then dependents
    consumers: list[Reached] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changed and not self.consumers

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "changed": [c.name for c in self.changed],
            "packages": [p.name for p in self.packages],
            "consumers": [c.to_dict() for c in self.consumers],
            "details": {"changed": [c.to_dict() for c in self.changed],
                        "packages": [p.to_dict() for p in self.packages]},
            "problems": [p.to_dict() for p in self.problems],
        }


# --------------------------------------------------------------------------- baselines


SINCE_HINT = "or pass --since REF to compare with git instead (offline)"


def changed_by_index(ws: Workspace, settings: Settings, env: Mapping[str, str],
                     on_index: dict[str, list[str]] | None = None, *,
                     hint: str = "check the index settings and credentials, " + SINCE_HINT,
                     ) -> tuple[list[Changed], list[Problem]]:
    """Shared packages whose sources differ from what the index holds for their current version,
    or whose current version the index does not hold. ``on_index``, when given, receives every
    version the index holds per package (normalised name). ``hint``: what to do when the index
    cannot be read (the caller's own options)."""
    from nexusify.audit.published import index_status

    if not settings.upload_simple_url:
        raise UsageError("no index configured to compare the shared packages with",
                         hint="set nexus-url/repository or --repository-url; " + hint)
    status, problems = index_status(ws, settings, env)
    if not status.reachable:
        shown = "; ".join(p.message for p in problems) or "no answer"
        raise OperationFailed(f"the index {status.url} could not be read, so what changed is unknown: {shown}",
                              hint=hint)
    if on_index is not None:
        on_index.update({canonicalize_name(e.name): list(e.published_versions) for e in status.packages})
    out: list[Changed] = []
    kept: list[Problem] = [p for p in problems if p.severity == "warning" and p.code != "published-differs"]
    for p in ws.shared():
        e = status.of(p.name or "")
        if e is None or p.version is None:
            kept.append(Problem("error", "version-unknown", relpath(p.pyproject, ws.root), None,
                                f"{p.name or p.rel(ws.root)}: no version, so it cannot be compared with the index",
                                "give it a version"))
            continue
        name, path, version = p.name or "", p.rel(ws.root), p.version
        if not e.published:
            out.append(Changed(name, path, f"{p.version} is not on the index yet", version=version, published=False))
        elif e.differs is None:
            out.append(Changed(name, path, f"the published {p.version} could not be compared (no sdist or wheel "
                                           "nexusify can read): counted as changed", version=version, published=True))
        elif e.differs:
            out.append(Changed(name, path, f"sources differ from the published {p.version} ({e.compared_with})",
                               list(e.changed_files), version=version, published=True))
    return out, kept


def build_sees(rel_parts: tuple[str, ...]) -> bool:
    """Whether a package's build (and so the published files) can see the file at ``rel_parts``
    inside the package's folder: not build output, caches, virtualenvs or editor files."""
    from nexusify.dists.staging import SKIP_DIR_NAMES, SKIP_FILE_NAMES, SKIP_FILE_SUFFIXES

    *dirs, name = rel_parts
    if any(d in SKIP_DIR_NAMES or d.endswith(".egg-info") for d in dirs):
        return False
    return name not in SKIP_FILE_NAMES and not name.endswith(SKIP_FILE_SUFFIXES)


def changed_since(ws: Workspace, ref: str) -> tuple[list[Changed], dict[Path, list[str]]]:
    """Shared packages with files changed since ``ref`` (git), and the consumers' own changed files."""
    from nexusify.affected.git import changed_files

    files = changed_files(ws.root, ref)
    owners = sorted((p for p in ws.projects if ws.is_shared(p) or ws.is_consumer(p)),
                    key=lambda p: len(p.path.parts), reverse=True)  # the innermost project owns a file
    by_project: dict[Path, list[str]] = {}
    for f in files:
        for p in owners:
            if p.path in f.parents:
                rel = f.relative_to(p.path)
                if build_sees(rel.parts):
                    by_project.setdefault(p.path, []).append(rel.as_posix())
                break
    changed = [
        Changed(p.name or "", p.rel(ws.root), f"{len(by_project[p.path])} file(s) changed since {ref}",
                by_project[p.path], version=p.version)
        for p in ws.shared() if p.path in by_project and p.name
    ]
    own = {p.path: by_project[p.path] for p in ws.consumers() if p.path in by_project}
    return changed, own


# --------------------------------------------------------------------------- the graph


def consumers_of(ws: Workspace, chains: Mapping[str, list[str]]) -> list[Reached]:
    """The consumers (:meth:`Workspace.consumers`) that install (directly or through other shared
    packages) any package in ``chains``, each with its shortest chain."""
    out: list[Reached] = []
    for svc in ws.consumers():
        # a shared package deployed itself is reached as a package too
        best: list[str] | None = chains.get(svc.normalized or "")
        for d in sorted(ws.takes(svc)):
            if d in chains and (best is None or len(chains[d]) + 1 < len(best)):
                best = [d, *chains[d]]
        if best is not None:
            out.append(Reached(svc.name or svc.rel(ws.root), svc.rel(ws.root), [_display(ws, n) for n in best]))
    return out


def _display(ws: Workspace, normalized: str) -> str:
    p = ws.by_name.get(normalized)
    return (p.name if p is not None else None) or normalized


def expand(ws: Workspace, changed: list[Changed], baseline: str) -> Affected:
    """The packages and consumers reached from ``changed``."""
    chains = ws.dependents([canonicalize_name(c.name) for c in changed])
    order = sorted(chains, key=lambda n: (len(chains[n]), n))
    packages = [Reached(_display(ws, n), ws.by_name[n].rel(ws.root), [_display(ws, c) for c in chains[n]])
                for n in order]
    return Affected(baseline, changed, packages, consumers_of(ws, chains))


def affected(settings: Settings, *, since: str | None = None, env: Mapping[str, str] | None = None,
             workspace: Workspace | None = None) -> Affected:
    """What changed (against the index, or git ``since``), and everything that change reaches."""
    ws = workspace or workspace_for(settings)
    blocking = [p for p in ws.problems if p.severity == "error"]
    if since is not None:
        changed, own = changed_since(ws, since)
        result = expand(ws, changed, f"git {since}")
        listed = {c.path for c in result.consumers}
        for svc in ws.consumers():
            files = own.get(svc.path)
            if files and svc.rel(ws.root) not in listed:
                result.consumers.append(Reached(svc.name or svc.rel(ws.root), svc.rel(ws.root), []))
        result.consumers.sort(key=lambda r: r.path)
    else:
        changed, problems = changed_by_index(ws, settings, env or {})
        result = expand(ws, changed, f"index {settings.upload_simple_url}")
        result.problems.extend(problems)
    result.problems[:0] = blocking
    return result


def project_of(ws: Workspace, name: str) -> Project:
    p = ws.by_name.get(canonicalize_name(name))
    if p is None or not ws.is_shared(p):
        raise UsageError(f"{name}: not a shared package of {ws.root}",
                         hint="shared packages: " + ", ".join(sorted(q.name or "" for q in ws.shared())))
    return p
