"""Secrets: AWS Secrets Manager through moto's real HTTP server, and env-files."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from nexusify.credentials import Secret
from nexusify.deploy.config.load import (
    AwsSecretsConfig,
    EnvFileSecretsConfig,
    EnvironmentConfig,
    EnvVar,
    ServiceConfig,
)
from nexusify.deploy.secrets import (
    AwsSecretsManagerProvider,
    EnvFileProvider,
    SecretBundle,
    container_env,
    database_url,
    fetch_secrets,
    parse_env_file,
    provider_for,
)
from nexusify.errors import ConfigError, DeployError
from tests.conftest import MotoServer

DB_VALUE = "postgresql://app:Very-Secret-Pw-1@127.0.0.1/app"
API_VALUE = "sk-live-0123456789abcdef"


def _service(**kw: object) -> ServiceConfig:
    base: dict[str, object] = {"name": "api", "folder": Path("/srv/api"), "container_port": 8000}
    base.update(kw)
    return ServiceConfig(**base)  # type: ignore[arg-type]


def _env(secrets: AwsSecretsConfig | EnvFileSecretsConfig | None) -> EnvironmentConfig:
    return EnvironmentConfig("production", secrets, None, 3, 0.0, {})


@pytest.fixture
def aws_secret(moto_server: MotoServer, aws_env: dict[str, str]) -> tuple[str, str, str]:
    """A JSON secret with two versions; returns (name, old version id, current version id)."""
    client = moto_server.client()
    name = f"app/{uuid.uuid4().hex[:8]}"
    first = client.create_secret(Name=name, SecretString=json.dumps({"DATABASE_URL": "old-value-xyz", "API_KEY": "old"}))
    second = client.put_secret_value(SecretId=name, SecretString=json.dumps(
        {"DATABASE_URL": DB_VALUE, "API_KEY": API_VALUE, "WORKERS": 4, "DEBUG": False}))
    assert first["VersionId"] != second["VersionId"]
    return name, first["VersionId"], second["VersionId"]


@pytest.mark.stack
def test_aws_reads_awscurrent_json_and_version_ids(
    moto_server: MotoServer, aws_secret: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    name, old_version, current_version = aws_secret
    caplog.set_level(logging.DEBUG)
    provider = AwsSecretsManagerProvider([name], region=moto_server.region, endpoint_url=moto_server.endpoint_url)
    bundle = provider.fetch()
    assert bundle.versions == {name: current_version} and old_version not in bundle.versions.values()
    assert bundle.values["DATABASE_URL"].reveal() == DB_VALUE
    assert bundle.values["API_KEY"].reveal() == API_VALUE
    assert (bundle.values["WORKERS"].reveal(), bundle.values["DEBUG"].reveal()) == ("4", "false")
    # values never show up in repr/str, the plan description or any log record
    shown = " ".join([repr(bundle), str(bundle), repr(bundle.values), provider.description, caplog.text])
    assert DB_VALUE not in shown and API_VALUE not in shown and "Very-Secret-Pw-1" not in shown
    assert "DATABASE_URL" in repr(bundle) and current_version in repr(bundle)
    assert name in provider.description and moto_server.endpoint_url in provider.description
    assert bundle.redact(f"boom {API_VALUE} at {DB_VALUE}") == "boom <hidden> at <hidden>"


@pytest.mark.stack
def test_aws_later_ids_override_and_provider_for(moto_server: MotoServer, aws_secret: tuple[str, str, str]) -> None:
    name, _, current = aws_secret
    client = moto_server.client()
    other = f"app/{uuid.uuid4().hex[:8]}"
    v = client.create_secret(Name=other, SecretString=json.dumps({"API_KEY": "override-key-1"}))["VersionId"]
    environment = _env(AwsSecretsConfig((name, other), region=moto_server.region, endpoint_url=moto_server.endpoint_url))
    provider = provider_for(environment)
    assert isinstance(provider, AwsSecretsManagerProvider)
    svc = _service(env=(EnvVar("API_KEY", secret="API_KEY"), EnvVar("MODE", value="prod")),
                   database_url="secret:DATABASE_URL")
    bundle = fetch_secrets(environment, [svc])
    assert bundle.versions == {name: current, other: v}
    assert container_env(svc, bundle) == {"API_KEY": "override-key-1", "MODE": "prod"}
    url = database_url(svc, bundle)
    assert isinstance(url, Secret) and url.reveal() == DB_VALUE


@pytest.mark.stack
def test_aws_errors_name_the_secret_and_hide_values(moto_server: MotoServer, aws_env: dict[str, str]) -> None:
    client = moto_server.client()
    provider = AwsSecretsManagerProvider(["app/missing"], region=moto_server.region, endpoint_url=moto_server.endpoint_url)
    with pytest.raises(DeployError, match="refused secret `app/missing`: ResourceNotFoundException") as info:
        provider.fetch()
    assert "create the secret" in (info.value.hint or "")

    plain = f"app/{uuid.uuid4().hex[:8]}"
    client.create_secret(Name=plain, SecretString="just-a-plain-secret-value")
    with pytest.raises(DeployError, match="is not a JSON object") as info:
        AwsSecretsManagerProvider([plain], region=moto_server.region, endpoint_url=moto_server.endpoint_url).fetch()
    assert "just-a-plain-secret-value" not in str(info.value)

    nested = f"app/{uuid.uuid4().hex[:8]}"
    client.create_secret(Name=nested, SecretString=json.dumps({"CONF": {"password": "nested-secret-99"}}))
    with pytest.raises(DeployError, match="key `CONF` holds a nested value") as info:
        AwsSecretsManagerProvider([nested], region=moto_server.region, endpoint_url=moto_server.endpoint_url).fetch()
    assert "nested-secret-99" not in str(info.value)


def test_aws_unreachable_endpoint_is_a_deploy_error(aws_env: dict[str, str]) -> None:
    import boto3
    import botocore.config

    from tests.helpers import free_port

    client = boto3.session.Session().client(
        "secretsmanager", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=1))
    provider = AwsSecretsManagerProvider(["x"], region="us-east-1", client=client)
    with pytest.raises(DeployError, match="cannot read secret `x` from AWS Secrets Manager"):
        provider.fetch()


def test_missing_secrets_are_listed_by_name(moto_server: MotoServer) -> None:
    bundle = SecretBundle({"A": Secret("value-a-1")}, {"src": "v1"})
    svc = _service(env=(EnvVar("A", secret="A"), EnvVar("B", secret="B")), database_url="secret:DB")
    with pytest.raises(DeployError, match=r"service `api` needs secret\(s\) .*: B, DB") as info:
        bundle.require(svc.secret_names, what="service `api`")
    assert "value-a-1" not in str(info.value)
    with pytest.raises(DeployError, match="has no \\[secrets\\]"):
        fetch_secrets(_env(None), [svc])
    assert fetch_secrets(_env(None), [_service()]) == SecretBundle()


ENV_FILE = """\
# comment line
DATABASE_URL=postgresql://app:pw-from-file@db/app
export API_KEY = "quoted value # not a comment"
SINGLE='literal \\n $HOME'
ESCAPED="a\\"b\\\\c\\nd"
UNQUOTED=plain value # trailing comment
EMPTY=

