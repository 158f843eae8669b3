"""Settings: one schema, one resolver, precedence flag > environment > config file > default.

The config file is ``nexusify.toml`` at the monorepo root (top-level keys) or the
``[tool.nexusify]`` table of the root ``pyproject.toml``. Unknown keys are errors with a
"did you mean" suggestion; all problems are collected and reported together.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.credentials import Credentials, Secret, mask_url, resolve_credentials, split_userinfo
from nexusify.errors import ConfigError, ConfigErrors
from nexusify.files import confined, find_line, read_toml

CONSTRAINT_MODES = ("caret", "tilde", "exact", "minimum")
PRIORITIES = ("explicit", "supplemental", "primary")


@dataclass(frozen=True)
class Option:
    """One setting: its config key, flag, environment variable, type and default."""

    key: str
    kind: str  # "str", "int", "bool", "list", "table", "choice"
    default: Any
    help: str
    env: str | None = None
    flag: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def attr(self) -> str:
        return self.key.replace("-", "_")


SCHEMA: tuple[Option, ...] = (
    Option("nexus-url", "str", None, "Base URL of the Nexus instance, e.g. https://nexus.example.com.",
           env="NEXUS_URL", flag="--nexus-url"),
    Option("repository", "str", "pypi-hosted", "Hosted PyPI repository packages are uploaded to.",
           env="NEXUS_REPOSITORY", flag="--repository"),
    Option("index-repository", "str", None,
           "Repository installs resolve from (e.g. a group of hosted + PyPI proxy); default: `repository`.",
           env="NEXUS_INDEX_REPOSITORY", flag="--index-repository"),
    Option("repository-url", "str", None,
           "Full upload URL, overriding nexus-url/repository (pypiserver, devpi, Artifactory...).",
           env="NEXUS_REPOSITORY_URL", flag="--repository-url"),
    Option("index-url", "str", None,
           "Full PEP 503 index URL, overriding nexus-url/index-repository.",
           env="NEXUS_INDEX_URL", flag="--index-url"),
    Option("username", "str", None, "User for the index; the password is never read from config.",
           env="NEXUS_USERNAME", flag="--username"),
    Option("source-name", "str", "nexus",
           "Name of the package source written into services (`[[tool.poetry.source]]`, `[[tool.uv.index]]`).",
           env="NEXUSIFY_SOURCE_NAME", flag="--source-name"),
    Option("constraint", "choice", "caret", "How rewritten dependencies constrain versions.",
           env="NEXUSIFY_CONSTRAINT", flag="--constraint", choices=CONSTRAINT_MODES),
    Option("priority", "choice", "explicit",
           "Poetry source priority written by rewrite: explicit (safe against dependency confusion) or supplemental (the seed's layout).",
           env="NEXUSIFY_PRIORITY", flag="--priority", choices=PRIORITIES),
    Option("shared", "list", [], "Globs (relative to the root) of folders holding shared packages; overrides discovery."),
    Option("services", "list", [], "Globs (relative to the root) of folders holding services; overrides discovery."),
    Option("exclude", "list", [], "Globs of folders audit ignores."),
    Option("stay-in-workspace", "list", [],
           "Globs (relative to the root) of uv workspace members that stay in their workspace: rewrite leaves "
           "them (so `rewrite --check` passes in CI), audit shows them, verify says n/a."),
    Option("path-aliases", "table", {},
           'Map absolute container paths to monorepo folders, e.g. {"/shared/packages" = "shared/packages"}.'),
    Option("jobs", "int", 0, "Parallel builds for publish (0 = CPU count).", env="NEXUSIFY_JOBS", flag="--jobs"),
    Option("state-dir", "str", ".nexusify", "Folder (relative to the root) for fingerprints, build caches and deploy state.",
           env="NEXUSIFY_STATE_DIR"),
    Option("build-env-dir", "str", None,
           "Folder for publish's cached build environments, one per [build-system].requires set "
           "(default: <state-dir>/build-envs; a shared user cache dir, set in the environment, makes fresh clones fast; "
           "in the config file it must stay inside the monorepo).",
           env="NEXUSIFY_BUILD_ENV_DIR"),
    Option("public-index-url", "str", "https://pypi.org/simple/",
           "Public PEP 503 index `audit --check-public` looks shared package names up in (dependency confusion).",
           env="NEXUSIFY_PUBLIC_INDEX_URL", flag="--public-index-url"),
    Option("timeout", "int", 30, "HTTP timeout in seconds for index requests.", env="NEXUSIFY_TIMEOUT", flag="--timeout"),
    Option("deploy", "table", {}, "Deploy configuration (see `[tool.nexusify.deploy]`)."),
)
SCHEMA_BY_KEY = {o.key: o for o in SCHEMA}
# settings holding URLs: credentials in them are split off before anything is stored or shown
URL_KEYS = ("nexus-url", "repository-url", "index-url", "public-index-url")
SECRET_KEYS = {"password", "token", "nexus-password"}


@dataclass(frozen=True)
class ConfigFile:
    path: Path | None
    table: Mapping[str, Any]
    text: str = ""
    prefix: str = ""  # "tool.nexusify." for pyproject

    def line_of(self, key: str) -> int | None:
        if not self.text:
            return None
        return find_line(self.text, rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``sources`` tells where each value came from (flag/env/file/default)."""

    root: Path
    nexus_url: str | None = None
    repository: str = "pypi-hosted"
    index_repository: str | None = None
    repository_url: str | None = None
    index_url: str | None = None
    username: str | None = None
    source_name: str = "nexus"
    constraint: str = "caret"
    priority: str = "explicit"
    shared: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    stay_in_workspace: list[str] = field(default_factory=list)
    path_aliases: dict[str, str] = field(default_factory=dict)
    jobs: int = 0
    state_dir: str = ".nexusify"
    build_env_dir: str | None = None
    public_index_url: str = "https://pypi.org/simple/"
    timeout: int = 30
    deploy: dict[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    # the password found in a URL's userinfo (NEXUS_URL=https://user:pw@host); the URLs above never hold it
    url_password: Secret | None = None
    # where URL credentials were found ("NEXUS_URL", "--nexus-url"), so init can say where they belong
    url_credentials_in: str | None = None

    @property
    def upload_url(self) -> str | None:
        """Where packages are uploaded (twine's legacy API), always with a trailing slash."""
        if self.repository_url:
            return normalise_url(self.repository_url)
        if self.nexus_url:
            return f"{normalise_base(self.nexus_url)}/repository/{self.repository}/"
        return None

    @property
    def simple_url(self) -> str | None:
        """The PEP 503 index installs resolve from, always ending in ``/simple/`` form with slash."""
        if self.index_url:
            return normalise_url(self.index_url)
        if self.nexus_url:
            repo = self.index_repository or self.repository
            return f"{normalise_base(self.nexus_url)}/repository/{repo}/simple/"
        if self.repository_url:
            return normalise_url(self.repository_url.rstrip("/") + "/simple/")
        return None

    def install_index_url(self, why: str) -> str:
        """:attr:`simple_url`, required (``why``: what needs it) and never holding credentials: it is
        written into files (pyproject, Dockerfiles) and given to tools. A ConfigError otherwise."""
        url = self.simple_url
        if not url:
            raise ConfigError(f"no index URL: {why}",
                              hint="set nexus-url (and repository) or index-url in nexusify.toml, "
                                   "or pass --nexus-url/--index-url")
        problem = url_problem(url)
        if problem:
            raise ConfigError(f"the index URL cannot be written into files: {problem}",
                              hint="give an http:// or https:// URL without spaces or control characters")
        if mask_url(url) != url:
            raise ConfigError("the index URL holds credentials, and it is written into files and given to tools",
                              hint="give the URL without user:password@ and set NEXUS_USERNAME/NEXUS_PASSWORD; "
                                   "builds get them from a BuildKit secret")
        return url

    @property
    def upload_simple_url(self) -> str | None:
        """The simple index of the repository uploads go to (to check what it already holds)."""
        if self.nexus_url and not self.repository_url:
            return f"{normalise_base(self.nexus_url)}/repository/{self.repository}/simple/"
        if self.index_url and not self.nexus_url:
            return normalise_url(self.index_url)
        if self.repository_url:
            return normalise_url(self.repository_url.rstrip("/") + "/simple/")
        return self.simple_url

    @property
    def credentials_url(self) -> str | None:
        """The URL credentials are looked up for in ``.pypirc`` and the keyring, the same for every
        verb: the upload URL (what a ``.pypirc`` repository entry names) when there is one, else the
        index installs resolve from."""
        return self.upload_url or self.simple_url

    def credentials(self, env: Mapping[str, str], pypirc: Path | None = None) -> Credentials:
        """The credentials for the configured index, for every verb: the username (flag, env, config,
        a URL's userinfo), the password from NEXUS_PASSWORD, else a URL's userinfo, else ``.pypirc``,
        else the keyring (:func:`nexusify.credentials.resolve_credentials`)."""
        return resolve_credentials(self.username, self.credentials_url, env, pypirc=pypirc,
                                   url_password=self.url_password)

    @property
    def is_nexus(self) -> bool:
        """True when a Nexus base URL is set, so its REST API can be used."""
        return bool(self.nexus_url)

    @property
    def build_env_path(self) -> Path:
        """Where publish keeps its build environments (relative paths are from the root)."""
        if self.build_env_dir:
            return self.root / Path(self.build_env_dir).expanduser()
        return self.state_file("build-envs")

    @property
    def state_path(self) -> Path:
        """The state folder, checked at each use: inside the root (a symlink placed there since is refused)."""
        return self.state_file()

    def state_file(self, *parts: str) -> Path:
        """A path in the state folder nexusify writes, confined (:func:`nexusify.files.confined`):
        a ``.nexusify/dist`` a repository ships as a symlink out of it is a ConfigError."""
        return confined(self.root, Path(self.state_dir, *parts), source=str(self.config_path or "state-dir"),
                        what="state path", plain=True)

    @property
    def effective_jobs(self) -> int:
        import os

        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)


