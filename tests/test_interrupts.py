"""Ctrl-C and SIGTERM end nexusify with exit code 130, even when the signal lands inside code
that CPython ran from source text (where a plain KeyboardInterrupt makes the process kill itself
with SIGINT at exit: returncode -2, seen in CI as a flaky demo test)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from nexusify.interrupts import Interrupted, interrupts_raise

    def body():
        # a signal that arrives while exec'd source runs (dataclasses do this at import time)
        exec("import os, signal\\nos.kill(os.getpid(), {signum})\\nfor _ in range(100000): pass")

    try:
        with interrupts_raise({signum}, once={once}):
            body()
    except KeyboardInterrupt as exc:
        assert isinstance(exc, Interrupted), type(exc)
        print("cleaned up")
        handler = signal.getsignal({signum})
        print("restored" if handler in (signal.SIG_DFL, signal.default_int_handler) else f"left {{handler}}")
    raise SystemExit(130)
""")


def run_module(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -m`` like `python -m nexusify`: only then does CPython's exit
    go through the check that turns a remembered KeyboardInterrupt into death by SIGINT."""
    (tmp_path / "probe.py").write_text(code)
    return subprocess.run([sys.executable, "-m", "probe"], cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_inside_exec_still_exits_130(tmp_path: Path, signum: int) -> None:
    proc = run_module(tmp_path, SCRIPT.format(signum=int(signum), once=signum == signal.SIGTERM))
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["cleaned", "up", "restored"]


def test_a_plain_keyboard_interrupt_would_not(tmp_path: Path) -> None:
    """The reason the module exists: without it the same script dies by SIGINT."""
    code = textwrap.dedent("""
        import os, signal
        def handler(s, f):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, handler)
        try:
            exec("import os, signal\\nos.kill(os.getpid(), signal.SIGTERM)\\nfor _ in range(100000): pass")
        except KeyboardInterrupt:
            pass
        raise SystemExit(130)
    """)
    proc = run_module(tmp_path, code)
    assert proc.returncode == -signal.SIGINT


def test_once_ignores_a_second_signal_during_cleanup(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import os, signal, time
        from nexusify.interrupts import interrupts_raise
        try:
            with interrupts_raise(signal.SIGTERM, once=True):
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(5)
                finally:
                    os.kill(os.getpid(), signal.SIGTERM)  # a second one while cleaning up
                    time.sleep(0.2)
                    print("cleanup finished")
        except KeyboardInterrupt:
            print("interrupted")
        raise SystemExit(130)
    """)
    proc = run_module(tmp_path, code)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["cleanup finished", "interrupted"]
