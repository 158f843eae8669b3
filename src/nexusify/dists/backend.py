"""Running a package's own PEP 517 backend: sdist and wheel in one process, reproducibly.

:func:`build_project` runs the backend in a build env's interpreter with ``SOURCE_DATE_EPOCH``
fixed (the backend is imported once for both archives); :func:`normalise_sdist` makes the
sdist byte-reproducible for backends that stamp build times. :func:`backend_of` reads
``[build-system]`` with PEP 517's legacy default.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nexusify.dists.artifact import Artifact, BuildResult
from nexusify.dists.envs import BuildEnv, missing_requirements, tail
from nexusify.dists.staging import SOURCE_DATE_EPOCH
from nexusify.errors import BuildError

DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
DEFAULT_REQUIRES = ("setuptools>=40.8.0",)

_RUNNER = r'''
import importlib, json, os, sys, traceback
spec = json.loads(sys.argv[1])
for p in reversed(spec["backend_path"]):
    sys.path.insert(0, os.path.abspath(p))
result = {"requires": [], "sdist": None, "wheel": None, "error": None}
try:
    mod, _, obj = spec["backend"].partition(":")
    backend = importlib.import_module(mod.strip())
    for part in filter(None, obj.strip().split(".")):
        backend = getattr(backend, part)
    for kind in ("sdist", "wheel"):
        hook = getattr(backend, "get_requires_for_build_" + kind, None)
        if hook is not None:
            result["requires"].extend(hook({}))
    if "sdist" in spec["kinds"]:
        result["sdist"] = backend.build_sdist(spec["out"], {})
    if "wheel" in spec["kinds"]:
        result["wheel"] = backend.build_wheel(spec["out"], {})
except BaseException as exc:
    traceback.print_exc()
    result["error"] = type(exc).__name__ + ": " + str(exc)
with open(spec["result"], "w") as fh:
    json.dump(result, fh)
'''


def backend_of(data: Mapping[str, Any]) -> tuple[str, list[str], list[str]]:
    """(backend, requires, backend-path) of a pyproject, with PEP 517's legacy default."""
    bs = data.get("build-system") if isinstance(data.get("build-system"), dict) else None
    if not bs:
        return DEFAULT_BACKEND, list(DEFAULT_REQUIRES), []
    backend = bs.get("build-backend") if isinstance(bs.get("build-backend"), str) else DEFAULT_BACKEND
    requires = [r for r in bs.get("requires", []) if isinstance(r, str)] if isinstance(bs.get("requires"), list) else []
    backend_path = [p for p in bs.get("backend-path", []) if isinstance(p, str)] if isinstance(bs.get("backend-path"), list) else []
    return backend, requires, backend_path


def build_env_vars(base: Mapping[str, str]) -> dict[str, str]:
    """The environment backends run in: fixed time, hash seed, locale and timezone; no bytecode
    written (build envs are compiled when installed; the staged sources stay clean)."""
    env = {k: v for k, v in base.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.setdefault("PATH", os.defpath)
    env.update({
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
        "PYTHONHASHSEED": "0",
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def build_project(
    staged: Path,
    out_dir: Path,
    env: BuildEnv,
    *,
    backend: str,
    backend_path: Sequence[str] = (),
    base_env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    name: str = "",
) -> BuildResult:
    """Build sdist and wheel of the staged project with its backend, in ``env``'s interpreter."""
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / ".nexusify-build.json"
    spec = {"backend": backend, "backend_path": list(backend_path), "out": str(out_dir),
            "result": str(result_file), "kinds": ["sdist", "wheel"]}
    label = name or staged.name
    try:
        proc = subprocess.run(
            [str(env.python), "-c", _RUNNER, json.dumps(spec)], cwd=staged, capture_output=True, text=True,
            env=build_env_vars(base_env if base_env is not None else os.environ),
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"building {label} timed out after {timeout:.0f}s", hint="look for a backend waiting on input or the network") from exc
    log = (proc.stdout or "") + (proc.stderr or "")
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        result = {"error": f"the build process exited with {proc.returncode}"}
    finally:
        result_file.unlink(missing_ok=True)
    dynamic = [r for r in result.get("requires") or [] if isinstance(r, str)]
    if result.get("error") or not result.get("sdist") or not result.get("wheel"):
        missing = missing_requirements(env, dynamic)
        hint = (f"the backend also needs {', '.join(missing)}: add them to [build-system].requires"
                if missing else "run the backend yourself (python -m build) in the package folder to see the full log")
        raise BuildError(f"building {label} with {backend} failed: {result.get('error')}\n{tail(log)}", hint=hint)
    normalise_sdist(out_dir / result["sdist"])
    sdist = Artifact.from_path(out_dir / result["sdist"], "sdist")
    wheel = Artifact.from_path(out_dir / result["wheel"], "wheel")
    return BuildResult(sdist, wheel, time.monotonic() - started, log, dynamic)


_PAX_VOLATILE = frozenset({"mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})


def normalise_sdist(path: Path) -> bool:
    """Make a .tar.gz byte-reproducible: member mtimes SOURCE_DATE_EPOCH, owners 0/"", gzip
    header time fixed. Member order, names, modes and contents are kept. Backends that
    already honour SOURCE_DATE_EPOCH (hatchling, poetry-core) are left byte-for-byte alone;
    setuptools stamps generated files with the build time and pdm-backend the gzip header.
    Returns whether the file was rewritten."""
    if not path.name.endswith(".tar.gz"):
        return False
    raw = path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tf:
        members = tf.getmembers()
        fmt = tf.format
        header_time = int.from_bytes(raw[4:8], "little")
        normal = header_time in (0, SOURCE_DATE_EPOCH) and all(
            int(m.mtime) == SOURCE_DATE_EPOCH and m.uid == 0 and m.gid == 0 and not m.uname and not m.gname
            and not (_PAX_VOLATILE & m.pax_headers.keys())
            for m in members
        )
        if normal:
            return False
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=SOURCE_DATE_EPOCH, compresslevel=9) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=fmt) as out:
            for m in members:
                data = tf.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
                m.mtime = SOURCE_DATE_EPOCH
                m.uid = m.gid = 0
                m.uname = m.gname = ""
                m.pax_headers = {k: v for k, v in m.pax_headers.items() if k not in _PAX_VOLATILE}
                out.addfile(m, io.BytesIO(data) if data is not None else None)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return True
