"""Ecosystem check: run nexusify's journey on real monorepos and compare with ground truth.

For each repository of ``ecosystem/manifest.toml`` found under ``--corpus`` (checked out by hand
with the ``fetch`` tool, never committed), on a scratch copy (git init'ed, committed):

    audit --json --offline -> publish (local pypiserver on loopback, PyPI fallback for third-party
    packages) -> rewrite -> rewrite --check -> verify --json -> the consumers' own frozen checks
    (uv lock --check, poetry check --lock, pdm lock --check) and an independent static oracle

and compares with the manifest's ground truth: the shared set, the consumer set, the Dockerfile
attachment, and **false greens** (a verb said ok / exit 0 while the consumer would not install or
build from the index). Prints a table (markdown with ``--markdown``) and writes every log and a
JSON summary under ``--work``.

    python ecosystem/run.py --corpus /work/corpus [--nexusify "python -m nexusify"] [NAME ...]

Stdlib only (plus the pypiserver, uv, poetry and pdm commands on PATH; passlib for the htpasswd).
Not run in CI: it needs the corpus and PyPI (through the pypiserver fallback).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.toml"
USER, PASSWORD = "eco", "eco-Pa55-word"
STEP_TIMEOUT = 900


# --------------------------------------------------------------------------- manifest


def load_manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    """The repositories of the manifest, each a dict (see manifest.toml's header for the fields)."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    repos: list[dict[str, Any]] = data["repo"]
    return repos


def folder_name(repo: dict[str, Any]) -> str:
    owner, name = repo["name"].split("/", 1)
    return f"{owner}+{name}"


def label(repo: dict[str, Any]) -> str:
    name: str = repo["name"]
    return name + (f":{repo['subdir']}" if repo.get("subdir") else "")


def consumers_of(repo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ground truth's consumers by path (their identity: a PDM root may have no name)."""
    return {_norm(c["path"]): c for c in repo.get("consumers", [])}


def _docker_consumers(entry: dict[str, Any]) -> list[str]:
    """The consumers a Dockerfile builds: `consumers` (one target per service) or `consumer`."""
    many: list[str] = entry.get("consumers") or ([entry["consumer"]] if entry.get("consumer") else [])
    return many


def canonical(name: str) -> str:
    """PEP 503 normalisation, so `xyz_lib_a` and `xyz-lib-a` are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- processes


@dataclass
class Run:
    argv: list[str]
    code: int
    out: str
    err: str
    seconds: float


def run(argv: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: int = STEP_TIMEOUT) -> Run:
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        def text(part: str | bytes | None) -> str:
            return part.decode(errors="replace") if isinstance(part, bytes) else (part or "")

        code, out, err = 124, text(exc.stdout), f"timeout after {timeout}s\n{text(exc.stderr)}"
    except FileNotFoundError as exc:
        code, out, err = 127, "", str(exc)
    took = time.monotonic() - start
    with log.open("a") as fh:
        fh.write(f"$ (cd {cwd} && {shlex.join(argv)})  # exit {code}, {took:.1f}s\n{out}\n--- stderr\n{err}\n\n")
    return Run(argv, code, out, err, took)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PyPIServer:
    """A pypiserver on loopback: uploads need USER/PASSWORD, downloads are open, and a package it
    does not hold is redirected to PyPI (as a Nexus group proxying PyPI would serve it)."""

    def __init__(self, base: Path) -> None:
        self.packages = base / "packages"
        self.packages.mkdir(parents=True)
        htpasswd = base / "htpasswd"
        from passlib.apache import HtpasswdFile  # a dependency of the project's test stack

        ht = HtpasswdFile(str(htpasswd), new=True, default_scheme="apr_md5_crypt")
        ht.set_password(USER, PASSWORD)
        ht.save()
        exe = shutil.which("pypi-server")
        if exe is None:
            raise SystemExit("pypi-server is not on PATH (pip install pypiserver passlib)")
        self.port = free_port()
        self.log = (base / "pypiserver.log").open("wb")
        self.proc = subprocess.Popen(
            [exe, "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", "update", "-P", str(htpasswd),
             str(self.packages)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit("pypiserver did not start")
        self.url = f"http://127.0.0.1:{self.port}/"
        self.simple = self.url + "simple/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# --------------------------------------------------------------------------- the oracle


_COPY = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.IGNORECASE)
_RUN = re.compile(r"^\s*RUN\s+(.*)$", re.IGNORECASE)
_PACKAGE = re.compile(r"--package[= ]+\$?\{?([A-Za-z0-9_.-]+)\}?")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = number
        stripped = raw.rstrip()
        if stripped.lstrip().startswith("#") and not buf:
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        lines.append((start, buf))
        buf = ""
    if buf:
        lines.append((start, buf))
    return lines


def _norm(path: str) -> str:
    path = path.strip().strip('"').strip("'")
    path = re.sub(r"^\./", "", path)
    return path.rstrip("/") or "."


def dockerfile_findings(root: Path, dockerfile: str, context: str, shared_paths: list[str],
                        moved: set[str], workspace_members_out: set[str]) -> list[str]:
    """Independent static oracle: does this Dockerfile still take shared code from a path, or
    `uv sync --package` a member that is no longer in the workspace? Each finding is 'file:line: why'."""
    path = root / dockerfile
    if not path.is_file():
        return []
    found: list[str] = []
    ctx = _norm(context)
    rel = [_norm(str(Path(p).relative_to(ctx))) if ctx != "." and p.startswith(ctx + "/") else p for p in shared_paths]
    defaults: dict[str, str] = {}
    for line, raw in _logical_lines(path.read_text(errors="replace")):
        decl = re.match(r"^\s*(ARG|ENV)\s+([A-Za-z_][A-Za-z0-9_]*)[= ]\s*\"?([^\s\"]+)\"?\s*$", raw, re.IGNORECASE)
        if decl:
            defaults[decl.group(2)] = decl.group(3)
        # ARG/ENV defaults as a build without --build-arg sees them (`--package=$PACKAGE`, `COPY ./$SERVICE`)
        text = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: defaults.get(m.group(1), m.group(0)), raw)
        copy = _COPY.match(text)
        if copy and "--from" not in copy.group(2):
            parts = [p for p in shlex.split(copy.group(2), posix=True) if not p.startswith("--")]
            for src in parts[:-1]:
                s = _norm(src)
                for shared in rel:
                    if s == shared or s.startswith(shared + "/"):
                        found.append(f"{dockerfile}:{line}: copies shared code `{src}`")
                    elif s != "." and shared.startswith(s + "/"):
                        found.append(f"{dockerfile}:{line}: copies `{src}`, which holds shared code `{shared}`")
        run_m = _RUN.match(text)
        if run_m:
            cmd = run_m.group(1)
            for shared in rel + [p for p in shared_paths if p not in rel]:
                name = shared.rsplit("/", 1)[-1]
                by_path = re.search(rf"\binstall\b[^&;|]*[\s/]{re.escape(shared)}(/|\s|$|\[)", cmd)
                by_copy = re.search(rf"\binstall\b[^&;|]*\s(-e\s+)?(\.{{0,2}}/|\S+/){re.escape(name)}/?(\s|$|\[)", cmd)
                if by_path or by_copy:
                    found.append(f"{dockerfile}:{line}: installs shared code from a path `{shared}`")
            for pkg in _PACKAGE.findall(cmd):
                if pkg in workspace_members_out:
                    found.append(f"{dockerfile}:{line}: `--package {pkg}` syncs the root workspace's lock, which "
                                 f"{pkg} left (its shared deps still resolve to the workspace folders there)")
    return sorted(set(found))


def manifest_findings(root: Path, consumer: dict[str, Any], shared: dict[str, dict[str, Any]]) -> list[str]:
    """Does the consumer's manifest, lock or requirements still name a shared package from a path or
    the workspace? (a grep, independent of nexusify's readers)"""
    folder = root / consumer["path"]
    names = set(consumer.get("shared", []))
    wanted = {canonical(n) for n in names}
    paths = [s["path"] for n, s in shared.items() if n in wanted]
    found: list[str] = []
    files = [folder / "pyproject.toml", *sorted(folder.glob("requirements*.txt")),
             *sorted(folder.glob("requirements/*.txt"))]
    for extra in consumer.get("files", []):
        files.append(root / extra)
    for f in files:
        if not f.is_file():
            continue
        for number, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            code = line.split("#", 1)[0]
            if not code.strip():
                continue
            for p in paths:
                tail = p.rsplit("/", 1)[-1]
                if re.search(rf"(path\s*=\s*\"[^\"]*|-e\s+\S*|file:\S*|@\s*\S*|^\s*\.\.?/\S*){re.escape(tail)}\b", code):
                    found.append(f"{f.relative_to(root)}:{number}: still takes `{tail}` from a path")
            for n in names:
                if re.match(rf"\s*\"?{re.escape(n)}\"?\s*=\s*\{{[^}}]*workspace\s*=\s*true", code, re.IGNORECASE):
                    found.append(f"{f.relative_to(root)}:{number}: still takes {n} from the uv workspace")
    return found


def tool_check(root: Path, consumer: dict[str, Any], env: dict[str, str], log: Path) -> tuple[str, str]:
    """The consumer tool's own frozen check where it runs offline-ish (against the loopback index)."""
    folder = root / consumer["path"]
    tool = consumer.get("tool", "pip")
    if tool == "uv":
        where = folder if (folder / "uv.lock").is_file() else root if (root / "uv.lock").is_file() else None
        if where is None:
            return "n/a", "no uv.lock"
        r = run(["uv", "lock", "--check"], where, env, log)
        return ("ok" if r.code == 0 else "FAIL"), f"uv lock --check in {where.relative_to(root)}: " + _last(r)
    if tool == "poetry":
        if not (folder / "poetry.lock").is_file():
            return "n/a", "no poetry.lock"
        r = run(["poetry", "check", "--lock"], folder, env, log)
        return ("ok" if r.code == 0 else "FAIL"), "poetry check --lock: " + _last(r)
    if tool == "pdm":
        where = folder if (folder / "pdm.lock").is_file() else root if (root / "pdm.lock").is_file() else None
        if where is None:
            return "n/a", "no pdm.lock"
        r = run(["pdm", "lock", "--check"], where, env, log)
        return ("ok" if r.code == 0 else "FAIL"), "pdm lock --check: " + _last(r)
    return "n/a", f"{tool}: no frozen check"


def _last(r: Run) -> str:
    text = (r.err.strip() or r.out.strip()).splitlines()
    return (text[-1] if text else f"exit {r.code}")[:160]


# --------------------------------------------------------------------------- one repository


@dataclass
class Result:
    name: str
    layout: str
    status: str = "not run"
    shared: str = ""
    consumers: str = ""
    dockerfiles: str = ""
    audit: str = ""
    publish: str = ""
    rewrite: str = ""
    check: str = ""
    verify: str = ""
    tools: str = ""
    false_greens: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _set_diff(label: str, expected: set[str], got: set[str], out: list[str]) -> str:
    if expected == got:
        return f"ok ({len(got)})"
    missing, extra = sorted(expected - got), sorted(got - expected)
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    if extra:
        parts.append("extra " + ", ".join(extra))
    out.append(f"{label}: " + "; ".join(parts))
    return "DIFF " + "; ".join(parts)


def check_repo(repo: dict[str, Any], corpus: Path, work: Path, nexusify: list[str]) -> Result:
    res = Result(label(repo), repo.get("layout", "?"))
    source = corpus / folder_name(repo)
    if not source.is_dir():
        res.status = "missing"
        res.notes.append(f"{source} not found (bring it with the fetch tool)")
        return res
    base = work / (folder_name(repo) + (f"+{repo['subdir']}" if repo.get("subdir") else ""))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    root = base / "repo"
    shutil.copytree(source, root, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    if repo.get("subdir"):
        root = root / repo["subdir"]
    log = base / "log.txt"
    env = {**os.environ, "NO_COLOR": "1", "GIT_AUTHOR_NAME": "eco", "GIT_AUTHOR_EMAIL": "eco@localhost",
           "GIT_COMMITTER_NAME": "eco", "GIT_COMMITTER_EMAIL": "eco@localhost",
           "NEXUS_USERNAME": USER, "NEXUS_PASSWORD": PASSWORD,
           "UV_INDEX_NEXUS_USERNAME": USER, "UV_INDEX_NEXUS_PASSWORD": PASSWORD,
           "POETRY_HTTP_BASIC_NEXUS_USERNAME": USER, "POETRY_HTTP_BASIC_NEXUS_PASSWORD": PASSWORD,
           "POETRY_VIRTUALENVS_PATH": str(base / "venvs"), "POETRY_NO_INTERACTION": "1",
           "PIP_CONFIG_FILE": os.devnull, "UV_PYTHON_DOWNLOADS": "never", "PDM_CHECK_UPDATE": "false"}
    for var in ("NEXUS_URL", "NEXUS_REPOSITORY", "NEXUS_INDEX_URL", "NEXUS_REPOSITORY_URL", "PIP_INDEX_URL",
                "UV_INDEX_URL", "UV_DEFAULT_INDEX", "VIRTUAL_ENV"):
        env.pop(var, None)
    subprocess.run(["git", "init", "-q"], cwd=root, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "corpus snapshot", "--no-verify"], cwd=root, env=env, check=True)

    shared_gt: dict[str, dict[str, Any]] = {canonical(s["name"]): s for s in repo.get("shared", [])}
    shared_optional = {canonical(n) for n in repo.get("shared_optional", [])}
    consumers_gt = consumers_of(repo)
    docker_gt: dict[str, dict[str, Any]] = {d["path"]: d for d in repo.get("dockerfiles", [])}

    # 1. audit
    audit = run([*nexusify, "--root", str(root), "--json", "audit", "--offline"], root, env, log)
    try:
        data = json.loads(audit.out)
    except json.JSONDecodeError:
        res.audit = f"CRASH exit {audit.code}"
        res.disagreements.append(f"audit: no JSON (exit {audit.code}): {_last(audit)}")
        res.status = "error"
        return res
    errs = [p for p in data.get("problems", []) if p["severity"] == "error"]
    res.audit = f"exit {audit.code}, {len(errs)} error(s), {data['summary']['warnings']} warning(s)"
    if audit.code not in (0, 1):
        res.disagreements.append(f"audit exit {audit.code}: {_last(audit)}")
    for p in errs:
        res.notes.append(f"audit error {p['code']} at {p.get('path')}:{p.get('line')}: {p['message'][:140]}")
    got_shared = {canonical(p["name"]) for p in data.get("packages", [])}
    res.shared = _set_diff("shared set", set(shared_gt), got_shared - (shared_optional - set(shared_gt)),
                           res.disagreements)
    for p in data.get("packages", []):
        gt = shared_gt.get(canonical(p["name"]))
        want = sorted(canonical(d) for d in (gt or {}).get("deps", []))
        got = sorted(canonical(d) for d in p.get("runtime_depends_on", p.get("depends_on", [])))
        if gt is not None and want != got:
            res.disagreements.append(f"runtime deps of {p['name']}: expected {want}, audit says {got}")
    services = {_norm(s["path"]): s for s in data.get("services", [])}
    got_consumers = {path for path, s in services.items() if s.get("shared_dependencies")}
    optional = {path for path, c in consumers_gt.items() if c.get("optional")}
    res.consumers = _set_diff("consumer set", set(consumers_gt) - optional, got_consumers - optional,
                              res.disagreements)
    for path, c in consumers_gt.items():
        s = services.get(path)
        if s is not None and s.get("shared_dependencies") and not c.get("optional"):
            want = sorted(canonical(n) for n in c.get("shared", []))
            got = sorted(canonical(n) for n in s.get("shared_dependencies", []))
            if want != got:
                res.disagreements.append(f"shared deps of {path}: expected {want}, audit says {got}")
    got_pairs = {(d, path) for path, s in services.items() for d in s.get("dockerfiles", [])}
    want_pairs = {(d, _norm(c)) for d, g in docker_gt.items() for c in _docker_consumers(g)}
    relevant = {d for d, _ in want_pairs} | {d for d, path in got_pairs if path in consumers_gt}
    diffs = []
    for d in sorted(relevant):
        want = sorted(c for x, c in want_pairs if x == d)
        got = sorted(c for x, c in got_pairs if x == d)
        if want != got:
            diffs.append(f"{d}: expected {', '.join(want) or 'no consumer'}; audit {', '.join(got) or 'unattached'}")
    want_docker = {d for d, _ in want_pairs}
    res.dockerfiles = f"ok ({len(want_docker)})" if not diffs else f"DIFF {len(diffs)}"
    res.disagreements += [f"Dockerfile attachment: {d}" for d in diffs]

    # the consumers' own frozen checks before nexusify touches anything: a lock that is already
    # stale is the repository's, not a verdict of nexusify
    baseline = {path: tool_check(root, c, env, log)[0] for path, c in consumers_gt.items()
                if c.get("expect") not in ("control", "stays")}

    # 2. publish, 3. rewrite, 4. --check, 5. verify
    server = PyPIServer(base / "index")
    try:
        common = ["--root", str(root), "--repository-url", server.url, "--index-url", server.simple]
        if repo.get("publish", True):
            pub = run([*nexusify, *common, "publish"], root, env, log)
            res.publish = "ok" if pub.code == 0 else f"exit {pub.code}"
            if pub.code != 0:
                res.notes.append(f"publish exit {pub.code}: {_last(pub)}")
        else:
            res.publish = "skipped"
        # the loopback index serves downloads without credentials (a Nexus group with anonymous read):
        # Dockerfiles need no netrc secret, so `USER app` before an install step is no reason to refuse
        rew = run([*nexusify, *common, "--json", "rewrite", "--no-index-auth"], root, env, log)
        rewritten = rew.code == 0
        codes = _problem_codes(rew.out)
        res.rewrite = "ok" if rewritten else f"exit {rew.code}" + (f" ({', '.join(codes)})" if codes else "")
        targets: list[str] = []
        if not rewritten:
            # the whole rewrite refused (one transaction): rewrite each consumer alone, as a user
            # migrating one service at a time would, and judge the ones that went through
            went, refused = [], []
            for path, c in consumers_gt.items():
                if c.get("expect") not in ("migrate", "either"):
                    continue
                one = run([*nexusify, *common, "--json", "rewrite", "--no-index-auth", path], root, env, log)
                if one.code == 0:
                    went.append(path)
                else:
                    refused.append(f"{path} ({', '.join(_problem_codes(one.out)) or f'exit {one.code}'})")
            targets = went
            if went or refused:
                res.rewrite += f"; alone: {len(went)} ok" + (f", refused {'; '.join(refused)}" if refused else "")
        chk = run([*nexusify, *common, "rewrite", "--check", "--no-index-auth", *targets], root, env, log)
        res.check = f"exit {chk.code}"
        ver = run([*nexusify, *common, "--json", "verify"], root, env, log)
        verdicts: dict[str, str] = {}
        try:
            vdata = json.loads(ver.out)
            for c in vdata.get("consumers", []):
                bad = [k for k, v in c["checks"].items() if v["status"] == "fail"]
                verdicts[_norm(c["path"])] = "ok" if c.get("ok") else "FAIL " + ",".join(bad)
        except json.JSONDecodeError:
            res.disagreements.append(f"verify: no JSON (exit {ver.code}): {_last(ver)}")
        res.verify = f"exit {ver.code}: " + "; ".join(f"{n} {v}" for n, v in sorted(verdicts.items()))

        # 6. the consumers' own checks and the static oracle
        changed = subprocess.run(["git", "status", "--porcelain"], cwd=root, env=env, capture_output=True,
                                 text=True, check=False).stdout.split("\n")
        changed = [c for c in changed if c.strip()]
        if repo.get("layout") == "control" and changed:
            res.disagreements.append(f"control repository, but rewrite changed {len(changed)} file(s): "
                                     + ", ".join(c[3:] for c in changed[:4]))
        moved = _moved_members(root)
        shared_paths = [s["path"] for s in shared_gt.values()]
        tool_cells = []
        for path, c in sorted(consumers_gt.items()):
            if c.get("expect") in ("control", "stays"):
                continue
            status, detail = tool_check(root, c, env, log)
            before = baseline.get(path, "n/a")
            tool_cells.append(f"{path} {status}" + (" (FAIL before too)" if before == "FAIL" and status == "FAIL" else ""))
            problems = []
            if status == "FAIL" and before != "FAIL":
                problems.append(detail)
            elif status == "FAIL":
                res.notes.append(f"{path}: {detail} (already failing on the untouched repository)")
            problems += manifest_findings(root, c, shared_gt)
            for d, g in docker_gt.items():
                if path in {_norm(c) for c in _docker_consumers(g)}:
                    problems += dockerfile_findings(root, d, g.get("context", str(Path(d).parent)), shared_paths,
                                                    moved, moved)
            said_ok = verdicts.get(path) == "ok"
            check_ok = chk.code == 0 and (not targets or path in targets)
            if problems and (said_ok or check_ok):
                who = " and ".join(w for w, ok in (("verify ok", said_ok), ("rewrite --check exit 0", check_ok)) if ok)
                res.false_greens.append(f"{path}: {who}, but " + "; ".join(problems))
            if c.get("expect") == "migrate" and not said_ok:
                res.disagreements.append(f"{path} must migrate; verify says {verdicts.get(path, 'nothing')}"
                                         + (f" ({problems[0]})" if problems else ""))
            if path not in verdicts and not c.get("optional"):
                res.disagreements.append(f"{path}: verify does not list it")
        res.tools = "; ".join(tool_cells)
        if chk.code == 0 and ver.code == 0 and res.false_greens:
            res.notes.append("every verb exited 0")
    finally:
        server.stop()
    res.status = "FALSE GREEN" if res.false_greens else ("DIFF" if res.disagreements else "agree")
    return res


def _problem_codes(out: str) -> list[str]:
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return []
    return sorted({p.get("code", "?") for p in data.get("problems", []) if p.get("severity") == "error"})


def _moved_members(root: Path) -> set[str]:
    """Project names the workspace root now excludes (moved out of the uv workspace by rewrite)."""
    names: set[str] = set()
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return names
    for folder in data.get("tool", {}).get("uv", {}).get("workspace", {}).get("exclude", []):
        try:
            member = tomllib.loads((root / folder / "pyproject.toml").read_text())
            names.add(member["project"]["name"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            continue
    return names


# --------------------------------------------------------------------------- table


def table(results: list[Result]) -> str:
    head = ["repository", "layout", "result", "shared", "consumers", "Dockerfiles", "publish", "rewrite",
            "--check", "verify", "tools"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.name, r.layout, r.status, r.shared, r.consumers, r.dockerfiles, r.publish, r.rewrite, r.check,
                 r.verify, r.tools]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines = ["\n".join(rows), ""]
    for r in results:
        for fg in r.false_greens:
            lines.append(f"- **false green** {r.name}: {fg}")
        for d in r.disagreements:
            lines.append(f"- disagreement {r.name}: {d}")
        for n in r.notes:
            lines.append(f"- note {r.name}: {n}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="owner/name (or part of it) of the repositories to run")
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus"), help="folder of owner+name checkouts")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, kept)")
    parser.add_argument("--nexusify", default=f"{sys.executable} -m nexusify", help="the command to run")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--render", type=Path, nargs="+", default=None, metavar="JSON",
                        help="print the table of earlier runs' --json files (a later file's repository wins)")
    args = parser.parse_args(argv)
    if args.render:
        merged: dict[str, Result] = {}
        for f in args.render:
            data = json.loads(f.read_text())
            for item in data if isinstance(data, list) else [data]:
                merged[item["name"]] = Result(**item)
        order = [label(r) for r in load_manifest(args.manifest)]
        print(table(sorted(merged.values(), key=lambda r: order.index(r.name) if r.name in order else len(order))))
        return 0
    repos = load_manifest(args.manifest)
    if args.names:
        repos = [r for r in repos if any(n.lower() in r["name"].lower() for n in args.names)]
    work = args.work or Path(tempfile.mkdtemp(prefix="nexusify-eco-"))
    work.mkdir(parents=True, exist_ok=True)
    nexusify = shlex.split(args.nexusify)
    results = []
    for repo in repos:
        print(f"== {repo['name']}", file=sys.stderr, flush=True)
        started = time.monotonic()
        res = check_repo(repo, args.corpus, work, nexusify)
        (work / f"{label(repo).replace('/', '+').replace(':', '+')}.result.json").write_text(
            json.dumps(res.__dict__, indent=2) + "\n")
        print(f"   {res.status} in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        results.append(res)
    print(table(results))
    print(f"\nlogs: {work}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
    return 1 if any(r.false_greens for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
