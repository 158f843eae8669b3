"""The deploy configuration as typed, validated data (what :mod:`~nexusify.deploy.config.load` returns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nexusify.config import suggest
from nexusify.deploy.config.checker import raise_all
from nexusify.deploy.runtime.hosts import HostSpec
from nexusify.errors import ConfigError, UsageError

SECRET_REF = "secret:"
#: the proxy image of ``proxy.kind = "container"`` unless ``proxy.image`` names another (official nginx)
DEFAULT_PROXY_IMAGE = "docker.io/library/nginx:1.27-alpine"


@dataclass(frozen=True)
class AwsSecretsConfig:
    """``provider = "aws"``: AWS Secrets Manager; every secret is a JSON object of NAME: value."""

    secret_ids: tuple[str, ...]
    region: str | None = None
    endpoint_url: str | None = None
    provider: str = "aws"


@dataclass(frozen=True)
class EnvFileSecretsConfig:
    """``provider = "env-file"``: a KEY=VALUE file (absolute path)."""

    path: Path
    provider: str = "env-file"


SecretsConfig = AwsSecretsConfig | EnvFileSecretsConfig


@dataclass(frozen=True)
class ProxyConfig:
    """The environment's reverse proxy: a local nginx (``kind = "nginx"``: where it listens and where
    nexusify writes) or an nginx container on every host (``kind = "container"``, from ``image``)."""

    kind: str = "nginx"
    listen_host: str = "127.0.0.1"
    listen_port: int | None = None  # port for ``route``-style services (one shared server block)
    conf_dir: Path | None = None  # folder nexusify writes its upstream/server files into (absolute)
    conf: Path | None = None  # main nginx.conf for ``nginx -t -c`` / ``-s reload`` (None: nginx default)
    prefix: Path | None = None  # nginx ``-p`` prefix (None: nginx default)
    binary: str = "nginx"
    image: str = DEFAULT_PROXY_IMAGE  # kind "container": the nginx image run on every host


@dataclass(frozen=True)
class KubernetesConfig:
    """``kubernetes = { context = "...", namespace = "..." }``: the environment is a namespace of a
    cluster, reached with ``kubectl --context CONTEXT --namespace NAMESPACE``."""

    context: str
    namespace: str


@dataclass(frozen=True)
class EnvVar:
    """One variable of the container's environment: from a secret or a plain value."""

    name: str
    secret: str | None = None  # secret name in the environment's SecretBundle
    value: str | None = None  # plain (non-secret) value


@dataclass(frozen=True)
class ServiceConfig:
    """One deployable service, already merged with its environment's overrides."""

    name: str
    folder: Path  # absolute
    container_port: int
    dockerfile: str = "Dockerfile"  # relative to folder (the build context), like `docker build -f`
    image: str | None = None  # image repository name; default: the service name
    health_path: str = "/health"
    health_timeout: float = 30.0
    health_interval: float = 0.5
    drain_timeout: float = 5.0
    public_port: int | None = None
    route: str | None = None
    migrations: Path | None = None  # absolute path of alembic.ini
    database_url: str | None = None  # "secret:NAME" or a literal URL without a password
    env: tuple[EnvVar, ...] = ()

    @property
    def image_name(self) -> str:
        return self.image or self.name

    @property
    def database_secret(self) -> str | None:
        """The secret name of ``database-url = "secret:NAME"``, else None."""
        if self.database_url and self.database_url.startswith(SECRET_REF):
            return self.database_url[len(SECRET_REF):]
        return None

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Every secret this service needs (env + database URL), for validating the bundle."""
        names = [v.secret for v in self.env if v.secret]
        if self.database_secret:
            names.append(self.database_secret)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    secrets: SecretsConfig | None
    proxy: ProxyConfig | None
    keep: int
    lock_wait: float
    services: Mapping[str, ServiceConfig]  # merged with per-environment overrides
    hosts: tuple[HostSpec, ...] = ()  # empty: the single engine of [deploy] engine (today's default)
    kubernetes: KubernetesConfig | None = None  # set: the environment is a Kubernetes namespace
    primary: str | None = None  # ``primary``: the address of the lock host (then first of ``hosts``)


@dataclass(frozen=True)
class DeployConfig:
    engine: str | None  # DOCKER_HOST-style URL; None: the Docker SDK default
    registry: str | None
    keep: int
    lock_wait: float
    environments: Mapping[str, EnvironmentConfig]
    services: Mapping[str, ServiceConfig]  # base definitions (no environment overrides)
    config_path: Path | None = None
    root: Path = field(default_factory=Path)

    def environment(self, name: str) -> EnvironmentConfig:
        """The named environment; ConfigError with did-you-mean when unknown."""
        if name in self.environments:
            return self.environments[name]
        if not self.environments:
            raise ConfigError(
                f"no deploy environments are configured (asked for `{name}`)",
                path=self.config_path,
                hint=f"add a table [deploy.environments.{name}] (or [tool.nexusify.deploy.environments.{name}] in pyproject.toml)",
            )
        near = suggest(name, list(self.environments))
        raise ConfigError(
            f"unknown environment `{name}`" + (f"; did you mean `{near}`?" if near else ""),
            path=self.config_path,
            hint=f"configured environments: {', '.join(sorted(self.environments))}",
        )

    def engine_environment(self, name: str, verb: str, hint: str | None = None) -> EnvironmentConfig:
        """The named environment for a verb that works on engines only: UsageError (exit 2) for a
        Kubernetes environment, before anything connects anywhere."""
        env = self.environment(name)
        if env.kubernetes is not None:
            raise UsageError(f"`nexusify {verb}` does not work on Kubernetes environments (`{name}` is one)",
                             hint=hint or f"`nexusify deploy -e {name} --dry-run` prints the kubectl steps")
        return env

    def select_services(self, environment: str, names: list[str] | None = None) -> list[ServiceConfig]:
        """Services of ``environment`` (all, or the named ones; ConfigError for unknown names)."""
        env = self.environment(environment)
        if not env.services:
            raise ConfigError(
                "no services to deploy are configured",
                path=self.config_path,
                hint="add [deploy.services.<name>] with folder and container-port",
            )
        if not names:
            return list(env.services.values())
        errors: list[ConfigError] = []
        for n in names:
            if n not in env.services:
                near = suggest(n, list(env.services))
                errors.append(ConfigError(
                    f"unknown service `{n}`" + (f"; did you mean `{near}`?" if near else ""),
                    path=self.config_path,
                    hint=f"configured services: {', '.join(sorted(env.services))}",
                ))
        raise_all(errors)
        return [env.services[n] for n in dict.fromkeys(names)]



__all__ = [
    "DEFAULT_PROXY_IMAGE", "SECRET_REF", "AwsSecretsConfig", "DeployConfig", "EnvFileSecretsConfig", "EnvVar", "EnvironmentConfig",
    "KubernetesConfig", "ProxyConfig", "SecretsConfig", "ServiceConfig",
]
