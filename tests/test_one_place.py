"""Small facts with one home each (issue 19): whether a pid is alive, which environment variables
are nexusify's index credentials, a path relative to the root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nexusify.credentials import without_index_credentials
from nexusify.files import relpath
from nexusify.processes import pid_alive


def test_pid_alive_tells_running_zombie_and_gone_processes_apart() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(200):  # exited but not reaped: a zombie is not alive
        if not pid_alive(child.pid):
            break
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.01)"], check=True)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)


def test_index_credentials_are_dropped_by_one_list() -> None:
    env = {"NEXUS_PASSWORD": "p", "TWINE_PASSWORD": "t", "NEXUS_USERNAME": "u", "TWINE_USERNAME": "v", "PATH": "/bin"}
    assert without_index_credentials(env) == {"PATH": "/bin"}
    assert without_index_credentials(env, usernames=False) == {"NEXUS_USERNAME": "u", "TWINE_USERNAME": "v",
                                                               "PATH": "/bin"}
    assert without_index_credentials(env, also=("PATH",)) == {}


def test_relpath_is_posix_relative_and_dot_for_the_root(tmp_path: Path) -> None:
    assert relpath(tmp_path / "a" / "b", tmp_path) == "a/b"
    assert relpath(tmp_path, tmp_path) == "."
    assert relpath(Path("/elsewhere/x"), tmp_path) == "/elsewhere/x"
