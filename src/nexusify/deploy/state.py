"""The deploy state of an environment: which container serves each service (``live``) and the
transition in flight, in ``<state>/deploy/<environment>/state.json``, rewritten atomically before
each phase so a killed deploy can be finished or undone. A damaged file is an error naming it,
never read as empty (the next save would drop the other services' records)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nexusify.deploy.switch import Target
from nexusify.errors import DeployError
from nexusify.files import confined, write_atomic

STATE_VERSION = 1


class DamagedState(DeployError):
    """A deploy state or history file that cannot be read; nothing is written over it."""


@dataclass(frozen=True)
class Slot:
    """A container that serves, served, or is about to serve a version of a service."""

    container: str  # container name
    version: str
    image: str  # reference (tag) it was created from
    image_id: str
    port: int
    created: float = 0.0
    secret_versions: str = ""

    def target(self, host: str) -> Target:
        return Target(host=host, port=self.port, name=self.container, version=self.version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Slot | None:
        if not data:
            return None
        return cls(container=str(data["container"]), version=str(data["version"]), image=str(data.get("image", "")),
                   image_id=str(data.get("image_id", "")), port=int(data["port"]),
                   created=float(data.get("created", 0.0)), secret_versions=str(data.get("secret_versions", "")))




class StateStore:
    """``<state_path>/deploy/<environment>/state.json`` (one per host of an environment with hosts:
    ``.../hosts/<host>/state.json``), rewritten atomically before each transition."""

    def __init__(self, state_path: Path, environment: str, host: str | None = None) -> None:
        base = Path(state_path) / "deploy" / environment
        if host:
            base = base / "hosts" / re.sub(r"[^A-Za-z0-9_.@-]", "_", host)
        # confined to the state folder: a repository shipping .nexusify/deploy/<env> as a symlink is refused
        self.path = confined(state_path, base.relative_to(state_path) / "state.json", source=str(base / "state.json"),
                             what="deploy state", plain=True)

    def load(self) -> dict[str, Any]:
        """The whole state; empty when the file does not exist yet. DamagedState (exit 1) when it
        cannot be read or does not have the expected shape: never guessed, never overwritten."""
        fix = (f"restore it from a backup, or move it away (nexusify then forgets which containers serve "
               f"{self.path.parent.name}; `nexusify history` shows what was deployed) and deploy again")
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": STATE_VERSION, "services": {}}
        except (OSError, UnicodeDecodeError) as exc:
            raise DamagedState(f"cannot read the deploy state: {exc}", path=self.path, hint=fix) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DamagedState(f"the deploy state is not valid JSON: {exc.msg}", path=self.path, line=exc.lineno,
                               column=exc.colno, hint=fix) from None
        problem = _shape_problem(data)
        if problem is not None:
            raise DamagedState(f"the deploy state is damaged: {problem}", path=self.path, hint=fix)
        assert isinstance(data, dict)
        return data

    def service(self, name: str) -> dict[str, Any]:
        entry = self.load()["services"].get(name)
        return dict(entry) if isinstance(entry, dict) else {"live": None, "transition": None}

    def save_service(self, name: str, entry: Mapping[str, Any]) -> None:
        data = self.load()
        data["services"][name] = dict(entry)
        data["version"] = STATE_VERSION
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _shape_problem(data: Any) -> str | None:
    """What is wrong with the shape of a state file's content (None: nothing)."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    services = data.get("services")
    if not isinstance(services, dict):
        return "expected a \"services\" object"
    for name, entry in services.items():
        if not isinstance(entry, dict):
            return f"service {name!r}: expected an object with \"live\" and \"transition\""
        for key in ("live", "transition"):
            value = entry.get(key)
            if value is not None and not isinstance(value, dict):
                return f"service {name!r}: {key!r} must be an object or null"
        slots = [("live", entry.get("live"))]
        transition = entry.get("transition")
        if isinstance(transition, dict):
            slots += [(f"transition.{k}", transition.get(k)) for k in ("green", "blue")]
            for key in ("action", "phase"):
                if key in transition and not isinstance(transition[key], str):
                    return f"services.{name}.transition.{key}: expected a string"
        for key, slot in slots:
            problem = _slot_problem(slot)
            if problem is not None:
                return f"services.{name}.{key}" + problem
    return None


_SLOT_TYPES: dict[str, tuple[type, ...]] = {
    "container": (str,), "version": (str,), "image": (str,), "image_id": (str,), "secret_versions": (str,),
    "port": (int,), "created": (int, float),
}


def _slot_problem(slot: Any) -> str | None:
    """What is wrong with one container record (``live``, a transition's ``green``/``blue``):
    ``": lacks ..."`` or ``".port: ..."``, to follow its key; None when it is fine or absent."""
    if slot is None:
        return None
    if not isinstance(slot, dict):
        return ": must be an object or null"
    if not all(k in slot for k in ("container", "version", "port")):
        return ": lacks container, version or port"
    for key, types in _SLOT_TYPES.items():
        value = slot.get(key)
        if key in slot and (isinstance(value, bool) or not isinstance(value, types)):
            return f".{key}: expected {'a number' if key != 'port' and int in types else types[0].__name__}, found {value!r}"
    if not 0 < slot["port"] < 65536:
        return f".port: {slot['port']} is not a port number"
    return None


__all__ = ["STATE_VERSION", "DamagedState", "Slot", "StateStore"]
