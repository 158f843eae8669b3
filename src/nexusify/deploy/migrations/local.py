"""Alembic migrations per service: ``upgrade heads`` under a PostgreSQL advisory lock.

- The database URL is passed in memory, never written to a file: as the ``sqlalchemy.url``
  main option of an in-memory :class:`alembic.config.Config`, as
  ``config.attributes["database_url"]``, and as ``$DATABASE_URL`` while Alembic runs (restored
  afterwards). A stock ``env.py`` (``engine_from_config``/``get_main_option``) works unchanged.
- ``config.attributes["configure_logger"]`` is False: an ``env.py`` following Alembic's cookbook
  skips ``fileConfig`` so nexusify's logging survives.
- On PostgreSQL the run holds ``pg_advisory_lock(key)`` on its own connection, the key derived
  from host, port and database name: one migrator per database at a time. A second migrator
  waits, then finds the database at head and applies nothing. The lock is a session lock, so a
  killed deploy releases it with its connection. Other databases (SQLite) need no lock.
- Never downgrades: a database at a revision the scripts do not know is an error.
- Alembic keeps its migration context in module globals, so runs inside one process are
  serialised by a process-wide lock (processes are serialised by the advisory lock).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexusify.credentials import Secret, redact
from nexusify.deploy.migrations import core
from nexusify.errors import DeployError
from nexusify.extras import require

_PROCESS_LOCK = threading.RLock()
URL_ENV = "DATABASE_URL"


@dataclass(frozen=True)
class MigrationStatus:
    """Where a service's database is compared with its migration scripts."""

    service: str
    current: str | None  # revision(s) in the database, comma-joined when several heads; None = empty
    head: str | None  # head revision(s) of the scripts
    pending: tuple[str, ...]  # revisions ``upgrade head`` would apply, oldest first

    @property
    def up_to_date(self) -> bool:
        return not self.pending

    def to_dict(self) -> dict[str, object]:
        return {"service": self.service, "current": self.current, "head": self.head, "pending": list(self.pending)}


@dataclass(frozen=True)
class MigrationResult:
    service: str
    before: str | None
    after: str | None
    applied: tuple[str, ...]
    duration: float
    waited: float = 0.0  # seconds spent waiting for another migrator's lock

    def to_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "before": self.before,
            "after": self.after,
            "applied": list(self.applied),
            "duration": round(self.duration, 3),
            "waited": round(self.waited, 3),
        }


def _reveal(url: Secret | str) -> str:
    """The URL as SQLAlchemy needs it: ``postgres://`` (Heroku style) becomes ``postgresql://``,
    and a driverless PostgreSQL URL names psycopg2 when only psycopg2 is installed (SQLAlchemy
    2.1 defaults to psycopg 3)."""
    import importlib.util

    raw = url.reveal() if isinstance(url, Secret) else url
    scheme, sep, rest = raw.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        scheme = "postgresql"
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            scheme = "postgresql+psycopg2"
        return f"{scheme}://{rest}"
    return raw


def _password(url: str) -> str | None:
    make_url = require("deploy", "sqlalchemy.engine").make_url

    try:
        password = make_url(url).password
        return None if password is None else str(password)
    except Exception:
        return None


def _clean(text: str, url: str) -> str:
    """An error text without the URL's password or the whole URL; first lines only."""
    text = redact(text.replace(url, "<database-url>"), _password(url))
    lines = [ln for ln in text.splitlines() if ln.strip() and "sqlalche.me" not in ln]
    return "\n".join(lines[:6])


def advisory_lock_key(database_url: Secret | str) -> int:
    """Signed 64-bit key for ``pg_advisory_lock``, derived from host, port and database name."""
    require("deploy", "sqlalchemy.engine")
    return core.lock_key(_reveal(database_url))


def _config(service: str, alembic_ini: Path, url: str, buffer: io.StringIO | None = None) -> Any:
    Config = require("deploy", "alembic.config").Config

    ini = Path(alembic_ini)
    if not ini.is_file():
        raise DeployError(f"service `{service}`: migrations file not found: {ini}",
                          hint="`migrations` must point at the service's alembic.ini")
    out = buffer if buffer is not None else io.StringIO()
    try:
        if ini.suffix == ".toml":
            cfg = Config(toml_file=str(ini), output_buffer=out, stdout=out)
        else:
            cfg = Config(str(ini), output_buffer=out, stdout=out)
        location = cfg.get_alembic_option("script_location")
    except Exception as exc:
        raise DeployError(f"service `{service}`: cannot read {ini}: {exc}", path=ini) from None
    if location is None:
        raise DeployError(f"service `{service}`: {ini} has no script_location", path=ini,
                          hint="add script_location = %(here)s/migrations under [alembic]")
    if ":" not in location and not Path(location).is_absolute():
        # Alembic resolves a relative script_location against the working directory; the
        # ini file's own folder is what the user meant when running from the monorepo root.
        beside = ini.parent / location
        if beside.is_dir():
            cfg.set_main_option("script_location", str(beside))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    cfg.attributes["nexusify_service"] = service
    return cfg


