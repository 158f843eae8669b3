"""Running the consumers' own tools (uv, Poetry, PDM, pip) for verify: the commands, how to
install a missing one; the environment that gives each the index credentials is
:func:`nexusify.credentials.tool_env`, the one rule rewrite's and release's re-lock use too."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.credentials import Credentials, redact, source_key, tool_env
from nexusify.model.tools import INSTALL

#: lockfile name -> the command that says whether the lock still matches the project
LOCK_CHECKS: dict[str, tuple[str, ...]] = {
    "uv.lock": ("uv", "lock", "--check"),
    "poetry.lock": ("poetry", "check", "--lock"),
    "pdm.lock": ("pdm", "lock", "--check"),
}

Which = Callable[..., str | None]


@dataclass(frozen=True)
class ToolRun:
    command: str  # as shown to the user
    returncode: int
    output: str  # stdout + stderr, credentials removed

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


def find_tool(tool: str, env: Mapping[str, str], which: Which = shutil.which) -> str | None:
    return which(tool, path=env.get("PATH"))


def run_tool(argv: Sequence[str], cwd: Path, env: Mapping[str, str], creds: Credentials | None,
             timeout: int = 600) -> ToolRun:
    shown = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
    secret = creds.password if creds else None
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ToolRun(shown, -1, f"`{shown}` did not finish within {timeout} s")
    except OSError as exc:
        return ToolRun(shown, -1, f"`{shown}` could not start: {exc.strerror}")
    return ToolRun(shown, proc.returncode, redact(proc.stdout + proc.stderr, secret))


__all__ = ["INSTALL", "LOCK_CHECKS", "ToolRun", "Which", "find_tool", "run_tool", "source_key", "tool_env"]
