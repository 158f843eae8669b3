"""The rewrite plan as data: every file it changes (old and new bytes, edits), per service."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.errors import HasProblems, Problem
from nexusify.formats.dockerfile_rules import JudgedDockerfile
from nexusify.formats.pyproject_edit import Edit, SourceSpec
from nexusify.rewrite.lock import LockJob


@dataclass
class FilePlan:
    """One file the rewrite changes (or would change)."""

    path: Path
    rel: str
    kind: str  # "pyproject", "requirements", "dockerfile", "lockfile"
    service: str
    old: bytes
    new: bytes
    edits: list[Edit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        a = self.old.decode("utf-8", "replace").splitlines(keepends=True)
        b = self.new.decode("utf-8", "replace").splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, f"a/{self.rel}", f"b/{self.rel}"))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.rel, "kind": self.kind, "service": self.service, "changed": self.changed,
                "edits": [e.to_dict() for e in self.edits]}


@dataclass
class UvMove:
    """One member taken out of its uv workspace (plan data: what ``--check`` and ``--json`` show)."""

    member: str  # the member's folder, from the monorepo root
    workspace: str  # the workspace root's folder
    exclude: str  # the entry added to [tool.uv.workspace] exclude
    switched: list[str] = field(default_factory=list)  # "file:line" of workspace sources made path sources
    locks: list[str] = field(default_factory=list)  # the lockfiles (re)made, from the monorepo root
    locked: list[str] = field(default_factory=list)  # those actually re-made by this run

    def to_dict(self) -> dict[str, Any]:
        return {"member": self.member, "workspace": self.workspace, "exclude": self.exclude,
                "sources_switched": self.switched, "lockfiles": self.locks, "locked": self.locked}

    def describe(self) -> str:
        return (f"moves out of the uv workspace at {self.workspace} onto the index (exclude \"{self.exclude}\"; "
                f"lock {', '.join(self.locks) or 'nothing'})")


@dataclass
class ServicePlan:
    name: str
    rel: str
    path: Path
    shared: list[str] = field(default_factory=list)  # direct shared dependencies by path/file/workspace
    by_version: list[str] = field(default_factory=list)  # shared packages already declared by version
    by_name: list[str] = field(default_factory=list)  # named with no version and no index (model.by_name)
    added: list[str] = field(default_factory=list)  # transitive ones declared for the explicit source
    files: list[FilePlan] = field(default_factory=list)
    stale_lockfiles: list[str] = field(default_factory=list)
    lock_jobs: list[LockJob] = field(default_factory=list)  # its lockfiles, to re-lock after the rewrite
    move: UvMove | None = None  # taken out of its uv workspace onto the index (rewrite.uv_move)

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.rel, "changed": self.changed, "shared_dependencies": self.shared,
                "shared_by_version": self.by_version, "shared_by_name": self.by_name,
                "transitive_declared": self.added, "files": [f.rel for f in self.files if f.changed],
                "stale_lockfiles": self.stale_lockfiles,
                "uv_workspace_move": self.move.to_dict() if self.move else None}


@dataclass
class RewritePlan(HasProblems):
    root: Path
    source: SourceSpec
    constraint: str
    versions: dict[str, str]
    version_source: str  # "pyproject" or "index"
    services: list[ServicePlan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    index_auth: bool = False
    staying: list[str] = field(default_factory=list)  # consumers that stay in their uv workspace (folders)
    # each judged consumer's Dockerfiles (folder -> verdicts), for `rewrite --check`'s gate to reuse
    judged: dict[Path, list[JudgedDockerfile]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def files(self) -> list[FilePlan]:
        return [f for s in self.services for f in s.files if f.changed]

    @property
    def changed(self) -> bool:
        return bool(self.files)

    @property
    def stale_lockfiles(self) -> list[str]:
        """Lockfiles left behind what the manifests now say (not re-locked, or it failed)."""
        return [rel for s in self.services for rel in s.stale_lockfiles]

    def diff(self) -> str:
        return "".join(f.diff() for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "source": {"name": self.source.name, "url": self.source.url, "priority": self.source.priority},
            "constraint": self.constraint,
            "version_source": self.version_source,
            "versions": self.versions,
            "index_auth": self.index_auth,
            "changed": self.changed,
            "services": [s.to_dict() for s in self.services],
            "files": [f.to_dict() for f in self.files],
            "problems": [p.to_dict() for p in self.problems],
            "staying": self.staying,
        }


__all__ = ["FilePlan", "RewritePlan", "ServicePlan", "UvMove"]
