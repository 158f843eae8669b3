"""Check 4 (``--build``), build: each Dockerfile that builds a consumer builds with its real
context (and the named contexts and build args its compose file gives it) on the engine (deploy's image builder: the index URL as a build arg, credentials as a
BuildKit netrc secret), and the built image imports every shared package the consumer needs at
run time, installed from the index (not from a folder). Images are removed afterwards, the
intermediate ones of every stage too, also after a failed build: each build labels them with a
version of its own (``verify-<id>``), and every image holding that label goes."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from nexusify.credentials import Credentials, redact
from nexusify.errors import NexusifyError
from nexusify.formats.dockerfile_rules import JudgedDockerfile
from nexusify.model import Project, Workspace, relpath
from nexusify.verify.report import Check, Finding

# Run inside the image: import each distribution's top-level modules, and refuse one installed
# from a folder (PEP 610 direct_url.json with dir_info). Prints one line per problem; exit 1 if any.
# One installed from a wheel file (`pip install /wheels/*.whl`) prints `WHEEL name version file
# sha256 url` (the sha256 of the file when it is still in the image): the host accepts it only
# when the index serves that file (:func:`wheel_from_index`).
IMPORT_CHECK = r"""
import hashlib, importlib, importlib.metadata as md, json, os, sys, urllib.parse
bad = []
for name in sys.argv[1:]:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        bad.append(f"{name}: not installed"); continue
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    url = direct.get("url", "")
    if "archive_info" in direct and url.startswith("file:") and url.endswith(".whl"):
        # a wheel file (a builder stage fetched or built it): the host checks the index serves it
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        digest = direct["archive_info"].get("hashes", {}).get("sha256") or "-"
        if os.path.isfile(path):
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        print(f"WHEEL {name} {dist.version} {path.rsplit('/', 1)[-1]} {digest} {url}")
    elif direct and ("dir_info" in direct or url.startswith("file:")):
        bad.append(f"{name}: installed from {url}, not from the index")
    tops = (dist.read_text("top_level.txt") or "").split() or sorted({
        str(f).split("/")[0].removesuffix(".py") for f in (dist.files or [])
        if str(f).endswith(".py") and not str(f).startswith("..") and ".dist-info" not in str(f).split("/")[0]})
    if not tops:
        bad.append(f"{name}: installs no module")
    for top in tops:
        try:
            importlib.import_module(top)
        except Exception as exc:
            bad.append(f"{name}: import {top} failed: {type(exc).__name__}: {exc}")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print("imported: " + " ".join(sys.argv[1:]))
