"""Count what a nexusify verb costs that the machine's load does not change: engine API calls (HTTP
requests a docker-py client sends, over a unix socket or a forwarded SSH socket) and SSH processes
started (``ssh`` control commands: master checks, starts, forwards).

    with Counted() as counted:
        nexusify(env, "rollback", ...)
    print(counted.summary())   # "14 engine calls (GET /containers/json 3, ...), 0 ssh processes"
"""

from __future__ import annotations

import collections
import re
import subprocess
import threading
import time
from typing import Any

_ID = re.compile(r"/[0-9a-f]{12,64}(?=/|$)|/nexusify-[^/?]+")


def _route(method: str, url: str) -> str:
    """``GET /containers/<id>/json``: the API route, ids and names folded, no version or query."""
    path = url.split("://", 1)[-1]
    path = "/" + path.split("/", 1)[1] if "/" in path else "/"
    path = re.sub(r"^/v[0-9.]+", "", path.split("?", 1)[0])
    return f"{method} {_ID.sub('/<id>', path)}"


class Counted:
    """While entered: every docker-py API request and every ``ssh`` process, counted (thread-safe)."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()  # time spent in each route's calls
        self.ssh: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._undo: list[Any] = []

    def __enter__(self) -> Counted:
        from docker.api.client import APIClient

        send = APIClient.send
        popen_init = subprocess.Popen.__init__
        counted = self

        def counting_send(client: Any, request: Any, **kwargs: Any) -> Any:
            route = _route(request.method, request.url)
            t0 = time.monotonic()
            try:
                return send(client, request, **kwargs)
            finally:
                with counted._lock:
                    counted.calls[route] += 1
                    counted.seconds[route] += time.monotonic() - t0

        def counting_init(proc: Any, args: Any, *a: Any, **kw: Any) -> None:
            argv = [args] if isinstance(args, (str, bytes)) else list(args)
            if argv and str(argv[0]).rsplit("/", 1)[-1] == "ssh":
                what = next((str(x) for x in argv if str(x) in ("-O", "-M", "-L", "-N")), "command")
                with counted._lock:
                    counted.ssh[what] += 1
            popen_init(proc, args, *a, **kw)

        APIClient.send = counting_send  # type: ignore[method-assign]
        subprocess.Popen.__init__ = counting_init  # type: ignore[method-assign]
        self._undo = [(APIClient, "send", send), (subprocess.Popen, "__init__", popen_init)]
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in self._undo:
            setattr(owner, name, original)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def summary(self) -> str:
        routes = ", ".join(f"{r} {n} ({self.seconds[r]:.2f}s)"
                           for r, n in sorted(self.calls.items(), key=lambda x: (-x[1], x[0])))
        return f"{self.total} engine calls ({routes}); {sum(self.ssh.values())} ssh processes"
