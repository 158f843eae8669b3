"""Staging and building shared packages: fast, reproducible, and never touching the source tree.

- :func:`stage_project` copies a package's folder (minus VCS, caches, build output) into a
  staging folder, writes its ``pyproject.toml`` with internal path dependencies replaced by
  version constraints (:func:`nexusify.formats.pyproject_edit.versionize`, publish-staging mode), and
  normalises every file's mtime and mode, so setuptools' egg-info or pdm's ``.pdm-build`` land
  in the copy, and archives come out byte-identical on any machine.
- :class:`BuildEnvs` keeps one virtualenv per distinct ``[build-system].requires`` set (under
  ``<state>/build-envs/<hash>``), created once with the requirements installed, reused by every
  package with the same requirements, invalidated when they change.
- :func:`build_project` runs the package's own PEP 517 backend in that env's interpreter, sdist
  and wheel in one process (the backend is imported once), with ``SOURCE_DATE_EPOCH`` fixed.
- :func:`check_artifact` reads the wheel's METADATA, the sdist's PKG-INFO and pyproject, and
  refuses any path/file reference and any internal requirement that does not admit the
  version being published.
"""

from __future__ import annotations

import contextlib
import email.message
import email.parser
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.errors import BuildError
from nexusify.formats.constraints import admits

log = logging.getLogger(__name__)

# 1980-01-01T00:00:00Z, the earliest time a zip archive can hold
SOURCE_DATE_EPOCH = 315532800
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
ENV_LAYOUT = "2"  # bump to invalidate every cached build env

SKIP_DIR_NAMES = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
    "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".nexusify", ".eggs",
    ".idea", ".vscode", ".pdm-build", ".cache", "htmlcov", ".ipynb_checkpoints",
})
SKIP_FILE_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
SKIP_FILE_NAMES = frozenset({".DS_Store", "Thumbs.db"})


# --------------------------------------------------------------------------- source files


def iter_source_files(folder: Path) -> list[tuple[str, Path]]:
    """(posix relative path, path) of every file a build could see, sorted; stable everywhere."""
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIR_NAMES and not d.endswith(".egg-info")
            and not (base / d / "pyvenv.cfg").is_file()
        )
        for name in filenames:
            if name in SKIP_FILE_NAMES or name.endswith(SKIP_FILE_SUFFIXES):
                continue
            path = base / name
            if path.is_symlink() and not path.exists():
                continue
            out.append((path.relative_to(folder).as_posix(), path))
    out.sort(key=lambda item: item[0])
    return out


def fingerprint(folder: Path, pyproject_text: str, extra: Mapping[str, Any]) -> str:
    """A content hash of a package: its files (the staged pyproject in place of the real one),
    file modes' executable bit, and ``extra`` (backend, requirements, staging rules)."""
    h = hashlib.sha256()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for rel, path in iter_source_files(folder):
        h.update(b"\0F" + rel.encode())
        if rel == "pyproject.toml":
            h.update(pyproject_text.encode("utf-8"))
            continue
        try:
            st = path.stat()
            h.update(b"x" if st.st_mode & 0o111 else b"-")
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    h.update(chunk)
        except OSError as exc:
            raise BuildError(f"cannot read {path}: {exc.strerror}", path=path) from exc
    return h.hexdigest()


