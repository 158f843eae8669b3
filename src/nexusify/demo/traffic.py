"""Watching the demo's service through nginx: one GET, and a poller that records which version
answered each request during a deploy, and whether the answers moved cleanly from v1 to v2."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from nexusify.errors import OperationFailed


def get_json(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")[:200]}
        return resp.status, body if isinstance(body, dict) else {"raw": body}
    finally:
        conn.close()


class Poller:
    """A client asking ``/`` through nginx every few milliseconds (a new connection each time,
    bounded in time), recording which version answered and every failure."""

    def __init__(self, port: int, pause: float = 0.02, max_seconds: float = 600.0) -> None:
        self.port, self.pause, self.max_seconds = port, pause, max_seconds
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nexusify-demo-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                status, body = get_json(self.port)
                if status != 200:
                    raise OperationFailed(f"HTTP {status}")
                self.answers.append((t, str(body.get("version"))))
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.pause)

    def sequence(self) -> list[str]:
        return [v for _, v in sorted(self.answers)]

    def movement(self, switched: float, old: str = "v1", new: str = "v2") -> Movement:
        """How the answers moved from ``old`` to ``new``; ``switched``: when the deploy returned.

        While nginx reloads, its old and new workers both accept connections for a moment (the
        old ones until they see the reload), so answers may alternate briefly; after the deploy
        returns, every answer must come from ``new``, and no request may fail.
        """
        answers = sorted(self.answers)
        versions = [v for _, v in answers]
        m = Movement(total=len(answers), v1=versions.count(old), v2=versions.count(new),
                     after=sum(1 for t, _ in answers if t >= switched))
        first_new = next((t for t, v in answers if v == new), None)
        last_old = max((t for t, v in answers if v == old), default=None)
        if first_new is not None and last_old is not None and last_old > first_new:
            m.overlap = last_old - first_new
        others = sorted(set(versions) - {old, new})
        late = [v for t, v in answers if t >= switched and v != new]
        if self.failures:
            m.problem = f"{len(self.failures)} of {len(answers) + len(self.failures)} requests failed: {self.failures[0]}"
        elif others:
            m.problem = f"unexpected answers from {', '.join(others)}"
        elif not versions or versions[0] != old or versions[-1] != new:
            m.problem = f"answers went {' -> '.join(dict.fromkeys(versions)) or '(none)'}, not {old} -> {new}"
        elif late:
            m.problem = f"{len(late)} answers still came from {old} after the deploy returned"
        elif m.overlap > 5.0:
            m.problem = f"{old} and {new} both answered for {m.overlap:.1f}s"
        return m


@dataclass
class Movement:
    total: int
    v1: int
    v2: int
    after: int  # answers sent after the deploy returned (all from the new version)
    overlap: float = 0.0  # seconds between the first new and the last old answer (nginx reload)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None
