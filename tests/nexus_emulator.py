"""A Nexus 3 emulator for tests: REAL pypiserver apps mounted under Nexus' URL layout.

Nexus itself (a JVM server) cannot run here. This serves, on one loopback port:

- ``/repository/{repo}/`` : pypiserver's own WSGI app per hosted repository (uploads with twine's
  legacy API, ``simple/`` pages with ``#sha256=`` fragments, ``packages/...`` downloads), plus
  Nexus' asset paths ``packages/{name}/{version}/{file}``;
- HTTP Basic auth like Nexus (``anonymous_read=False`` makes reads need it too);
- the write policies ALLOW_ONCE (re-uploading a file: 400 with Nexus' exact text, old or new
  style), ALLOW (silent overwrite) and DENY;
- ``/service/rest/v1/status``, ``status/writable`` (503 when frozen), ``search`` (dash-split
  name matching like Nexus' keyword search, pages of 50 with ``continuationToken``) and
  ``components`` (pages of 10), ``DELETE components/{id}``;
- ``/_emulator/...`` controls for tests: freeze/unfreeze, request log.

Run in a subprocess (``python tests/nexus_emulator.py --port P --data DIR ...``) so the server's
threads and warnings stay out of the test process; :func:`start_emulator` does that.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

OLD_STYLE = "Repository does not allow updating assets: {repo}"
NEW_STYLE = "{repo}/packages/{name}/{version}/{file} cannot be updated"
SEARCH_PAGE = 50
COMPONENTS_PAGE = 10


@dataclass
class Repo:
    name: str
    root: Path
    policy: str = "ALLOW_ONCE"  # ALLOW | ALLOW_ONCE | DENY
    app: Any = None
    members: tuple[str, ...] = ()  # a group repository: read-only union of these


@dataclass
class Emulator:
    repos: dict[str, Repo]
    users: dict[str, str]
    anonymous_read: bool = True
    message_style: str = "new"  # "new" (3.71+) or "old" (3.70 and older)
    frozen: bool = False
    corrupt_downloads: bool = False  # files download with one byte changed (the pages keep the true hashes)
    upload_status: list[str] = field(default_factory=list)  # forced answers for the next uploads
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ helpers

    def _user(self, environ: Environ) -> str | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return None
        return user if self.users.get(user) == password and user else None

    def _auth_failed(self, environ: Environ, need_auth: bool) -> bool:
        has_header = bool(environ.get("HTTP_AUTHORIZATION"))
        user = self._user(environ)
        if has_header and user is None:
            return True  # Nexus rejects bad credentials even where anonymous would do
        return need_auth and user is None

    @staticmethod
    def _respond(start: StartResponse, status: str, body: bytes | str = b"",
                 ctype: str = "text/plain; charset=utf-8", headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
        data = body.encode() if isinstance(body, str) else body
        start(status, [("Content-Type", ctype), ("Content-Length", str(len(data))), *headers])
        return [data]

    def _unauthorized(self, start: StartResponse) -> list[bytes]:
        return self._respond(start, "401 Unauthorized", "", headers=[("WWW-Authenticate", 'BASIC realm="Sonatype Nexus Repository Manager"')])

    def _json(self, start: StartResponse, data: Any, status: str = "200 OK") -> list[bytes]:
        return self._respond(start, status, json.dumps(data), "application/json")

    # ------------------------------------------------------------------ components

    def components(self, repo: Repo) -> list[dict[str, Any]]:
        from pypiserver.pkg_helpers import guess_pkgname_and_version

        by_key: dict[tuple[str, str], list[Path]] = {}
        for path in sorted(repo.root.iterdir()):
            if not path.is_file():
                continue
            guessed = guess_pkgname_and_version(path.name)
            if not guessed:
                continue
            name, version = guessed
            by_key.setdefault((_norm(name), version), []).append(path)
        out = []
        for (name, version), files in sorted(by_key.items()):
            cid = base64.urlsafe_b64encode(f"{repo.name}:{name}:{version}".encode()).decode().rstrip("=")
            assets = []
            for f in files:
                data = f.read_bytes()
                path = f"packages/{name}/{version}/{f.name}"
                assets.append({
                    "downloadUrl": f"{self.base_url}/repository/{repo.name}/{path}",
                    "path": path,
                    "id": base64.urlsafe_b64encode(f"{repo.name}:{path}".encode()).decode().rstrip("="),
                    "repository": repo.name,
                    "format": "pypi",
                    "checksum": {
                        "sha1": hashlib.sha1(data).hexdigest(),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "md5": hashlib.md5(data).hexdigest(),
                    },
                    "contentType": "application/octet-stream",
                    "fileSize": len(data),
                    "uploader": "ci-user",
                })
            out.append({"id": cid, "repository": repo.name, "format": "pypi", "group": None,
                        "name": name, "version": version, "assets": assets})
        return out

    base_url: str = ""

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: Environ, start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        with self.lock:
            self.log.append({"method": method, "path": path, "query": environ.get("QUERY_STRING", ""),
                             "auth": bool(environ.get("HTTP_AUTHORIZATION"))})
        if path.startswith("/_emulator/"):
            return self._control(environ, start, path[len("/_emulator/"):])
        if path.startswith("/service/rest/v1/"):
            return self._rest(environ, start, path[len("/service/rest/v1/"):], method)
        m = re.match(r"^/repository/([^/]+)(/.*)?$", path)
        if m:
            return self._repository(environ, start, m.group(1), m.group(2) or "", method)
        return self._respond(start, "404 Not Found", "Not Found")

    def _control(self, environ: Environ, start: StartResponse, what: str) -> list[bytes]:
        if what == "freeze":
            self.frozen = True
        elif what == "unfreeze":
            self.frozen = False
        elif what == "corrupt-downloads":  # a broken cache or proxy in front of the files
            self.corrupt_downloads = True
        elif what == "fix-downloads":
            self.corrupt_downloads = False
        elif what == "log":
            with self.lock:
                return self._json(start, list(self.log))
        elif what == "clear-log":
            with self.lock:
                self.log.clear()
        elif what.startswith("upload-status/"):
            # the next upload(s) answer this status, e.g. 413 (a proxy's body limit) or 401
            code = what.split("/", 1)[1]
            reason = {"413": "Request Entity Too Large", "401": "Unauthorized", "502": "Bad Gateway",
                      "500": "Internal Server Error"}.get(code, "Error")
            self.upload_status.append(f"{code} {reason}")
        elif what.startswith("policy/"):
            _, repo, policy = what.split("/")
            self.repos[repo].policy = policy
        else:
            return self._respond(start, "404 Not Found", "no such control")
        return self._respond(start, "200 OK", "ok")

    def _rest(self, environ: Environ, start: StartResponse, sub: str, method: str) -> list[bytes]:
        if sub == "status":
            return self._respond(start, "200 OK", "")
        if sub == "status/writable":
            return self._respond(start, "503 Service Unavailable" if self.frozen else "200 OK", "")
        if self._auth_failed(environ, not self.anonymous_read):
            return self._unauthorized(start)
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if sub == "search" and method == "GET":
            repo = self.repos.get(query.get("repository", ""))
            items = [c for r in ([repo] if repo else self.repos.values()) for c in self.components(r)]
            if query.get("format") and query["format"] != "pypi":
                items = []
            if query.get("name"):
                items = [c for c in items if _keyword_match(query["name"], c["name"])]
            if query.get("version"):
                items = [c for c in items if c["version"] == query["version"]]
            return self._page(start, items, query.get("continuationToken"), SEARCH_PAGE)
        if sub == "components" and method == "GET":
            repo = self.repos.get(query.get("repository", ""))
            if repo is None:
                return self._respond(start, "404 Not Found", "Repository not found")
            return self._page(start, self.components(repo), query.get("continuationToken"), COMPONENTS_PAGE)
        m = re.match(r"^components/([^/]+)$", sub)
        if m and method == "DELETE":
            if self.frozen:
                return self._respond(start, "503 Service Unavailable", "Nexus is in read-only mode")
            for repo in self.repos.values():
                for c in self.components(repo):
                    if c["id"] == m.group(1):
                        for a in c["assets"]:
                            (repo.root / a["path"].rsplit("/", 1)[-1]).unlink(missing_ok=True)
                        return self._respond(start, "204 No Content", "")
            return self._respond(start, "404 Not Found", "Component not found")
        return self._respond(start, "404 Not Found", "Not Found")

    def _page(self, start: StartResponse, items: list[dict[str, Any]], token: str | None, size: int) -> list[bytes]:
        offset = int(token, 16) if token and re.fullmatch(r"[0-9a-f]+", token) else 0
        page = items[offset:offset + size]
        nxt = offset + size
        return self._json(start, {"items": page, "continuationToken": format(nxt, "x") if nxt < len(items) else None})

    def _repository(self, environ: Environ, start: StartResponse, name: str, rest: str, method: str) -> Iterable[bytes]:
        repo = self.repos.get(name)
        if repo is None:
            return self._respond(start, "404 Not Found", "Repository not found")
        write = method == "POST"
        if self._auth_failed(environ, write or not self.anonymous_read):
            return self._unauthorized(start)
        if rest == "":
            return self._respond(start, "400 Bad Request", "Repository path must have another '/' after initial '/'")
        if write and repo.members:
            return self._respond(start, "405 Method Not Allowed", f"Repository {repo.name} is a group: upload to a hosted member")
        if write:
            if self.upload_status:
                status = self.upload_status.pop(0)
                return self._respond(start, status, f"<html><body><h1>{status}</h1></body></html>", "text/html")
            if self.frozen:
                return self._respond(start, "503 Service Unavailable", "Nexus is in read-only mode")
            return self._upload(environ, start, repo)
        if rest == "/simple":
            return self._respond(start, "404 Not Found", "Not Found")
        m = re.match(r"^/packages/([^/]+)/([^/]+)/([^/]+)$", rest)
        if m:  # Nexus' asset path -> pypiserver's /packages/{file}
            rest = f"/packages/{m.group(3)}"
        if self.corrupt_downloads and rest.startswith("/packages/"):
            return self._corrupted(environ, start, repo, rest)
        return self._forward(environ, start, repo, rest)

    def _corrupted(self, environ: Environ, start: StartResponse, repo: Repo, rest: str) -> list[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self._forward(environ, capture, repo, rest))
        if captured.get("status", "").startswith("200") and body:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])  # same length, other bytes
        start(captured.get("status", "500 Internal Server Error"), captured.get("headers", []))
        return [body]

    def _forward(self, environ: Environ, start: StartResponse, repo: Repo, rest: str) -> Iterable[bytes]:
        env = dict(environ)
        env["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/repository/{repo.name}"
        env["PATH_INFO"] = rest
        env.pop("HTTP_AUTHORIZATION", None)  # this emulator did the auth; pypiserver serves openly
        return list(repo.app(env, start))

    def _upload(self, environ: Environ, start: StartResponse, repo: Repo) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        filename = _upload_filename(body)
        if filename is None:
            return self._respond(start, "400 Bad Request", "Missing 'content' file-field!")
        existing = repo.root / filename
        if repo.policy == "DENY":
            return self._respond(start, f"400 Repository is read only: {repo.name}", f"Repository is read only: {repo.name}")
        if existing.exists():
            if repo.policy == "ALLOW_ONCE":
                from pypiserver.pkg_helpers import guess_pkgname_and_version

                guessed = guess_pkgname_and_version(filename) or (filename, "")
                text = (OLD_STYLE if self.message_style == "old" else NEW_STYLE).format(
                    repo=repo.name, name=_norm(guessed[0]), version=guessed[1], file=filename)
                return self._respond(start, f"400 {text}", text)
            existing.unlink()
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        env["SCRIPT_NAME"] = f"/repository/{repo.name}"
        env["PATH_INFO"] = "/"
        env.pop("HTTP_AUTHORIZATION", None)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = status
            return lambda _data: None

        out = b"".join(repo.app(env, capture))
        status = captured.get("status", "500 Internal Server Error")
        if status.startswith("200"):
            return self._respond(start, "200 OK", "")
        return self._respond(start, status, out)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _keyword_match(query: str, name: str) -> bool:
    """Nexus' keyword search: an unquoted name is split on dashes and any token may match."""
    if len(query) > 1 and query.startswith('"') and query.endswith('"'):
        return _norm(query[1:-1]) == _norm(name)
    tokens = [t for t in re.split(r"[-_.]+", query.lower()) if t]
    parts = re.split(r"[-_.]+", name.lower())
    return any(t in parts for t in tokens)