def stage_project(folder: Path, pyproject_text: str, dest: Path) -> Path:
    """Copy ``folder`` into ``dest`` (created, must not exist) with ``pyproject_text`` as its
    pyproject.toml; every mtime set to SOURCE_DATE_EPOCH and modes normalised (0644/0755)."""
    dest.mkdir(parents=True)
    for rel, path in iter_source_files(folder):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel == "pyproject.toml":
            target.write_bytes(pyproject_text.encode("utf-8"))
            mode = 0o644
        else:
            shutil.copyfile(path, target)
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        os.chmod(target, mode)
        os.utime(target, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    for dirpath, _dirnames, _files in os.walk(dest):
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    if not (dest / "pyproject.toml").exists():
        (dest / "pyproject.toml").write_text(pyproject_text, encoding="utf-8")
    return dest


# --------------------------------------------------------------------------- build envs


@dataclass(frozen=True)
class BuildEnv:
    key: str
    path: Path
    requires: tuple[str, ...]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def env_key(requires: Sequence[str]) -> str:
    """Hash of a requirement set (order and spelling of names do not matter) + interpreter."""
    norm = sorted({_normalise_requirement(r) for r in requires})
    data = json.dumps({"requires": norm, "python": sys.version, "exe": sys.executable, "layout": ENV_LAYOUT})
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _normalise_requirement(req: str) -> str:
    try:
        r = Requirement(req)
    except InvalidRequirement:
        return req.strip()
    r.name = canonicalize_name(r.name)
    return str(r)


class BuildEnvs:
    """One virtualenv per distinct build-requirement set, created once and reused.

    Creation is guarded by a file lock (concurrent nexusify runs share the cache) and made
    atomic by building in a temporary folder and renaming it into place.
    """

    def __init__(self, cache_dir: Path, env: Mapping[str, str] | None = None, timeout: float = 600.0) -> None:
        self.cache_dir = cache_dir
        self.env = dict(env if env is not None else os.environ)
        self.timeout = timeout
        self._created: list[str] = []
        self._failed: dict[str, BuildError] = {}

    @property
    def created(self) -> list[str]:
        """Keys of the envs this instance had to create (for reports and tests)."""
        return list(self._created)

    def prepare(self, requirement_sets: Sequence[Sequence[str]], workers: int = 8) -> None:
        """Create every missing env at once (pip waits on the network, not the CPU); errors
        surface later, from :meth:`get`, for the packages that need that env."""
        missing = {env_key(r): list(r) for r in requirement_sets if not self.is_ready(r)}
        if not missing:
            return
        from concurrent.futures import ThreadPoolExecutor

        def make(reqs: list[str]) -> None:
            with contextlib.suppress(BuildError):
                self.get(reqs)

        with ThreadPoolExecutor(max(1, min(workers, len(missing)))) as pool:
            list(pool.map(make, missing.values()))

    def path_for(self, requires: Sequence[str]) -> Path:
        return self.cache_dir / env_key(requires)

    def is_ready(self, requires: Sequence[str]) -> bool:
        return (self.path_for(requires) / "nexusify-env.json").is_file()

    def get(self, requires: Sequence[str]) -> BuildEnv:
        key = env_key(requires)
        path = self.cache_dir / key
        env = BuildEnv(key, path, tuple(requires))
        if (path / "nexusify-env.json").is_file() and env.python.exists():
            return env
        failed = self._failed.get(key)
        if failed is not None:  # tried once this run: every package needing it gets the same error
            raise BuildError(failed.message, hint=failed.hint)
        try:
            return self._make(key, path, env)
        except BuildError as exc:
            self._failed[key] = exc
            raise

    def _make(self, key: str, path: Path, env: BuildEnv) -> BuildEnv:
        requires = env.requires
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.cache_dir / f"{key}.lock"):
            if (path / "nexusify-env.json").is_file() and env.python.exists():
                return env
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=self.cache_dir))
            try:
                self._create(tmp, list(requires))
                os.replace(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._created.append(key)
        return env

    def _create(self, where: Path, requires: list[str]) -> None:
        started = time.monotonic()
        shutil.rmtree(where)
        installer = "pip"
        uv = find_uv(self.env)
        if uv is not None:
            try:
                self._run([uv, "venv", "--quiet", "--python", sys.executable, str(where)],
                          "create the build env", requires)
                if requires:
                    self._run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(where / "bin" / "python"),
                               *uv_index_args(self.env), *requires], "install the build requirements", requires)
                installer = "uv"
            except BuildError as exc:  # uv cannot reach what pip can (e.g. pip.conf-only indexes)
                log.info("uv could not make the build env (%s); falling back to pip", exc.message.splitlines()[0])
                shutil.rmtree(where, ignore_errors=True)
        if installer == "pip":
            self._run([sys.executable, "-m", "venv", "--without-pip", str(where)], "create the build env", requires)
            if requires:
                self._run(
                    [sys.executable, "-m", "pip", "--python", str(where / "bin" / "python"), "install", "--quiet",
                     "--disable-pip-version-check", "--no-input", "--progress-bar", "off", *requires],
                    "install the build requirements", requires,
                )
        (where / "nexusify-env.json").write_text(json.dumps({
            "requires": requires, "python": sys.version, "created": time.time(), "installer": installer,
            "seconds": round(time.monotonic() - started, 2),
        }, indent=2))

    def _run(self, cmd: list[str], what: str, requires: list[str]) -> None:
        env = {k: v for k, v in self.env.items() if not k.startswith("PYTHON")}
        env.setdefault("PATH", os.defpath)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=self.timeout, check=False,
                                  cwd=self.cache_dir)
        except subprocess.TimeoutExpired as exc:
            raise BuildError(f"could not {what} for {', '.join(requires) or '(none)'}: timed out after {self.timeout:.0f}s",
                             hint="check that pip can reach your package index") from exc
        if proc.returncode != 0:
            tail = _tail(proc.stdout + proc.stderr)
            raise BuildError(
                f"could not {what} for build requirements {', '.join(requires)}:\n{tail}",
                hint="check [build-system].requires and that pip can reach an index holding them "
                     "(pip's own configuration is used for this step)",
            )


