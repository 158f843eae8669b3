"""Service images: version, build (SDK, or the engine CLI for BuildKit secrets), tag, push.

- Version: the git short SHA of the repository holding the service, with ``-dirty`` when the
  service folder has uncommitted changes; outside git, ``c`` + a hash of the build context.
- Tag: ``<registry>/<image>:<version>`` (``<image>:<version>`` without a registry), labels
  ``io.nexusify.service``/``.version``/``.environment``.
- Build: network ``host`` so a build step reaches an index on the host's loopback; the index URL
  goes in as a build arg when the Dockerfile declares one of :data:`INDEX_ARGS`. Named build
  contexts (compose ``additional_contexts``, ``COPY --from=<name>``) go through the engine's CLI
  (``--build-context``), which the SDK cannot pass. When the
  Dockerfile mounts a BuildKit secret (``RUN --mount=type=secret,id=...``), the index
  credentials are written to a private netrc file and passed with ``--secret id=...,src=...``
  through the engine's CLI (the SDK cannot pass secrets). Nothing secret is ever a build arg:
  build args are recorded in the image's history.
- Push: ``images.push(stream=True)``; docker-py does not raise on registry errors, they arrive
  inside the stream as ``{"error": ...}``, so every chunk is checked. Credentials come from
  NEXUSIFY_REGISTRY_USERNAME/_PASSWORD, else the engine's own login (``docker login``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nexusify.credentials import Credentials, Secret, mask_url, redact
from nexusify.deploy.runtime.engine import (
    LABEL_ENVIRONMENT,
    LABEL_MANAGED,
    LABEL_SERVICE,
    LABEL_VERSION,
    Engine,
)
from nexusify.deploy.runtime.sdk import EngineError
from nexusify.errors import DeployError, UsageError
from nexusify.extras import require
from nexusify.rewrite.dockerfile_patch import INDEX_ARG, SECRET_ID
from nexusify.syntax.dockerfile_parse import DockerfileSyntaxError, parse

# The ARG rewrite declares (NEXUS_INDEX_URL), then the names pip and uv read themselves.
INDEX_ARGS = (INDEX_ARG, "PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "INDEX_URL")
#: the BuildKit secret id that receives the index netrc: the one rewrite mounts; no other id gets it
NETRC_SECRET_ID = SECRET_ID
_TAG_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_CONTEXT_SKIP = {".git", "__pycache__", ".nexusify", ".venv", "node_modules", ".mypy_cache", ".pytest_cache"}


# --------------------------------------------------------------------------- version


def _git(folder: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def content_hash(folder: Path) -> str:
    """A stable hash of the files under ``folder`` (paths and bytes), skipping caches and VCS."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _CONTEXT_SKIP)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            h.update(path.relative_to(folder).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def source_version(folder: Path) -> str:
    """The version of a service's source: git short SHA (+ ``-dirty``), else ``c<content hash>``."""
    sha = _git(folder, "rev-parse", "--short=12", "HEAD")
    if sha:
        status = _git(folder, "status", "--porcelain", "--untracked-files=normal", "--", ".")
        return f"{sha}-dirty" if status else sha
    return "c" + content_hash(folder)[:12]


def check_version(version: str) -> str:
    if not _TAG_OK.match(version):
        raise UsageError(f"version {version!r} is not a valid image tag",
                         hint="use letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`)")
    return version


# --------------------------------------------------------------------------- references


def image_ref(registry: str | None, image: str, version: str) -> str:
    """``<registry>/<image>:<version>``, or ``<image>:<version>`` without a registry."""
    repo = f"{registry.rstrip('/')}/{image}" if registry else image
    return f"{repo}:{version}"


def split_ref(ref: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); a port in the registry host is not mistaken for a tag."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class DockerfileNeeds:
    args: frozenset[str]
    secret_ids: tuple[str, ...]


