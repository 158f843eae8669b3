"""The ``kubernetes = { context = "...", namespace = "..." }`` key of an environment, and what a
Kubernetes environment asks of its services (names that are Kubernetes object names, secret names
that are Secret keys, no proxy routes: the Service is the switch)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nexusify.deploy.config.checker import Checker, kind_of
from nexusify.deploy.config.types import EnvironmentConfig, KubernetesConfig

KUBERNETES_KEYS = ("context", "namespace")
#: a DNS-1123 label: namespaces, and the service part of every object name
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: the keys of a Secret's data
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: the longest service name: its objects are ``<service>-green-env`` and ``<service>-mig-<8 hex>`` (63 at most)
MAX_SERVICE = 63 - len("-mig-12345678")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def read_kubernetes(ck: Checker, raw: Any, path: list[str]) -> KubernetesConfig | None:
    """``kubernetes = { context = "prod", namespace = "shop" }``: both required (a deploy never goes
    to whatever context happens to be current)."""
    example = 'kubernetes = { context = "prod-cluster", namespace = "shop" }'
    if not isinstance(raw, dict):
        ck.error(path, f"expected a table {{context, namespace}}, got {kind_of(raw)}", hint=example)
        return None
    table = ck.table(raw, path, KUBERNETES_KEYS, "the kubernetes table")
    context = ck.string(table, "context", path, required=True)
    if context is not None and (_CONTROL.search(context) or context.startswith("-")):
        ck.error([*path, "context"], f"not a kubectl context name: {context!r}",
                 hint="the name `kubectl config get-contexts` lists")
        context = None
    namespace = ck.string(table, "namespace", path, required=True)
    if namespace is not None and (len(namespace) > 63 or not DNS_LABEL.match(namespace)):
        ck.error([*path, "namespace"], f"not a Kubernetes namespace name: {namespace!r}",
                 hint="lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63")
        namespace = None
    if context is None or namespace is None:
        return None
    return KubernetesConfig(context=context, namespace=namespace)


def check_kubernetes_environment(ck: Checker, etable: Mapping[str, Any], path: list[str],
                                 registry: str | None) -> None:
    """The keys a Kubernetes environment cannot have, and the registry it needs."""
    for key, why in (("hosts", "the cluster places the pods"),
                     ("primary", "the cluster places the pods; the migration Job runs once"),
                     ("proxy", "the Service is the switch (its selector picks the color)")):
        if key in etable:
            ck.error([*path, key], f"`{key}` and `kubernetes` exclude each other: {why}",
                     hint=f"remove `{key}`, or deploy this environment to engines without `kubernetes`")
    name = path[-1]
    if len(name) > 63 or not LABEL_VALUE.match(name):
        ck.error(path, f"environment `{name}` is a Kubernetes label value (io.nexusify.environment), and not a "
                 "valid one", hint="at most 63 characters, starting and ending with a letter or digit")
    if registry is None:
        ck.error([*path, "kubernetes"], "a Kubernetes environment needs [deploy] `registry`: the cluster pulls "
                 "the image from it", hint='add registry = "registry.example.com/team" to [deploy]')


def check_kubernetes_services(ck: Checker, env: EnvironmentConfig, overrides: Mapping[str, Any]) -> None:
    """Service names that name Kubernetes objects, secret names that are Secret keys, no routes.
    ``overrides``: the environment's ``services`` table (a key set there is reported there)."""
    for svc in env.services.values():
        over = overrides.get(svc.name)

        def where(key: str, name: str = svc.name, over: Any = over) -> list[str]:
            if isinstance(over, dict) and key in over:
                return ["environments", env.name, "services", name]
            return ["services", name]

        if len(svc.name) > MAX_SERVICE or not DNS_LABEL.match(svc.name):
            ck.error(["services", svc.name], f"`{svc.name}` names Kubernetes objects in environment `{env.name}`, "
                     "and is not a valid one",
                     hint=f"lowercase letters, digits and '-', starting and ending with a letter or digit, "
                     f"at most {MAX_SERVICE}")
        if svc.route is not None:
            ck.error([*where("route"), "route"], f"a `route` needs a proxy, and environment `{env.name}` is Kubernetes "
                     "(no Ingress is rendered)", hint="remove route; the Service serves the service's port")
        env_secrets = {v.secret for v in svc.env if v.secret}
        for name in svc.secret_names:
            if not SECRET_KEY.match(name):
                key = "database-url" if name == svc.database_secret and name not in env_secrets else "env"
                ck.error([*where(key), key], f"secret name {name!r} is not a Kubernetes Secret key "
                         f"(environment `{env.name}`)", hint="letters, digits, '-', '_' and '.'")


__all__ = ["DNS_LABEL", "KUBERNETES_KEYS", "LABEL_VALUE", "MAX_SERVICE", "SECRET_KEY", "check_kubernetes_environment",
           "check_kubernetes_services", "read_kubernetes"]
