"""Alembic migrations against a real PostgreSQL (a fresh database per test) and SQLite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from nexusify.credentials import Secret
from nexusify.deploy.migrations.local import (
    MigrationResult,
    advisory_lock_key,
    migration_status,
    offline_sql,
    upgrade,
)
from nexusify.errors import DeployError
from tests.conftest import FIXTURES, REPO
from tests.helpers import free_port

APP = FIXTURES / "deploy" / "alembic-app" / "alembic.ini"
FAILING = FIXTURES / "deploy" / "alembic-app-failing" / "alembic.ini"

pytestmark = pytest.mark.stack


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _scalar(url: str, sql: str) -> object:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def test_upgrade_applies_pending_once_and_reports_before_after(pg_database: str) -> None:
    status = migration_status("api", APP, Secret(pg_database))
    assert (status.current, status.head, status.pending) == (None, "0002", ("0001", "0002"))
    assert not status.up_to_date
    assert "DATABASE_URL" not in os.environ or os.environ["DATABASE_URL"] != pg_database

    result = upgrade("api", APP, Secret(pg_database))
    assert (result.before, result.after, result.applied) == (None, "0002", ("0001", "0002"))
    assert result.to_dict()["applied"] == ["0001", "0002"]
    assert {"items", "upgrade_runs", "alembic_version"} <= _tables(pg_database)
    # $DATABASE_URL was only set while Alembic ran
    assert os.environ.get("DATABASE_URL") != pg_database

    again = upgrade("api", APP, pg_database)
    assert (again.before, again.after, again.applied) == ("0002", "0002", ())
    assert migration_status("api", APP, pg_database).up_to_date
    assert _scalar(pg_database, "SELECT count(*) FROM upgrade_runs") == 1


_MIGRATE = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    from nexusify.deploy.migrations.local import upgrade
    waits = []
    r = upgrade("api", Path(sys.argv[1]), sys.argv[2], on_wait=waits.append)
    print(json.dumps({**r.to_dict(), "wait_messages": waits}))
""")


@pytest.mark.slow
def test_concurrent_migrators_are_serialised_and_migrate_once(pg_database: str) -> None:
    env = {**os.environ, "ALEMBIC_APP_SLEEP": "2", "PYTHONPATH": str(REPO / "src")}
    procs = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE, str(APP), pg_database], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    results.sort(key=lambda r: len(r["applied"]), reverse=True)
    first, second = results
    assert first["applied"] == ["0001", "0002"] and first["before"] is None
    # the second waited for the advisory lock, then found the database at head
    assert second["applied"] == [] and second["before"] == "0002" and second["after"] == "0002"
    assert second["waited"] > 0.5
    assert len(second["wait_messages"]) == 1 and "nexusify migrate api" in second["wait_messages"][0]
    assert _scalar(pg_database, "SELECT count(*) FROM upgrade_runs") == 1


def test_lock_timeout_names_the_holder(pg_database: str) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(pg_database)
    holder = psycopg2.connect(host=u.host, port=u.port, user=u.username, dbname=u.database,
                              application_name="someone-else-migrating")
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (advisory_lock_key(pg_database),))
        messages: list[str] = []
        with pytest.raises(DeployError, match="another migrator holds the database's migration lock: someone-else-migrating"):
            upgrade("api", APP, pg_database, lock_timeout=0.5, on_wait=messages.append)
        assert len(messages) == 1 and "someone-else-migrating" in messages[0]
        assert "alembic_version" not in _tables(pg_database)
    finally:
        holder.close()
    # released with its session: the next migrator goes straight through
    assert upgrade("api", APP, pg_database, lock_timeout=5).after == "0002"


def test_offline_sql_does_not_touch_the_database(pg_database: str) -> None:
    # a URL nobody listens on: offline mode never connects
    sql = offline_sql("api", APP, Secret(f"postgresql://app:pw-offline@127.0.0.1:{free_port()}/nothing"))
    assert "CREATE TABLE items" in sql and "ALTER TABLE items ADD COLUMN price INTEGER" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    assert "pw-offline" not in sql

    sql = offline_sql("api", APP, pg_database)
    assert "CREATE TABLE items" in sql
    assert _tables(pg_database) == set()

    upgrade_to_first = offline_sql("api", APP, pg_database, from_revision="0001")
    assert "CREATE TABLE items" not in upgrade_to_first and "ADD COLUMN price" in upgrade_to_first
    assert "nothing to run" in offline_sql("api", APP, pg_database, from_revision="0002")


def test_failing_migration_names_the_revision_and_leaves_the_database(pg_database: str) -> None:
    secret_url = pg_database.replace("postgres@", "postgres:pw-never-shown@")
    with pytest.raises(DeployError) as info:
        upgrade("api", FAILING, Secret(secret_url))
    err = info.value
    assert "service `api`: migration 0002 (backfill prices (broken: the table name is wrong)) failed" in err.message
    assert 'relation "no_such_table" does not exist' in err.message
    assert err.path is not None and err.path.endswith("0002_broken.py")
    # PostgreSQL runs the whole upgrade in one transaction: nothing is half applied
    assert "at revision base (empty)" in (err.hint or "")
    assert "alembic_version" not in _tables(pg_database) or _scalar(pg_database, "SELECT count(*) FROM alembic_version") == 0
    assert "pw-never-shown" not in str(err)


def test_database_ahead_of_the_scripts_is_never_downgraded(pg_database: str, tmp_path: Path) -> None:
    upgrade("api", APP, pg_database)
    older = tmp_path / "older"
    shutil.copytree(APP.parent, older)
    (older / "migrations" / "versions" / "0002_add_price.py").unlink()
    with pytest.raises(DeployError, match="database is at revision 0002, which these migration scripts do not know") as info:
        upgrade("api", older / "alembic.ini", pg_database)
    assert "never downgrades" in (info.value.hint or "")
    assert _scalar(pg_database, "SELECT version_num FROM alembic_version") == "0002"


def test_unreachable_database_hides_the_password() -> None:
    url = f"postgresql://app:pw-unreachable@127.0.0.1:{free_port()}/app"
    with pytest.raises(DeployError, match="cannot connect to the database") as info:
        upgrade("api", APP, Secret(url))
    assert "pw-unreachable" not in str(info.value)


def test_sqlite_needs_no_lock_and_relative_script_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "svc"
    shutil.copytree(APP.parent, app)
    ini = app / "alembic.ini"
    ini.write_text(ini.read_text().replace("%(here)s/migrations", "migrations"))
    monkeypatch.chdir(tmp_path)  # not the ini's folder: the relative location is resolved beside the ini
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = upgrade("api", ini, url)
    assert isinstance(result, MigrationResult) and result.applied == ("0001", "0002") and result.waited == 0.0
    assert migration_status("api", ini, url).current == "0002"


def test_missing_alembic_ini_and_postgres_url_forms(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="migrations file not found"):
        migration_status("api", tmp_path / "alembic.ini", "sqlite://")
    a = advisory_lock_key("postgresql://u:p@db:5432/app")
    assert a == advisory_lock_key(Secret("postgres://other:creds@db/app"))  # same database, same key
    assert a != advisory_lock_key("postgresql://u:p@db:5432/other")
    assert -(2**63) <= a < 2**63
