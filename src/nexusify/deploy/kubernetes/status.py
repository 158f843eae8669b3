"""``nexusify status`` of a Kubernetes environment: per service, the color its Service selects and
that Deployment's version, image and readiness, and the kept color (what ``rollback`` would switch
to), all from kubectl's JSON. The report has the engines' shape (:class:`EnvironmentStatus`, one
"host": ``context/namespace``); a live color whose Deployment is missing or not ready is a problem
(exit 1), as an unhealthy live container is on engines."""

from __future__ import annotations

from dataclasses import dataclass

from nexusify.deploy.config.types import EnvironmentConfig
from nexusify.deploy.kubernetes.cluster import ColorState, ServiceState, read_service
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.deploy.state.status import EnvironmentStatus, ServiceOnHost


@dataclass(frozen=True)
class KubeServiceStatus(ServiceOnHost):
    """:class:`ServiceOnHost` plus the colors: ``live``/``kept`` hold versions as on engines."""

    live_color: str | None = None
    kept_color: str | None = None
    image: str | None = None  # the live Deployment's image
    kept_image: str | None = None
    kept_ready: str | None = None  # "1/1 ready" of the kept Deployment; None when there is none


def service_status(where: str, state: ServiceState) -> KubeServiceStatus:
    live, kept = state.live_state, state.kept_state
    if state.live is None:  # Deployments, but no Service: a first deploy that stopped before its switch
        health, healthy = "no Service selects a color yet", None
    elif live is None:
        health, healthy = (f"UNHEALTHY: the Service selects {state.live}, and Deployment "
                           f"{state.service}-{state.live} does not exist"), False
    elif live.available:
        health, healthy = live.readiness(), True
    else:
        health, healthy = f"NOT READY: {live.readiness()}", False
    others = [c for c in state.colors.values() if c.color != state.live]
    stored: ColorState | None = kept if state.live is not None else None
    return KubeServiceStatus(
        host=where, service=state.service, live=(live.version or "?",) if live else (),
        kept=tuple(c.version or "?" for c in others), health=health, healthy=healthy,
        containers=(live.deployment,) if live else (), live_color=state.live,
        kept_color=stored.color if stored else None, image=live.image if live else None,
        kept_image=stored.image if stored else None, kept_ready=stored.readiness() if stored else None)


def kubernetes_status(env_cfg: EnvironmentConfig, kubectl: Kubectl) -> EnvironmentStatus:
    """The environment's services as the cluster has them (services never deployed are left out)."""
    where = f"{kubectl.context}/{kubectl.namespace}"
    report = EnvironmentStatus(environment=env_cfg.name, hosts=[where])
    for svc in env_cfg.services.values():
        state = read_service(kubectl, svc.name)
        if state.exists:
            report.services.append(service_status(where, state))
    return report


__all__ = ["KubeServiceStatus", "kubernetes_status", "service_status"]
