"""What nexusify keeps on a host besides the services: its names, its labels, and a marker image.

The deploy lock and the history live on the hosts as engine objects, because the engine is the
one thing every machine that deploys the environment can reach and the engine makes creating a
named object atomic (a second ``create`` of the same name fails). Both need a container that is
created but never started: the lock *is* such a container (``nexusify-ENV-lock``); the history is
a named volume (``nexusify-ENV-history``) written and read through a short-lived one. A container
is created from an image, and a fresh host may hold none, so nexusify imports a marker image of
its own: an empty filesystem (a few bytes), ``localhost/nexusify-marker:1``, that nothing runs.

Every object carries ``managed=true``, ``environment=ENV`` and a ``role`` label, so
``nexusify status`` and ``nexusify deploy down`` find them, and nothing else, by label.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from typing import Any

from nexusify.deploy.runtime.engine import LABEL_ENVIRONMENT, LABEL_MANAGED, LABEL_ROLE, Engine
from nexusify.deploy.runtime.sdk import EngineError, ImageNotFound, NotFound
from nexusify.errors import DeployError

MARKER_IMAGE = "localhost/nexusify-marker:1"
MARKER_COMMAND = ["/nexusify-marker-never-runs"]  # a created container needs a command; none is ever run
HISTORY_MOUNT = "/history"


def lock_name(environment: str) -> str:
    """The lock container of ``environment`` on its primary host."""
    return f"nexusify-{environment}-lock"


def history_volume(environment: str) -> str:
    """The named volume holding ``environment``'s history records, one file per record, on every host."""
    return f"nexusify-{environment}-history"


def primary_volume(environment: str) -> str:
    """The (empty) named volume that marks the host holding ``environment``'s deploy lock."""
    return f"nexusify-{environment}-primary"


def object_labels(environment: str, role: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels of an object nexusify creates on a host for ``environment``."""
    return {LABEL_MANAGED: "true", LABEL_ENVIRONMENT: environment, LABEL_ROLE: role, **(extra or {})}


def environment_filter(environment: str, role: str | None = None) -> dict[str, list[str]]:
    """An engine list filter for what nexusify created for ``environment`` (one role, or all)."""
    labels = [f"{LABEL_MANAGED}=true", f"{LABEL_ENVIRONMENT}={environment}"]
    if role is not None:
        labels.append(f"{LABEL_ROLE}={role}")
    return {"label": labels}


def volume_exists(engine: Engine, name: str) -> bool:
    """Does this host hold the named volume (any other failure propagates)?"""
    try:
        engine.client.api.inspect_volume(name)
    except NotFound:
        return False
    return True


def history_exists(engine: Engine, environment: str) -> bool:
    """Does this host hold the environment's history volume (any other failure propagates)?"""
    return volume_exists(engine, history_volume(environment))


def ensure_marker_image(engine: Engine) -> str:
    """The marker image on this host (imported from an empty tar the first time); its reference."""
    api = engine.client.api
    try:
        api.inspect_image(MARKER_IMAGE)
        return MARKER_IMAGE
    except NotFound:
        pass
    except EngineError as exc:
        raise DeployError(f"engine {engine.url}: cannot inspect the marker image: {exc.message}") from None
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass
    try:
        # the reference goes in `repository` (Podman ignores a separate `tag`)
        api.import_image_from_data(empty.getvalue(), repository=MARKER_IMAGE,
                                   changes=[f"LABEL {LABEL_MANAGED}=true", f"LABEL {LABEL_ROLE}=marker"])
        api.inspect_image(MARKER_IMAGE)
    except EngineError as exc:
        raise DeployError(f"engine {engine.url}: cannot import nexusify's marker image {MARKER_IMAGE}: {exc.message}",
                          hint="the engine must accept image imports (docker import)") from None
    return MARKER_IMAGE


def create_marker_container(engine: Engine, name: str, labels: Mapping[str, str],
                            volume: str | None = None) -> str:
    """Create (never start) a container from the marker image; returns its id. The engine's
    exception propagates unchanged: :class:`~nexusify.deploy.runtime.sdk.Conflict` for a taken name."""
    api = engine.client.api
    kwargs: dict[str, Any] = {}
    if volume is not None:
        kwargs["host_config"] = api.create_host_config(binds={volume: {"bind": HISTORY_MOUNT, "mode": "rw"}})
        kwargs["volumes"] = [HISTORY_MOUNT]
    try:  # the image is there after the first time: one round trip, not two (a rollback is timed)
        created = api.create_container(MARKER_IMAGE, command=MARKER_COMMAND, name=name, labels=dict(labels), **kwargs)
    except ImageNotFound:
        ensure_marker_image(engine)
        created = api.create_container(MARKER_IMAGE, command=MARKER_COMMAND, name=name, labels=dict(labels), **kwargs)
    return str(created["Id"])


def remove_container(engine: Engine, ident: str) -> bool:
    """Remove a container by id or name; False when it was already gone."""
    try:
        engine.client.api.remove_container(ident, force=True)
    except NotFound:
        return False
    return True


def inspect_container(engine: Engine, ident: str) -> dict[str, Any] | None:
    """The container's inspect data, or None when there is none of that id or name."""
    try:
        data = engine.client.api.inspect_container(ident)
    except NotFound:
        return None
    return dict(data)


__all__ = [
    "HISTORY_MOUNT", "MARKER_IMAGE", "create_marker_container", "ensure_marker_image", "environment_filter",
    "history_exists", "history_volume", "inspect_container", "lock_name", "object_labels", "primary_volume",
    "remove_container", "volume_exists",
]
