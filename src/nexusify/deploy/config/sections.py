"""The readers of the deploy table's sections: services (and their per-environment overrides),
secrets, proxy, and the checks across an environment's services (ports, routes)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexusify.deploy.config.checker import Checker, closest, has_password, kind_of, locate
from nexusify.deploy.config.types import (
    DEFAULT_PROXY_IMAGE,
    SECRET_REF,
    AwsSecretsConfig,
    EnvFileSecretsConfig,
    EnvironmentConfig,
    EnvVar,
    ProxyConfig,
    SecretsConfig,
    ServiceConfig,
)
from nexusify.deploy.runtime.hosts import HostSpec, bind_problem, host_url_problem

PROXY_KINDS: tuple[str, ...] = ("nginx", "container")
SECRET_PROVIDERS: tuple[str, ...] = ("aws", "env-file")
AWS_KEYS = ("provider", "secret-ids", "secret-id", "region", "endpoint-url")
ENV_FILE_KEYS = ("provider", "path")
PROXY_KEYS = ("kind", "listen", "conf-dir", "conf", "prefix", "binary", "image")
HOST_KEYS = ("url", "bind")
SERVICE_KEYS = (
    "folder", "container-port", "dockerfile", "image", "health-path", "health-timeout",
    "health-interval", "drain-timeout", "public-port", "route", "migrations", "database-url", "env",
)
OVERRIDE_KEYS = (
    "public-port", "route", "health-path", "health-timeout", "health-interval", "drain-timeout",
    "database-url", "env",
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_env(ck: Checker, value: Any, path: list[str]) -> tuple[EnvVar, ...]:
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
            elif isinstance(raw, str) and raw.startswith(SECRET_REF):
                secret = raw[len(SECRET_REF):]
                if not secret:
                    ck.error([*path, name], "`secret:` needs a secret name, e.g. \"secret:API_KEY\"")
                    continue
                out.append(EnvVar(name, secret=secret))
            elif isinstance(raw, str):
                out.append(EnvVar(name, value=raw))
            else:
                ck.error([*path, name], f"expected a string, number or boolean, got {kind_of(raw)}")
    else:
        ck.error(path, f"expected a list of secret names or a table, got {kind_of(value)}")
    return tuple(out)


def read_service_keys(ck: Checker, table: Mapping[str, Any], path: list[str]) -> dict[str, Any]:
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
            if url.startswith(SECRET_REF):
                if not url[len(SECRET_REF):]:
                    ck.error([*path, "database-url"], "`secret:` needs a secret name, e.g. \"secret:DATABASE_URL\"")
                    url = None
            elif has_password(url):
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
        fields["env"] = read_env(ck, table["env"], [*path, "env"])
    return fields


def read_service(ck: Checker, root: Path, name: str, raw: Any) -> ServiceConfig | None:
    path = ["services", name]
    if not NAME.match(name):
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
    common = read_service_keys(ck, table, path)
    if "migrations" in table and "database-url" not in table:
        ck.error([*path, "migrations"], "needs `database-url` (where to migrate)",
                 hint='add database-url = "secret:DATABASE_URL"')
    if folder is None or port is None:
        return None
    return ServiceConfig(name=name, folder=folder, container_port=port, dockerfile=dockerfile, image=image,
                         migrations=migrations, **common)


def read_secrets(ck: Checker, root: Path, raw: Any, path: list[str]) -> SecretsConfig | None:
    if not isinstance(raw, dict):
        ck.error(path, f"expected a table, got {kind_of(raw)}")
        return None
    provider = ck.string(raw, "provider", path, required=True)
    if provider is None:
        return None
    if provider not in SECRET_PROVIDERS:
        near = closest(provider, SECRET_PROVIDERS)
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


def read_proxy(ck: Checker, root: Path, raw: Any, path: list[str], default_dir: Path) -> ProxyConfig | None:
    table = ck.table(raw, path, PROXY_KEYS, "a proxy")
    if not isinstance(raw, dict):
        return None
    kind = ck.string(table, "kind", path) or "nginx"
    if kind not in PROXY_KINDS:
        near = closest(kind, PROXY_KINDS)
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
    image = ck.string(table, "image", path)
    if image is not None and kind != "container":
        ck.error([*path, "image"], "`image` is for proxy kind \"container\" (an nginx container on every host)",
                 hint='add kind = "container", or remove image')
    if kind == "container" and ("conf" in table or "prefix" in table or "binary" in table):
        ck.error([*path, "kind"], "conf, prefix and binary are for the local nginx (kind \"nginx\"); "
                 "the container proxy's configuration is nexusify's own")
    return ProxyConfig(kind=kind, listen_host=host, listen_port=port, conf_dir=opt_path("conf-dir") or default_dir,
                       conf=conf, prefix=opt_path("prefix"), binary=ck.string(table, "binary", path) or "nginx",
                       image=image or DEFAULT_PROXY_IMAGE)


def read_hosts(ck: Checker, raw: Any, path: list[str]) -> tuple[HostSpec, ...]:
    """``hosts = ["ssh://user@host", {url = "tcp://h:2376", bind = "10.0.0.5"}, ...]``."""
    if not isinstance(raw, list) or not raw:
        ck.error(path, f"expected a non-empty list of host addresses, got {kind_of(raw)}",
                 hint='e.g. hosts = ["ssh://deploy@203.0.113.10", {url = "ssh://deploy@203.0.113.11", bind = "10.0.0.5"}]')
        return ()
    hosts: list[HostSpec] = []
    for i, item in enumerate(raw):
        where = f"host {i + 1}: "
        url: str | None
        bind: str | None = None
        if isinstance(item, str):
            url = item
        elif isinstance(item, dict):
            unknown = [k for k in item if k not in HOST_KEYS]
            for k in unknown:
                near = closest(k, HOST_KEYS)
                ck.error(path, f"{where}unknown key `{k}`" + (f"; did you mean `{near}`?" if near else ""),
                         hint="a host table has url and bind")
            url = item.get("url") if isinstance(item.get("url"), str) else None
            if url is None:
                ck.error(path, f"{where}needs `url` (a string)", hint='{url = "ssh://deploy@host", bind = "10.0.0.5"}')
                continue
            raw_bind = item.get("bind")
            if raw_bind is not None:
                problem = bind_problem(raw_bind) if isinstance(raw_bind, str) else f"expected a string, got {kind_of(raw_bind)}"
                if problem:
                    ck.error(path, f"{where}{problem}")
                else:
                    bind = raw_bind
        else:
            ck.error(path, f"{where}expected an address or a table {{url, bind}}, got {kind_of(item)}")
            continue
        problem = host_url_problem(url.strip())
        if problem:
            ck.error(path, where + problem, hint="ssh://user@host[:port], tcp://host:port (TLS) or unix:///path.sock")
            continue
        spec = HostSpec(url=url.strip().rstrip("/"), bind=bind)
        if any(h.url == spec.url for h in hosts):
            ck.error(path, f"{where}{spec.url} is listed twice")
            continue
        hosts.append(spec)
    return tuple(hosts)


def check_environment_services(ck: Checker, env: EnvironmentConfig) -> None:
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



__all__ = [
    "NAME", "OVERRIDE_KEYS", "PROXY_KINDS", "SECRET_PROVIDERS", "SERVICE_KEYS", "check_environment_services",
    "read_hosts", "read_proxy", "read_secrets", "read_service", "read_service_keys",
]