def _upload_filename(body: bytes) -> str | None:
    m = re.search(rb'name="content"; filename="([^"]+)"', body)
    return m.group(1).decode() if m else None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def build_emulator(data: Path, repos: Iterable[str], users: dict[str, str], *, anonymous_read: bool = True,
                   policy: str = "ALLOW_ONCE", message_style: str = "new",
                   groups: dict[str, list[str]] | None = None) -> Emulator:
    import pypiserver

    table: dict[str, Repo] = {}
    for name in repos:
        root = data / name
        root.mkdir(parents=True, exist_ok=True)
        app = pypiserver.app(roots=[str(root)], authenticate=[], password_file=".", disable_fallback=True,
                             overwrite=True, hash_algo="sha256")
        table[name] = Repo(name, root, policy, app)
    for name, members in (groups or {}).items():
        roots = [str(table[m].root) for m in members]
        app = pypiserver.app(roots=roots, authenticate=[], password_file=".", disable_fallback=True,
                             overwrite=False, hash_algo="sha256")
        table[name] = Repo(name, table[members[0]].root, "DENY", app, tuple(members))
    return Emulator(table, users, anonymous_read=anonymous_read, message_style=message_style)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--repo", action="append", default=[])
    ap.add_argument("--user", action="append", default=[], help="USER:PASSWORD")
    ap.add_argument("--private", action="store_true", help="reads need credentials too")
    ap.add_argument("--policy", default="ALLOW_ONCE", choices=["ALLOW", "ALLOW_ONCE", "DENY"])
    ap.add_argument("--message-style", default="new", choices=["new", "old"])
    ap.add_argument("--group", action="append", default=[], help="NAME=MEMBER[,MEMBER...] (read-only union)")
    args = ap.parse_args(argv)
    groups = {g.split("=", 1)[0]: g.split("=", 1)[1].split(",") for g in args.group}
    users = dict(u.split(":", 1) for u in args.user)
    emu = build_emulator(args.data, args.repo or ["pypi-hosted"], users, anonymous_read=not args.private,
                         policy=args.policy, message_style=args.message_style, groups=groups)
    emu.base_url = f"http://127.0.0.1:{args.port}"
    server = make_server("127.0.0.1", args.port, emu, server_class=_ThreadingServer, handler_class=_QuietHandler)
    print(f"nexus emulator on {emu.base_url}", flush=True)
    server.serve_forever()


