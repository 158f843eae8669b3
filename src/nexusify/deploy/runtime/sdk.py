"""The one boundary between deploy and the Docker SDK: every engine failure becomes a typed error here.

Docker answers "gone" with 404 and "name taken" with 409; Podman's compatible API sometimes answers
both with a 500 and a sentence ("no such container", "image not known", "already in use"), and
netavark's firewall setup fails now and then in a way a second try gets past. Those rules live in
:func:`classify` only: the rest of deploy catches :class:`NotFound`, :class:`Conflict`,
:class:`Transient` (all :class:`EngineError`, a :class:`~nexusify.errors.DeployError`) and never
reads an engine's message.

:func:`guard` wraps a ``docker.DockerClient`` so that every call made through it (``client.api.x``,
``client.containers.get(...).stop()``, streamed results) raises those types; SDK objects passed back
as arguments are unwrapped first, so the SDK sees its own objects.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from typing import Any

from nexusify.errors import DeployError


class EngineError(DeployError):
    """The container engine refused or failed a call; ``status`` is its HTTP status (0: none)."""

    def __init__(self, message: str, *, status: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class NotFound(EngineError):
    """The object (container, image, volume, network) does not exist (or is being removed)."""


class ImageNotFound(NotFound):
    """The image a call needs is not on the engine."""


class Conflict(EngineError):
    """The name is taken, or the object is in a state the call does not accept."""


class Transient(EngineError):
    """A failure a second try gets past (netavark's iptables races, EAGAIN)."""


class Unreachable(EngineError):
    """The engine did not answer (connection refused or reset, timeout)."""


# Podman's 500s that mean 404 / 409, and the transient ones (netavark's iptables setup racing
# another start on the same host: "Chain already exists", "CHAIN_USER_ADD failed (File exists)").
_GONE = ("no such", "not found", "not known")
_IMAGE_GONE = ("no such image", "image not known", "image not found")
_TAKEN = ("already in use", "already exists")
_TRANSIENT = ("chain already exists", "chain_user_add failed (file exists)", "resource temporarily unavailable")


def classify(exc: BaseException) -> EngineError | None:
    """The typed error for an SDK failure; None for anything that is not one (it propagates as is)."""
    module = type(exc).__module__
    if isinstance(exc, EngineError):
        return exc
    status = getattr(exc, "status_code", None)
    if module.startswith("docker.") and hasattr(exc, "status_code"):  # docker.errors.APIError and subclasses
        text = str(exc)
        low = text.lower()
        code = int(status or 0)
        if any(t in low for t in _TRANSIENT):
            return Transient(text, status=code)
        if type(exc).__name__ == "ImageNotFound" or (code in (404, 500) and any(t in low for t in _IMAGE_GONE)):
            return ImageNotFound(text, status=code)
        if code == 404 or (code == 500 and any(t in low for t in _GONE)):
            return NotFound(text, status=code)
        if code == 409 or any(t in low for t in _TAKEN):
            return Conflict(text, status=code)
        return EngineError(text, status=code)
    if module.startswith(("requests.", "urllib3.")) or isinstance(exc, ConnectionError | TimeoutError):
        return Unreachable(f"the engine did not answer: {type(exc).__name__}: {exc}")
    return None


def _translated(exc: BaseException) -> BaseException:
    typed = classify(exc)
    return typed if typed is not None else exc


def _unwrap(value: Any) -> Any:
    return object.__getattribute__(value, "_target") if isinstance(value, Guarded) else value


def _wrap(value: Any) -> Any:
    """SDK objects come back guarded; plain data (dicts, strings, bytes, numbers) as it is."""
    if value is None or isinstance(value, str | bytes | int | float | bool | dict | tuple):
        return value
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if isinstance(value, Iterator):
        return _stream(value)
    if type(value).__module__.startswith("docker."):
        return Guarded(value)
    return value


def _stream(items: Iterator[Any]) -> Iterator[Any]:
    try:
        for item in items:
            yield _wrap(item)
    except Exception as exc:
        raise _translated(exc) from exc


def _call(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()})
        except Exception as exc:
            typed = classify(exc)
            if typed is None:
                raise
            raise typed from exc
        return _wrap(result)

    return call


class Guarded:
    """An SDK object (client, collection, model, API client) whose calls raise :class:`EngineError` types."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        try:  # a property may call the engine too (``container.image``)
            value = getattr(object.__getattribute__(self, "_target"), name)
        except AttributeError:
            raise
        except Exception as exc:
            typed = classify(exc)
            if typed is None:
                raise
            raise typed from exc
        if isinstance(value, types.MethodType | types.FunctionType | functools.partial):
            return _call(value)
        return _wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_target"), name, value)

    def __eq__(self, other: object) -> bool:
        return bool(object.__getattribute__(self, "_target") == _unwrap(other))

    def __hash__(self) -> int:
        return hash(object.__getattribute__(self, "_target"))

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_target"))


def guard(client: Any) -> Any:
    """``client`` (a ``docker.DockerClient``) behind the boundary: its failures raise typed errors."""
    return client if isinstance(client, Guarded) else Guarded(client)


def unwrap(value: Any) -> Any:
    """The SDK's own object behind a guarded one (for code outside deploy that passes it on)."""
    return _unwrap(value)


__all__ = [
    "Conflict", "EngineError", "Guarded", "ImageNotFound", "NotFound", "Transient", "Unreachable", "classify",
    "guard", "unwrap",
]
