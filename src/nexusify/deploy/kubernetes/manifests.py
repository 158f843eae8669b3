"""The Kubernetes objects of one service, as plain dicts (what ``kubectl apply -f -`` reads).

Nothing here holds a secret value except :func:`secret_manifest`, whose result only ever goes to
kubectl's stdin (:mod:`.runner`): the others reference the Secret by name (``secretKeyRef``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexusify.deploy.config.types import ServiceConfig
from nexusify.deploy.kubernetes import names
from nexusify.deploy.migrations import core
from nexusify.deploy.migrations.container import WORKDIR, payload
from nexusify.deploy.migrations.local import script_location
from nexusify.deploy.runtime import engine
from nexusify.errors import DeployError

Manifest = dict[str, Any]
#: where the migration runner (``migrations/core.py``) sits in the Job's ConfigMap volume
RUNNER = "nexusify-migrate.py"
#: how long a migration Job may run before Kubernetes stops it
MIGRATION_DEADLINE = int(core.LOCK_TIMEOUT) + 600


@dataclass(frozen=True)
class Target:
    """What one service's objects are rendered from: the environment's namespace, the new image and
    the color it starts as."""

    environment: str
    namespace: str
    service: ServiceConfig
    image: str  # <registry>/<image>:<version>
    version: str
    color: str


def _meta(t: Target, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": t.namespace, "labels": dict(labels)}


def _env(t: Target, *, database: bool = False) -> list[dict[str, Any]]:
    """The container's environment: plain values inline, secrets by reference to the color's Secret."""
    secret = names.secret(t.service.name, t.color)
    out: list[dict[str, Any]] = []
    for var in t.service.env:
        if var.secret is not None:
            out.append({"name": var.name, "valueFrom": {"secretKeyRef": {"name": secret, "key": var.secret}}})
        else:
            out.append({"name": var.name, "value": var.value or ""})
    if database and t.service.database_url is not None:
        db = t.service.database_secret
        out = [e for e in out if e["name"] != "DATABASE_URL"]
        out.append({"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": db}}}
                   if db else {"name": "DATABASE_URL", "value": t.service.database_url})
    return out


def _probe(t: Target, *, liveness: bool) -> dict[str, Any]:
    svc = t.service
    period = max(1, math.ceil(svc.health_interval))
    probe: dict[str, Any] = {"httpGet": {"path": svc.health_path, "port": svc.container_port},
                             "periodSeconds": period, "timeoutSeconds": max(1, min(period, 5)),
                             "failureThreshold": 3}
    if liveness:  # a slow start is readiness's business (health-timeout), not a reason to restart
        probe["initialDelaySeconds"] = max(1, math.ceil(svc.health_timeout))
        probe["periodSeconds"] = max(period, 10)
        probe["timeoutSeconds"] = 5
    return probe


def deployment_manifest(t: Target) -> Manifest:
    labels = names.labels(t.service.name, t.environment, t.version, t.color)
    container: dict[str, Any] = {
        "name": t.service.name,
        "image": t.image,
        "ports": [{"containerPort": t.service.container_port, "protocol": "TCP"}],
        "readinessProbe": _probe(t, liveness=False),
        "livenessProbe": _probe(t, liveness=True),
    }
    env = _env(t)
    if env:
        container["env"] = env
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(t, names.deployment(t.service.name, t.color), labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": names.selector(t.service.name, t.color)},
            # health-timeout bounds the wait for readiness; image pulls come on top
            "progressDeadlineSeconds": math.ceil(t.service.health_timeout) + 300,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container],
                         "terminationGracePeriodSeconds": max(1, math.ceil(t.service.drain_timeout)) + 5},
            },
        },
    }


def service_manifest(t: Target) -> Manifest:
    """The switch: its selector's ``color`` says which Deployment serves."""
    port = t.service.public_port or t.service.container_port
    labels = {k: v for k, v in names.labels(t.service.name, t.environment, t.version).items()
              if k != names.LABEL_VERSION}  # the Service outlives versions
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(t, t.service.name, labels),
        "spec": {"selector": names.selector(t.service.name, t.color),
                 "ports": [{"name": "http", "port": port, "targetPort": t.service.container_port,
                            "protocol": "TCP"}]},
    }


def _text(path: Path, service: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"service `{service}`: cannot ship {path} in the migration ConfigMap: {exc}",
                          path=path) from None


def migration_manifests(t: Target) -> list[Manifest]:
    """The ConfigMap (the runner, alembic.ini and the scripts of the working copy) and the Job that
    runs ``alembic upgrade heads`` from the new image under the advisory lock; [] without migrations."""
    svc = t.service
    if svc.migrations is None:
        return []
    files, inside = payload(svc.migrations, script_location(svc.name, svc.migrations))
    name = names.migration(svc.name, t.version)
    labels = names.labels(svc.name, t.environment, t.version, role=engine.ROLE_MIGRATION)
    data = {RUNNER: _text(Path(core.__file__), svc.name)}
    items = [{"key": RUNNER, "path": RUNNER}]
    for n, (arcname, path) in enumerate(files):
        key = f"f{n}-{Path(arcname).name}"  # ConfigMap keys are flat; items put each file back in place
        data[key] = _text(path, svc.name)
        items.append({"key": key, "path": arcname})
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(t, name, labels), "data": data}
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": _meta(t, name, labels),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": MIGRATION_DEADLINE,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "migrate", "image": t.image, "workingDir": WORKDIR,
                        "command": ["python3", f"{WORKDIR}/{RUNNER}", f"{WORKDIR}/alembic.ini", "-", inside,
                                    str(core.LOCK_TIMEOUT)],
                        "env": _env(t, database=True),
                        "volumeMounts": [{"name": "migrations", "mountPath": WORKDIR, "readOnly": True}],
                    }],
                    "volumes": [{"name": "migrations", "configMap": {"name": name, "items": items}}],
                },
            },
        },
    }
    return [config_map, job]


def secret_manifest(t: Target, values: Mapping[str, str]) -> Manifest:
    """The color's Secret WITH its values: only for kubectl's stdin, never printed or written."""
    labels = names.labels(t.service.name, t.environment, t.version, t.color)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(t, names.secret(t.service.name, t.color), labels),
            "stringData": dict(values)}


def service_objects(t: Target) -> list[Manifest]:
    """Every object of the service a deploy applies, in order (the Secret aside: it holds values)."""
    return [*migration_manifests(t), deployment_manifest(t), service_manifest(t)]


__all__ = ["MIGRATION_DEADLINE", "RUNNER", "Manifest", "Target", "deployment_manifest", "migration_manifests",
           "secret_manifest", "service_manifest", "service_objects"]
