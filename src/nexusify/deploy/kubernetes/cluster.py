"""What a service is on the cluster now, read from kubectl's JSON: the color its Service selects
(the switch) and, per color, the Deployment's version (its ``io.nexusify.version`` label), image
and readiness (``readyReplicas`` of ``replicas``). ``rollback`` and ``status`` read this, and a
deploy reads the live version it records as the previous one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nexusify.deploy.config.types import DeployConfig
from nexusify.deploy.kubernetes import names
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.errors import ConfigError


@dataclass(frozen=True)
class ColorState:
    """One color's Deployment as the cluster reports it."""

    color: str
    deployment: str
    version: str | None  # io.nexusify.version; None on a Deployment nexusify did not label
    image: str | None
    replicas: int  # spec.replicas (what it should run)
    ready: int  # status.readyReplicas (pods passing the readiness probe: the health path)

    @property
    def available(self) -> bool:
        """Every pod it should run is ready (and it runs at least one): it can take traffic now."""
        return self.replicas >= 1 and self.ready >= self.replicas

    def readiness(self) -> str:
        return f"{self.ready}/{self.replicas} ready"

    def describe(self) -> str:
        return f"Deployment {self.deployment} ({self.version or 'no version label'})"

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "deployment": self.deployment, "version": self.version, "image": self.image,
                "replicas": self.replicas, "ready": self.ready, "available": self.available}


@dataclass(frozen=True)
class ServiceState:
    """A service on the cluster: ``live`` is the color its Service selects (None: no Service yet)."""

    service: str
    live: str | None
    colors: Mapping[str, ColorState] = field(default_factory=dict)  # the Deployments that exist

    @property
    def kept_color(self) -> str | None:
        """The color a rollback would switch to (whether or not its Deployment exists)."""
        return names.other_color(self.live) if self.live is not None else None

    @property
    def live_state(self) -> ColorState | None:
        return self.colors.get(self.live) if self.live is not None else None

    @property
    def kept_state(self) -> ColorState | None:
        kept = self.kept_color
        return self.colors.get(kept) if kept is not None else None

    @property
    def exists(self) -> bool:
        return self.live is not None or bool(self.colors)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def color_state(obj: Mapping[str, Any], color: str, name: str) -> ColorState:
    """One Deployment (kubectl's JSON) as a :class:`ColorState`."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    labels = meta.get("labels") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    image = containers[0].get("image") if containers and isinstance(containers[0], dict) else None
    version = labels.get(names.LABEL_VERSION)
    return ColorState(color=color, deployment=name, version=version if isinstance(version, str) else None,
                      image=image if isinstance(image, str) else None,
                      replicas=_int(spec.get("replicas", 1)), ready=_int(status.get("readyReplicas")))


def kubectl_for(config: DeployConfig, environment: str, env: Mapping[str, str] | None = None) -> Kubectl:
    """kubectl bound to the environment's context and namespace (ConfigError for an engine environment)."""
    env_cfg = config.environment(environment)
    if env_cfg.kubernetes is None:
        raise ConfigError(f"environment `{environment}` is not a Kubernetes environment", path=config.config_path)
    return Kubectl(env_cfg.kubernetes.context, env_cfg.kubernetes.namespace, env=env)


def read_service(kubectl: Kubectl, service: str) -> ServiceState:
    """The service's Service and both colors' Deployments, as the cluster has them now."""
    svc = kubectl.get("service", service)
    live = names.color_of(svc, service) if svc is not None else None
    colors: dict[str, ColorState] = {}
    for color in names.COLORS:
        name = names.deployment(service, color)
        obj = kubectl.get("deployment", name)
        if obj is not None:
            colors[color] = color_state(obj, color, name)
    return ServiceState(service, live, colors)


__all__ = ["ColorState", "ServiceState", "color_state", "kubectl_for", "read_service"]