# sysconfig fills its variables lazily and not thread-safely (Python 3.11): a build-env worker
# thread could read EXE as None while another fills them, and uv's find_uv_bin then fails with a
# TypeError. Filling them once at import, before any worker starts, closes that race.
sysconfig.get_config_vars()


def find_uv(env: Mapping[str, str]) -> str | None:
    """The uv binary, when installed (PATH or the ``uv`` Python package); None disables it.

    ``NEXUSIFY_BUILD_INSTALLER=pip`` forces pip."""
    if env.get("NEXUSIFY_BUILD_INSTALLER", "").lower() == "pip":
        return None
    found = shutil.which("uv", path=env.get("PATH"))
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return None


def _pip_config_values(env: Mapping[str, str], key: str) -> list[str]:
    """A pip setting (index-url, extra-index-url, find-links) from PIP_* variables or pip's
    config files, so build requirements come from the same place with uv as with pip."""
    import configparser

    var = env.get("PIP_" + key.upper().replace("-", "_"))
    if var:
        return var.split()
    home = Path(env.get("HOME", os.path.expanduser("~")))
    files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), home / ".pip/pip.conf",
             Path(env.get("XDG_CONFIG_HOME", home / ".config")) / "pip/pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    values: list[str] = []
    for f in files:
        cp = configparser.RawConfigParser()
        try:
            cp.read(f)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if cp.has_option(section, key):
                values = cp.get(section, key).split()
    return values


def uv_index_args(env: Mapping[str, str]) -> list[str]:
    args: list[str] = []

    def usable(url: str) -> bool:
        if url.startswith("file://"):
            return Path(url[len("file://"):]).exists()
        return url.startswith(("http://", "https://")) or Path(url).exists()

    for url in _pip_config_values(env, "index-url")[:1]:
        if usable(url):
            args += ["--default-index", url]
    for url in _pip_config_values(env, "extra-index-url"):
        if usable(url):
            args += ["--index", url]
    for link in _pip_config_values(env, "find-links"):
        if usable(link):
            args += ["--find-links", link]
    return args


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _tail(text: str, lines: int = 25) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join("    " + line for line in kept[-lines:])


# --------------------------------------------------------------------------- building

