"""Secrets for deploys: AWS Secrets Manager or an env-file, as :class:`Secret` values.

Values go to containers at run time (:func:`container_env`) and to Alembic in memory
(:func:`database_url`); they never reach logs, plans, images or history. A bundle records the
version id of every source (AWS ``VersionId`` at stage ``AWSCURRENT``; for an env-file, its
modification time), and history stores those ids only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from nexusify.credentials import Secret, redact
from nexusify.deploy.config.load import (
    AwsSecretsConfig,
    EnvFileSecretsConfig,
    EnvironmentConfig,
    ServiceConfig,
)
from nexusify.errors import ConfigError, DeployError
from nexusify.extras import require

VERSION_STAGE = "AWSCURRENT"


@dataclass(frozen=True)
class SecretBundle:
    """Secret values by name, and the version id of each source (AWS VersionId, env-file stamp)."""

    values: Mapping[str, Secret] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)  # source id -> version id

    def __repr__(self) -> str:
        return f"SecretBundle(names={sorted(self.values)!r}, versions={dict(self.versions)!r})"

    __str__ = __repr__

    def get(self, name: str) -> Secret | None:
        return self.values.get(name)

    def require(self, names: Iterable[str], *, what: str = "deploy") -> dict[str, Secret]:
        """The named secrets; DeployError listing every missing name (no values) if any is absent."""
        wanted = list(dict.fromkeys(names))
        missing = [n for n in wanted if n not in self.values]
        if missing:
            known = ", ".join(sorted(self.values)) or "none"
            raise DeployError(
                f"{what} needs secret(s) that the environment's secrets do not hold: {', '.join(missing)}",
                hint=f"add them to the secret store (sources: {', '.join(self.versions) or 'none'}); names found: {known}",
            )
        return {n: self.values[n] for n in wanted}

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``<hidden>`` (for error messages, logs)."""
        # longest first, so a value containing another is hidden whole
        # (values shorter than 4 characters are flags, not secrets: hiding them would garble text)
        values = sorted((s.reveal() for s in self.values.values() if len(s.reveal()) >= 4), key=len, reverse=True)
        return redact(text, *values)


