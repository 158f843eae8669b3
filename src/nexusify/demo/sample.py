"""The sample monorepo the demo runs on, and its working folder: where the sample comes from,
copying it (a folder is only ever replaced when it carries the demo's marker), the marker, and
the ``nexusify.toml`` the demo writes there."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexusify import __version__
from nexusify.errors import NexusifyError, OperationFailed, UsageError
from nexusify.files import write_atomic
from nexusify.index.local import stop_stale

MARKER = ".nexusify-demo.json"
SERVICE = "quality-fabric"
ENVIRONMENT_PREFIX = "demo-"
IMAGE = "nexusify-demo/quality-fabric"
DEFAULT_WORKDIR = "nexusify-demo"
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".nexusify", "dist", "build",
                                      ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache")



def sample_source() -> Path:
    """The sample monorepo: ``nexusify/_sample`` in an installed wheel, else the checkout's
    ``fixtures/monorepo`` (editable installs)."""
    import nexusify

    package = Path(nexusify.__file__).resolve().parent
    for candidate in (package / "_sample", package.parents[1] / "fixtures" / "monorepo"):
        if (candidate / "services").is_dir() and (candidate / "shared").is_dir():
            return candidate
    raise OperationFailed("the sample monorepo is not part of this installation",
                          hint="reinstall nexusify (the wheel ships it as nexusify/_sample)")


def environment_name(workdir: Path) -> str:
    """The deploy environment of a working folder: its containers and images carry this label,
    so a demo only ever removes what a demo in the same folder made."""
    import hashlib

    return ENVIRONMENT_PREFIX + hashlib.sha256(str(workdir).encode()).hexdigest()[:8]


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "nexusify" / "demo"


def read_marker(workdir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((workdir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("created_by") == "nexusify demo" else None


def write_marker(workdir: Path, **extra: Any) -> None:
    data = {"created_by": "nexusify demo", "nexusify": __version__,
            "note": "this folder was made by `nexusify demo`; re-running the demo replaces it", **extra}
    write_atomic(workdir / MARKER, json.dumps(data, indent=2) + "\n")


def prepare_workdir(workdir: Path, source: Path) -> str:
    """Copy ``source`` to ``workdir``. An existing folder is replaced only when it carries the
    demo's marker (after stopping what an interrupted run may have left running); a non-empty
    folder without it is refused. Returns what happened (for the report)."""
    replaced = ""
    for inner, outer, what in ((source, workdir, "holds the sample itself"), (workdir, source, "is inside the sample")):
        try:
            inner.resolve().relative_to(outer.resolve())
        except ValueError:
            continue
        raise UsageError(f"--workdir {workdir} {what}", hint="give a folder outside the sample monorepo")
    if workdir.exists() or workdir.is_symlink():
        if not workdir.is_dir() or workdir.is_symlink():
            raise UsageError(f"--workdir {workdir} exists and is not a folder",
                             hint="give another --workdir (the demo copies the sample monorepo there)")
        marker = read_marker(workdir)
        if marker is not None:
            _stop_leftovers(workdir, marker)
            shutil.rmtree(workdir)
            replaced = "replaced the previous demo folder"
        elif any(workdir.iterdir()):
            raise UsageError(
                f"--workdir {workdir} is not empty and was not made by `nexusify demo` (no {MARKER} in it)",
                hint="give a new or empty folder with --workdir; the demo only ever replaces its own folder",
            )
        else:
            workdir.rmdir()
    workdir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, workdir, ignore=_COPY_IGNORE)
    write_marker(workdir)
    return replaced


def _stop_leftovers(workdir: Path, marker: Mapping[str, Any]) -> None:
    """An interrupted run (killed, not Ctrl-C) may have left its index server or nginx running."""
    pid = marker.get("index_pid")
    if isinstance(pid, int) and pid > 1:
        stop_stale(pid, str(workdir / ".demo" / "index"))
    conf_dir = workdir / ".nexusify" / "deploy" / environment_name(workdir) / "nginx"
    if (conf_dir / "nginx.pid").is_file():
        from nexusify.deploy.traffic.switch import NginxProxy

        with contextlib.suppress(NexusifyError, OSError):
            NginxProxy(conf_dir, {}).stop()


def demo_config(public_port: int, environment: str) -> str:
    """The ``nexusify.toml`` the demo writes into the working folder (its deploy settings)."""
    return (
        "# Written by `nexusify demo`. The demo passes the index URLs itself: its local index runs\n"
        "# only while the demo runs. On your own monorepo, `nexusify init` writes this file.\n"
        "\n"
        "[deploy]\n"
        "keep = 2\n"
        "lock-wait = 0\n"
        "\n"
        f"[deploy.services.{SERVICE}]\n"
        f'folder = "services/{SERVICE}"\n'
        "container-port = 8000\n"
        f'image = "{IMAGE}"\n'
        f"public-port = {public_port}       # the private nginx listens here (127.0.0.1)\n"
        'health-path = "/health"\n'
        "health-timeout = 90\n"
        "health-interval = 0.2\n"
        "drain-timeout = 1\n"
        "\n"
        f"[deploy.environments.{environment}]   # no secrets, a private nginx nexusify manages\n"
    )
