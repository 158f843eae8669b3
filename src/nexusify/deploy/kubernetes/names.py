"""Object names and labels of the Kubernetes target (one place for each rule)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from nexusify.deploy.config.kubernetes import LABEL_VALUE
from nexusify.deploy.runtime import engine
from nexusify.errors import DeployError, UsageError

COLORS = ("blue", "green")
LABEL_APP = "app"
LABEL_COLOR = "color"
# the version, environment, role and managed labels are the ones nexusify puts on engine containers
# (``io.nexusify.version`` ...: valid Kubernetes label keys as they are)
LABEL_VERSION = engine.LABEL_VERSION
LABEL_ENVIRONMENT = engine.LABEL_ENVIRONMENT
LABEL_MANAGED = engine.LABEL_MANAGED
LABEL_ROLE = engine.LABEL_ROLE


def next_color(live: str | None) -> str:
    """The color a deploy starts: the one the Service does not select (blue on a first deploy)."""
    return "green" if live == "blue" else "blue"


def color_of(service_obj: Mapping[str, Any], service: str) -> str:
    """The color a Service (kubectl's JSON) selects: the switch; DeployError when it is not one nexusify made."""
    spec = service_obj.get("spec")
    selector = spec.get("selector") if isinstance(spec, dict) else None
    color = selector.get(LABEL_COLOR) if isinstance(selector, dict) else None
    if color not in COLORS:
        raise DeployError(f"service `{service}`: the Service selects color {color!r}, not blue or green",
                          hint="nexusify switches by color=blue|green; this Service is not one it made")
    return str(color)


def other_color(color: str) -> str:
    return "green" if color == "blue" else "blue"


def deployment(service: str, color: str) -> str:
    return f"{service}-{color}"


def secret(service: str, color: str) -> str:
    """One Secret per color: the kept color keeps the values it was started with (rollback)."""
    return f"{service}-{color}-env"


def migration(service: str, version: str) -> str:
    """The migration Job (and its ConfigMap) of ``version``: a new version, a new Job."""
    return f"{service}-mig-{hashlib.sha256(version.encode()).hexdigest()[:8]}"


def label_value(value: str, what: str) -> str:
    """``value`` if Kubernetes takes it as a label value, else UsageError naming ``what``."""
    if len(value) > 63 or not LABEL_VALUE.match(value):
        raise UsageError(f"{what} {value!r} is not a Kubernetes label value",
                         hint="at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    return value


def labels(service: str, environment: str, version: str, color: str | None = None,
           role: str | None = None) -> dict[str, str]:
    out = {LABEL_APP: service}
    if color is not None:
        out[LABEL_COLOR] = color
    out[LABEL_VERSION] = label_value(version, "version")
    out[LABEL_MANAGED] = "true"
    out[LABEL_ENVIRONMENT] = label_value(environment, "environment name")
    if role is not None:
        out[LABEL_ROLE] = role
    return out


def selector(service: str, color: str) -> dict[str, str]:
    """What a Deployment selects and what the Service's switch points at."""
    return {LABEL_APP: service, LABEL_COLOR: color}


__all__ = ["COLORS", "LABEL_APP", "LABEL_COLOR", "LABEL_ENVIRONMENT", "LABEL_MANAGED", "LABEL_ROLE", "LABEL_VERSION",
           "color_of", "deployment", "label_value", "labels", "migration", "next_color", "other_color", "secret", "selector"]