DUP=first
DUP=second
"""


def test_parse_env_file() -> None:
    assert parse_env_file(ENV_FILE) == {
        "DATABASE_URL": "postgresql://app:pw-from-file@db/app",
        "API_KEY": "quoted value # not a comment",
        "SINGLE": "literal \\n $HOME",
        "ESCAPED": 'a"b\\c\nd',
        "UNQUOTED": "plain value",
        "EMPTY": "",
        "DUP": "second",
    }


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("A=1\nthis is not an assignment secret-xyz\n", 2, "expected KEY=VALUE", id="no-equals"),
        pytest.param("A=1\n\nB=\"unterminated secret-xyz\n", 3, "unterminated quoted value", id="unterminated"),
        pytest.param("1BAD=secret-xyz\n", 1, "expected KEY=VALUE", id="bad-name"),
        pytest.param("A='x' secret-xyz\n", 1, "unexpected text after the closing quote", id="after-quote"),
    ],
)
def test_env_file_errors_name_the_line_not_the_value(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / ".env"
    with pytest.raises(ConfigError, match=message) as info:
        parse_env_file(text, path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert "secret-xyz" not in str(info.value)


def test_env_file_provider(tmp_path: Path) -> None:
    path = tmp_path / ".env.local"
    path.write_text(ENV_FILE, encoding="utf-8")
    provider = provider_for(_env(EnvFileSecretsConfig(path)))
    assert isinstance(provider, EnvFileProvider) and str(path) in provider.description
    bundle = provider.fetch()
    assert bundle.values["DATABASE_URL"].reveal() == "postgresql://app:pw-from-file@db/app"
    (version,) = bundle.versions.values()
    assert version.startswith("mtime:") and "pw-from-file" not in repr(bundle) + version
    with pytest.raises(DeployError, match="secrets env-file not found"):
        EnvFileProvider(tmp_path / "nope").fetch()


def test_literal_database_url_and_none() -> None:
    assert database_url(_service(), SecretBundle()) is None
    url = database_url(_service(database_url="sqlite:///tmp/x.db"), SecretBundle())
    assert url is not None and url.reveal() == "sqlite:///tmp/x.db"


def test_short_values_are_not_redacted_everywhere() -> None:
    bundle = SecretBundle({"FLAG": Secret("1"), "KEY": Secret("long-secret")})
    assert bundle.redact("1 and long-secret") == "1 and <hidden>"
