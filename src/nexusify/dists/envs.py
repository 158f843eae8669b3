"""Build environments: one virtualenv per distinct ``[build-system].requires`` set, created once, reused.

:class:`BuildEnvs` keeps them under ``<state>/build-envs/<hash>``; a set is installed with uv
when it is available (pip otherwise, and as a fallback), from the indexes pip is configured
with, under a file lock (concurrent nexusify runs share the cache), built in a temporary folder
and renamed into place. :func:`missing_requirements` tells which requirements an env lacks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.errors import BuildError

log = logging.getLogger(__name__)

ENV_LAYOUT = "2"  # bump to invalidate every cached build env


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
            output = tail(proc.stdout + proc.stderr)
            raise BuildError(
                f"could not {what} for build requirements {', '.join(requires)}:\n{output}",
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


def tail(text: str, lines: int = 25) -> str:
    """The last ``lines`` non-empty lines of a tool's output, indented, for an error message."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join("    " + line for line in kept[-lines:])


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
