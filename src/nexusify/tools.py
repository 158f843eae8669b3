"""The consumers' own tools nexusify runs (uv, Poetry, PDM, pip): one object per tool owns its
commands (the lock check, the re-lock that unlocks only the shared packages), how to install it,
the environment that gives it the index credentials (:func:`nexusify.credentials.tool_env`), and
one runner with one error rule for all. rewrite's and release's re-lock, and verify's checks and
hints, ask these, so a hint names the command that runs."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.credentials import Credentials, Secret, redact, tool_env
from nexusify.syntax.requirements import requirement_name

Which = Callable[..., str | None]


@dataclass(frozen=True)
class ToolRun:
    command: str  # as shown to the user
    returncode: int
    output: str  # stdout + stderr, credentials removed
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self, lines: int = 1) -> str:
        """The last meaningful lines of the output (tools put the verdict last)."""
        kept = [ln.strip() for ln in self.output.splitlines() if ln.strip()]
        errors = [ln for ln in kept if ("ERROR:" in ln or ln.lower().startswith(("error", "warning: lockfile")))
                  and "subprocess-exited-with-error" not in ln]
        chosen = errors[:lines] if errors else kept[-lines:]
        return " | ".join(chosen) if chosen else f"exit {self.returncode}"


def run_tool(argv: Sequence[str], cwd: Path, env: Mapping[str, str], secret: Credentials | Secret | None,
             timeout: float = 600) -> ToolRun:
    """Run one command of a tool: never raises for the tool's own failure (a timeout, a command that
    cannot start, a non-zero exit are a :class:`ToolRun` that says so); its output without the
    password."""
    shown = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
    password = secret.password if isinstance(secret, Credentials) else secret
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ToolRun(shown, -1, f"`{shown}` did not finish within {timeout:g} s", timed_out=True)
    except OSError as exc:
        return ToolRun(shown, -1, f"`{shown}` could not start: {exc.strerror or exc}")
    return ToolRun(shown, proc.returncode, redact(proc.stdout + proc.stderr, password))


@dataclass(frozen=True)
class Tool:
    """One tool: its lockfile, its lock check, how to install it."""

    name: str
    lockfile: str | None  # the lockfile it writes
    check: tuple[str, ...] | None  # the command that says whether the lock still matches the project
    install: str

    def environment(self, source_name: str, creds: Credentials | None, base: Mapping[str, str]) -> dict[str, str]:
        """The environment it runs in: the index credentials in its own variables (never argv)."""
        env = tool_env(self.name, source_name, creds, base)
        if self.name == "pdm":
            env.setdefault("PDM_CHECK_UPDATE", "false")
        return env

    def find(self, env: Mapping[str, str], which: Which = shutil.which) -> str | None:
        return which(self.name, path=env.get("PATH"))

    def relock(self, names: Sequence[str], pyproject: str = "", lock: str = "") -> list[list[str]]:
        """The commands that update only ``names`` in its lock, every other pin kept: ``uv lock
        --upgrade-package NAME``, ``poetry lock`` (2.x keeps the other pins), PDM's ``pdm update
        --no-sync`` per group (it needs the project's ``pyproject`` text and the ``lock``'s groups)."""
        wanted = sorted(names)
        if self.name == "uv":
            return [["uv", "lock", *(a for n in wanted for a in ("--upgrade-package", n))]]
        if self.name == "pdm":
            return pdm_updates(wanted, pyproject, lock)
        return [[self.name, "lock"]]


#: in the order a project's lockfiles are listed (the first names the tool that installs it)
TOOLS: dict[str, Tool] = {
    "poetry": Tool("poetry", "poetry.lock", ("poetry", "check", "--lock"), "pip install poetry"),
    "uv": Tool("uv", "uv.lock", ("uv", "lock", "--check"), "pip install uv"),
    "pdm": Tool("pdm", "pdm.lock", ("pdm", "lock", "--check"), "pip install pdm 'hishel[httpx2]==1.4.0'"),
    "pip": Tool("pip", None, None, "python -m ensurepip"),
}


def tool_of_lockfile(name: str) -> Tool | None:
    """The tool that writes a lockfile of this name (None: not a lockfile nexusify knows)."""
    return next((t for t in TOOLS.values() if t.lockfile == name), None)


def pdm_updates(names: Sequence[str], pyproject: str, lock: str) -> list[list[str]]:
    """``pdm update --no-sync [-G group] <names>`` for each group the lock holds that names some
    of ``names`` directly: PDM takes the packages of one group per run and refuses a name its
    group does not list. A shared package only reached through another one follows it."""
    try:
        project = tomllib.loads(pyproject)
        meta = tomllib.loads(lock).get("metadata", {})
    except (tomllib.TOMLDecodeError, RecursionError):
        project, meta = {}, {}
    groups: dict[str, list[object]] = {"default": list(project.get("project", {}).get("dependencies", []))}
    for table in (project.get("project", {}).get("optional-dependencies", {}),
                  project.get("tool", {}).get("pdm", {}).get("dev-dependencies", {}),
                  project.get("dependency-groups", {})):
        for group, entries in table.items() if isinstance(table, dict) else ():
            groups.setdefault(group, []).extend(entries if isinstance(entries, list) else [])
    locked = meta.get("groups", ["default"])
    wanted = set(names)
    out: list[list[str]] = []
    for group in locked if isinstance(locked, list) else ["default"]:
        direct = sorted({n for e in groups.get(group, []) if (n := requirement_name(e)) in wanted})
        if direct:
            out.append(["pdm", "update", "--no-sync", *([] if group == "default" else ["-G", group]), *direct])
    return out or [["pdm", "update", "--no-sync", *sorted(wanted)]]


__all__ = ["TOOLS", "Tool", "ToolRun", "Which", "pdm_updates", "run_tool", "tool_of_lockfile"]