# --------------------------------------------------------------------------- for tests and benchmarks


@dataclass
class RunningEmulator:
    base_url: str
    repository: str
    data: Path
    username: str
    password: str
    proc: subprocess.Popen[bytes]

    @property
    def upload_url(self) -> str:
        return f"{self.base_url}/repository/{self.repository}/"

    @property
    def simple_url(self) -> str:
        return f"{self.base_url}/repository/{self.repository}/simple/"

    def files(self) -> list[str]:
        return sorted(p.name for p in (self.data / self.repository).iterdir() if p.is_file())

    def control(self, what: str) -> Any:
        import urllib.request

        with urllib.request.urlopen(f"{self.base_url}/_emulator/{what}", timeout=10) as r:
            data = r.read()
        return json.loads(data) if what == "log" else data.decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_emulator(data: Path, port: int, *, repository: str = "pypi-hosted", username: str = "ci-user",
                   password: str = "s3cr3t-Pa55word", private: bool = False, policy: str = "ALLOW_ONCE",
                   message_style: str = "new", extra_repos: Iterator[str] | list[str] = (),
                   groups: dict[str, list[str]] | None = None) -> RunningEmulator:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--data", str(data),
           "--repo", repository, "--user", f"{username}:{password}", "--policy", policy,
           "--message-style", message_style]
    for r in extra_repos:
        cmd += ["--repo", r]
    for g, members in (groups or {}).items():
        cmd += ["--group", f"{g}={','.join(members)}"]
    if private:
        cmd.append("--private")
    data.mkdir(parents=True, exist_ok=True)
    log = (data / "emulator.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARNINGS")}
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    from tests.helpers import wait_for_port

    try:
        wait_for_port(port, proc=proc)
    except RuntimeError as exc:
        proc.kill()
        raise RuntimeError(f"the Nexus emulator did not start ({exc}): {(data / 'emulator.log').read_text()}") from exc
    return RunningEmulator(f"http://127.0.0.1:{port}", repository, data, username, password, proc)


if __name__ == "__main__":
    main()
