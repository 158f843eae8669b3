"""What the deploy benchmarks share: the stack's environment and running a nexusify verb in-process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from nexusify import cli


def load_stack_env() -> None:
    env_file = Path(os.environ.get("NEXUSIFY_STACK_ENV", Path.home() / ".cache/nexusify-stack/env.sh"))
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                k, _, v = line[len("export "):].partition("=")
                os.environ.setdefault(k.strip(), v.strip())


def nexusify(env: dict[str, str], *argv: str) -> tuple[int, dict[str, Any], float]:
    out, err = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*argv, "--json"], env=env)
    took = time.monotonic() - t0
    try:
        data = json.loads(out.getvalue())
    except ValueError:
        data = {"raw": out.getvalue(), "stderr": err.getvalue()}
    return code, data, took