_RUNNER = r'''
import importlib, json, os, sys, traceback
spec = json.loads(sys.argv[1])
for p in reversed(spec["backend_path"]):
    sys.path.insert(0, os.path.abspath(p))
result = {"requires": [], "sdist": None, "wheel": None, "error": None}
try:
    mod, _, obj = spec["backend"].partition(":")
    backend = importlib.import_module(mod.strip())
    for part in filter(None, obj.strip().split(".")):
        backend = getattr(backend, part)
    for kind in ("sdist", "wheel"):
        hook = getattr(backend, "get_requires_for_build_" + kind, None)
        if hook is not None:
            result["requires"].extend(hook({}))
    if "sdist" in spec["kinds"]:
        result["sdist"] = backend.build_sdist(spec["out"], {})
    if "wheel" in spec["kinds"]:
        result["wheel"] = backend.build_wheel(spec["out"], {})
except BaseException as exc:
    traceback.print_exc()
    result["error"] = type(exc).__name__ + ": " + str(exc)
with open(spec["result"], "w") as fh:
    json.dump(result, fh)
'''


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str  # "sdist" or "wheel"
    sha256: str
    md5: str
    size: int

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def digests(self) -> dict[str, str]:
        return {"sha256": self.sha256, "md5": self.md5}

    @classmethod
    def from_path(cls, path: Path, kind: str) -> Artifact:
        data = path.read_bytes()
        return cls(path, kind, hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data))

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "kind": self.kind, "sha256": self.sha256, "size": self.size}


@dataclass
class BuildResult:
    sdist: Artifact
    wheel: Artifact
    seconds: float
    log: str = ""
    dynamic_requires: list[str] = field(default_factory=list)

    @property
    def artifacts(self) -> list[Artifact]:
        return [self.sdist, self.wheel]


def backend_of(data: Mapping[str, Any]) -> tuple[str, list[str], list[str]]:
    """(backend, requires, backend-path) of a pyproject, with PEP 517's legacy default."""
    bs = data.get("build-system") if isinstance(data.get("build-system"), dict) else None
    if not bs:
        return DEFAULT_BACKEND, list(DEFAULT_REQUIRES), []
    backend = bs.get("build-backend") if isinstance(bs.get("build-backend"), str) else DEFAULT_BACKEND
    requires = [r for r in bs.get("requires", []) if isinstance(r, str)] if isinstance(bs.get("requires"), list) else []
    backend_path = [p for p in bs.get("backend-path", []) if isinstance(p, str)] if isinstance(bs.get("backend-path"), list) else []
    return backend, requires, backend_path


