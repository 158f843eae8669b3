"""Alembic migrations per service, under a PostgreSQL advisory lock. INTERFACE (in progress).

Never downgrades. The database URL is passed in memory (never written to a file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nexusify.credentials import Secret


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


@dataclass(frozen=True)
class MigrationResult:
    service: str
    before: str | None
    after: str | None
    applied: tuple[str, ...]
    duration: float
    waited: float = 0.0  # seconds spent waiting for another migrator's lock

    def to_dict(self) -> dict[str, object]:
        raise NotImplementedError


def advisory_lock_key(database_url: Secret | str) -> int:
    """Signed 64-bit key for ``pg_advisory_lock``, derived from host, port and database name."""
    raise NotImplementedError


def migration_status(service: str, alembic_ini: Path, database_url: Secret | str) -> MigrationStatus:
    """Read the database's current revision (read-only) and the scripts' head."""
    raise NotImplementedError


def upgrade(
    service: str,
    alembic_ini: Path,
    database_url: Secret | str,
    *,
    lock_timeout: float = 600.0,
    on_wait: Callable[[str], None] | None = None,
) -> MigrationResult:
    """``alembic upgrade head`` under the advisory lock; DeployError naming the failing revision.

    A second migrator waits for the lock, then finds the database at head and applies nothing.
    ``on_wait`` is called once with a message when the lock is held by someone else.
    """
    raise NotImplementedError


def offline_sql(
    service: str,
    alembic_ini: Path,
    database_url: Secret | str,
    *,
    from_revision: str | None = None,
) -> str:
    """The SQL ``upgrade head`` would run (Alembic offline mode), without connecting to the database.

    ``from_revision`` (e.g. ``migration_status(...).current``) limits it to pending revisions.
    """
    raise NotImplementedError
