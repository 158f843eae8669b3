"""What a publish did, as data: per file, per package, and for the run (``to_dict()`` for ``--json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexusify.credentials import mask_url
from nexusify.errors import NexusifyError
from nexusify.index.pages import parse_filename

#: progress callback: (event, package name or None, details)
Reporter = Callable[[str, str | None, Mapping[str, Any]], None]


@dataclass
class FileOutcome:
    filename: str
    kind: str
    sha256: str
    action: str  # uploaded | present | present-same-contents | present-compatible | on-index
    md5: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "kind": self.kind, "sha256": self.sha256, "action": self.action}

    def digests(self) -> dict[str, str]:
        return {k: v for k, v in (("sha256", self.sha256), ("md5", self.md5)) if v}


@dataclass
class PackageOutcome:
    name: str
    version: str
    path: str
    status: str  # uploaded | present | unchanged | failed | blocked | would-build | would-skip
    reason: str = ""
    files: list[FileOutcome] = field(default_factory=list)
    error: NexusifyError | None = None
    verified: bool | None = None
    build_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "blocked")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "path": self.path, "status": self.status,
            "reason": self.reason, "files": [f.to_dict() for f in self.files],
            "error": self.error.to_dict() if self.error else None, "verified": self.verified,
            "build_seconds": round(self.build_seconds, 3) if self.build_seconds is not None else None,
        }


@dataclass
class PublishReport:
    upload_url: str
    index_url: str
    dry_run: bool
    packages: list[PackageOutcome]
    seconds: float = 0.0
    build_envs_created: int = 0

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.packages)

    @property
    def uploaded(self) -> list[str]:
        return [f.filename for p in self.packages for f in p.files if f.action == "uploaded"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.packages:
            out[p.status] = out.get(p.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "dry_run": self.dry_run, "upload_url": mask_url(self.upload_url),
            "index_url": mask_url(self.index_url), "seconds": round(self.seconds, 3),
            "counts": self.counts(), "uploaded_files": self.uploaded,
            "build_envs_created": self.build_envs_created,
            "packages": [p.to_dict() for p in self.packages],
        }


def file_kind(filename: str) -> str:
    parsed = parse_filename(filename)
    return parsed[2] if parsed else "?"
