"""Secrets for deploys: AWS Secrets Manager or an env-file. INTERFACE (implementation in progress).

Values are :class:`Secret` objects (repr ``<hidden>``); they go to containers at run time and to
Alembic's environment, never into logs, plans, images or history (history records version ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nexusify.credentials import Secret
from nexusify.deploy.config import EnvironmentConfig, ServiceConfig


@dataclass(frozen=True)
class SecretBundle:
    """Secret values by name, and the version id of each source (AWS VersionId, env-file stamp)."""

    values: Mapping[str, Secret] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)  # source id -> version id

    def get(self, name: str) -> Secret | None:
        return self.values.get(name)

    def require(self, names: Iterable[str], *, what: str = "deploy") -> dict[str, Secret]:
        """The named secrets; DeployError listing every missing name (no values) if any is absent."""
        raise NotImplementedError

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``<hidden>`` (for error messages, logs)."""
        raise NotImplementedError


class SecretsProvider(Protocol):
    """Where an environment's secrets come from."""

    @property
    def description(self) -> str:
        """Human text for the plan, e.g. ``aws secretsmanager (eu-west-1): app/prod``; no values."""
        ...

    def fetch(self) -> SecretBundle: ...


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
        raise NotImplementedError

    @property
    def description(self) -> str:
        raise NotImplementedError

    def fetch(self) -> SecretBundle:
        raise NotImplementedError


class EnvFileProvider:
    """A ``KEY=VALUE`` file (``#`` comments, ``export`` prefix, single/double quotes)."""

    def __init__(self, path: Path) -> None:
        raise NotImplementedError

    @property
    def description(self) -> str:
        raise NotImplementedError

    def fetch(self) -> SecretBundle:
        raise NotImplementedError


def parse_env_file(text: str, path: Path | None = None) -> dict[str, str]:
    """Parse KEY=VALUE lines; ConfigError naming path:line for a malformed line (no value shown)."""
    raise NotImplementedError


def provider_for(environment: EnvironmentConfig, env: Mapping[str, str] | None = None) -> SecretsProvider | None:
    """The provider configured for ``environment`` (None when it has no ``secrets``)."""
    raise NotImplementedError


def container_env(service: ServiceConfig, bundle: SecretBundle) -> dict[str, str]:
    """The environment variables to pass to ``service``'s container at run time (revealed values).

    Pass the result straight to the engine (``containers.run(environment=...)``); never log it.
    """
    raise NotImplementedError


def database_url(service: ServiceConfig, bundle: SecretBundle) -> Secret | None:
    """The service's database URL (from ``database-url``), or None when it has none."""
    raise NotImplementedError
