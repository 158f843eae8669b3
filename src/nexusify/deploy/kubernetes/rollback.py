"""``nexusify rollback`` of a Kubernetes environment: the Service's selector back to the color a
deploy kept. Read from the cluster (:mod:`.cluster`): the live color is what the Service selects,
the kept one is the other color, and it is a rollback target only when its Deployment exists and
is available (every replica ready). Nothing is rebuilt, no Secret is touched (the kept color keeps
the Secret it started with), no migration is downgraded. All services are checked before any moves.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nexusify.deploy.config.types import DeployConfig, KubernetesConfig
from nexusify.deploy.kubernetes.cluster import ColorState, read_service
from nexusify.deploy.kubernetes.history import ConfigMapHistory
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.deploy.kubernetes.steps import Step, switch_step
from nexusify.deploy.result import DeployFailed, DeployResult
from nexusify.deploy.state.history import DeploymentRecord, ServiceRecord, utc_now, who
from nexusify.errors import DeployError, NexusifyError


@dataclass(frozen=True)
class Move:
    service: str
    live: ColorState
    kept: ColorState


@dataclass
class RollbackPlan:
    environment: str
    cluster: KubernetesConfig
    moves: list[Move]
    steps: list[Step]

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "action": "rollback",
                "kubernetes": {"context": self.cluster.context, "namespace": self.cluster.namespace},
                "services": [{"service": m.service, "from": m.live.to_dict(), "to": m.kept.to_dict()}
                             for m in self.moves],
                "steps": [s.to_dict() for s in self.steps]}

    def lines(self) -> list[str]:
        out = [f"Rollback plan: environment {self.environment} (Kubernetes: context {self.cluster.context}, "
               f"namespace {self.cluster.namespace})"]
        for n, step in enumerate(self.steps, 1):
            out.append(f"{n:>3}. [{step.stage}] {step.what}")
            out.append(f"     {step.command(self.cluster.context, self.cluster.namespace)}")
        out.append("then the rollback is recorded in ConfigMap nexusify-history (`nexusify history`)")
        return out


def _problem(service: str, live: ColorState | None, kept: ColorState | None, kept_name: str,
             to_version: str | None) -> str | None:
    serving = live.describe() if live is not None else "its Deployment is missing"
    if kept is None:
        return (f"service `{service}`: nothing kept to roll back to: Deployment {kept_name} does not exist "
                f"(live: {serving})")
    if to_version is not None and kept.version != to_version:
        return f"service `{service}`: --to {to_version}: the kept version is {kept.version} ({kept.deployment})"
    if not kept.available:
        return f"service `{service}`: the kept {kept.describe()} is not available ({kept.readiness()})"
    return None


def plan_rollback(config: DeployConfig, environment: str, kubectl: Kubectl, *, services: Sequence[str] | None = None,
                  to_version: str | None = None) -> RollbackPlan:
    """Read the cluster and plan the switch back; DeployError (exit 1) naming every service that has
    nothing to roll back to. Unnamed services that were never deployed are left out."""
    env_cfg = config.environment(environment)
    assert env_cfg.kubernetes is not None
    chosen = config.select_services(environment, list(services) if services else None)
    moves: list[Move] = []
    problems: list[str] = []
    for svc in chosen:
        state = read_service(kubectl, svc.name)
        if state.live is None:
            if services:
                problems.append(f"service `{svc.name}`: no Service {svc.name} in namespace {kubectl.namespace} "
                                "(never deployed)")
            continue
        assert state.kept_color is not None
        kept, live = state.kept_state, state.live_state
        problem = _problem(svc.name, live, kept, f"{svc.name}-{state.kept_color}", to_version)
        if problem is not None:
            problems.append(problem)
        elif kept is not None and live is not None:
            moves.append(Move(svc.name, live, kept))
        elif kept is not None:  # the live Deployment is gone: switching back is the repair
            moves.append(Move(svc.name, ColorState(state.live, f"{svc.name}-{state.live}", None, None, 0, 0), kept))
    if problems:
        raise DeployError("; ".join(problems), hint="a rollback switches to the color the last deploy kept; "
                          "deploy the version you want instead (`nexusify deploy --tag VERSION`)")
    if not moves:
        raise DeployError(f"nothing is deployed to {environment} (namespace {kubectl.namespace}): nothing to roll back",
                          hint=f"`nexusify status -e {environment}` shows what runs there")
    steps = [switch_step(m.service, m.live.color, m.kept.color,
                         f"{m.live.version or '?'} -> {m.kept.version or '?'}; {m.live.deployment} is kept")
             for m in moves]
    return RollbackPlan(environment, env_cfg.kubernetes, moves, steps)


def run_rollback(plan: RollbackPlan, kubectl: Kubectl, *, env: Mapping[str, str] | None = None,
                 on_step: Callable[[str], None] = lambda _m: None) -> DeployResult:
    """Patch each Service back and record the rollback (success or not) in the cluster's history;
    DeployFailed with the partial result when a patch fails."""
    start, started_at = time.monotonic(), utc_now()
    result = DeployResult(plan.environment, "rollback", None)
    done: list[Move] = []
    cause: NexusifyError | None = None
    try:
        for move, step in zip(plan.moves, plan.steps, strict=True):
            on_step(f"[{step.stage}] {step.what}")
            kubectl.execute(step)
            done.append(move)
    except DeployError as exc:
        cause = exc
    except KeyboardInterrupt:  # recorded as aborted (what moved and what did not), then stop
        with contextlib.suppress(DeployError):
            _record(plan, kubectl, done, started_at, time.monotonic() - start, env, "aborted", "interrupted")
        raise
    result.duration = time.monotonic() - start
    result.stages = {"switch": result.duration}
    result.outcome = "success" if cause is None else "failed"
    versions = {m.kept.version for m in done}
    result.version = versions.pop() if len(versions) == 1 and cause is None else None
    for m in plan.moves:
        result.services.append({"service": m.service, "previous_version": m.live.version, "version": m.kept.version,
                                "from_color": m.live.color, "to_color": m.kept.color,
                                "container": m.kept.deployment, "switched": m in done})
    try:
        result.record_id = _record(plan, kubectl, done, started_at, result.duration, env, result.outcome,
                                   cause.message if cause is not None else None)
    except DeployError as exc:
        if cause is None:
            cause = DeployError(f"the rollback switched, but was not recorded: {exc.message}", hint=exc.hint)
    if cause is not None:
        result.error = cause.message
        raise DeployFailed(cause, result)
    return result


def _record(plan: RollbackPlan, kubectl: Kubectl, done: list[Move], started_at: str, duration: float,
            env: Mapping[str, str] | None, outcome: str, error: str | None) -> str:
    """Append the rollback to the cluster's history; its id."""
    record = DeploymentRecord(
        environment=plan.environment, action="rollback", outcome=outcome, started_at=started_at,
        finished_at=utc_now(), duration=duration, who=who(env),
        services=tuple(ServiceRecord(m.service, m.kept.version or "?", image=m.kept.image,
                                     previous_version=m.live.version,
                                     outcome=None if m in done else "failed") for m in plan.moves),
        stages={"switch": duration}, error=error)
    return ConfigMapHistory(kubectl, plan.environment).append(record)[0].id


__all__ = ["Move", "RollbackPlan", "plan_rollback", "run_rollback"]
