"""The services' build backends on the demo's index (what a Nexus group proxying PyPI would
serve): pip needs them to build a service (the image build) or its metadata (verify's resolve)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from nexusify.credentials import without_index_credentials


def backend_wheels(requires: Sequence[str], cache: Path, env: Mapping[str, str]) -> tuple[list[Path], str | None]:
    """Wheels of a service's build backend (what a Nexus group proxying PyPI would serve), cached
    in ``cache``: (wheels, None) or ([], why they could not be had)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    cache.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    missing: list[str] = []
    for raw in requires:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            return [], f"cannot read the build requirement {raw!r}"
        have = None
        for wheel in sorted(cache.glob("*.whl"), reverse=True):
            try:
                name, version, _b, _t = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue
            if name == canonicalize_name(req.name) and req.specifier.contains(version, prereleases=True):
                have = wheel
                break
        if have is not None:
            found.append(have)
        else:
            missing.append(raw)
    if missing:
        pip_env = without_index_credentials(env, usernames=False)
        before = set(cache.glob("*.whl"))
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input",
             "--no-deps", "--only-binary=:all:", "-d", str(cache), *missing],
            env=pip_env, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["(no output)"]
            return [], f"`pip download {' '.join(missing)}` failed: {last[0][:200]}"
        found += sorted(set(cache.glob("*.whl")) - before)
    return found, None


def backend_closure(requires: Sequence[str], cache: Path, env: Mapping[str, str]) -> tuple[list[Path], str | None]:
    """The build backends with everything they need (hatchling needs packaging, pathspec...):
    what building a service's metadata installs. From the cache when it has them all (offline),
    else downloaded once into it: (every wheel of the cache, None) or ([], why not)."""
    cache.mkdir(parents=True, exist_ok=True)
    if not requires:
        return [], None
    pip_env = without_index_credentials(env, usernames=False)
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input",
            "--only-binary=:all:", "-d", str(cache)]
    proc = subprocess.run([*base, "--no-index", "--find-links", str(cache), *requires], env=pip_env,
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        proc = subprocess.run([*base, *requires], env=pip_env, capture_output=True, text=True, timeout=300,
                              check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        return [], f"`pip download {' '.join(requires)}` failed: {last[0][:200]}"
    return sorted(cache.glob("*.whl")), None


__all__ = ["backend_closure", "backend_wheels"]