def normalise_base(url: str) -> str:
    return url.strip().rstrip("/")


def normalise_url(url: str) -> str:
    """One trailing slash: Nexus answers 400 to an upload URL without it, 404 to /simple."""
    return url.strip().rstrip("/") + "/"


def load_config_file(root: Path) -> ConfigFile:
    """Find and parse the config file: ``nexusify.toml`` or ``[tool.nexusify]`` in pyproject."""
    standalone = root / "nexusify.toml"
    pyproject = root / "pyproject.toml"
    found: list[ConfigFile] = []
    if standalone.is_file():
        data = read_toml(standalone)
        found.append(ConfigFile(standalone, data, standalone.read_text(encoding="utf-8")))
    if pyproject.is_file():
        data = read_toml(pyproject)
        table = data.get("tool", {}).get("nexusify")
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError("[tool.nexusify] must be a table", path=pyproject)
            found.append(ConfigFile(pyproject, table, pyproject.read_text(encoding="utf-8"), "tool.nexusify."))
    if len(found) > 1:
        raise ConfigError(
            "settings are in both nexusify.toml and [tool.nexusify] of pyproject.toml",
            path=standalone,
            hint="keep one of them: move the [tool.nexusify] keys into nexusify.toml or the other way round",
        )
    return found[0] if found else ConfigFile(None, {})