class SecretsProvider(Protocol):
    """Where an environment's secrets come from."""

    @property
    def description(self) -> str:
        """Human text for the plan, e.g. ``aws secretsmanager (eu-west-1): app/prod``; no values."""
        ...

    def fetch(self) -> SecretBundle: ...


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Raise logger ``name`` to INFO at least while the block runs."""
    logger = logging.getLogger(name)
    old = logger.level
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(old)


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


class AwsSecretsManagerProvider:
    """AWS Secrets Manager: ``get_secret_value(SecretId=..., VersionStage="AWSCURRENT")`` per id.

    Each secret's SecretString must be a JSON object of NAME: value (strings; numbers and booleans
    are converted). Later secret ids override earlier ones for the same NAME.
    """

    def __init__(
        self,
        secret_ids: Iterable[str],
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        env: Mapping[str, str] | None = None,
        client: Any = None,
    ) -> None:
        self.secret_ids = tuple(secret_ids)
        env = env or {}
        self.region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def description(self) -> str:
        where = self.region or "default region"
        if self.endpoint_url:
            where += f", {self.endpoint_url}"
        return f"aws secretsmanager ({where}): {', '.join(self.secret_ids)}"

    def _make_client(self) -> Any:
        if self._client is not None:
            return self._client
        boto3 = require("deploy", "boto3")
        botocore_config = require("deploy", "botocore.config")

        try:
            self._client = boto3.session.Session().client(
                "secretsmanager",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=botocore_config.Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 4, "mode": "standard"}),
            )
        except Exception as exc:  # botocore.exceptions.NoRegionError and friends
            raise DeployError(
                f"cannot create the AWS Secrets Manager client: {exc}",
                hint="set `region` under the environment's [secrets] (or AWS_REGION) and AWS credentials in the environment",
            ) from None
        return self._client

    def fetch(self) -> SecretBundle:
        # botocore logs whole response bodies (the secret values) at DEBUG: keep it at INFO
        with _quiet("botocore"):
            return self._fetch()

    def _fetch(self) -> SecretBundle:
        botocore_exceptions = require("deploy", "botocore.exceptions")
        BotoCoreError, ClientError = botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError

        client = self._make_client()
        values: dict[str, Secret] = {}
        versions: dict[str, str] = {}
        for sid in self.secret_ids:
            try:
                resp = client.get_secret_value(SecretId=sid, VersionStage=VERSION_STAGE)
            except ClientError as exc:
                err = exc.response.get("Error", {})
                code = str(err.get("Code", "Error"))
                hints = {
                    "ResourceNotFoundException": f"create the secret `{sid}` or fix `secret-ids` (region {self.region or 'default'})",
                    "AccessDeniedException": f"grant secretsmanager:GetSecretValue on `{sid}` to the deploying identity",
                    "UnrecognizedClientException": "the AWS credentials are not valid for this account/endpoint",
                    "InvalidRequestException": f"the secret `{sid}` may be scheduled for deletion; restore it",
                    "DecryptionFailure": "the deploying identity cannot use the secret's KMS key",
                }
                raise DeployError(
                    f"AWS Secrets Manager refused secret `{sid}`: {code}",
                    hint=hints.get(code, "check the secret id, region, endpoint-url and AWS credentials"),
                ) from None
            except BotoCoreError as exc:
                # botocore's own messages name endpoints and settings, never secret values
                raise DeployError(
                    f"cannot read secret `{sid}` from AWS Secrets Manager: {exc}",
                    hint="check network access to the endpoint, the region and AWS credentials",
                ) from None
            text = resp.get("SecretString")
            if text is None:
                raise DeployError(f"secret `{sid}` is binary; nexusify reads JSON SecretString secrets only",
                                  hint='store the secret as a JSON object like {"DATABASE_URL": "..."}')
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                raise DeployError(f"secret `{sid}` is not a JSON object (value not shown)",
                                  hint='store it as a JSON object like {"DATABASE_URL": "...", "API_KEY": "..."}') from None
            if not isinstance(data, dict):
                raise DeployError(f"secret `{sid}` is JSON but not an object of NAME: value",
                                  hint='store it as a JSON object like {"DATABASE_URL": "..."}')
            for name, raw in data.items():
                value = _scalar(raw)
                if value is None:
                    raise DeployError(f"secret `{sid}`: key `{name}` holds a nested value (not shown)",
                                      hint="values must be strings, numbers or booleans")
                values[str(name)] = Secret(value)
            versions[sid] = str(resp.get("VersionId", ""))
        return SecretBundle(values, versions)


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")


def _unquote(raw: str, path: Path | None, line: int) -> str:
    if not raw:
        return ""
    if raw[0] in "\"'":
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise ConfigError("unterminated quoted value (value not shown)", path=path, line=line,
                              hint=f"close the {quote} quote on the same line")
        rest = raw[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError("unexpected text after the closing quote", path=path, line=line)
        body = raw[1:end]
        if quote == '"':
            body = re.sub(r'\\(["\\$`n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), body)
        return body
    # unquoted: an inline comment needs whitespace before '#'
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_env_file(text: str, path: Path | None = None) -> dict[str, str]:
    """Parse KEY=VALUE lines; ConfigError naming path:line for a malformed line (no value shown).

    Blank lines and ``#`` comments are skipped, ``export KEY=...`` is accepted, values may be
    single-quoted (taken literally) or double-quoted (``\\"``, ``\\\\`` and ``\\n`` escapes);
    unquoted values end at `` #``. A later line wins over an earlier one.
    """
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            raise ConfigError("expected KEY=VALUE (line not shown: it may hold a secret)", path=path, line=number,
                              hint="one assignment per line; names are letters, digits and underscores")
        out[m.group(1)] = _unquote(m.group(2), path, number)
    return out


class EnvFileProvider:
    """A ``KEY=VALUE`` file (``#`` comments, ``export`` prefix, single/double quotes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def description(self) -> str:
        return f"env-file {self.path}"

    def fetch(self) -> SecretBundle:
        try:
            raw = self.path.read_bytes()
            stat = self.path.stat()
        except FileNotFoundError:
            raise DeployError(f"secrets env-file not found: {self.path}",
                              hint="create it (KEY=VALUE lines) or fix `path` under the environment's [secrets]") from None
        except OSError as exc:
            raise DeployError(f"cannot read secrets env-file {self.path}: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", path=self.path, hint="save the env-file as UTF-8") from None
        values = {k: Secret(v) for k, v in parse_env_file(text, self.path).items()}
        stamp = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return SecretBundle(values, {str(self.path): f"mtime:{stamp}"})


def provider_for(environment: EnvironmentConfig, env: Mapping[str, str] | None = None) -> SecretsProvider | None:
    """The provider configured for ``environment`` (None when it has no ``secrets``)."""
    cfg = environment.secrets
    if cfg is None:
        return None
    if isinstance(cfg, AwsSecretsConfig):
        return AwsSecretsManagerProvider(cfg.secret_ids, region=cfg.region, endpoint_url=cfg.endpoint_url, env=env)
    if isinstance(cfg, EnvFileSecretsConfig):
        return EnvFileProvider(cfg.path)
    raise AssertionError(cfg)  # pragma: no cover


def fetch_secrets(environment: EnvironmentConfig, services: Iterable[ServiceConfig],
                  env: Mapping[str, str] | None = None) -> SecretBundle:
    """Fetch the environment's secrets and check every secret the services need is there."""
    services = list(services)
    needed = [n for s in services for n in s.secret_names]
    provider = provider_for(environment, env)
    if provider is None:
        if needed:
            raise DeployError(
                f"services need secrets ({', '.join(dict.fromkeys(needed))}) but environment `{environment.name}` has no [secrets]",
                hint=f'add [deploy.environments.{environment.name}.secrets] with provider = "aws" or "env-file"',
            )
        return SecretBundle()
    bundle = provider.fetch()
    for svc in services:
        bundle.require(svc.secret_names, what=f"service `{svc.name}`")
    return bundle


def container_env(service: ServiceConfig, bundle: SecretBundle) -> dict[str, str]:
    """The environment variables to pass to ``service``'s container at run time (revealed values).

    Pass the result straight to the engine (``containers.run(environment=...)``); never log it.
    """
    secrets = bundle.require([v.secret for v in service.env if v.secret], what=f"service `{service.name}`")
    out: dict[str, str] = {}
    for var in service.env:
        if var.secret is not None:
            out[var.name] = secrets[var.secret].reveal()
        elif var.value is not None:
            out[var.name] = var.value
    return out


def database_url(service: ServiceConfig, bundle: SecretBundle) -> Secret | None:
    """The service's database URL (from ``database-url``), or None when it has none."""
    if service.database_url is None:
        return None
    name = service.database_secret
    if name is None:
        return Secret(service.database_url)
    return bundle.require([name], what=f"service `{service.name}` (database-url)")[name]


__all__ = [
    "AwsSecretsManagerProvider", "EnvFileProvider", "SecretBundle", "SecretsProvider", "container_env",
    "database_url", "fetch_secrets", "parse_env_file", "provider_for",
]
