"""The deploy table: defaults, merging per-environment overrides, and errors with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nexusify.config import resolve_settings
from nexusify.deploy.config.load import (
    AwsSecretsConfig,
    DeployConfig,
    EnvFileSecretsConfig,
    EnvVar,
    load_deploy_config,
    locate,
)
from nexusify.errors import ConfigError, ConfigErrors


def _project(tmp_path: Path, toml: str, *, pyproject: bool = False) -> Path:
    root = tmp_path / "repo"
    for svc in ("api", "worker"):
        (root / "services" / svc).mkdir(parents=True)
        (root / "services" / svc / "Dockerfile").write_text("FROM scratch\n")
    (root / "services" / "api" / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    body = textwrap.dedent(toml)
    if pyproject:
        body = body.replace("[deploy", "[tool.nexusify.deploy")
        (root / "pyproject.toml").write_text('[project]\nname = "mono"\nversion = "0"\n\n' + body)
    else:
        (root / "nexusify.toml").write_text(body)
    return root


def _load(root: Path, env: dict[str, str] | None = None) -> DeployConfig:
    settings = resolve_settings(root, env={})
    return load_deploy_config(settings, env=env or {})


GOOD = """\
[deploy]
registry = "127.0.0.1:5000/team"
keep = 5

[deploy.environments.production]
lock-wait = 30

[deploy.environments.production.secrets]
provider = "aws"
secret-ids = ["app/production", "app/shared"]
region = "eu-west-1"
endpoint-url = "http://127.0.0.1:4566"

[deploy.environments.production.proxy]
listen = "127.0.0.1:8080"

[deploy.environments.production.services.api]
route = "/api"

[deploy.environments.local.secrets]
provider = "env-file"
path = ".env.local"

[deploy.services.api]
folder = "services/api"
container-port = 8000
public-port = 18000
migrations = "services/api/alembic.ini"
database-url = "secret:DATABASE_URL"
env = { DATABASE_URL = "secret:DATABASE_URL", LOG_LEVEL = "info", WORKERS = 2, DEBUG = false }