def build_env_vars(base: Mapping[str, str]) -> dict[str, str]:
    """The environment backends run in: fixed time, hash seed, locale and timezone; no bytecode
    written (build envs are compiled when installed; the staged sources stay clean)."""
    env = {k: v for k, v in base.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.setdefault("PATH", os.defpath)
    env.update({
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
        "PYTHONHASHSEED": "0",
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def build_project(
    staged: Path,
    out_dir: Path,
    env: BuildEnv,
    *,
    backend: str,
    backend_path: Sequence[str] = (),
    base_env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    name: str = "",
) -> BuildResult:
    """Build sdist and wheel of the staged project with its backend, in ``env``'s interpreter."""
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / ".nexusify-build.json"
    spec = {"backend": backend, "backend_path": list(backend_path), "out": str(out_dir),
            "result": str(result_file), "kinds": ["sdist", "wheel"]}
    label = name or staged.name
    try:
        proc = subprocess.run(
            [str(env.python), "-c", _RUNNER, json.dumps(spec)], cwd=staged, capture_output=True, text=True,
            env=build_env_vars(base_env if base_env is not None else os.environ),
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"building {label} timed out after {timeout:.0f}s", hint="look for a backend waiting on input or the network") from exc
    log = (proc.stdout or "") + (proc.stderr or "")
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        result = {"error": f"the build process exited with {proc.returncode}"}
    finally:
        result_file.unlink(missing_ok=True)
    dynamic = [r for r in result.get("requires") or [] if isinstance(r, str)]
    if result.get("error") or not result.get("sdist") or not result.get("wheel"):
        missing = missing_requirements(env, dynamic)
        hint = (f"the backend also needs {', '.join(missing)}: add them to [build-system].requires"
                if missing else "run the backend yourself (python -m build) in the package folder to see the full log")
        raise BuildError(f"building {label} with {backend} failed: {result.get('error')}\n{_tail(log)}", hint=hint)
    normalise_sdist(out_dir / result["sdist"])
    sdist = Artifact.from_path(out_dir / result["sdist"], "sdist")
    wheel = Artifact.from_path(out_dir / result["wheel"], "wheel")
    return BuildResult(sdist, wheel, time.monotonic() - started, log, dynamic)


_PAX_VOLATILE = frozenset({"mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})


def normalise_sdist(path: Path) -> bool:
    """Make a .tar.gz byte-reproducible: member mtimes SOURCE_DATE_EPOCH, owners 0/"", gzip
    header time fixed. Member order, names, modes and contents are kept. Backends that
    already honour SOURCE_DATE_EPOCH (hatchling, poetry-core) are left byte-for-byte alone;
    setuptools stamps generated files with the build time and pdm-backend the gzip header.
    Returns whether the file was rewritten."""
    if not path.name.endswith(".tar.gz"):
        return False
    raw = path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tf:
        members = tf.getmembers()
        fmt = tf.format
        header_time = int.from_bytes(raw[4:8], "little")
        normal = header_time in (0, SOURCE_DATE_EPOCH) and all(
            int(m.mtime) == SOURCE_DATE_EPOCH and m.uid == 0 and m.gid == 0 and not m.uname and not m.gname
            and not (_PAX_VOLATILE & m.pax_headers.keys())
            for m in members
        )
        if normal:
            return False
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=SOURCE_DATE_EPOCH, compresslevel=9) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=fmt) as out:
            for m in members:
                data = tf.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
                m.mtime = SOURCE_DATE_EPOCH
                m.uid = m.gid = 0
                m.uname = m.gname = ""
                m.pax_headers = {k: v for k, v in m.pax_headers.items() if k not in _PAX_VOLATILE}
                out.addfile(m, io.BytesIO(data) if data is not None else None)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return True


def missing_requirements(env: BuildEnv, requires: Sequence[str]) -> list[str]:
    """Requirements the env does not satisfy (names + versions of its installed distributions)."""
    if not requires:
        return []
    from importlib.metadata import distributions

    site = list(env.path.glob("lib/python*/site-packages"))
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions(path=[str(s) for s in site])}
    out = []
    for raw in requires:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            out.append(raw)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        have = installed.get(canonicalize_name(req.name))
        if have is None or (req.specifier and not req.specifier.contains(have, prereleases=True)):
            out.append(raw)
    return out


# --------------------------------------------------------------------------- checks

_FILE_REF = re.compile(r"(?<![\w.])(file:|\$\{PROJECT_ROOT\})", re.I)


def read_wheel_metadata(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        for n in zf.namelist():
            parts = n.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return zf.read(n).decode("utf-8")
    raise BuildError(f"{path.name} has no .dist-info/METADATA", hint="the backend produced a broken wheel")


def read_sdist_members(path: Path, names: Sequence[str]) -> dict[str, str]:
    """The text of top-level ``names`` (e.g. PKG-INFO, pyproject.toml) inside an sdist."""
    found: dict[str, str] = {}
    with tarfile.open(path, "r:gz") as tf:
        for m in tf.getmembers():
            parts = m.name.split("/")
            if len(parts) == 2 and parts[1] in names and m.isfile():
                fh = tf.extractfile(m)
                if fh is not None:
                    found[parts[1]] = fh.read().decode("utf-8", "replace")
    return found


def check_requires_dist(
    metadata_text: str, where: str, internal: Mapping[str, str]
) -> list[str]:
    """Problems with the Requires-Dist of a METADATA/PKG-INFO text."""
    msg = email.parser.Parser().parsestr(metadata_text)
    problems = []
    for raw in msg.get_all("Requires-Dist") or []:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            problems.append(f"{where}: unparseable Requires-Dist {raw!r}")
            continue
        norm = canonicalize_name(req.name)
        if req.url:
            if req.url.startswith("file:") or norm in internal:
                problems.append(f"{where}: Requires-Dist {raw!r} points at a path/URL, which installs nowhere else")
            continue
        if norm in internal and not admits(str(req.specifier), internal[norm]):
            problems.append(f"{where}: Requires-Dist {raw!r} does not admit {req.name} {internal[norm]}, the version being published")
    return problems


def check_pyproject_text(text: str, where: str, internal_names: Sequence[str]) -> list[str]:
    problems = []
    if _FILE_REF.search(text):
        problems.append(f"{where}: still holds a file: URL or ${{PROJECT_ROOT}} reference")
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError:
        return problems
    from nexusify.formats.pyproject_edit import local_entries_left

    left = local_entries_left(text, internal_names)
    if left:
        problems.append(f"{where}: still path-depends on {', '.join(left)}")
    del data
    return problems


def check_artifact(artifact: Artifact, internal: Mapping[str, str]) -> list[str]:
    """Path/file references and unversioned internal requirements inside a built archive."""
    if artifact.kind == "wheel":
        return check_requires_dist(read_wheel_metadata(artifact.path), f"{artifact.filename} METADATA", internal)
    members = read_sdist_members(artifact.path, ("PKG-INFO", "pyproject.toml"))
    problems: list[str] = []
    if "PKG-INFO" in members:
        problems += check_requires_dist(members["PKG-INFO"], f"{artifact.filename} PKG-INFO", internal)
    if "pyproject.toml" in members:
        problems += check_pyproject_text(members["pyproject.toml"], f"{artifact.filename} pyproject.toml", list(internal))
    return problems


# --------------------------------------------------------------------------- comparing archives


def archive_contents(data: bytes, filename: str) -> dict[str, str]:
    """member name -> sha256 of its content (timestamps, owners, compression ignored)."""
    out: dict[str, str] = {}
    if filename.endswith(".whl") or filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    out[info.filename] = hashlib.sha256(zf.read(info)).hexdigest()
        return out
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for m in tf.getmembers():
            # the top folder is named after the file (older tools wrote "my-pkg-1.0/", newer
            # ones "my_pkg-1.0/"): compare what is inside it
            name = m.name.split("/", 1)[1] if "/" in m.name else m.name
            if m.isfile():
                fh = tf.extractfile(m)
                out[name] = hashlib.sha256(fh.read() if fh else b"").hexdigest()
            elif m.issym():
                out[name] = "symlink:" + m.linkname
    return out


def same_contents(a: bytes, b: bytes, filename: str) -> bool:
    try:
        return archive_contents(a, filename) == archive_contents(b, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return False


def describe_difference(a: bytes, b: bytes, filename: str, limit: int = 5) -> str:
    """Which members differ between two archives (for the "changed without a bump" message)."""
    try:
        ca, cb = archive_contents(a, filename), archive_contents(b, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return "the index's copy could not be read as an archive"
    changed = sorted(n for n in ca.keys() & cb.keys() if ca[n] != cb[n])
    added = sorted(ca.keys() - cb.keys())
    removed = sorted(cb.keys() - ca.keys())
    parts = []
    for label, names in (("changed", changed), ("new", added), ("gone", removed)):
        if names:
            shown = ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts) or "the archives differ"


_METADATA_MEMBER = re.compile(
    r"(\.dist-info/(METADATA|RECORD|WHEEL)|(^|/)PKG-INFO|(^|/)pyproject\.toml|(^|/)setup\.cfg|(^|/)setup\.py"
    r"|\.egg-info/(PKG-INFO|requires\.txt|SOURCES\.txt))$"
)
# fields a newer backend writes differently for the very same release
_VOLATILE_FIELDS = frozenset({"metadata-version", "dynamic", "license-file", "requires-dist"})


def _member_text(data: bytes, filename: str, member: str) -> str:
    if filename.endswith((".whl", ".zip")):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.read(member).decode("utf-8", "replace")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for m in tf.getmembers():
            if m.isfile() and (m.name == member or m.name.split("/", 1)[-1] == member):
                fh = tf.extractfile(m)
                return fh.read().decode("utf-8", "replace") if fh else ""
    return ""


def _requirement_key(req: Requirement) -> str:
    extras = ",".join(sorted(req.extras))
    return f"{canonicalize_name(req.name)}[{extras}]{req.specifier}{req.url or ''};{req.marker or ''}"


def _same_metadata(mine: str, theirs: str, internal: Mapping[str, str]) -> bool:
    """METADATA/PKG-INFO of the same release: equal fields (order, generator-specific fields and
    requirement spelling aside), equal external requirements, and internal requirements the
    published side still satisfies with the versions being published now."""
    a, b = email.parser.Parser().parsestr(mine), email.parser.Parser().parsestr(theirs)

    def fields(msg: email.message.Message) -> dict[str, list[str]]:
        return {k.lower(): sorted(" ".join(str(v).split()) for v in msg.get_all(k) or [])
                for k in set(msg.keys()) if k.lower() not in _VOLATILE_FIELDS}

    if fields(a) != fields(b):
        return False
    if str(a.get_payload() or "").strip() != str(b.get_payload() or "").strip():
        return False
    try:
        ra = [Requirement(r) for r in a.get_all("Requires-Dist") or []]
        rb = [Requirement(r) for r in b.get_all("Requires-Dist") or []]
    except InvalidRequirement:
        return False
    external_a = sorted(_requirement_key(r) for r in ra if canonicalize_name(r.name) not in internal)
    external_b = sorted(_requirement_key(r) for r in rb if canonicalize_name(r.name) not in internal)
    if external_a != external_b:
        return False

    def shape(reqs: list[Requirement]) -> list[str]:
        return sorted(f"{canonicalize_name(r.name)}[{','.join(sorted(r.extras))}];{r.marker or ''}"
                      for r in reqs if canonicalize_name(r.name) in internal)

    if shape(ra) != shape(rb):
        return False
    return all(not r.url and admits(str(r.specifier), internal[canonicalize_name(r.name)])
               for r in rb if canonicalize_name(r.name) in internal)


def equivalent_release(mine: bytes, theirs: bytes, filename: str, internal: Mapping[str, str]) -> bool:
    """Whether a rebuilt archive is the same release as the published one although its bytes
    and member hashes differ.

    Every file of the package itself must be identical; only metadata may differ, and only the
    way a newer backend (``Generator``, ``Metadata-Version``, requirement spelling) or a
    dependency's version bump (``^0.1.0`` becoming ``^0.1.1``, which the published range still
    admits) changes it. Anything else is a real change: "changed without a bump"."""
    try:
        ca, cb = archive_contents(mine, filename), archive_contents(theirs, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return False
    differing = {n for n in ca.keys() | cb.keys() if ca.get(n) != cb.get(n)}
    if not differing or any(not _METADATA_MEMBER.search(n) or n not in ca or n not in cb for n in differing):
        return False
    names = [re.escape(n) for n in internal] + [re.escape(n.replace("-", "_")) for n in internal]
    mentions = re.compile(r"(?i)(?<![\w.-])(" + "|".join(names) + r")(?![\w.-])") if names else None

    def kept(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if mentions is None or not mentions.search(ln)]

    for member in differing:
        if member.endswith("RECORD"):
            continue  # hashes of the other members, which are compared themselves
        a, b = _member_text(mine, filename, member), _member_text(theirs, filename, member)
        if member.endswith(("METADATA", "PKG-INFO")):
            if not _same_metadata(a, b, internal):
                return False
        elif member.endswith("WHEEL"):
            if [ln for ln in a.splitlines() if not ln.startswith("Generator:")] != \
                    [ln for ln in b.splitlines() if not ln.startswith("Generator:")]:
                return False
        elif kept(a) != kept(b):
            return False
    return True


def admits_current_versions(mine: bytes, theirs: bytes, filename: str, internal: Mapping[str, str]) -> bool:
    """Kept for callers of the first API: see :func:`equivalent_release`."""
    return equivalent_release(mine, theirs, filename, internal)
