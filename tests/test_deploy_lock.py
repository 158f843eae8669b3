"""The per-environment deploy lock: refusal, waiting, and recovery from a killed deploy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from nexusify.deploy.state.lock import DeployLock, LockHolder, current_holder
from nexusify.errors import DeployError, LockHeld
from tests.conftest import REPO

_HOLD = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from nexusify.deploy.state.lock import DeployLock
    lock = DeployLock(Path(sys.argv[1]), "production", env={"NEXUSIFY_DEPLOYER": "bob@ci"})
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def _holder_process(state: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(state)], env={"PYTHONPATH": str(REPO / "src")},
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def test_second_deploy_is_refused_naming_the_holder(tmp_path: Path) -> None:
    proc = _holder_process(tmp_path)
    try:
        holder = current_holder(tmp_path, "production")
        assert holder is not None and (holder.who, holder.pid) == ("bob@ci", proc.pid)
        start = time.monotonic()
        with pytest.raises(LockHeld) as info:
            DeployLock(tmp_path, "production").acquire()
        assert time.monotonic() - start < 1  # lock-wait 0: refused at once
        msg = str(info.value)
        assert f"being deployed by bob@ci (pid {proc.pid}" in msg and f"since {holder.since}" in msg
        assert "--lock-wait" in (info.value.hint or "") and info.value.exit_code == 1
        # another environment is independent
        with DeployLock(tmp_path, "staging") as mine:
            assert mine.pid == os.getpid()
    finally:
        proc.kill()
        proc.wait()


def test_waiting_deploy_gets_the_lock_when_the_first_finishes(tmp_path: Path) -> None:
    first = DeployLock(tmp_path, "production", env={"NEXUSIFY_DEPLOYER": "alice@host"})
    first.acquire()
    seen: list[LockHolder | None] = []
    timer = threading.Timer(0.5, first.release)
    timer.start()
    start = time.monotonic()
    with DeployLock(tmp_path, "production", wait=10, on_wait=seen.append, action="rollback") as holder:
        waited = time.monotonic() - start
        assert holder.action == "rollback"
        assert current_holder(tmp_path, "production") == holder
    timer.join()
    assert 0.4 < waited < 5
    assert len(seen) == 1 and seen[0] is not None and seen[0].who == "alice@host"
    assert current_holder(tmp_path, "production") is None
    assert not (tmp_path / "deploy" / "production" / "holder.json").exists()


def test_waiting_gives_up_after_lock_wait(tmp_path: Path) -> None:
    with DeployLock(tmp_path, "production"):
        start = time.monotonic()
        with pytest.raises(LockHeld, match=r"refused after waiting 0\.3s"):
            DeployLock(tmp_path, "production", wait=0.3).acquire()
        assert 0.25 < time.monotonic() - start < 3


def test_lock_of_a_killed_deploy_is_recovered(tmp_path: Path) -> None:
    proc = _holder_process(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    holder_file = tmp_path / "deploy" / "production" / "holder.json"
    assert json.loads(holder_file.read_text())["pid"] == proc.pid  # the dead deploy's record is still there
    lock = DeployLock(tmp_path, "production")
    with lock as holder:
        assert holder.pid == os.getpid()
        assert lock.recovered is not None and lock.recovered.pid == proc.pid and lock.recovered.who == "bob@ci"
        assert json.loads(holder_file.read_text())["pid"] == os.getpid()


def test_not_reentrant_and_bad_names(tmp_path: Path) -> None:
    lock = DeployLock(tmp_path, "production")
    with lock:
        with pytest.raises(DeployError, match="already held by this process"):
            lock.acquire()
        with pytest.raises(LockHeld):
            DeployLock(tmp_path, "production").acquire()
    lock.release()  # releasing twice is harmless
    with pytest.raises(DeployError, match="invalid environment"):
        DeployLock(tmp_path, "../x")


def test_refusal_waits_a_moment_to_name_a_holder_that_just_took_the_lock(tmp_path: Path) -> None:
    """A holder takes the flock first and writes who it is just after: a refusal in between
    still names it (a race seen in CI with two deploys started at once)."""
    import fcntl

    lock_dir = tmp_path / "deploy" / "production"
    lock_dir.mkdir(parents=True)
    fd = os.open(lock_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, but holder.json not written yet
    holder = LockHolder(who="carol@ci", pid=os.getpid(), host="elsewhere", since="2026-11-27T00:00:00Z",
                        action="deploy")

    def write_holder_late() -> None:
        time.sleep(0.3)
        (lock_dir / "holder.json").write_text(json.dumps(holder.to_dict()))

    writer = threading.Thread(target=write_holder_late)
    writer.start()
    try:
        with pytest.raises(LockHeld) as info:
            DeployLock(tmp_path, "production").acquire()
    finally:
        writer.join()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert "carol@ci" in info.value.message
