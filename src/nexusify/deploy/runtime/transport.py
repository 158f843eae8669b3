"""Images reach every host: pulled from the registry the build pushed to, or, without a registry,
streamed from the build engine to the host's engine (``docker save | docker load`` through the
two APIs, chunk by chunk: no temp file, nothing written on the deploying machine).

A host that already has the image (same id: e.g. the build engine itself) gets nothing sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.runtime.images import BuiltImage, RegistryAuth, split_ref
from nexusify.deploy.runtime.sdk import EngineError, NotFound
from nexusify.errors import DeployError

CHUNK = 1 << 20
PROGRESS_EVERY = 32 << 20


def has_image(engine: Engine, image_id: str) -> bool:
    try:
        engine.client.images.get(image_id)
        return True
    except NotFound:
        return False


def ship_image(source: Engine, dest: Engine, img: BuiltImage, *, registry: str | None,
               auth: RegistryAuth | None = None, host: str = "", on_log: Callable[[str], None] | None = None) -> str:
    """Make ``img`` (its ref and id) present on ``dest``; returns how: "present", "pulled" or "streamed"."""
    log = on_log or (lambda _m: None)
    where = f"host {host}: " if host else ""
    if has_image(dest, img.image_id):
        _ensure_tag(dest, img)
        return "present"
    if registry:
        repo, tag = split_ref(img.ref)
        log(f"{where}pulling {img.ref}")
        try:
            dest.client.images.pull(repo, tag=tag, auth_config=auth.auth_config() if auth else None)
        except EngineError as exc:
            text = exc.message.replace(auth.password.reveal(), "***") if auth else exc.message
            raise DeployError(f"{img.service}: {where}pull of {img.ref} failed: {text}",
                              hint="can the host reach the registry (and log in to it)? traffic did not move") from None
        how = "pulled"
    else:
        log(f"{where}sending {img.ref} from the build engine (no registry)")
        try:
            stream = source.client.api.get_image(img.image_id or img.ref, chunk_size=CHUNK)
            for chunk in dest.client.api.load_image(_counted(stream, img, where, log)):
                if isinstance(chunk, dict) and (chunk.get("error") or chunk.get("errorDetail")):
                    raise DeployError(f"{img.service}: {where}loading {img.ref} failed: {chunk.get('error') or chunk}")
        except EngineError as exc:
            raise DeployError(f"{img.service}: {where}sending {img.ref} failed: {exc.message}",
                              hint="traffic did not move; or set [deploy] registry so hosts pull images") from None
        how = "streamed"
    if not has_image(dest, img.image_id):
        raise DeployError(f"{img.service}: {where}{img.ref} arrived with another id than {img.image_id[:19]}",
                          hint="the registry tag was overwritten meanwhile? deploy again")
    _ensure_tag(dest, img)
    return how


class EngineTransport:
    """The :class:`~nexusify.deploy.protocols.ImageTransport` of container engines: from ``source``
    (the build engine), pulled from ``registry`` when there is one, else streamed."""

    def __init__(self, source: Engine, registry: str | None, auth: RegistryAuth | None = None,
                 on_log: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.registry = registry
        self.auth = auth
        self.on_log = on_log

    def deliver(self, image: BuiltImage, dest: Engine, *, host: str = "") -> str:
        if dest is self.source:
            return "present"
        return ship_image(self.source, dest, image, registry=self.registry, auth=self.auth, host=host,
                          on_log=self.on_log)


def _counted(stream: Any, img: BuiltImage, where: str, log: Callable[[str], None]) -> Iterator[bytes]:
    sent = 0
    next_report = PROGRESS_EVERY
    for chunk in stream:
        sent += len(chunk)
        if sent >= next_report:
            log(f"{where}{img.service}: {sent >> 20} MiB sent")
            next_report += PROGRESS_EVERY
        yield chunk
    log(f"{where}{img.service}: {img.ref} sent ({max(1, sent >> 20)} MiB)")


def _ensure_tag(dest: Engine, img: BuiltImage) -> None:
    """The host's copy carries the deploy's ref too (containers and `history` name it)."""
    image = dest.client.images.get(img.image_id)
    if img.ref not in (image.tags or []) and f"localhost/{img.ref}" not in (image.tags or []):
        repo, tag = split_ref(img.ref)
        image.tag(repo, tag=tag)


__all__ = ["EngineTransport", "has_image", "ship_image"]
