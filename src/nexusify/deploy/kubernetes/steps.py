"""The kubectl steps of a Kubernetes deploy, as data (what ``--dry-run`` prints and :mod:`.runner` runs).

Order, across the services of one deploy (all or none, as on engines): each new color's Secret
(values from the provider on stdin) -> each migration Job, polled until it completes or fails (a failed
migration switches nothing) -> each new color's Deployment, waited for with ``rollout status`` (readiness = health
path) -> only then each Service's selector moves to the new color. The old color's Deployment and
Secret stay as they are: the rollback is one selector patch back.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nexusify.deploy.kubernetes import manifests as mf
from nexusify.deploy.kubernetes import names

#: server-side apply: no ``last-applied-configuration`` annotation (which would copy a Secret's
#: values into its metadata), and nexusify owns the fields it sets
APPLY = ("apply", "--server-side", "--field-manager=nexusify", "--force-conflicts", "-f", "-")
#: the types of a Job's conditions that hold (Complete, Failed, ...)
JOB_CONDITIONS = 'jsonpath={.status.conditions[?(@.status=="True")].type}'
#: rollout status waits for readiness (health-timeout) plus this for pulling the image
PULL_ALLOWANCE = 300


@dataclass(frozen=True)
class Poll:
    """Repeat a step's ``get`` until its output names one of ``done`` (success) or ``failed``
    (stop, with ``logs`` shown), every ``every`` seconds for at most the step's timeout."""

    done: frozenset[str]
    failed: frozenset[str]
    logs: tuple[str, ...] = ()
    every: float = 2.0


@dataclass(frozen=True)
class Step:
    """One kubectl call: its arguments (after ``--context``/``--namespace``), what it sends on stdin
    (a manifest, or the Secret of ``secret`` whose values the runner fills in), and a timeout."""

    stage: str
    service: str
    what: str
    args: tuple[str, ...]
    manifest: mf.Manifest | None = None
    secret: mf.Target | None = None
    timeout: float = 120.0
    poll: Poll | None = None

    def stdin_label(self) -> str | None:
        """What the step sends on stdin, in words (a Secret's values are never shown)."""
        if self.secret is not None:
            return f"Secret {names.secret(self.secret.service.name, self.secret.color)} (values elided)"
        if self.manifest is not None:
            return f"{self.manifest['kind']} {self.manifest['metadata']['name']}"
        return None

    def command(self, context: str, namespace: str) -> str:
        line = shlex.join(["kubectl", f"--context={context}", f"--namespace={namespace}", *self.args])
        if self.poll is not None:
            until = " or ".join(sorted(self.poll.done | self.poll.failed))
            return f"{line}  (every {self.poll.every:g}s until {until}, <= {self.timeout:g}s)"
        label = self.stdin_label()
        return f"{line}  < {label}" if label else line

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "service": self.service, "what": self.what, "args": list(self.args),
                "stdin": self.stdin_label()}


@dataclass(frozen=True)
class Switch:
    """One service of the deploy: its new color's target and the color the Service selects now."""

    target: mf.Target
    live: str | None  # None: no Service yet (a first deploy creates it)


def _apply(stage: str, manifest: mf.Manifest, what: str) -> Step:
    return Step(stage, manifest["metadata"]["labels"][names.LABEL_APP], what, APPLY, manifest=manifest)


def plan_steps(switches: Sequence[Switch]) -> list[Step]:
    """Every kubectl step of the deploy, in order (see the module's docstring)."""
    steps: list[Step] = []
    for sw in switches:
        t = sw.target
        keys = t.service.secret_names
        if keys:
            steps.append(Step("secrets", t.service.name,
                              f"create or replace Secret {names.secret(t.service.name, t.color)} (keys "
                              f"{', '.join(keys)}; values from the secrets provider on stdin, never shown)",
                              APPLY, secret=t))
    for sw in switches:
        objects = mf.migration_manifests(sw.target)
        if not objects:
            continue
        config_map, job = objects
        name = job["metadata"]["name"]
        steps.append(_apply("migrate", config_map, f"ConfigMap {name}: alembic.ini and the migration scripts"))
        steps.append(_apply("migrate", job, f"Job {name}: alembic upgrade heads from {sw.target.image}"))
        # `kubectl wait --for=condition=complete` would sit out the deadline on a failed Job: poll both
        steps.append(Step("migrate", sw.target.service.name, f"wait for Job {name} to complete (or fail)",
                          ("get", f"job/{name}", "-o", JOB_CONDITIONS), timeout=mf.MIGRATION_DEADLINE + 30,
                          poll=Poll(frozenset({"Complete"}), frozenset({"Failed"}),
                                    logs=("logs", f"job/{name}", "--tail=40"))))
    for sw in switches:
        t = sw.target
        dep = mf.deployment_manifest(t)
        name = dep["metadata"]["name"]
        wait = math.ceil(t.service.health_timeout) + PULL_ALLOWANCE
        steps.append(_apply("start", dep, f"Deployment {name} ({t.color}, {t.image})"))
        steps.append(Step("start", t.service.name, f"wait until {name} is ready ({t.service.health_path})",
                          ("rollout", "status", f"deployment/{name}", f"--timeout={wait}s"), timeout=wait + 30))
    for sw in switches:
        t = sw.target
        if sw.live is None:
            steps.append(_apply("switch", mf.service_manifest(t),
                                f"Service {t.service.name} selecting color={t.color} (first deploy)"))
        else:
            steps.append(switch_step(t.service.name, sw.live, t.color,
                                     f"Deployment {names.deployment(t.service.name, sw.live)} is kept for rollback"))
    return steps


def switch_step(service: str, live: str, color: str, note: str) -> Step:
    """Move the Service's selector from ``live`` to ``color`` (a deploy's switch, a rollback)."""
    patch = json.dumps({"spec": {"selector": names.selector(service, color)}}, separators=(",", ":"))
    return Step("switch", service, f"patch Service {service}: color {live} -> {color} ({note})",
                ("patch", f"service/{service}", "--type=merge", "-p", patch))


__all__ = ["APPLY", "JOB_CONDITIONS", "PULL_ALLOWANCE", "Poll", "Step", "Switch", "plan_steps", "switch_step"]