"""


class Builder:
    """Connects to the engine once (on first use) and builds every Dockerfile with it."""

    def __init__(self, env: Mapping[str, str], index_url: str, creds: Credentials | None) -> None:
        self.env = env
        self.index_url = index_url
        self.creds = creds
        self._engine: object | None = None
        self._error: str | None = None

    def engine(self) -> object:
        if self._engine is None and self._error is None:
            from nexusify.deploy.engine import connect

            try:
                self._engine = connect(None, self.env)
            except NexusifyError as exc:
                self._error = str(exc)
        if self._engine is None:
            raise _NoEngine(self._error or "no container engine")
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()  # type: ignore[attr-defined]

    def check(self, consumer: Project, ws: Workspace, judged: list[JudgedDockerfile],
              installs: list[str] | None = None) -> Check:
        """``judged``: the Dockerfiles that build it, with the build context the shared-code rule
        decided; ``installs``: the shared packages it installs (what the resolve check saw);
        default: its direct runtime ones."""
        if not judged:
            return Check.na("build", "no Dockerfile builds it")
        names = installs if installs else [n for n in consumer.internal_names(runtime_only=True) if n in ws.by_name]
        findings: list[Finding] = []
        built: list[str] = []
        for jd in judged:
            context, rel = jd.verdict.context, jd.rel
            if context is None:
                findings.append(Finding("its build context cannot be decided, so it cannot be built", rel,
                                        hint="see `nexusify audit` for this Dockerfile"))
                continue
            try:
                engine = self.engine()
            except _NoEngine as exc:
                findings.append(Finding(f"cannot build: {exc}", rel,
                                        hint="start an engine (DOCKER_HOST), or run verify without --build"))
                continue
            problem = self._build_one(engine, consumer, jd, context, ws.root, names)
            if problem:
                findings.append(Finding(problem, rel))
            else:
                built.append(rel)
        if findings:
            return Check.failed("build", findings, f"built {', '.join(built)}" if built else "")
        return Check.ok("build", f"built {', '.join(built)}; the image imports {', '.join(names) or '(nothing shared)'}")

    def _build_one(self, engine: object, consumer: Project, jd: JudgedDockerfile, context: Path, root: Path,
                   names: list[str]) -> str | None:
        """Build as compose would: its context, its named contexts and its build args."""
        from nexusify.deploy.images import BuildRequest, build_image

        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in (consumer.name or consumer.path.name).lower())
        run = uuid.uuid4().hex[:12]
        ref = f"localhost/nexusify-verify/{slug}:{run}"
        req = BuildRequest(service=consumer.name or slug, context=context,
                           dockerfile=os.path.relpath(jd.path, context), ref=ref, version=f"verify-{run}",
                           environment="verify", build_args=dict(jd.build_args), index_url=self.index_url,
                           credentials=self.creds, additional_contexts=dict(jd.additional_contexts))
        client = engine.client  # type: ignore[attr-defined]
        try:
            try:
                build_image(engine, req)  # type: ignore[arg-type]
            except NexusifyError as exc:
                lines = [ln for ln in exc.message.splitlines() if ln.strip()]
                return f"the build failed (context {relpath(context, root)}): " + " | ".join(lines[-3:])
            if not names:
                return None
            return self._imports(client, ref, names)
        finally:
            with contextlib.suppress(Exception):  # best effort: never leave verify's images behind
                client.images.remove(ref, force=True)
            _remove_labelled(client, req.version)

    def _imports(self, client: object, ref: str, names: list[str]) -> str | None:
        import docker.errors

        secret = self.creds.password if self.creds else None
        try:
            out = client.containers.run(  # type: ignore[attr-defined]
                ref, ["python3", "-c", IMPORT_CHECK, *names], entrypoint=[], remove=True, network_mode="none",
                stdout=True, stderr=False)
        except docker.errors.ContainerError as exc:
            raw = exc.stderr if isinstance(exc.stderr, bytes) else b""
            text = redact(raw.decode("utf-8", "replace"), secret).strip()
            return "the image does not import the shared packages: " + (text.replace("\n", " | ") or str(exc))
        except docker.errors.APIError as exc:
            return f"the image could not run: {redact(str(exc), secret)}"
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out or "")
        bad = []
        for line in text.splitlines():
            parts = line.split(" ", 5)
            if len(parts) == 6 and parts[0] == "WHEEL":
                problem = self.wheel_from_index(parts[1], parts[2], parts[3], parts[4])
                if problem:
                    bad.append(f"{parts[1]}: installed from {parts[5]}, {problem}")
        if bad:
            return "the image does not import the shared packages from the index: " + " | ".join(bad)
        return None

    def wheel_from_index(self, name: str, version: str, filename: str, sha256: str) -> str | None:
        """None when the index serves ``filename`` for ``name`` ``version`` (and, when both sides know
        it, with that sha256): the wheel a builder stage fetched or built is the published one;
        else why not."""
        from nexusify.index.client import make_client, origin
        from nexusify.index.pages import SimpleIndex, same_version

        scheme, host, port = origin(self.index_url)
        try:
            with make_client(credentials=self.creds, auth_origins=(f"{scheme}://{host}:{port}",)) as client:
                files = SimpleIndex(client, self.index_url).project_files(name)
        except NexusifyError as exc:
            return f"which could not be compared with the index: {exc.message}"
        same = [f for f in files if f.filename == filename and f.version and same_version(f.version, version)]
        if not same:
            return f"a wheel the index does not serve ({filename} of {name} {version})"
        if sha256 != "-" and same[0].hash_matches({"sha256": sha256}) is False:
            return f"not the file the index serves ({filename} has another sha256)"
        return None


class _NoEngine(Exception):
    pass


def _remove_labelled(client: object, version: str, passes: int = 20) -> None:
    """Remove every image this build labelled (its stages' intermediate images: a failed build
    leaves them untagged), children before parents, best effort. Never forced: an image another
    build uses as its cache (a container runs on it) stays, that build is not killed."""
    from nexusify.deploy.engine import LABEL_VERSION

    left: set[str] | None = None
    for _ in range(passes):
        try:
            images = client.images.list(all=True, filters={"label": f"{LABEL_VERSION}={version}"})  # type: ignore[attr-defined]
        except Exception:  # the engine went away: nothing more to do here
            return
        ids = {image.id for image in images}
        if not ids or ids == left:  # all gone, or what is left is in use
            return
        left = ids
        for image_id in sorted(ids):
            with contextlib.suppress(Exception):  # one with children goes in a later pass
                client.images.remove(image_id, force=False)  # type: ignore[attr-defined]
