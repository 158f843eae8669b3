"""Migrations on a host: ``alembic upgrade heads`` in a one-off container from the NEW image, on the
first host of an environment, once per deploy, before any host switches.

Why on the host: the database is often reachable from the servers only, and the new image holds
the exact code and drivers the migrations import. The container gets the service's secrets and
the database URL in its environment (never a file, never a label; the container is removed when
it ends), runs on the host's network (a database on the host's loopback answers too), and holds
the same PostgreSQL advisory lock as a local run (:func:`~nexusify.deploy.migrations.local.advisory_lock_key`),
so two migrators never overlap. The scripts come from the working copy (the ones ``deploy``
checked), copied into the container with ``put_archive``; the image needs alembic and SQLAlchemy
with the database's driver, as the app itself does.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets as _random
import tarfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from nexusify.credentials import Secret
from nexusify.deploy.config.load import ServiceConfig
from nexusify.deploy.migrations import core
from nexusify.deploy.migrations.local import (
    MigrationResult,
    advisory_lock_key,
    explain,
    script_location,
    scripts,
)
from nexusify.deploy.runtime.engine import (
    LABEL_ENVIRONMENT,
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_VERSION,
    ROLE_MIGRATION,
    Engine,
    start_retrying,
)
from nexusify.deploy.runtime.images import BuiltImage
from nexusify.deploy.runtime.sdk import EngineError
from nexusify.errors import DeployError

WORKDIR = "/tmp/nexusify-migrations"
MARKER = core.MARKER
_SKIP = {"__pycache__", ".git", ".venv", "node_modules"}

# Runs inside the image: the one runner's own source (it imports only alembic, SQLAlchemy and the
# standard library); argv = alembic.ini, advisory lock key, script_location, lock timeout.
SCRIPT = Path(core.__file__).read_text(encoding="utf-8")


def payload(ini: Path, location: str) -> tuple[list[tuple[str, Path]], str]:
    """What a run away from the working copy needs: ``(name under WORKDIR, file)`` for the ini and
    the scripts of ``location`` (skipping caches and VCS folders), and the location as seen under
    ``WORKDIR``. A ``package:folder`` location ships only the ini (the image holds the package)."""
    files: list[tuple[str, Path]] = [("alembic.ini", ini)]
    inside = location
    if ":" not in location or Path(location).is_absolute():
        folder = Path(location)
        try:
            rel = folder.resolve().relative_to(ini.parent.resolve()).as_posix()
        except ValueError:
            rel = "scripts"
        inside = f"{WORKDIR}/{rel}"
        for f in sorted(folder.rglob("*")):
            parts = set(f.relative_to(folder).parts)
            if f.is_file() and not parts & _SKIP and f.suffix not in (".pyc", ".pyo"):
                files.append((f"{rel}/{f.relative_to(folder).as_posix()}", f))
    return files, inside


def _archive(ini: Path, location: str) -> tuple[bytes, str]:
    """The ini and its scripts as a tar for ``WORKDIR``; returns it and the in-container location."""
    buf = io.BytesIO()
    files, inside = payload(ini, location)
    folders: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in files:
            parents = list(reversed(Path(name).parents[:-1]))  # outermost first, "." left out
            for parent in (p.as_posix() for p in parents):
                if parent not in folders:
                    folders.add(parent)
                    info = tarfile.TarInfo(parent)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            tar.add(str(path), arcname=name)
    return buf.getvalue(), inside


def upgrade_in_container(engine: Engine, svc: ServiceConfig, image: BuiltImage, environment: str, url: str,
                         env: Mapping[str, str], *, redact: Callable[[str], str], host: str = "",
                         timeout: float = 600.0, lock_timeout: float = core.LOCK_TIMEOUT) -> MigrationResult:
    """Run the service's migrations in a one-off container of ``image`` on ``engine``, with the
    runner a local run uses (:mod:`~nexusify.deploy.migrations.core`): the same lock wait and timeout,
    the holder named, the failing revision named (its file in the working copy)."""
    assert svc.migrations is not None
    where = f" on {host}" if host else ""
    location = script_location(svc.name, svc.migrations)
    tar, inside = _archive(svc.migrations, location)
    name = f"nx-{environment}-{svc.name}-migrate-{_random.token_hex(3)}"
    labels = {LABEL_MANAGED: "true", LABEL_ENVIRONMENT: environment, LABEL_SERVICE: svc.name,
              LABEL_VERSION: image.version, LABEL_ROLE: ROLE_MIGRATION}
    started = time.monotonic()
    client = engine.client
    try:
        c = client.containers.create(
            image.image_id or image.ref, name=name, labels=labels, network_mode="host", working_dir=WORKDIR,
            command=["python3", "-c", SCRIPT, f"{WORKDIR}/alembic.ini", str(advisory_lock_key(url)), inside,
                     str(lock_timeout)],
            environment={**env, "DATABASE_URL": url},
        )
    except EngineError as exc:
        raise DeployError(f"service `{svc.name}`: could not create the migration container{where}: "
                          f"{redact(exc.message)}", hint="nothing was switched") from None
    try:
        client.api.put_archive(c.id, "/", _tree(tar))
        start_retrying(c.start)
        status = c.wait(timeout=timeout + lock_timeout)
        logs = c.logs().decode("utf-8", "replace")
        code = int(status.get("StatusCode", 1)) if isinstance(status, dict) else 1
    except EngineError as exc:
        raise DeployError(f"service `{svc.name}`: the migration container{where} failed: {redact(exc.message)}",
                          hint="nothing was switched") from None
    finally:
        with contextlib.suppress(EngineError):
            c.remove(force=True)
    reports = [json.loads(ln[len(MARKER):]) for ln in logs.splitlines() if ln.startswith(MARKER)]
    data = next((r for r in reversed(reports) if r.get("ok") is not None), None)
    if data is not None and data.get("ok") is False:
        raise explain(svc.name, data, scripts(svc.name, svc.migrations), redact, where)
    if code != 0 or data is None:
        tail = "\n".join(logs.strip().splitlines()[-12:])
        raise DeployError(f"service `{svc.name}`: migrations failed{where} (exit {code}):\n{redact(tail)}",
                          path=svc.migrations, hint="nothing was switched; fix the migration and deploy again")

    def join(revs: list[str]) -> str | None:
        return ",".join(sorted(revs)) or None

    return MigrationResult(svc.name, join(data["before"]), join(data["after"]), tuple(data["applied"]),
                           time.monotonic() - started, float(data.get("waited") or 0.0))


class ContainerMigrations:
    """The :class:`~nexusify.deploy.protocols.MigrationRunner` of hosts: a one-off container of the
    new image on ``engine`` (the first host) runs the migrations."""

    def __init__(self, engine: Engine, environment: str, *, redact: Callable[[str], str], host: str = "") -> None:
        self.engine = engine
        self.environment = environment
        self.redact = redact
        self.host = host

    def run(self, service: ServiceConfig, image: BuiltImage | None, url: Secret, env: Mapping[str, str]) -> MigrationResult:
        if image is None:
            raise DeployError(f"service `{service.name}`: migrations on a host run from the new image, and there is none")
        return upgrade_in_container(self.engine, service, image, self.environment, url.reveal(), env, redact=self.redact,
                                    host=self.host)


def _tree(tar: bytes) -> bytes:
    """Re-root the archive under ``WORKDIR`` (put_archive needs the target folder to exist)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(tar)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for part in ("tmp", WORKDIR.lstrip("/")):
            info = tarfile.TarInfo(part)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if part == "tmp" else 0o755
            dst.addfile(info)
        for member in src.getmembers():
            member.name = f"{WORKDIR.lstrip('/')}/{member.name}"
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return out.getvalue()


__all__ = ["WORKDIR", "ContainerMigrations", "payload", "upgrade_in_container"]