def dockerfile_needs(text: str, path: Path | None = None) -> DockerfileNeeds:
    """The ARGs a Dockerfile declares and the BuildKit secret ids it mounts, read with the
    project's own Dockerfile parser (continuations, heredocs, ``# escape=``, JSON form)."""
    try:
        instructions = parse(text)
    except DockerfileSyntaxError as exc:
        raise DeployError(f"the Dockerfile does not parse: {exc.message}", path=path, line=exc.line) from None
    args: set[str] = set()
    ids: list[str] = []
    for instr in instructions:
        if instr.keyword == "ARG":
            args.update(w.split("=", 1)[0] for w in instr.words if w)
        elif instr.keyword == "RUN":
            for name, value in instr.flags:
                if name != "mount" or not value:
                    continue
                opts = dict(part.partition("=")[::2] for part in value.split(","))
                sid = opts.get("id") or (opts.get("target", "").rsplit("/", 1)[-1] or None)
                if opts.get("type") == "secret" and sid and sid not in ids:
                    ids.append(sid)
    return DockerfileNeeds(frozenset(args), tuple(ids))


def netrc_text(index_url: str, credentials: Credentials) -> str:
    """A netrc line for the index host (pip and uv read ``~/.netrc``)."""
    auth = credentials.auth()
    if not auth:
        return ""
    host = urlsplit(index_url).hostname or ""
    return f"machine {host} login {auth[0]} password {auth[1]}\n"


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class BuildRequest:
    service: str
    context: Path
    dockerfile: str
    ref: str  # full reference, tag included
    version: str
    environment: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    index_url: str | None = None
    credentials: Credentials | None = None
    network: str = "host"
    additional_contexts: Mapping[str, Path] = field(default_factory=dict)  # compose additional_contexts


@dataclass(frozen=True)
class BuiltImage:
    service: str
    ref: str
    version: str
    image_id: str
    digest: str | None = None  # registry digest after a push
    pushed: bool = False
    via: str = "sdk"  # "sdk" or "cli"

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "image": self.ref, "version": self.version, "image_id": self.image_id,
                "digest": self.digest, "pushed": self.pushed, "built_with": self.via}


def labels_for(service: str, version: str, environment: str) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_SERVICE: service, LABEL_VERSION: version, LABEL_ENVIRONMENT: environment}


def resolve_build_args(req: BuildRequest, needs: DockerfileNeeds, secret_values: Iterable[Secret | str] = ()) -> dict[str, str]:
    """Build args: the index URL for the ARGs the Dockerfile declares, then the given ones.

    Refuses (DeployError) a build arg whose value holds a secret or URL credentials: build args
    are visible in ``history`` of the image.
    """
    args: dict[str, str] = {}
    if req.index_url:
        for name in INDEX_ARGS:
            if name in needs.args:
                args[name] = req.index_url
    args.update(req.build_args)
    values = [s.reveal() if isinstance(s, Secret) else s for s in secret_values]
    if req.credentials and req.credentials.password:
        values.append(req.credentials.password.reveal())
    for name, value in args.items():
        if mask_url(value) != value or any(v and v in value for v in values):
            raise DeployError(
                f"build arg {name} of {req.service} holds a secret",
                hint="build args are stored in the image history; pass credentials as a BuildKit secret "
                "(the netrc nexusify mounts) and runtime secrets through the deploy's secrets provider",
            )
    return args


def build_image(engine: Engine, req: BuildRequest, *, secret_values: Iterable[Secret | str] = (),
                on_log: Callable[[str], None] | None = None) -> BuiltImage:
    """Build one service image and tag it ``req.ref``; DeployError with the build's last lines."""
    dockerfile = req.context / req.dockerfile
    if not dockerfile.is_file():
        raise DeployError(f"{req.service}: no Dockerfile at {dockerfile}", path=dockerfile,
                          hint="set `dockerfile` for the service (relative to its folder)")
    needs = dockerfile_needs(dockerfile.read_text(encoding="utf-8", errors="replace"), dockerfile)
    args = resolve_build_args(req, needs, secret_values)
    labels = labels_for(req.service, req.version, req.environment)
    hide = [req.credentials.password if req.credentials else None]
    if needs.secret_ids or req.additional_contexts:  # neither is in the SDK's build API
        image_id = _build_cli(engine, req, args, labels, needs.secret_ids, hide, on_log)
        via = "cli"
    else:
        image_id = _build_sdk(engine, req, args, labels, hide, on_log)
        via = "sdk"
    return BuiltImage(req.service, req.ref, req.version, image_id, via=via)