def _coerce(opt: Option, value: Any, where: str) -> Any:
    """Check and convert a value for ``opt``; ``where`` is "flag", "env" or "file"."""
    if value is None:
        return None
    kind = opt.kind
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        return value
    if kind == "choice":
        if not isinstance(value, str) or value not in opt.choices:
            raise ValueError(f"expected one of {', '.join(opt.choices)}, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("expected a whole number")
        if isinstance(value, str) and where != "file":
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"expected a whole number, got {value!r}") from None
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"expected a whole number >= 0, got {value!r}")
        return value
    if kind == "list":
        if isinstance(value, str) and where != "file":
            return [v for v in (p.strip() for p in value.split(",")) if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return list(value)
    if kind == "table":
        if not isinstance(value, dict):
            raise ValueError("expected a table")
        return dict(value)
    raise AssertionError(kind)  # pragma: no cover


def suggest(key: str, known: list[str]) -> str | None:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return match[0] if match else None


def resolve_settings(
    root: Path,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config: ConfigFile | None = None,
) -> Settings:
    """Resolve every setting: flag > environment > config file > default.

    ``flags`` maps option attrs (``nexus_url``) to values, None meaning "not given".
    ``env`` defaults to an empty mapping (tests pass their own; the CLI passes os.environ).
    """
    flags = dict(flags or {})
    env = env or {}
    root = root.resolve()
    if config is None:
        config = load_config_file(root)
    errors: list[ConfigError] = []
    for key in config.table:
        if key in SCHEMA_BY_KEY:
            continue
        if key in SECRET_KEYS:
            errors.append(ConfigError(
                f"`{config.prefix}{key}` must not be in a config file",
                path=config.path, line=config.line_of(key),
                hint="remove it and set NEXUS_PASSWORD in the environment (or use .pypirc/keyring)",
            ))
            continue
        near = suggest(key, list(SCHEMA_BY_KEY))
        errors.append(ConfigError(
            f"unknown setting `{config.prefix}{key}`" + (f"; did you mean `{near}`?" if near else ""),
            path=config.path, line=config.line_of(key),
            hint=f"known settings: {', '.join(SCHEMA_BY_KEY)}",
        ))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in SCHEMA:
        chosen: tuple[str, Any] | None = None
        if flags.get(opt.attr) is not None:
            chosen = ("flag", flags[opt.attr])
        elif opt.env and env.get(opt.env) not in (None, ""):
            chosen = ("env", env[opt.env])
        elif opt.key in config.table:
            chosen = ("file", config.table[opt.key])
        if chosen is None:
            continue
        where, raw = chosen
        try:
            values[opt.attr] = _coerce(opt, raw, where)
            sources[opt.attr] = where
        except ValueError as exc:
            label = {"flag": opt.flag or opt.key, "env": opt.env or opt.key}.get(where, f"{config.prefix}{opt.key}")
            errors.append(ConfigError(
                f"{label}: {exc}",
                path=config.path if where == "file" else None,
                line=config.line_of(opt.key) if where == "file" else None,
                hint=opt.help,
            ))
    def source_of(opt: Option) -> tuple[str, Path | None, int | None]:
        where = sources.get(opt.attr, "file")
        if where == "file":
            return f"{config.prefix}{opt.key}", config.path, config.line_of(opt.key)
        return (opt.flag if where == "flag" else opt.env) or opt.key, None, None

    for key in URL_KEYS:
        opt = SCHEMA_BY_KEY[key]
        if values.get(opt.attr) is not None:
            label, path, line = source_of(opt)
            problem = url_problem(values[opt.attr])
            if problem:
                errors.append(ConfigError(f"{label}: {problem}", path=path, line=line,
                                          hint="give an http:// or https:// URL without spaces or control characters"))
    # nothing a repository contains makes nexusify write outside it: the state folder always, the
    # build environments when the config file names them (a user's variable may point at a shared cache)
    for key in ("state-dir", "build-env-dir"):
        opt = SCHEMA_BY_KEY[key]
        folder = values.get(opt.attr, opt.default)
        if folder is None or (key == "build-env-dir" and sources.get(opt.attr) != "file"):
            continue
        label, path, line = source_of(opt)
        try:
            confined(root, Path(folder).expanduser() if key == "build-env-dir" else folder,
                     source=str(path) if path else label, line=line, what=f"{key} =")
        except ConfigError as exc:
            errors.append(exc)
    url_password, found_in = _split_url_credentials(values, sources, config, errors)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return Settings(root=root, config_path=config.path, sources=sources, url_password=url_password,
                    url_credentials_in=found_in, **values)


def url_problem(url: str) -> str | None:
    """What is wrong with an index URL (None: nothing): it is written into files (pyproject,
    Dockerfile ``RUN`` lines) and given to tools, so it must be one http(s) URL on one line."""
    bad = next((c for c in url if c.isspace() or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return f"the URL holds {'whitespace' if bad == ' ' else f'a control character ({bad!r})'}"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return f"expected an http:// or https:// URL, got {url.split('@')[-1][:80]!r}"
    if not rest.split("/", 1)[0].rpartition("@")[2]:
        return "the URL names no host"
    return None


def _split_url_credentials(values: dict[str, Any], sources: dict[str, str], config: ConfigFile,
                           errors: list[ConfigError]) -> tuple[Secret | None, str | None]:
    """Take ``user:password@`` out of every URL setting (in place): the username becomes the
    ``username`` setting unless one is given, the password is returned as a :class:`Secret`.
    A password in the config file is an error: a committed file must never hold one."""
    password: Secret | None = None
    found_in: str | None = None
    for key in URL_KEYS:
        opt = SCHEMA_BY_KEY[key]
        url = values.get(opt.attr)
        if not url:
            continue
        clean, user, pw = split_userinfo(url)
        if user is None and pw is None:
            continue
        where = sources.get(opt.attr, "file")
        if where == "file" and pw:
            errors.append(ConfigError(
                f"`{config.prefix}{key}` holds a password",
                path=config.path, line=config.line_of(key),
                hint="remove `user:password@` from the URL and set NEXUS_USERNAME and NEXUS_PASSWORD "
                     "in the environment (or use .pypirc/keyring)",
            ))
        values[opt.attr] = clean
        found_in = found_in or {"flag": opt.flag or key, "env": opt.env or key}.get(where, f"{config.prefix}{key}")
        if user and not values.get("username"):
            values["username"], sources["username"] = user, "url"
        if pw and password is None:
            password = Secret(pw)
    return password, found_in


def config_reference_markdown() -> str:
    """The configuration reference, generated from SCHEMA (docs/configuration.md)."""
    rows = ["| key | flag | environment | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for o in SCHEMA:
        default = "" if o.default in (None, [], {}) else f"`{o.default}`"
        if o.choices:
            default += f" (one of {', '.join(o.choices)})"
        rows.append(
            f"| `{o.key}` | {f'`{o.flag}`' if o.flag else ''} | {f'`{o.env}`' if o.env else ''} | {default} | {o.help} |"
        )
    rows.append("| — | `--password` is not offered | `NEXUS_PASSWORD` | | Password or user token for the index; also `.pypirc` or keyring. Never printed. |")
    return "\n".join(rows)
