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
  engine's API address, e.g. ``unix:///run/podman/podman.sock`` or ``tcp://10.0.0.7:2376`` (TLS from
  ``DOCKER_CERT_PATH``/``DOCKER_TLS_VERIFY``, as for ``tcp://`` hosts below).
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
- ``hosts`` (list, optional): the engines the environment runs on, each an address
  ``"ssh://user@host[:port]"`` (the system's ssh client and keys), ``"tcp://host:2376"`` (TLS from
  ``DOCKER_CERT_PATH``/``DOCKER_TLS_VERIFY``) or ``"unix:///path.sock"``, or a table
  ``{url = "...", bind = "10.0.0.5"}`` whose ``bind`` is the address the host's proxy publishes on
  (default: all). Needs ``proxy.kind = "container"``. Without ``hosts``: the single ``engine``.
- ``primary`` (string, optional): the host (its address as in ``hosts``, or ``user@host[:port]``)
  that holds the deploy lock and runs the migrations. Without it, the host that already holds
  the environment's lock (the ``nexusify-ENV-primary`` volume its first deploy left) keeps it,
  wherever the list puts it; the first host only when none does. Two hosts that both hold it
  (the list was reordered while two clones deployed for the first time) are an error until
  ``primary`` names one.
- ``kubernetes`` (table, optional): ``{ context = "...", namespace = "..." }``: the environment is a
  namespace of a cluster (``kubectl --context --namespace``). Per service a Deployment per color, a
  Service whose selector is the switch, a migration Job and a Secret made from ``secrets`` at apply
  time (values on kubectl's stdin only). Needs ``registry``; excludes ``hosts``, ``primary``,
  ``proxy`` and service ``route``. Both keys are required: a deploy never goes to whatever
  context is current.
- ``secrets`` (table, optional): where secret values come from.
  - ``provider = "aws"``: AWS Secrets Manager. ``secret-ids`` (list; or ``secret-id``, one
    string): each secret is a JSON object ``{"NAME": "value", ...}``, read at version stage
    ``AWSCURRENT``; later ids override earlier ones. ``region`` (default: ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION``), ``endpoint-url`` (e.g. a VPC endpoint or a local moto server).
    Credentials come from the usual AWS chain (environment, profile, instance role).
  - ``provider = "env-file"``: ``path`` of a ``KEY=VALUE`` file (``#`` comments, ``export``
    prefix and quotes allowed), for local use. Keep it out of version control.
- ``proxy`` (table, optional): the reverse proxy that switches traffic blue-green.
  - ``kind`` (default ``"nginx"``: a local nginx; ``"container"``: an nginx container
    ``nexusify-<environment>-proxy`` on every host, on the network ``nexusify-<environment>``
    it shares with the service containers, publishing ``listen``).
  - ``image`` (kind ``"container"``): the proxy image, default the official ``nginx`` image.
    Without ``hosts`` the container runs on the single engine and publishes on ``listen``'s
    address (default ``127.0.0.1``); with ``hosts``, on each host's ``bind`` (default: all).
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

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from nexusify.config import ConfigFile, Settings, load_config_file, suggest
from nexusify.deploy.config.checker import Checker, kind_of, locate, raise_all
from nexusify.deploy.config.kubernetes import (
    check_kubernetes_environment,
    check_kubernetes_services,
    read_kubernetes,
)
from nexusify.deploy.config.sections import (
    NAME,
    OVERRIDE_KEYS,
    PROXY_KINDS,
    SECRET_PROVIDERS,
    check_environment_services,
    read_hosts,
    read_proxy,
    read_secrets,
    read_service,
    read_service_keys,
)
from nexusify.deploy.config.types import (
    AwsSecretsConfig,
    DeployConfig,
    EnvFileSecretsConfig,
    EnvironmentConfig,
    EnvVar,
    ProxyConfig,
    SecretsConfig,
    ServiceConfig,
)
from nexusify.deploy.runtime.hosts import HostSpec, host_url_problem

TOP_KEYS = ("engine", "registry", "keep", "lock-wait", "environments", "services")
ENVIRONMENT_KEYS = ("keep", "lock-wait", "secrets", "proxy", "services", "hosts", "primary", "kubernetes")
DEFAULT_KEEP = 3
DEFAULT_LOCK_WAIT = 0.0


def _primary_first(ck: Checker, etable: Mapping[str, Any], path: list[str],
                   hosts: tuple[HostSpec, ...]) -> tuple[tuple[HostSpec, ...], str | None]:
    """(``hosts`` with the ``primary`` host first, its address; None when not named). Without it
    the lock host is found on the hosts (:mod:`~nexusify.deploy.state.primary`)."""
    primary = ck.string(etable, "primary", path)
    if primary is None:
        return hosts, None
    if not hosts:
        ck.error([*path, "primary"], "names the lock host of `hosts`, and the environment has none",
                 hint="remove `primary`, or list the environment's `hosts`")
        return hosts, None
    found = next((h for h in hosts if primary in (h.url, h.name)), None)
    if found is None:
        near = suggest(primary, [h.url for h in hosts])
        ck.error([*path, "primary"], f"{primary!r} is not one of `hosts`" + (f"; did you mean {near!r}?" if near else ""),
                 hint="primary is a host's address exactly as `hosts` lists it")
        return hosts, None
    return (found, *(h for h in hosts if h is not found)), found.url


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
    ck = Checker(config_file)
    raw: Any = settings.deploy
    top = ck.table(raw, [], TOP_KEYS, "the deploy table")

    engine = ck.string(top, "engine", [])
    if engine is not None and not engine.startswith(("unix://", "tcp://", "ssh://", "npipe://", "http://", "https://")):
        ck.error(["engine"], f"expected an engine address like unix:///run/podman/podman.sock, got {engine!r}",
                 hint="the same form as DOCKER_HOST: unix://, tcp://, ssh:// or npipe://")
    elif engine is not None and engine.startswith("ssh://") and (problem := host_url_problem(engine)):
        ck.error(["engine"], problem, hint="ssh://user@host[:port]: the system's ssh client, its keys and ~/.ssh/config")
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
        ck.error(["services"], f"expected a table of services, got {kind_of(raw_services)}")
        raw_services = {}
    for name, svc_raw in raw_services.items():
        svc = read_service(ck, root, name, svc_raw)
        if svc is not None:
            services[name] = svc

    environments: dict[str, EnvironmentConfig] = {}
    raw_envs = top.get("environments", {})
    if not isinstance(raw_envs, dict):
        ck.error(["environments"], f"expected a table of environments, got {kind_of(raw_envs)}")
        raw_envs = {}
    for ename, env_raw in raw_envs.items():
        path = ["environments", ename]
        if not NAME.match(ename):
            ck.error(path, "environment names may hold letters, digits, '.', '_' and '-' only")
            continue
        etable = ck.table(env_raw, path, ENVIRONMENT_KEYS, "an environment")
        if not isinstance(env_raw, dict):
            continue
        secrets = read_secrets(ck, root, etable["secrets"], [*path, "secrets"]) if "secrets" in etable else None
        proxy = None
        if "proxy" in etable:
            proxy = read_proxy(ck, root, etable["proxy"], [*path, "proxy"],
                                settings.state_path / "deploy" / ename / "nginx")
        hosts = read_hosts(ck, etable["hosts"], [*path, "hosts"]) if "hosts" in etable else ()
        kubernetes = None
        if "kubernetes" in etable:
            kubernetes = read_kubernetes(ck, etable["kubernetes"], [*path, "kubernetes"])
            check_kubernetes_environment(ck, etable, path, registry)
        elif hosts and (proxy is None or proxy.kind != "container"):
            ck.error([*path, "hosts"], "an environment with `hosts` needs a proxy container on each host",
                     hint=f'add [deploy.environments.{ename}.proxy] with kind = "container" and listen = 80')
        hosts, primary = _primary_first(ck, etable, path, hosts)
        merged = dict(services)
        overrides = etable.get("services", {})
        if not isinstance(overrides, dict):
            ck.error([*path, "services"], f"expected a table of service overrides, got {kind_of(overrides)}")
            overrides = {}
        for sname, over_raw in overrides.items():
            opath = [*path, "services", sname]
            if sname not in raw_services:
                near = suggest(sname, list(raw_services))
                ck.error(opath, "overrides a service that is not in [deploy.services]"
                         + (f"; did you mean `{near}`?" if near else ""))
                continue
            otable = ck.table(over_raw, opath, OVERRIDE_KEYS, "a per-environment service override")
            fields = read_service_keys(ck, otable, opath)
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
            services=merged, hosts=hosts, primary=primary, kubernetes=kubernetes,
        )
        if "kubernetes" in etable:
            check_kubernetes_services(ck, environment, overrides)
        else:
            check_environment_services(ck, environment)
        environments[ename] = environment
    raise_all(ck.errors)
    return DeployConfig(engine=engine, registry=registry, keep=keep, lock_wait=lock_wait,
                        environments=environments, services=services, config_path=config_file.path, root=root)


__all__ = [
    "PROXY_KINDS", "SECRET_PROVIDERS", "AwsSecretsConfig", "DeployConfig", "EnvFileSecretsConfig", "EnvVar",
    "EnvironmentConfig", "ProxyConfig", "SecretsConfig", "ServiceConfig", "load_deploy_config", "locate",
]