def _build_sdk(engine: Engine, req: BuildRequest, args: dict[str, str], labels: dict[str, str],
               hide: list[Secret | None], on_log: Callable[[str], None] | None) -> str:
    docker_errors = require("deploy", "docker.errors")

    tail: list[str] = []
    try:
        image, logs = engine.client.images.build(
            **_context_args(req), tag=req.ref, buildargs=args, labels=labels,
            rm=True, forcerm=True, network_mode=req.network,
        )
        for chunk in logs:
            line = str(chunk.get("stream", "")).rstrip()
            if line:
                tail.append(line)
                if on_log:
                    on_log(redact(line, *hide))
    except docker_errors.BuildError as exc:
        for chunk in exc.build_log or []:
            line = str(chunk.get("stream", "") or chunk.get("error", "")).rstrip()
            if line:
                tail.append(line)
        raise DeployError(
            f"{req.service}: image build failed: {redact(str(exc.msg), *hide)}\n"
            + "\n".join(redact(x, *hide) for x in tail[-15:]),
            path=req.context / req.dockerfile,
            hint="fix the Dockerfile or the service; nothing was switched",
        ) from None
    except EngineError as exc:
        raise DeployError(f"{req.service}: the engine refused the build: {redact(exc.message, *hide)}",
                          path=req.context / req.dockerfile) from None
    return str(image.id)


def _context_args(req: BuildRequest) -> dict[str, Any]:
    """The context and Dockerfile arguments of an SDK build. A Dockerfile outside its context (a
    compose ``build.dockerfile: ../../docker/Dockerfile.x``) goes into the context archive under a
    name of its own: docker-py would send it as a second ``dockerfile`` parameter, which Podman's
    API takes as the Dockerfile's path."""
    if not os.path.relpath(req.context / req.dockerfile, req.context).startswith(".."):
        return {"path": str(req.context), "dockerfile": req.dockerfile}
    docker_utils = require("deploy", "docker.utils")
    name = f".nexusify-dockerfile-{uuid.uuid4().hex[:12]}"
    ignore = req.context / ".dockerignore"
    exclude = [ln.strip() for ln in ignore.read_text(encoding="utf-8").splitlines()
               if ln.strip() and not ln.strip().startswith("#")] if ignore.is_file() else None
    text = (req.context / req.dockerfile).read_text(encoding="utf-8")
    archive = docker_utils.tar(str(req.context), exclude=exclude, dockerfile=(name, text))
    return {"fileobj": archive, "custom_context": True, "dockerfile": name}