def script_location(service: str, alembic_ini: Path) -> str:
    """Where the migration scripts of ``alembic_ini`` are, as Alembic will resolve them here: an
    absolute folder, or a ``package:folder`` resource (no database is touched)."""
    return str(_config(service, alembic_ini, "sqlite://").get_main_option("script_location"))


def _script(service: str, cfg: Any) -> Any:
    ScriptDirectory = require("deploy", "alembic.script").ScriptDirectory

    try:
        return ScriptDirectory.from_config(cfg)
    except Exception as exc:
        raise DeployError(f"service `{service}`: cannot load the migration scripts: {exc}",
                          path=cfg.config_file_name) from None


@contextlib.contextmanager
def _alembic_env(url: str) -> Iterator[None]:
    """Hold the process lock and expose the URL as $DATABASE_URL while Alembic runs."""
    with _PROCESS_LOCK:
        old = os.environ.get(URL_ENV)
        os.environ[URL_ENV] = url
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(URL_ENV, None)
            else:
                os.environ[URL_ENV] = old


def _join(revs: tuple[str, ...] | list[str]) -> str | None:
    return ",".join(sorted(revs)) if revs else None


def _pending(service: str, script: Any, current: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return core.pending(script, current)
    except core.MigrationProblem as problem:
        raise explain(service, problem.to_dict(), script) from None
    except Exception as exc:
        raise DeployError(f"service `{service}`: cannot plan the upgrade: {exc}") from None


def explain(service: str, problem: dict[str, Any], script: Any, clean: Callable[[str], str] = lambda s: s,
            where: str = "") -> DeployError:
    """The DeployError for what the runner reported (:class:`~nexusify.deploy.migrations.core.MigrationProblem`),
    here or from a container (``where``: " on HOST"): one wording for both. ``script``: the local
    scripts, to name the failing revision's file and doc."""
    kind = problem.get("kind")
    if kind == "lock":
        return DeployError(
            f"service `{service}`: another migrator holds the database's migration lock{where}: {problem.get('holder')}",
            hint=f"waited {float(problem.get('waited') or 0):g}s; let it finish and deploy again "
            f"(pg_advisory_lock key {problem.get('key')})")
    if kind == "unknown":
        return DeployError(
            f"service `{service}`: the database is at revision {', '.join(problem.get('revisions') or [])}, "
            "which these migration scripts do not know",
            hint="the database is ahead of this code (a newer deploy migrated it); nexusify never downgrades: "
            "deploy a version that contains that revision, or downgrade by hand with alembic")
    rev = problem.get("revision")
    what = f"migration {rev}" if rev else f"one of the migrations {', '.join(problem.get('pending') or [])}"
    r = script.get_revision(rev) if rev else None
    doc = f" ({r.doc})" if r is not None and r.doc else ""
    return DeployError(
        f"service `{service}`: {what}{doc} failed{where}: {clean(str(problem.get('error') or kind))}",
        hint=f"the database is at revision {problem.get('at') or 'base (empty)'}; fix the migration and deploy again "
        "(nothing was built or switched)",
        path=_rev_path(script, rev),
    )


def scripts(service: str, alembic_ini: Path) -> Any:
    """The migration scripts of ``alembic_ini`` (an Alembic ScriptDirectory; no database touched)."""
    return _script(service, _config(service, alembic_ini, "sqlite://"))


def _engine(url: str, service: str) -> Any:
    create_engine = require("deploy", "sqlalchemy").create_engine
    NullPool = require("deploy", "sqlalchemy.pool").NullPool

    kwargs: dict[str, Any] = {"poolclass": NullPool}
    if url.startswith(("postgresql", "postgres")):
        kwargs["connect_args"] = {"application_name": f"nexusify migrate {service}"[:63]}
    try:
        return create_engine(url, **kwargs)
    except Exception as exc:
        raise DeployError(f"service `{service}`: invalid database URL: {_clean(str(exc), url)}",
                          hint="check the database-url secret (a SQLAlchemy URL)") from None


def _current(conn: Any) -> tuple[str, ...]:
    MigrationContext = require("deploy", "alembic.runtime.migration").MigrationContext

    return tuple(MigrationContext.configure(conn).get_current_heads())


def _connect(engine: Any, service: str, url: str) -> Any:
    try:
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except Exception as exc:
        raise DeployError(f"service `{service}`: cannot connect to the database: {_clean(str(exc), url)}",
                          hint="check the database-url secret and that the database is reachable") from None


def migration_status(service: str, alembic_ini: Path, database_url: Secret | str) -> MigrationStatus:
    """Read the database's current revision (read-only) and the scripts' head."""
    url = _reveal(database_url)
    cfg = _config(service, alembic_ini, url)
    script = _script(service, cfg)
    engine = _engine(url, service)
    try:
        conn = _connect(engine, service, url)
        try:
            current = _current(conn)
        finally:
            conn.close()
    finally:
        engine.dispose()
    pending = _pending(service, script, current)
    return MigrationStatus(service, _join(current), _join(list(script.get_heads())), pending)


def upgrade(
    service: str,
    alembic_ini: Path,
    database_url: Secret | str,
    *,
    lock_timeout: float = 600.0,
    on_wait: Callable[[str], None] | None = None,
) -> MigrationResult:
    """``alembic upgrade heads`` under the advisory lock; DeployError naming the failing revision.

    A second migrator waits for the lock, then finds the database at head and applies nothing.
    ``on_wait`` is called once with a message when the lock is held by someone else.
    """
    require("deploy", "alembic.command")  # the runner imports alembic itself: name the extra when missing
    url = _reveal(database_url)
    cfg = _config(service, alembic_ini, url)
    script = _script(service, cfg)
    engine = _engine(url, service)
    started = time.monotonic()
    try:
        conn = _connect(engine, service, url)
        key = advisory_lock_key(url) if engine.dialect.name == "postgresql" else None
        try:
            with _alembic_env(url):
                out = core.upgrade(cfg, script, conn, key, lock_timeout=lock_timeout,
                                   on_wait=(lambda m: on_wait(f"service `{service}`: {m}")) if on_wait else None)
        except core.MigrationProblem as problem:
            raise explain(service, problem.to_dict(), script, lambda t: _clean(t, url)) from None
        finally:
            conn.close()
    finally:
        engine.dispose()
    return MigrationResult(service, _join(out["before"]), _join(out["after"]), tuple(out["applied"]),
                           time.monotonic() - started, float(out["waited"]))


class LocalMigrations:
    """The :class:`~nexusify.deploy.protocols.MigrationRunner` of the deploying machine: Alembic in
    this process, from the working copy's migrations (before the build)."""

    def __init__(self, on_wait: Callable[[str, str], None] | None = None, lock_timeout: float = 600.0) -> None:
        self.on_wait = on_wait  # (service, message)
        self.lock_timeout = lock_timeout

    def run(self, service: Any, image: Any, url: Secret, env: Mapping[str, str]) -> MigrationResult:
        assert service.migrations is not None
        on_wait = self.on_wait
        return upgrade(service.name, service.migrations, url, lock_timeout=self.lock_timeout,
                       on_wait=(lambda m: on_wait(service.name, m)) if on_wait is not None else None)


def _rev_path(script: Any, rev: str | None) -> str | None:
    if rev is None:
        return None
    r = script.get_revision(rev)
    return str(r.path) if r is not None and r.path else None


def offline_sql(
    service: str,
    alembic_ini: Path,
    database_url: Secret | str,
    *,
    from_revision: str | None = None,
) -> str:
    """The SQL ``upgrade head`` would run (Alembic offline mode), without connecting to the database.

    ``from_revision`` (e.g. ``migration_status(...).current``) limits it to pending revisions;
    several heads are given comma-joined. Up to date: an SQL comment saying so.
    """
    command = require("deploy", "alembic.command")

    url = _reveal(database_url)
    buffer = io.StringIO()
    cfg = _config(service, alembic_ini, url, buffer)
    script = _script(service, cfg)
    heads = set(script.get_heads())
    start = [r for r in (from_revision or "").split(",") if r]
    if start and set(start) == heads:
        return f"-- {service}: database is at head ({', '.join(sorted(heads))}); nothing to run\n"
    if len(start) > 1:
        raise DeployError(f"service `{service}`: offline SQL from several revisions ({from_revision}) is not supported",
                          hint="merge the branches (alembic merge) or run the dry run against each head")
    target = f"{start[0]}:heads" if start else "heads"
    try:
        with _alembic_env(url):
            command.upgrade(cfg, target, sql=True)
    except Exception as exc:
        raise DeployError(f"service `{service}`: cannot render the migration SQL offline: {type(exc).__name__}: "
                          f"{_clean(str(exc), url)}",
                          hint="the service's env.py must support offline mode (context.is_offline_mode())") from None
    return buffer.getvalue()


__all__ = [
    "LocalMigrations",
    "MigrationResult",
    "MigrationStatus",
    "advisory_lock_key",
    "explain",
    "migration_status",
    "offline_sql",
    "script_location",
    "scripts",
    "upgrade",
]
