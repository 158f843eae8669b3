"""Deploy configuration: the ``deploy`` table of ``nexusify.toml`` / ``[tool.nexusify.deploy]``.

Every problem is collected and reported together, each with its file:line and, for unknown keys,
a "did you mean". Paths are relative to the monorepo root unless said otherwise.

Example (``nexusify.toml``; in ``pyproject.toml`` prefix every table with ``tool.nexusify.``)::

    [deploy]
    registry = "registry.example.com/team"   # optional: push images here
    keep = 3                                 # versions kept per service for rollback
    lock-wait = 0                            # seconds to wait for another deploy (0 = refuse)

    [deploy.environments.production.secrets]
    provider = "aws"
    secret-ids = ["myapp/production"]
    region = "eu-west-1"

    [deploy.environments.production.proxy]
    listen = 80
    conf-dir = "/etc/nginx/nexusify"

    [deploy.environments.local.secrets]
    provider = "env-file"
    path = ".env.local"

    [deploy.services.gateway]
    folder = "services/gateway"
    container-port = 8000
    public-port = 8080
    health-path = "/health"
    migrations = "services/gateway/alembic.ini"
    database-url = "secret:DATABASE_URL"
    env = ["DATABASE_URL", "API_KEY"]

    [deploy.environments.production.services.gateway]   # per-environment overrides
    route = "/"                                          # served on the proxy's port 80

Top-level keys (``[deploy]``):

- ``engine`` (string, default: ``$DOCKER_HOST``, else the Docker SDK default): the container
  engine's API address, e.g. ``unix:///run/podman/podman.sock`` or ``tcp://127.0.0.1:2375``.
- ``registry`` (string, optional): where images are pushed, as ``host[:port][/namespace]`` (no
  ``http://``). Without it images stay in the engine (single-host deploys). Pushes log in with
  ``NEXUSIFY_REGISTRY_USERNAME``/``NEXUSIFY_REGISTRY_PASSWORD`` when set (never a config key),
  else with the engine's own login (``docker login``).
- ``keep`` (integer >= 1, default 3): versions kept per service and environment for rollback;
  older containers and images are pruned, the ones in ``keep`` never.
- ``lock-wait`` (seconds >= 0, default 0): how long a deploy waits for another deploy of the
  same environment to finish; 0 refuses at once, naming who holds the lock since when.
- ``environments`` (table of tables): one per environment (``production``, ``staging``...).
- ``services`` (table of tables): one per deployable service.

Environment keys (``[deploy.environments.<name>]``):

- ``keep``, ``lock-wait``: override the top-level values for this environment.
- ``secrets`` (table, optional): where secret values come from.
  - ``provider = "aws"``: AWS Secrets Manager. ``secret-ids`` (list; or ``secret-id``, one
    string): each secret is a JSON object ``{"NAME": "value", ...}``, read at version stage
    ``AWSCURRENT``; later ids override earlier ones. ``region`` (default: ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION``), ``endpoint-url`` (e.g. a VPC endpoint or a local moto server).
    Credentials come from the usual AWS chain (environment, profile, instance role).
  - ``provider = "env-file"``: ``path`` of a ``KEY=VALUE`` file (``#`` comments, ``export``
    prefix and quotes allowed), for local use. Keep it out of version control.
- ``proxy`` (table, optional): the reverse proxy that switches traffic blue-green.
  - ``kind`` (default ``"nginx"``).
  - ``listen``: port (or ``"host:port"``, default host ``127.0.0.1``) of the shared server
    block that serves services with a ``route``.
  - ``conf-dir``: folder nexusify writes ``nexusify.conf`` (server blocks) and
    ``upstreams/*.conf`` (the switch) into; default ``<state-dir>/deploy/<environment>/nginx``.
  - ``conf``: your own main nginx.conf, whose ``http {}`` includes ``<conf-dir>/nexusify.conf``;
    nexusify checks (``nginx -t -c``) and reloads it but never starts it. Without ``conf``,
    nexusify runs a private nginx (``-c <conf-dir>/nginx.conf -p <conf-dir>``), starting it
    when it is not running.
  - ``prefix``: nginx ``-p`` prefix (default: nginx's own). ``binary``: default ``nginx``.
- ``services.<service>`` (table): per-environment overrides of a service's ``public-port``,
  ``route``, ``health-path``, ``health-timeout``, ``health-interval``, ``drain-timeout``,
  ``database-url`` and ``env`` (a key given here replaces the service's value; build keys are
  the same everywhere: one image, many environments).

Service keys (``[deploy.services.<name>]``):

- ``folder`` (required): the service's folder (the image build context).
- ``container-port`` (required): the port the app listens on inside the container.
- ``dockerfile`` (default ``Dockerfile``): relative to ``folder``, like ``docker build -f``.
- ``image`` (default: the service name): image repository name under ``registry``.
- ``health-path`` (default ``/health``): HTTP path answering 2xx/3xx when the app is ready.
- ``health-timeout`` (seconds, default 30): how long a new container may take to become
  healthy before the deploy gives up (traffic never moves to an unhealthy container).
- ``health-interval`` (seconds, default 0.5): time between health probes.
- ``drain-timeout`` (seconds, default 5): how long the old container keeps serving in-flight
  requests after the switch before it is stopped.
- ``public-port``: port the proxy listens on for this service (one server block per service);
  without a ``[proxy]`` table, nexusify's private nginx listens on ``127.0.0.1:<public-port>``
  (containers themselves are always published on free loopback ports).
- ``route``: a path prefix (``/api``) on the environment proxy's ``listen`` port instead of a
  port of its own. With a proxy, give exactly one of ``public-port`` and ``route``.
- ``migrations``: path of the service's ``alembic.ini``; ``upgrade head`` runs before anything
  is built or switched. Needs ``database-url``.
- ``database-url``: ``"secret:NAME"`` (a secret of the environment) or a literal URL without a
  password (e.g. ``sqlite:///...``). Passed to Alembic in memory, never written to a file.
- ``env``: the container's environment: a list of secret names (each passed under its own
  name), or a table ``{VAR = "secret:NAME", LOG_LEVEL = "info"}`` mixing secrets and plain
  values. Secret values reach the container at run time only, never the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nexusify.config import ConfigFile, Settings, load_config_file, suggest
from nexusify.errors import ConfigError, ConfigErrors

PROXY_KINDS: tuple[str, ...] = ("nginx",)
SECRET_PROVIDERS: tuple[str, ...] = ("aws", "env-file")

TOP_KEYS = ("engine", "registry", "keep", "lock-wait", "environments", "services")
ENVIRONMENT_KEYS = ("keep", "lock-wait", "secrets", "proxy", "services")
AWS_KEYS = ("provider", "secret-ids", "secret-id", "region", "endpoint-url")
ENV_FILE_KEYS = ("provider", "path")
PROXY_KEYS = ("kind", "listen", "conf-dir", "conf", "prefix", "binary")
SERVICE_KEYS = (
    "folder", "container-port", "dockerfile", "image", "health-path", "health-timeout",
    "health-interval", "drain-timeout", "public-port", "route", "migrations", "database-url", "env",
)
OVERRIDE_KEYS = (
    "public-port", "route", "health-path", "health-timeout", "health-interval", "drain-timeout",
    "database-url", "env",
)
DEFAULT_KEEP = 3
DEFAULT_LOCK_WAIT = 0.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_REF = "secret:"


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
    """The environment's reverse proxy (nginx): where it listens and where nexusify writes."""

    kind: str = "nginx"
    listen_host: str = "127.0.0.1"
    listen_port: int | None = None  # port for ``route``-style services (one shared server block)
    conf_dir: Path | None = None  # folder nexusify writes its upstream/server files into (absolute)
    conf: Path | None = None  # main nginx.conf for ``nginx -t -c`` / ``-s reload`` (None: nginx default)
    prefix: Path | None = None  # nginx ``-p`` prefix (None: nginx default)
    binary: str = "nginx"


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
        if self.database_url and self.database_url.startswith(_SECRET_REF):
            return self.database_url[len(_SECRET_REF):]
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
        _raise(errors)
        return [env.services[n] for n in dict.fromkeys(names)]