def _build_cli(engine: Engine, req: BuildRequest, args: dict[str, str], labels: dict[str, str],
               secret_ids: tuple[str, ...], hide: list[Secret | None],
               on_log: Callable[[str], None] | None) -> str:
    cmd = engine.cli_build_command()
    with tempfile.TemporaryDirectory(prefix="nexusify-build-") as tmp:
        netrc = Path(tmp) / "netrc"
        fd = os.open(netrc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            if req.index_url and req.credentials:
                fh.write(netrc_text(req.index_url, req.credentials))
        iidfile = Path(tmp) / "iid"
        cmd += ["-f", str(req.context / req.dockerfile), "-t", req.ref, "--network", req.network,
                "--iidfile", str(iidfile)]
        if NETRC_SECRET_ID in secret_ids:  # index credentials reach only the id nexusify writes (a user's
            cmd += ["--secret", f"id={NETRC_SECRET_ID},src={netrc}"]  # own id=npmrc gets none of them)
        for name, folder in sorted(req.additional_contexts.items()):
            cmd += ["--build-context", f"{name}={folder}"]
        for k, v in labels.items():
            cmd += ["--label", f"{k}={v}"]
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        cmd.append(str(req.context))
        env = {k: v for k, v in os.environ.items() if k not in ("NEXUS_PASSWORD", "TWINE_PASSWORD")}
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        output = redact(proc.stdout + proc.stderr, *hide)
        if on_log:
            for line in output.splitlines():
                on_log(line)
        if proc.returncode != 0:
            raise DeployError(
                f"{req.service}: image build failed (exit {proc.returncode}):\n"
                + "\n".join(output.splitlines()[-15:]),
                path=req.context / req.dockerfile, hint="fix the Dockerfile or the service; nothing was switched",
            )
        image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
    if not image_id:
        image_id = str(engine.client.images.get(req.ref).id)
    if not image_id.startswith("sha256:"):
        image_id = "sha256:" + image_id
    return image_id


# --------------------------------------------------------------------------- push


REGISTRY_USERNAME_ENV = "NEXUSIFY_REGISTRY_USERNAME"
REGISTRY_PASSWORD_ENV = "NEXUSIFY_REGISTRY_PASSWORD"


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for pushing to ``registry``; the password never prints itself."""

    username: str
    password: Secret

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password.reveal()}


def registry_auth(env: Mapping[str, str]) -> RegistryAuth | None:
    """Push credentials from NEXUSIFY_REGISTRY_USERNAME/_PASSWORD; None when neither is set (the
    engine then uses its own login, e.g. ``docker login``'s config.json)."""
    user, password = env.get(REGISTRY_USERNAME_ENV, ""), env.get(REGISTRY_PASSWORD_ENV, "")
    if not user and not password:
        return None
    if not user or not password:
        missing = REGISTRY_PASSWORD_ENV if user else REGISTRY_USERNAME_ENV
        raise UsageError(f"{missing} is not set but {REGISTRY_USERNAME_ENV if user else REGISTRY_PASSWORD_ENV} is",
                         hint="set both to push with those credentials, or neither to use the engine's own login")
    return RegistryAuth(user, Secret(password))


def push_image(engine: Engine, built: BuiltImage, *, auth: RegistryAuth | None = None,
               on_log: Callable[[str], None] | None = None) -> BuiltImage:
    """Push ``built.ref``; raise DeployError on any ``error`` in the stream; return it with its digest."""
    repo, tag = split_ref(built.ref)
    digest: str | None = None
    errors: list[str] = []
    try:
        stream = engine.client.images.push(repo, tag=tag, stream=True, decode=True,
                                           auth_config=auth.auth_config() if auth else None)
        for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error") or chunk.get("errorDetail"):
                detail = chunk.get("errorDetail") or {}
                errors.append(str(chunk.get("error") or detail.get("message") or detail))
            aux = chunk.get("aux") or {}
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            status = chunk.get("status")
            if status and on_log:
                on_log(str(status))
            m = re.search(r"digest: (sha256:[0-9a-f]{64})", str(status or ""))
            if m:
                digest = m.group(1)
    except EngineError as exc:
        errors.append(exc.message)
    if errors:
        text = "; ".join(errors)
        if auth is not None:
            text = text.replace(auth.password.reveal(), "***")
        if re.search(r"unauthorized|authentication required|denied", text, re.IGNORECASE):
            hint = (f"the registry refused the credentials of {auth.username} ({REGISTRY_USERNAME_ENV})" if auth else
                    f"log in with `docker login {repo.split('/', 1)[0]}`, or set {REGISTRY_USERNAME_ENV} and "
                    f"{REGISTRY_PASSWORD_ENV}")
        else:
            hint = ("is the registry running and reachable, and does it accept plain HTTP "
                    "(registries.conf `insecure = true` for Podman, `insecure-registries` for dockerd)?")
        raise DeployError(f"{built.service}: push of {built.ref} failed: {text}", hint=hint)
    if digest is None:
        try:
            image = engine.client.images.get(built.ref)
            for rd in image.attrs.get("RepoDigests") or []:
                if str(rd).startswith(repo + "@"):
                    digest = str(rd).split("@", 1)[1]
        except EngineError:
            digest = None
    return BuiltImage(built.service, built.ref, built.version, built.image_id, digest, True, built.via)


__all__ = [
    "INDEX_ARGS",
    "REGISTRY_PASSWORD_ENV",
    "REGISTRY_USERNAME_ENV",
    "BuildRequest",
    "BuiltImage",
    "DockerfileNeeds",
    "RegistryAuth",
    "build_image",
    "check_version",
    "content_hash",
    "dockerfile_needs",
    "image_ref",
    "labels_for",
    "netrc_text",
    "push_image",
    "registry_auth",
    "resolve_build_args",
    "source_version",
    "split_ref",
]
