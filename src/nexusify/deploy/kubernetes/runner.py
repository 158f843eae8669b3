"""The one runner of kubectl steps: ``kubectl --context --namespace ARGS``, manifests on stdin.

A Secret's values travel on stdin only (never argv, where ``ps`` shows them, never a file); what
kubectl prints is redacted with the same values before it reaches an error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from nexusify.deploy.kubernetes import manifests as mf
from nexusify.deploy.kubernetes import names
from nexusify.deploy.kubernetes.steps import Step
from nexusify.deploy.secrets import SecretBundle
from nexusify.errors import DeployError


class Kubectl:
    """kubectl bound to one context and namespace (the environment's ``kubernetes`` table)."""

    def __init__(self, context: str, namespace: str, *, env: Mapping[str, str] | None = None,
                 bundle: SecretBundle | None = None) -> None:
        self.context = context
        self.namespace = namespace
        self.env = dict(os.environ if env is None else env)
        self.bundle = bundle or SecretBundle()
        found = shutil.which("kubectl", path=self.env.get("PATH"))
        if found is None:
            raise DeployError("kubectl is not on PATH", hint="install kubectl; `kubectl config get-contexts` "
                              f"must list `{context}`")
        self.binary = found

    def argv(self, args: tuple[str, ...] | list[str]) -> list[str]:
        return [self.binary, f"--context={self.context}", f"--namespace={self.namespace}", *args]

    def run(self, args: tuple[str, ...] | list[str], *, stdin: str | None = None, timeout: float = 120.0,
            what: str = "kubectl") -> str:
        """Run kubectl; its stdout, or DeployError with its (redacted) stderr."""
        redact: Callable[[str], str] = self.bundle.redact
        try:
            proc = subprocess.run(self.argv(args), input=stdin if stdin is not None else "", capture_output=True,
                                  text=True, env=self.env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DeployError(f"{what}: kubectl did not answer within {timeout:g}s",
                              hint=f"check the cluster: kubectl --context={self.context} get pods") from None
        except OSError as exc:
            raise DeployError(f"{what}: cannot run kubectl: {exc}") from None
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
            raise DeployError(f"{what} failed (kubectl exit {proc.returncode}): {redact(tail)}",
                              hint=f"context {self.context}, namespace {self.namespace}")
        return proc.stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object as kubectl's JSON (``get KIND/NAME -o json``); None when it does not exist."""
        what = f"reading {kind}/{name}"
        out = self.run(("get", f"{kind}/{name}", "--ignore-not-found", "-o", "json"), what=what).strip()
        if not out:
            return None
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise DeployError(f"{what}: kubectl printed no JSON ({exc})",
                              hint=f"context {self.context}, namespace {self.namespace}") from None
        if not isinstance(data, dict):
            raise DeployError(f"{what}: kubectl printed {type(data).__name__}, not an object")
        return data

    def live_color(self, service: str) -> str | None:
        """The color the service's Service selects now; None when there is no Service yet."""
        obj = self.get("service", service)
        return names.color_of(obj, service) if obj is not None else None

    def stdin_of(self, step: Step) -> str | None:
        """What the step sends: its manifest, or its Secret with the values from the bundle."""
        if step.secret is not None:
            t = step.secret
            values = self.bundle.require(list(t.service.secret_names), what=f"service `{t.service.name}`")
            return json.dumps(mf.secret_manifest(t, {k: v.reveal() for k, v in values.items()}))
        if step.manifest is not None:
            return json.dumps(step.manifest)
        return None

    def execute(self, step: Step) -> str:
        what = f"service `{step.service}`: {step.what}" if step.service else step.what
        if step.poll is None:
            return self.run(step.args, stdin=self.stdin_of(step), timeout=step.timeout, what=what)
        deadline = time.monotonic() + step.timeout
        while True:
            out = self.run(step.args, what=what)
            seen = set(out.split())
            if seen & step.poll.done:
                return out
            if seen & step.poll.failed:
                logs = ""
                if step.poll.logs:
                    with contextlib.suppress(DeployError):
                        logs = self.run(step.poll.logs, what=what).strip()
                tail = "\n".join(logs.splitlines()[-20:])
                raise DeployError(f"{what}: {' '.join(sorted(seen & step.poll.failed))}"
                                  + (f"\n{self.bundle.redact(tail)}" if tail else ""),
                                  hint="nothing was switched; fix it and deploy a new tag")
            if time.monotonic() >= deadline:
                raise DeployError(f"{what}: still not done after {step.timeout:g}s",
                                  hint=f"kubectl --context={self.context} --namespace={self.namespace} "
                                  f"{shlex.join(step.args)}")
            time.sleep(step.poll.every)


__all__ = ["Kubectl"]
