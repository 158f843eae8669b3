"""The one migration runner: ``alembic upgrade heads`` under a PostgreSQL advisory lock, waited
for at most ``lock_timeout`` seconds, naming who holds it, and naming the revision that failed.

It runs in two places with the same code: imported by :mod:`~nexusify.deploy.migrations.local` on the
deploying machine, and, for environments with hosts, shipped as this file's source into a one-off
container of the new image (:mod:`~nexusify.deploy.migrations.container`), where :func:`main` prints one
:data:`MARKER` line of JSON: the result, or what failed. So this module imports only the standard
library, alembic and SQLAlchemy (what the image has), never nexusify.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

MARKER = "NEXUSIFY-MIGRATION "
LOCK_TIMEOUT = 600.0
#: exit code of :func:`main` when it reports a failure (the JSON line says which)
FAILED_EXIT = 3


class MigrationProblem(Exception):
    """What went wrong, as data (``kind`` and its fields): the same on both sides of a container."""

    def __init__(self, kind: str, **fields: Any) -> None:
        super().__init__(kind)
        self.kind = kind
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "kind": self.kind, **self.fields}


def holder(conn: Any, key: int) -> str:
    """Who holds the advisory lock ``key`` (application name, backend pid, since when)."""
    import sqlalchemy as sa

    u = key & 0xFFFFFFFFFFFFFFFF
    try:
        row = conn.execute(sa.text(
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = :c AND l.objid = :o AND l.objsubid = 1"), {"c": u >> 32, "o": u & 0xFFFFFFFF}).first()
    except Exception:  # pg_stat_activity hidden from this role: the lock still works
        return "another migrator"
    if row is None:
        return "another migrator"
    return f"{row[1] or 'a session'} (backend pid {row[0]}, connected since {row[3]:%Y-%m-%d %H:%M:%S})"


def acquire(conn: Any, key: int, lock_timeout: float, on_wait: Callable[[str], None] | None = None) -> float:
    """Poll ``pg_try_advisory_lock(key)`` until it is ours (the seconds waited), telling ``on_wait``
    once who holds it; MigrationProblem("lock") after ``lock_timeout`` seconds."""
    import sqlalchemy as sa

    start = time.monotonic()
    told = False
    while True:
        if conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            return time.monotonic() - start
        who = holder(conn, key)
        if not told and on_wait is not None:
            on_wait(f"waiting for {who} to finish migrating this database")
            told = True
        if time.monotonic() - start >= lock_timeout:
            raise MigrationProblem("lock", holder=who, waited=lock_timeout, key=key)
        time.sleep(0.2)


def current(conn: Any) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(conn).get_current_heads())


def pending(script: Any, at: tuple[str, ...]) -> tuple[str, ...]:
    """The revisions ``upgrade heads`` applies, oldest first; MigrationProblem("unknown") when the
    database is at a revision the scripts do not know (nexusify never downgrades)."""
    known = {r.revision for r in script.walk_revisions()}
    unknown = [r for r in at if r not in known]
    if unknown:
        raise MigrationProblem("unknown", revisions=unknown)
    revs = list(script.iterate_revisions("heads", list(at) or "base"))
    return tuple(r.revision for r in reversed(revs))


def failed_revision(exc: BaseException, script: Any) -> str | None:
    """The revision whose script raised, from the traceback's frames (innermost wins)."""
    paths = {os.path.realpath(r.path): r.revision for r in script.walk_revisions() if r.path}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        rev = paths.get(os.path.realpath(frame.f_code.co_filename))
        if rev:
            found = rev
    return found


def upgrade(cfg: Any, script: Any, conn: Any, key: int | None, *, lock_timeout: float = LOCK_TIMEOUT,
            on_wait: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Upgrade to heads on ``conn`` (AUTOCOMMIT), under the advisory lock ``key`` (None: no lock,
    e.g. SQLite). Returns {before, after, applied, waited}; MigrationProblem on failure."""
    import sqlalchemy as sa
    from alembic import command

    waited = 0.0
    locked = False
    try:
        if key is not None:
            waited = acquire(conn, key, lock_timeout, on_wait)
            locked = True
        before = current(conn)
        todo = pending(script, before)
        if todo:
            try:
                command.upgrade(cfg, "heads")
            except Exception as exc:
                rev = failed_revision(exc, script)
                r = script.get_revision(rev) if rev else None
                at = ",".join(sorted(current(conn))) if not conn.closed else None
                raise MigrationProblem("failed", revision=rev, doc=(r.doc if r is not None else None) or None,
                                       path=(r.path if r is not None else None), pending=list(todo),
                                       error=f"{type(exc).__name__}: {exc}", at=at) from exc
        after = current(conn)
    finally:
        if locked:
            with contextlib.suppress(Exception):  # the session ends with the connection anyway
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    return {"ok": True, "before": list(before), "after": list(after), "applied": list(todo), "waited": waited}


def lock_key(url: str) -> int:
    """Signed 64-bit key for ``pg_advisory_lock``, derived from the URL's host, port and database
    name (never its password): every migrator of one database takes the same lock."""
    import hashlib

    from sqlalchemy.engine import make_url

    u = make_url(url)
    ident = f"nexusify:migrate:{u.host or ''}:{u.port or 5432}:{u.database or ''}"
    return int.from_bytes(hashlib.blake2b(ident.encode(), digest_size=8).digest(), "big", signed=True)


def main(argv: list[str]) -> int:
    """In a container: ``python3 -c SOURCE alembic.ini KEY|- SCRIPT_LOCATION LOCK_TIMEOUT``, the
    database URL in ``$DATABASE_URL``; prints one MARKER line (the result, or the problem)."""
    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    url = os.environ["DATABASE_URL"]
    # KEY "-": derived here from $DATABASE_URL (a Kubernetes Job's manifest never sees the URL)
    ini, key, location, lock_timeout = argv[0], lock_key(url) if argv[1] == "-" else int(argv[1]), argv[2], float(argv[3])
    cfg = Config(ini)
    cfg.set_main_option("script_location", location)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    script = ScriptDirectory.from_config(cfg)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            pg = engine.dialect.name == "postgresql"
            out = upgrade(cfg, script, conn, key if pg else None, lock_timeout=lock_timeout,
                          on_wait=lambda m: print(MARKER + json.dumps({"ok": None, "waiting": m}), flush=True))
    except MigrationProblem as problem:
        print(MARKER + json.dumps(problem.to_dict(), default=str), flush=True)
        return FAILED_EXIT
    finally:
        engine.dispose()
    print(MARKER + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