[deploy.services.worker]
folder = "services/worker"
container-port = 9000
public-port = 18001
health-path = "/ready"
health-timeout = 10
env = ["API_KEY"]
"""


@pytest.mark.parametrize("pyproject", [False, True], ids=["nexusify.toml", "pyproject"])
def test_full_config_is_read_with_defaults_and_overrides(tmp_path: Path, pyproject: bool) -> None:
    root = _project(tmp_path, GOOD, pyproject=pyproject)
    cfg = _load(root, env={"DOCKER_HOST": "unix:///run/podman.sock"})
    assert cfg.engine == "unix:///run/podman.sock"
    assert cfg.registry == "127.0.0.1:5000/team"
    assert (cfg.keep, cfg.lock_wait) == (5, 0.0)
    prod = cfg.environment("production")
    assert prod.lock_wait == 30.0 and prod.keep == 5
    assert prod.secrets == AwsSecretsConfig(("app/production", "app/shared"), "eu-west-1", "http://127.0.0.1:4566")
    assert prod.proxy is not None and (prod.proxy.listen_host, prod.proxy.listen_port) == ("127.0.0.1", 8080)
    assert prod.proxy.conf_dir == root.resolve() / ".nexusify" / "deploy" / "production" / "nginx"
    api = prod.services["api"]
    # the override's route replaces the base public-port
    assert (api.route, api.public_port) == ("/api", None)
    assert cfg.services["api"].public_port == 18000
    assert api.migrations == root.resolve() / "services/api/alembic.ini"
    assert api.database_secret == "DATABASE_URL"
    assert api.env == (
        EnvVar("DATABASE_URL", secret="DATABASE_URL"),
        EnvVar("LOG_LEVEL", value="info"),
        EnvVar("WORKERS", value="2"),
        EnvVar("DEBUG", value="false"),
    )
    assert api.secret_names == ("DATABASE_URL",)
    worker = prod.services["worker"]
    assert (worker.health_path, worker.health_timeout, worker.health_interval) == ("/ready", 10.0, 0.5)
    assert worker.env == (EnvVar("API_KEY", secret="API_KEY"),)
    local = cfg.environment("local")
    assert local.secrets == EnvFileSecretsConfig(root.resolve() / ".env.local")
    assert local.proxy is None and local.services["api"].public_port == 18000
    assert [s.name for s in cfg.select_services("production", ["worker"])] == ["worker"]


def test_engine_defaults_to_docker_host_and_then_none(tmp_path: Path) -> None:
    root = _project(tmp_path, GOOD)
    assert _load(root).engine is None
    text = GOOD.replace('registry = "127.0.0.1:5000/team"', 'engine = "tcp://127.0.0.1:2375"')
    root2 = _project(tmp_path / "b", text)
    assert _load(root2, env={"DOCKER_HOST": "unix:///x"}).engine == "tcp://127.0.0.1:2375"


def test_all_problems_reported_together_with_file_line_and_did_you_mean(tmp_path: Path) -> None:
    root = _project(tmp_path, """\
        [deploy]
        kep = 3
        engine = "/var/run/docker.sock"
        lock-wait = -1

        [deploy.environments.prod.secrets]
        provider = "aws-secrets"

        [deploy.environments.prod.proxy]
        listen = 8080

        [deploy.services.api]
        folder = "services/api"
        container-port = 80000
        helth-path = "/health"
        public-port = 18000
        database-url = "postgresql://app:hunter2-secret@db/app"

        [deploy.services.worker]
        container-port = 9000
        route = "worker"
        """)
    with pytest.raises(ConfigErrors) as info:
        _load(root)
    errors = {e.message: e for e in info.value.errors}
    text = str(info.value)
    path = str(root / "nexusify.toml")

    def find(fragment: str) -> ConfigError:
        hits = [e for m, e in errors.items() if fragment in m]
        assert hits, f"no error mentions {fragment!r}:\n{text}"
        return hits[0]

    kep = find("deploy.kep")
    assert "did you mean `keep`?" in kep.message and (kep.path, kep.line) == (path, 2)
    assert find("deploy.lock-wait").line == 4
    assert find("deploy.engine").line == 3
    provider = find("deploy.environments.prod.secrets.provider")
    assert "did you mean `aws`?" in provider.message and provider.line == 7
    port = find("deploy.services.api.container-port")
    assert "1-65535" in port.message and port.line == 14
    helth = find("deploy.services.api.helth-path")
    assert "did you mean `health-path`?" in helth.message and helth.line == 15
    db = find("deploy.services.api.database-url")
    assert db.line == 17 and "secret:DATABASE_URL" in (db.hint or "")
    assert find("deploy.services.worker.folder").message.endswith("is required")
    assert find("deploy.services.worker.route").line == 21
    # the password in the rejected URL is never echoed
    assert "hunter2-secret" not in text


def test_environment_service_consistency(tmp_path: Path) -> None:
    root = _project(tmp_path, """\
        [deploy.environments.staging.proxy]
        listen = 8080

        [deploy.environments.bare]

        [deploy.services.api]
        folder = "services/api"
        container-port = 8000
        public-port = 8080

        [deploy.services.worker]
        folder = "services/worker"
        container-port = 8000
        route = "/w"

        [deploy.environments.staging.services.wokrer]
        route = "/x"
        """)
    with pytest.raises(ConfigErrors) as info:
        _load(root)
    text = str(info.value)
    assert "public-port 8080 is the proxy's listen port in environment `staging`" in text
    assert "has a `route` but environment `bare` has no proxy" in text
    assert "needs `public-port` for environment `bare`" in text
    assert "did you mean `worker`?" in text


def test_duplicate_ports_and_missing_files(tmp_path: Path) -> None:
    root = _project(tmp_path, """\
        [deploy.environments.local]

        [deploy.services.api]
        folder = "services/api"
        container-port = 8000
        public-port = 18000
        migrations = "services/api/nope.ini"
        dockerfile = "Containerfile"

        [deploy.services.worker]
        folder = "services/worker"
        container-port = 8000
        public-port = 18000
        """)
    with pytest.raises(ConfigErrors) as info:
        _load(root)
    text = str(info.value)
    assert "public-port 18000 is also used by `api`" in text
    assert "no such file: services/api/nope.ini" in text
    assert "no Containerfile in" in text
    assert "needs `database-url`" in text
    assert f"{root / 'nexusify.toml'}:7:" in text


def test_unknown_environment_and_service_suggest(tmp_path: Path) -> None:
    cfg = _load(_project(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="unknown environment `prodution`; did you mean `production`"):
        cfg.environment("prodution")
    with pytest.raises(ConfigError, match="unknown service `wroker`; did you mean `worker`"):
        cfg.select_services("production", ["wroker"])


def test_no_deploy_table_gives_an_empty_config_and_a_clear_error_on_use(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    cfg = _load(root)
    assert cfg.environments == {} and cfg.services == {}
    with pytest.raises(ConfigError, match="no deploy environments are configured") as info:
        cfg.environment("production")
    assert "[deploy.environments.production]" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "parts", "line"),
    [
        pytest.param("[a]\nb = 1\n[a.c]\nd = 2\n", ["a", "c", "d"], 4, id="table"),
        pytest.param("[a]\nc.d = 2\n", ["a", "c", "d"], 2, id="dotted"),
        pytest.param("[a]\nx = 1\nc = { e = 1, d = 2 }\n", ["a", "c", "d"], 3, id="inline"),
        pytest.param('[a."c"]\nd = 2\n', ["a", "c", "d"], 2, id="quoted-header"),
        pytest.param("[a.c]\nz = 2\n", ["a", "c", "d"], 1, id="falls-back-to-table"),
        pytest.param("[b]\nd = 2\n", ["a", "c", "d"], None, id="absent"),
    ],
)
def test_locate(text: str, parts: list[str], line: int | None) -> None:
    assert locate(text, parts) == line


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    import nexusify.deploy.config.load as module

    doc = module.__doc__ or ""
    example = doc.split("Example (")[1].split("::\n\n", 1)[1].split("\nTop-level keys")[0]
    example = textwrap.dedent(example)
    assert "[deploy.services.gateway]" in example
    root = tmp_path / "repo"
    (root / "services" / "gateway").mkdir(parents=True)
    (root / "services" / "gateway" / "Dockerfile").write_text("FROM scratch\n")
    (root / "services" / "gateway" / "alembic.ini").write_text("[alembic]\n")
    (root / "nexusify.toml").write_text(example)
    cfg = _load(root)
    assert set(cfg.environments) == {"production", "local"}
    gateway = cfg.environment("production").services["gateway"]
    assert (gateway.route, gateway.public_port) == ("/", None)
    assert cfg.environment("local").services["gateway"].public_port == 8080
