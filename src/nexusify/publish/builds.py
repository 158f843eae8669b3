"""Publish's build step: stage, build and check one shared package, reusing archives already built.

Archives are cached under ``.nexusify/dist/<name>-<fingerprint>``: a package whose sources did
not change is never rebuilt. Built archives are checked before anything is uploaded
(:mod:`nexusify.dists.checks`): no path references, internal requirements that admit the
versions being published, valid metadata and a long description that renders.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.config import Settings
from nexusify.dists.artifact import Artifact, BuildResult
from nexusify.dists.backend import build_project
from nexusify.dists.checks import check_artifact, check_metadata
from nexusify.dists.envs import BuildEnvs
from nexusify.dists.staging import stage_project
from nexusify.errors import BuildError
from nexusify.model import relpath
from nexusify.publish.plan import PackagePlan


def dist_dir(settings: Settings, pl: PackagePlan) -> Path:
    return settings.state_file("dist", f"{pl.normalized}-{pl.fingerprint[:16]}")


def cached_build(folder: Path) -> BuildResult | None:
    try:
        meta = json.loads((folder / "artifacts.json").read_text())
        sdist = Artifact.from_path(folder / meta["sdist"], "sdist")
        wheel = Artifact.from_path(folder / meta["wheel"], "wheel")
    except (OSError, ValueError, KeyError):
        return None
    return BuildResult(sdist, wheel, 0.0, "(reused from the cache)")


def build_package(settings: Settings, pl: PackagePlan, versions: Mapping[str, str], envs: BuildEnvs,
                  base_env: Mapping[str, str], force: bool = False) -> BuildResult:
    """Stage, build, and check one package (or reuse the archives built for this fingerprint)."""
    out = dist_dir(settings, pl)
    if not force:
        cached = cached_build(out)
        if cached is not None:
            return cached
    if out.exists():
        shutil.rmtree(out)
    env = envs.get(pl.requires)
    with tempfile.TemporaryDirectory(prefix="nexusify-stage-") as tmp:
        staged = stage_project(pl.project.path, pl.staged_text, Path(tmp) / pl.project.path.name)
        build_env = dict(base_env)
        if pl.project.version_dynamic:
            # a VCS-derived version (setuptools-scm, hatch-vcs, pdm-backend's scm source) cannot be
            # read from the staged copy, which has no .git: pin it to the version the audit resolved
            build_env.update(scm_version_env(pl.name, pl.version))
        result = build_project(staged, out, env, backend=pl.backend, backend_path=pl.backend_path,
                               base_env=build_env, timeout=max(600.0, float(settings.timeout)), name=pl.name)
    internal = {d.normalized: versions[d.normalized] for d in pl.project.local_deps
                if d.resolved is not None and d.runtime and d.normalized in versions and d.kind != "requirements"}
    problems = [msg for a in result.artifacts for msg in check_artifact(a, internal)]
    problems += [msg for a in result.artifacts for msg in check_metadata(a)]
    if problems:
        shutil.rmtree(out, ignore_errors=True)
        raise BuildError(
            f"{pl.name} {pl.version}: the built archives are not fit to publish:\n" + "\n".join(f"  {m}" for m in problems),
            path=relpath(pl.project.pyproject, settings.root),
            hint="nothing of this package was uploaded; fix the dependency declarations in its pyproject.toml",
        )
    (out / "artifacts.json").write_text(json.dumps({"sdist": result.sdist.filename, "wheel": result.wheel.filename}))
    return result


def scm_version_env(name: str, version: str) -> dict[str, str]:
    """Variables that make VCS-version plugins report ``version`` (they read them first)."""
    upper = re.sub(r"[^A-Z0-9]", "_", canonicalize_name(name).upper())
    return {
        "SETUPTOOLS_SCM_PRETEND_VERSION": version,
        f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{upper}": version,
        "PDM_BUILD_SCM_VERSION": version,
    }


def prune_dist(settings: Settings, packages: Iterable[PackagePlan]) -> None:
    """Keep only the archives of the current fingerprints (older builds are just a cache)."""
    dist = settings.state_file("dist")
    if not dist.is_dir():
        return
    packages = list(packages)
    keep = {dist_dir(settings, pl).name for pl in packages}
    mine = {pl.normalized for pl in packages}
    for d in dist.iterdir():
        prefix = d.name.rsplit("-", 1)[0]
        if d.name not in keep and prefix in mine:
            shutil.rmtree(d, ignore_errors=True)


_BACKEND_COST = (("setuptools", 1.0), ("pdm", 0.6), ("hatchling", 0.5), ("poetry", 0.4), ("flit", 0.3))


def build_cost(pl: PackagePlan, records: Mapping[str, Any]) -> float:
    """Expected build time: the last measured one, else a guess from the backend."""
    seconds = records.get(pl.normalized, {}).get("build_seconds")
    if isinstance(seconds, int | float) and seconds > 0:
        return float(seconds)
    return next((cost for key, cost in _BACKEND_COST if key in pl.backend), 0.8)
