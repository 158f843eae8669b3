"""A consumer that stays in its uv workspace (:func:`nexusify.model.stays_in_workspace`) keeps
taking the shared packages from the workspace's folders, so every image of it must still bring
them: a Dockerfile that no longer copies them (removed by hand, or by an earlier rewrite) builds an
image without them. Audit, ``rewrite --check`` and ``verify`` report it with this one function."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from nexusify.errors import Problem
from nexusify.formats.build_context import uv_workspace_build
from nexusify.formats.dockerfile_rules import JudgedDockerfile


def stay_problems(name: str, wroot: Path, judged: Iterable[JudgedDockerfile]) -> list[Problem]:
    """An error per Dockerfile of the staying consumer ``name`` (of the workspace at ``wroot``)
    that no longer brings the workspace's shared code (no copy of a shared folder, of the workspace root or its ``pyproject.toml``)."""
    out: list[Problem] = []
    for jd in judged:
        v = jd.verdict
        if v.dockerfile is None or v.context is None:
            continue
        brings = bool(v.copies) or any(p.code == "dockerfile-uv-workspace" for p in v.problems) or \
            uv_workspace_build(jd.rel, v.dockerfile, wroot, v.context, dict(jd.additional_contexts)) is not None
        if not brings:
            out.append(Problem(
                "error", "dockerfile-lost-shared", jd.rel, None,
                f"{name} stays in the uv workspace (its shared packages come from the workspace's folders), but "
                "this Dockerfile copies neither the workspace nor the shared packages: the image would lack them",
                "copy the workspace back (its pyproject.toml, uv.lock and the shared folders), or name the "
                "consumer in `nexusify rewrite` to move it onto the index"))
    return out


__all__ = ["stay_problems"]