def _raise(errors: list[ConfigError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def _seg(part: str) -> str:
    p = re.escape(part)
    return rf"(?:{p}|\"{p}\"|'{p}')"


def _split_key(dotted: str) -> list[str]:
    """Split a TOML dotted key (``a."b.c".d``) into its parts, unquoted."""
    parts: list[str] = []
    buf = ""
    quote: str | None = None
    for ch in dotted:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


def locate(text: str, parts: list[str]) -> int | None:
    """1-based line where the TOML key ``parts`` (full dotted path) is written, best effort.

    Handles ``[a.b] c = 1``, dotted keys ``[a] b.c = 1`` and inline tables ``b = {c = 1}``
    (the line of the inline table). None when the text does not show it.
    """
    if not text or not parts:
        return None
    lines = text.splitlines()
    header_rx = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def header_at(i: int) -> list[str] | None:
        m = header_rx.match(lines[i])
        if not m:
            return None
        return _split_key(m.group(1))

    # Walk the file tracking the current table; match key lines against the remaining parts.
    current: list[str] = []
    best: int | None = None
    best_depth = -1
    for i in range(len(lines)):
        h = header_at(i)
        if h is not None:
            current = h
            if parts[: len(h)] == h:
                if len(h) == len(parts):
                    return i + 1
                if len(h) > best_depth:
                    best, best_depth = i + 1, len(h)
            continue
        if parts[: len(current)] != current:
            continue
        rest = parts[len(current):]
        for n in range(len(rest), 0, -1):
            rx = r"^\s*" + r"\s*\.\s*".join(_seg(p) for p in rest[:n]) + r"\s*="
            if re.match(rx, lines[i]):
                depth = len(current) + n
                if n == len(rest):
                    return i + 1
                if depth > best_depth:
                    best, best_depth = i + 1, depth
                # an inline table: look for the inner key on the same line
                inner = rest[n:]
                if inner and re.search(r"[{,]\s*" + _seg(inner[-1]) + r"\s*=", lines[i]):
                    return i + 1
                break
    return best


class _Checker:
    """Collects problems with their locations while reading the deploy table."""

    def __init__(self, cfg: ConfigFile) -> None:
        self.cfg = cfg
        self.errors: list[ConfigError] = []
        base = cfg.prefix.rstrip(".").split(".") if cfg.prefix else []
        self.base = [*base, "deploy"]

    def label(self, path: list[str]) -> str:
        return ".".join([*self.base, *path])

    def error(self, path: list[str], message: str, hint: str | None = None) -> None:
        line = locate(self.cfg.text, [*self.base, *path])
        self.errors.append(ConfigError(f"`{self.label(path)}`: {message}", path=self.cfg.path, line=line, hint=hint))

    def table(self, value: Any, path: list[str], known: tuple[str, ...], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.error(path, f"expected a table ({what}), got {_kind(value)}")
            return {}
        for key in value:
            if key not in known:
                near = suggest(key, list(known))
                self.error(
                    [*path, key],
                    f"unknown key in {what}" + (f"; did you mean `{near}`?" if near else ""),
                    hint=f"known keys: {', '.join(known)}",
                )
        return value

    def string(self, table: Mapping[str, Any], key: str, path: list[str], *, required: bool = False) -> str | None:
        if key not in table:
            if required:
                self.error([*path, key], "is required", hint=f"add `{key} = ...` to [{self.label(path)}]")
            return None
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            self.error([*path, key], f"expected a non-empty string, got {_kind(value)}")
            return None
        return value.strip()

    def port(self, table: Mapping[str, Any], key: str, path: list[str], *, required: bool = False) -> int | None:
        if key not in table:
            if required:
                self.error([*path, key], "is required", hint=f"add `{key} = 8000` (a TCP port) to [{self.label(path)}]")
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.error([*path, key], f"expected a TCP port 1-65535, got {value!r}")
            return None
        return value

    def number(self, table: Mapping[str, Any], key: str, path: list[str], default: float, *, minimum: float = 0.0,
               positive: bool = False) -> float:
        if key not in table:
            return default
        value = table[key]
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and (value <= minimum if positive else value < minimum):
            ok = False
        if not ok:
            bound = f"> {minimum:g}" if positive else f">= {minimum:g}"
            self.error([*path, key], f"expected a number of seconds {bound}, got {value!r}")
            return default
        return float(value)

    def whole(self, table: Mapping[str, Any], key: str, path: list[str], default: int, minimum: int) -> int:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error([*path, key], f"expected a whole number >= {minimum}, got {value!r}")
            return default
        return value

    def file(self, root: Path, value: str | None, path: list[str], *, kind: str = "file") -> Path | None:
        if value is None:
            return None
        p = Path(value)
        p = p if p.is_absolute() else root / p
        exists = p.is_file() if kind == "file" else p.is_dir()
        if not exists:
            self.error(path, f"no such {kind}: {value} (looked at {p})",
                       hint="paths in the deploy table are relative to the monorepo root")
            return None
        return p


def _near(value: str, choices: tuple[str, ...]) -> str | None:
    """did-you-mean for a choice: a close spelling, or a choice the value contains (``aws-secrets``)."""
    return suggest(value, list(choices)) or next((c for c in choices if c in value.lower()), None)


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def _read_env(ck: _Checker, value: Any, path: list[str]) -> tuple[EnvVar, ...]:
    out: list[EnvVar] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str) or not _ENV_NAME.match(item):
                ck.error(path, f"item {i + 1}: expected a variable name like API_KEY, got {item!r}",
                         hint='list secret names (env = ["API_KEY"]) or use a table {VAR = "secret:NAME", PLAIN = "value"}')
                continue
            out.append(EnvVar(item, secret=item))
    elif isinstance(value, dict):
        for name, raw in value.items():
            if not _ENV_NAME.match(name):
                ck.error([*path, name], "not a valid environment variable name")
                continue
            if isinstance(raw, bool):
                out.append(EnvVar(name, value="true" if raw else "false"))
            elif isinstance(raw, int | float):
                out.append(EnvVar(name, value=str(raw)))
            elif isinstance(raw, str) and raw.startswith(_SECRET_REF):
                secret = raw[len(_SECRET_REF):]
                if not secret:
                    ck.error([*path, name], "`secret:` needs a secret name, e.g. \"secret:API_KEY\"")
                    continue
                out.append(EnvVar(name, secret=secret))
            elif isinstance(raw, str):
                out.append(EnvVar(name, value=raw))
            else:
                ck.error([*path, name], f"expected a string, number or boolean, got {_kind(raw)}")
    else:
        ck.error(path, f"expected a list of secret names or a table, got {_kind(value)}")
    return tuple(out)


def _read_service_keys(ck: _Checker, table: Mapping[str, Any], path: list[str]) -> dict[str, Any]:
    """Read the keys a service and an environment override have in common."""
    fields: dict[str, Any] = {}
    if "public-port" in table:
        fields["public_port"] = ck.port(table, "public-port", path)
    if "route" in table:
        route = ck.string(table, "route", path)
        if route is not None and not route.startswith("/"):
            ck.error([*path, "route"], f"expected a path prefix starting with /, got {route!r}")
            route = None
        fields["route"] = route
    if "health-path" in table:
        hp = ck.string(table, "health-path", path)
        if hp is not None and not hp.startswith("/"):
            ck.error([*path, "health-path"], f"expected a path starting with /, got {hp!r}")
        elif hp is not None:
            fields["health_path"] = hp
    for key, attr, default in (("health-timeout", "health_timeout", 30.0), ("health-interval", "health_interval", 0.5),
                               ("drain-timeout", "drain_timeout", 5.0)):
        if key in table:
            fields[attr] = ck.number(table, key, path, default, positive=key != "drain-timeout")
    if "database-url" in table:
        url = ck.string(table, "database-url", path)
        if url is not None:
            if url.startswith(_SECRET_REF):
                if not url[len(_SECRET_REF):]:
                    ck.error([*path, "database-url"], "`secret:` needs a secret name, e.g. \"secret:DATABASE_URL\"")
                    url = None
            elif _has_password(url):
                # never echo the value: it holds a password
                ck.error([*path, "database-url"], "holds a password in the config file",
                         hint='move the URL into the environment\'s secrets and write database-url = "secret:DATABASE_URL"')
                url = None
            elif "://" not in url:
                ck.error([*path, "database-url"], "expected \"secret:NAME\" or a database URL",
                         hint='e.g. database-url = "secret:DATABASE_URL"')
                url = None
        fields["database_url"] = url
    if "env" in table:
        fields["env"] = _read_env(ck, table["env"], [*path, "env"])
    return fields


def _read_service(ck: _Checker, root: Path, name: str, raw: Any) -> ServiceConfig | None:
    path = ["services", name]
    if not _NAME.match(name):
        ck.error(path, "service names may hold letters, digits, '.', '_' and '-' only")
    table = ck.table(raw, path, SERVICE_KEYS, "a service")
    if not isinstance(raw, dict):
        return None
    folder = ck.file(root, ck.string(table, "folder", path, required=True), [*path, "folder"], kind="folder")
    port = ck.port(table, "container-port", path, required=True)
    dockerfile = ck.string(table, "dockerfile", path) or "Dockerfile"
    if folder is not None and not (folder / dockerfile).is_file():
        ck.error([*path, "dockerfile" if "dockerfile" in table else "folder"],
                 f"no {dockerfile} in {folder}", hint="dockerfile is relative to the service folder (the build context)")
    image = ck.string(table, "image", path)
    if image is not None and not re.match(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$", image):
        ck.error([*path, "image"], f"not a valid image repository name: {image!r}",
                 hint="lowercase letters, digits and . _ - / separators")
    migrations = ck.file(root, ck.string(table, "migrations", path), [*path, "migrations"])
    common = _read_service_keys(ck, table, path)
    if "migrations" in table and "database-url" not in table:
        ck.error([*path, "migrations"], "needs `database-url` (where to migrate)",
                 hint='add database-url = "secret:DATABASE_URL"')
    if folder is None or port is None:
        return None
    return ServiceConfig(name=name, folder=folder, container_port=port, dockerfile=dockerfile, image=image,
                         migrations=migrations, **common)


def _read_secrets(ck: _Checker, root: Path, raw: Any, path: list[str]) -> SecretsConfig | None:
    if not isinstance(raw, dict):
        ck.error(path, f"expected a table, got {_kind(raw)}")
        return None
    provider = ck.string(raw, "provider", path, required=True)
    if provider is None:
        return None
    if provider not in SECRET_PROVIDERS:
        near = _near(provider, SECRET_PROVIDERS)
        ck.error([*path, "provider"], f"unknown secrets provider {provider!r}" + (f"; did you mean `{near}`?" if near else ""),
                 hint=f"one of: {', '.join(SECRET_PROVIDERS)}")
        return None
    if provider == "aws":
        ck.table(raw, path, AWS_KEYS, "aws secrets")
        ids: list[str] = []
        if "secret-ids" in raw:
            value = raw["secret-ids"]
            if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
                ids.extend(value)
            else:
                ck.error([*path, "secret-ids"], "expected a non-empty list of secret names or ARNs")
        if "secret-id" in raw:
            one = ck.string(raw, "secret-id", path)
            if one:
                ids.append(one)
        if not ids and "secret-ids" not in raw and "secret-id" not in raw:
            ck.error([*path, "provider"], "provider \"aws\" needs `secret-ids`",
                     hint='add secret-ids = ["myapp/production"]')
        endpoint = ck.string(raw, "endpoint-url", path)
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            ck.error([*path, "endpoint-url"], f"expected an http(s) URL, got {endpoint!r}")
        return AwsSecretsConfig(tuple(dict.fromkeys(ids)), region=ck.string(raw, "region", path), endpoint_url=endpoint)
    ck.table(raw, path, ENV_FILE_KEYS, "env-file secrets")
    file = ck.string(raw, "path", path, required=True)
    if file is None:
        return None
    p = Path(file)
    return EnvFileSecretsConfig(p if p.is_absolute() else root / p)


def _read_proxy(ck: _Checker, root: Path, raw: Any, path: list[str], default_dir: Path) -> ProxyConfig | None:
    table = ck.table(raw, path, PROXY_KEYS, "a proxy")
    if not isinstance(raw, dict):
        return None
    kind = ck.string(table, "kind", path) or "nginx"
    if kind not in PROXY_KINDS:
        near = _near(kind, PROXY_KINDS)
        ck.error([*path, "kind"], f"unknown proxy kind {kind!r}" + (f"; did you mean `{near}`?" if near else ""),
                 hint=f"one of: {', '.join(PROXY_KINDS)}")
    host, port = "127.0.0.1", None
    if "listen" in table:
        listen = table["listen"]
        if isinstance(listen, str) and ":" in listen:
            h, _, p = listen.rpartition(":")
            if p.isdigit() and 1 <= int(p) <= 65535 and h:
                host, port = h.strip("[]"), int(p)
            else:
                ck.error([*path, "listen"], f"expected a port or \"host:port\", got {listen!r}")
        else:
            port = ck.port(table, "listen", path)

    def opt_path(key: str) -> Path | None:
        v = ck.string(table, key, path)
        if v is None:
            return None
        p = Path(v)
        return p if p.is_absolute() else root / p

    conf = opt_path("conf")
    if conf is not None and not conf.is_file():
        ck.error([*path, "conf"], f"no such file: {conf}")
    return ProxyConfig(kind=kind, listen_host=host, listen_port=port, conf_dir=opt_path("conf-dir") or default_dir,
                       conf=conf, prefix=opt_path("prefix"), binary=ck.string(table, "binary", path) or "nginx")


def _check_environment_services(ck: _Checker, env: EnvironmentConfig) -> None:
    ports: dict[int, str] = {}
    routes: dict[str, str] = {}
    for svc in env.services.values():
        path = ["environments", env.name, "services", svc.name]
        if not locate(ck.cfg.text, [*ck.base, *path]):
            path = ["services", svc.name]
        if env.proxy is not None:
            if svc.public_port is None and svc.route is None:
                ck.error(path, f"needs `public-port` or `route` for environment `{env.name}` (it has a proxy)",
                         hint="public-port = 8080 gives the service its own port on the proxy; route = \"/api\" shares the proxy's listen port")
            elif svc.public_port is not None and svc.route is not None:
                ck.error(path, f"has both `public-port` and `route` in environment `{env.name}`; keep one")
            if svc.route is not None and env.proxy.listen_port is None:
                ck.error(["environments", env.name, "proxy"], f"service `{svc.name}` has a route, so the proxy needs `listen`",
                         hint="add listen = 8080")
            if svc.public_port is not None and svc.public_port == env.proxy.listen_port:
                ck.error(path, f"public-port {svc.public_port} is the proxy's listen port in environment `{env.name}`")
        else:
            if svc.route is not None:
                ck.error(path, f"has a `route` but environment `{env.name}` has no proxy",
                         hint=f"add [deploy.environments.{env.name}.proxy] or use public-port")
            if svc.public_port is None:
                ck.error(path, f"needs `public-port` for environment `{env.name}` (no proxy)")
        if svc.public_port is not None:
            other = ports.setdefault(svc.public_port, svc.name)
            if other != svc.name:
                ck.error(path, f"public-port {svc.public_port} is also used by `{other}` in environment `{env.name}`")
        if svc.route is not None:
            other = routes.setdefault(svc.route.rstrip("/") or "/", svc.name)
            if other != svc.name:
                ck.error(path, f"route {svc.route} is also used by `{other}` in environment `{env.name}`")


def load_deploy_config(
    settings: Settings,
    config_file: ConfigFile | None = None,
    env: Mapping[str, str] | None = None,
) -> DeployConfig:
    """Validate ``settings.deploy`` and return a DeployConfig.

    ``config_file`` (default: ``load_config_file(settings.root)``) gives file:line locations;
    ``env`` supplies ``DOCKER_HOST`` for the default engine. Every problem is collected and
    raised together as ConfigErrors (one problem: ConfigError), unknown keys with did-you-mean.
    """
    env = env or {}
    if config_file is None:
        config_file = load_config_file(settings.root) if settings.config_path is not None else ConfigFile(None, {})
    root = settings.root
    ck = _Checker(config_file)
    raw: Any = settings.deploy
    top = ck.table(raw, [], TOP_KEYS, "the deploy table")

    engine = ck.string(top, "engine", [])
    if engine is not None and not engine.startswith(("unix://", "tcp://", "ssh://", "npipe://", "http://", "https://")):
        ck.error(["engine"], f"expected an engine address like unix:///run/podman/podman.sock, got {engine!r}",
                 hint="the same form as DOCKER_HOST: unix://, tcp://, ssh:// or npipe://")
    engine = engine or env.get("DOCKER_HOST") or None
    registry = ck.string(top, "registry", [])
    if registry is not None:
        if "://" in registry:
            ck.error(["registry"], f"expected host[:port][/namespace] without a scheme, got {registry!r}",
                     hint='e.g. registry = "registry.example.com/team" or "127.0.0.1:5000"')
            registry = None
        else:
            registry = registry.rstrip("/")
    keep = ck.whole(top, "keep", [], DEFAULT_KEEP, 1)
    lock_wait = ck.number(top, "lock-wait", [], DEFAULT_LOCK_WAIT)

    services: dict[str, ServiceConfig] = {}
    raw_services = top.get("services", {})
    if not isinstance(raw_services, dict):
        ck.error(["services"], f"expected a table of services, got {_kind(raw_services)}")
        raw_services = {}
    for name, svc_raw in raw_services.items():
        svc = _read_service(ck, root, name, svc_raw)
        if svc is not None:
            services[name] = svc

    environments: dict[str, EnvironmentConfig] = {}
    raw_envs = top.get("environments", {})
    if not isinstance(raw_envs, dict):
        ck.error(["environments"], f"expected a table of environments, got {_kind(raw_envs)}")
        raw_envs = {}
    for ename, env_raw in raw_envs.items():
        path = ["environments", ename]
        if not _NAME.match(ename):
            ck.error(path, "environment names may hold letters, digits, '.', '_' and '-' only")
            continue
        etable = ck.table(env_raw, path, ENVIRONMENT_KEYS, "an environment")
        if not isinstance(env_raw, dict):
            continue
        secrets = _read_secrets(ck, root, etable["secrets"], [*path, "secrets"]) if "secrets" in etable else None
        proxy = None
        if "proxy" in etable:
            proxy = _read_proxy(ck, root, etable["proxy"], [*path, "proxy"],
                                settings.state_path / "deploy" / ename / "nginx")
        merged = dict(services)
        overrides = etable.get("services", {})
        if not isinstance(overrides, dict):
            ck.error([*path, "services"], f"expected a table of service overrides, got {_kind(overrides)}")
            overrides = {}
        for sname, over_raw in overrides.items():
            opath = [*path, "services", sname]
            if sname not in raw_services:
                near = suggest(sname, list(raw_services))
                ck.error(opath, "overrides a service that is not in [deploy.services]"
                         + (f"; did you mean `{near}`?" if near else ""))
                continue
            otable = ck.table(over_raw, opath, OVERRIDE_KEYS, "a per-environment service override")
            fields = _read_service_keys(ck, otable, opath)
            if sname in merged:
                if "public_port" in fields and "route" not in fields:
                    fields["route"] = None
                if "route" in fields and "public_port" not in fields:
                    fields["public_port"] = None
                merged[sname] = replace(merged[sname], **fields)
        environment = EnvironmentConfig(
            name=ename, secrets=secrets, proxy=proxy,
            keep=ck.whole(etable, "keep", path, keep, 1),
            lock_wait=ck.number(etable, "lock-wait", path, lock_wait),
            services=merged,
        )
        _check_environment_services(ck, environment)
        environments[ename] = environment
    _raise(ck.errors)
    return DeployConfig(engine=engine, registry=registry, keep=keep, lock_wait=lock_wait,
                        environments=environments, services=services, config_path=config_file.path, root=root)


__all__ = [
    "PROXY_KINDS", "SECRET_PROVIDERS", "AwsSecretsConfig", "DeployConfig", "EnvFileSecretsConfig", "EnvVar",
    "EnvironmentConfig", "ProxyConfig", "SecretsConfig", "ServiceConfig", "load_deploy_config", "locate",
]
