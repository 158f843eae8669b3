"""The deployment history of a Kubernetes environment, kept in the cluster: the ConfigMap
``nexusify-history`` of the namespace holds the last :data:`KEEP` records (one JSON line each, the
same :class:`~nexusify.deploy.state.history.DeploymentRecord` as the engines' history), so every
clone and every CI runner sees the same history. Records hold versions, images and secret version
ids, never a secret value (a record is redacted with the deploy's values before it is written).

An append reads the ConfigMap, adds its line and writes it back with ``kubectl replace`` carrying
the ``resourceVersion`` it read (``create`` when there is none): a concurrent writer makes the
write fail, and the append reads again and retries.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from nexusify.deploy.kubernetes import names
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.deploy.kubernetes.steps import Step
from nexusify.deploy.secrets import SecretBundle
from nexusify.deploy.state.history import DeploymentRecord, new_record_id, record_line
from nexusify.errors import DeployError

NAME = "nexusify-history"
KEY = "history.jsonl"
#: records kept (a ConfigMap holds at most 1 MiB; a record is about 1 KiB)
KEEP = 100
ATTEMPTS = 5


def _version(obj: dict[str, Any] | None) -> str | None:
    meta = (obj or {}).get("metadata") or {}
    rv = meta.get("resourceVersion")
    return rv if isinstance(rv, str) else None


def _lines(obj: dict[str, Any] | None) -> list[str]:
    data = (obj or {}).get("data") or {}
    text = data.get(KEY, "")
    return [line for line in text.splitlines() if line.strip()] if isinstance(text, str) else []


class ConfigMapHistory:
    """The :class:`~nexusify.deploy.protocols.HistoryBackend` of a Kubernetes environment."""

    def __init__(self, kubectl: Kubectl, environment: str, *, keep: int = KEEP) -> None:
        self.kubectl = kubectl
        self.environment = environment
        self.keep = keep

    def where(self) -> str:
        return f"ConfigMap {NAME} ({self.kubectl.context}/{self.kubectl.namespace})"

    def records(self) -> tuple[list[DeploymentRecord], list[str]]:
        """The environment's records, oldest first (a namespace may hold several environments); one
        copy in the cluster, so no warning of a copy not read."""
        out: list[DeploymentRecord] = []
        for n, line in enumerate(_lines(self.kubectl.get("configmap", NAME)), 1):
            try:
                rec = DeploymentRecord.from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise DeployError(f"{self.where()}: record {n} is damaged: {exc}",
                                  hint=f"kubectl --context={self.kubectl.context} --namespace="
                                  f"{self.kubectl.namespace} edit configmap/{NAME}") from None
            if rec.environment == self.environment:
                out.append(rec)
        return out, []

    def manifest(self, lines: list[str], resource_version: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": NAME, "namespace": self.kubectl.namespace,
                                "labels": {names.LABEL_MANAGED: "true"}}
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {KEY: "".join(f"{line}\n" for line in lines[-self.keep:])}}

    def append(self, record: DeploymentRecord, secrets: SecretBundle | None = None) -> tuple[DeploymentRecord, list[str]]:
        """Add ``record`` (any value of ``secrets`` in it replaced by ``<hidden>``); returns it with its
        id (one copy, in the cluster: a failed write is an error, never a warning)."""
        if not record.id:
            record = replace(record, id=new_record_id())
        line = record_line(record, secrets)
        for _ in range(ATTEMPTS):
            current = self.kubectl.get("configmap", NAME)
            seen = _version(current)
            verb = "replace" if current is not None else "create"
            step = Step("record", "", f"record the {record.action} in {self.where()}", (verb, "-f", "-"),
                        manifest=self.manifest([*_lines(current), line], seen))
            try:
                self.kubectl.execute(step)
                return record, []
            except DeployError:
                if _version(self.kubectl.get("configmap", NAME)) == seen:
                    raise  # nobody wrote in between: the failure is not a race
        raise DeployError(f"{self.where()}: the history kept changing under {ATTEMPTS} attempts to add a record",
                          hint="another deploy or rollback of the namespace is writing; run `nexusify history` "
                          "to see what it recorded")


__all__ = ["KEEP", "KEY", "NAME", "ConfigMapHistory"]
