"""Built distribution files as data: an :class:`Artifact` (path, kind, digests) and a :class:`BuildResult`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str  # "sdist" or "wheel"
    sha256: str
    md5: str
    size: int

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def digests(self) -> dict[str, str]:
        return {"sha256": self.sha256, "md5": self.md5}

    @classmethod
    def from_path(cls, path: Path, kind: str) -> Artifact:
        data = path.read_bytes()
        return cls(path, kind, hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data))

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "kind": self.kind, "sha256": self.sha256, "size": self.size}


@dataclass
class BuildResult:
    sdist: Artifact
    wheel: Artifact
    seconds: float
    log: str = ""
    dynamic_requires: list[str] = field(default_factory=list)

    @property
    def artifacts(self) -> list[Artifact]:
        return [self.sdist, self.wheel]
