"""rewrite re-locks by default, minimally: each consumer's own tool (Poetry 2, uv, PDM) against a
real pypiserver that holds the shared packages and the third-party wheels; only the shared
packages' entries change (``six`` stays at 1.16.0 while the index serves 1.17.0), and whatever
cannot be locked is a warning with the exact command while the rewrite still happens."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nexusify.formats.lockfiles import moved_pins, path_pins, pinned_versions
from tests.conftest import FIXTURES, download_wheels, missing

LAYOUTS = FIXTURES / "layouts"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def six_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """six 1.16.0 and 1.17.0: the third-party package whose pin must not move."""
    dest = tmp_path_factory.mktemp("six-wheels")
    for pin in ("six==1.16.0", "six==1.17.0"):  # one call each: pip refuses two pins of one name at once
        download_wheels(dest, pin, options=("--no-deps",))
    return sorted(dest.glob("six-*.whl"))


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The base environment: the venv's uv, poetry and pdm on PATH, their caches under tmp_path."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for tool in ("uv", "poetry", "pdm"):
        if shutil.which(tool) is None:
            missing(tool, f"`{tool}` is not on PATH (a dev extra: pip install -e '.[dev]')")
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "NO_COLOR": "1", "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
            "UV_PYTHON_DOWNLOADS": "never", "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
            "POETRY_NO_INTERACTION": "1", "PDM_CHECK_UPDATE": "false", "PDM_CACHE_DIR": str(tmp_path / "pdm-cache")}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"


def _lock_pinned(folder: Path, manifest_edit: tuple[str, str], lock: list[str], relock: list[str],
                 env: dict[str, str]) -> None:
    """Lock with six pinned at 1.16.0, then relax the pin and re-lock keeping it (the team's lock)."""
    manifest = folder / "pyproject.toml"
    relaxed, pinned = manifest_edit
    manifest.write_text(manifest.read_text().replace(relaxed, pinned))
    _run(lock, folder, env)
    manifest.write_text(manifest.read_text().replace(pinned, relaxed))
    _run(relock, folder, env)


def _third_party(lock: str, shared: set[str]) -> dict[str, frozenset[str]]:
    return {k: v for k, v in pinned_versions(lock).items() if k not in shared}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts and ".nexusify" not in p.parts}


def _index(pypi_server_factory, wheels: list[Path], auth: str | None = None):  # type: ignore[no-untyped-def]
    server = pypi_server_factory(auth=auth)
    for wheel in wheels:
        shutil.copy(wheel, server.packages)
    return server


def _poetry_uv_repo(tmp_path: Path, simple_url: str, env: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(LAYOUTS / "lock-pins", root)
    svc_poetry, svc_uv = root / "services/svc-poetry", root / "services/svc-uv"
    with (svc_poetry / "pyproject.toml").open("a") as fh:
        fh.write(f'\n[[tool.poetry.source]]\nname = "localpypi"\nurl = "{simple_url}"\npriority = "primary"\n')
    _lock_pinned(svc_poetry, ('six = ">=1.15"', 'six = "1.16.0"'), ["poetry", "lock"], ["poetry", "lock"], env)
    _lock_pinned(svc_uv, ('"six>=1.15"', '"six==1.16.0"'), ["uv", "lock"], ["uv", "lock"], env)
    return root


def test_poetry_and_uv_consumers_are_relocked_keeping_every_third_party_pin(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path], six_wheels: list[Path],
        tools: dict[str, str]) -> None:
    server = _index(pypi_server_factory, [*backend_wheels, *six_wheels], auth="update")
    env = {**tools, "UV_DEFAULT_INDEX": server.simple_url, "NEXUS_USERNAME": server.username or "",
           "NEXUS_PASSWORD": server.password or ""}
    root = _poetry_uv_repo(tmp_path, server.simple_url, env)
    locks = {name: root / f"services/{name}/{lock}" for name, lock in
             (("svc-poetry", "poetry.lock"), ("svc-uv", "uv.lock"))}
    before = {name: lock.read_text() for name, lock in locks.items()}
    assert all(path_pins(text, locks[n].name, {"acme-common"}) for n, text in before.items())  # from the path
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0

    result = run_cli("rewrite", *common, "--json", env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p for p in data["problems"] if p["code"] == "stale-lockfile"] == []
    assert {f["path"] for f in data["files"] if f["kind"] == "lockfile"} == {
        "services/svc-poetry/poetry.lock", "services/svc-uv/uv.lock"}
    for name, lock in locks.items():
        after = lock.read_text()
        assert path_pins(after, lock.name, {"acme-common"}) == [], after
        assert moved_pins(before[name], after, {"acme-common"}) == []
        assert _third_party(after, {"acme-common"}) == _third_party(before[name], {"acme-common"})
        assert pinned_versions(after)["six"] == {"1.16.0"}
        assert pinned_versions(after)["acme-common"] == {"0.2.0"}
    assert tomllib.loads(locks["svc-uv"].read_text())["package"][0]["source"] == {"registry": server.simple_url}
    _run(["poetry", "check", "--lock"], locks["svc-poetry"].parent, env)
    _run(["uv", "lock", "--check"], locks["svc-uv"].parent, env)
    verified = run_cli("verify", *common, env=env)
    assert verified.exit_code == 0, verified.output


def test_no_lock_and_an_index_without_the_shared_packages_leave_the_lock_with_a_warning(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path], six_wheels: list[Path],
        tools: dict[str, str]) -> None:
    """Nothing published: the rewrite still writes the manifests, each lockfile stays as it was and
    is a warning with the exact command (exit 0; 1 with --strict). --no-lock: the same, unasked."""
    server = _index(pypi_server_factory, [*backend_wheels, *six_wheels], auth=None)
    env = {**tools, "UV_DEFAULT_INDEX": server.simple_url}
    root = _poetry_uv_repo(tmp_path, server.simple_url, env)
    locks = [root / "services/svc-poetry/poetry.lock", root / "services/svc-uv/uv.lock"]
    before = {lock: lock.read_bytes() for lock in locks}
    common = ("--root", str(root), "--index-url", server.simple_url)
    origin = _files(root)

    strict = run_cli("rewrite", *common, "--strict", env=env)
    assert strict.exit_code == 1, strict.output
    assert "warning[stale-lockfile]" in strict.output
    assert ("services/svc-poetry/poetry.lock: warning[stale-lockfile]: poetry.lock still pins the old entries of "
            "acme-common: `poetry lock` failed") in strict.output
    assert "(hint: re-lock it once the index serves them: `cd services/svc-poetry && poetry lock`)" in strict.output
    assert ("services/svc-uv/uv.lock: warning[stale-lockfile]: uv.lock still pins the old entries of acme-common: "
            "`uv lock --upgrade-package acme-common` failed") in strict.output
    assert "`cd services/svc-uv && uv lock --upgrade-package acme-common`" in strict.output
    assert all(lock.read_bytes() == before[lock] for lock in locks)
    assert "path" not in (root / "services/svc-uv/pyproject.toml").read_text()  # written anyway

    for path, data in origin.items():  # back to the start: the same again without --strict, then --no-lock
        (root / path).write_bytes(data)
    plain = run_cli("rewrite", *common, env=env)
    assert plain.exit_code == 0, plain.output
    assert plain.output.count("warning[stale-lockfile]") == 2
    for path, data in origin.items():
        (root / path).write_bytes(data)
    skipped = run_cli("rewrite", *common, "--no-lock", env=env)
    assert skipped.exit_code == 0, skipped.output
    assert skipped.output.count("warning[stale-lockfile]") == 2
    assert "it was not re-locked (--no-lock or a dry run)" in skipped.output
    assert all(lock.read_bytes() == before[lock] for lock in locks)

    # the manifests are done, the locks are not: --check says so, and once the shared packages are
    # published a plain rewrite finishes the job (only the locks change, every third-party pin kept)
    check = run_cli("rewrite", *common, "--check", env=env)
    assert check.exit_code == 1, check.output
    assert "0 file(s) would be rewritten, 2 lockfile(s) re-locked" in check.output
    manifests = {p: d for p, d in _files(root).items() if not p.endswith(".lock")}
    assert run_cli("publish", *common, "--repository-url", server.url, env=env).exit_code == 0
    finished = run_cli("rewrite", *common, env=env)
    assert finished.exit_code == 0, finished.output
    assert "warning" not in finished.output
    assert {p: d for p, d in _files(root).items() if not p.endswith(".lock")} == manifests
    for lock in locks:
        after = lock.read_text()
        assert path_pins(after, lock.name, {"acme-common"}) == []
        assert moved_pins(before[lock].decode(), after, {"acme-common"}) == []
    again = run_cli("rewrite", *common, "--check", env=env)
    assert again.exit_code == 0 and "nothing to rewrite" in again.output, again.output


DOCKERFILE = """FROM python:3.11-slim-bookworm
ARG NEXUS_INDEX_URL={url}
RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install --index-url "$NEXUS_INDEX_URL" pdm
WORKDIR /app
COPY pyproject.toml pdm.lock ./
RUN --mount=type=secret,id=netrc,target=/root/.netrc \
NEXUS_USERNAME="$(awk '{{for(i=1;i<NF;i++)if($i=="login")print $(i+1)}}' /root/.netrc)" \
NEXUS_PASSWORD="$(awk '{{for(i=1;i<NF;i++)if($i=="password")print $(i+1)}}' /root/.netrc)" \
pdm install --prod -G server --no-self
COPY app ./app
CMD ["python", "app/main.py"]
"""


def _publish_and_rewrite(run_cli, common: tuple[str, ...], env: dict[str, str], lock: Path,  # type: ignore[no-untyped-def]
                         shared: set[str], relocked: str):
    """publish, then rewrite (re-locking by default): the lock line it prints, no shared package
    left on a path, every third-party pin as it was. Returns the rewrite's result and the new lock."""
    before = lock.read_text()
    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    result = run_cli("rewrite", *common, env=env)
    assert result.exit_code == 0, result.output
    assert relocked in result.output
    after = lock.read_text()
    assert path_pins(after, lock.name, shared) == []
    assert _third_party(after, shared) == _third_party(before, shared)
    return result, after


def _pdm_step_reads_the_secret(dockerfile: str, tmp_path: Path, username: str, password: str) -> None:
    """The patched `pdm install` step, run by a real shell with the netrc nexusify mounts
    (:func:`netrc_text`) in place of the secret: pdm gets both variables, and only that command."""
    from nexusify.credentials import Credentials, Secret
    from nexusify.deploy.runtime.images import netrc_text

    netrc = tmp_path / "netrc"
    netrc.write_text(netrc_text("http://127.0.0.1:1/simple/", Credentials(username, Secret(password), "env")))
    step = next(line for line in dockerfile.splitlines() if "pdm install" in line)
    command = step.split("target=/root/.netrc ", 1)[1].replace("/root/.netrc", str(netrc))
    shell = command.replace("pdm install --prod -G server --no-self", "env") + '; echo "after=$NEXUS_PASSWORD"'
    out = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, check=True, env={}).stdout
    assert f"NEXUS_USERNAME={username}\n" in out and f"NEXUS_PASSWORD={password}\n" in out
    assert out.endswith("after=\n")


def _pdm_root_consumer(tmp_path: Path, simple_url: str, env: dict[str, str], auth: bool) -> Path:
    """The fixture, with PDM's third-party source on the test index (through ``${VAR}``
    credentials when it needs them, as PDM reads them) and the team's own pdm.lock."""
    root = tmp_path / "repo"
    shutil.copytree(LAYOUTS / "pdm-root-consumer", root)
    url = simple_url.replace("http://", "http://${NEXUS_USERNAME}:${NEXUS_PASSWORD}@") if auth else simple_url
    with (root / "pyproject.toml").open("a") as fh:
        fh.write(f'\n[[tool.pdm.source]]\nname = "pypi"\nurl = "{url}"\n')
    # every group, as the Dockerfile's `pdm install -G server` needs
    _lock_pinned(root, ('"six>=1.15"', '"six==1.16.0"'), ["pdm", "lock", "-G", ":all"],
                 ["pdm", "lock", "-G", ":all", "--update-reuse"], env)
    shutil.rmtree(root / ".venv", ignore_errors=True)
    return root


def test_pdm_root_consumer_end_to_end_through_an_index_that_needs_credentials(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path], six_wheels: list[Path],
        tools: dict[str, str]) -> None:
    """publish -> rewrite (re-locks by default with `pdm update --no-sync` per locked group) ->
    `pdm lock --check` passes, only api/schemas entries changed, verify ok; the nexus source URL
    carries ${NEXUS_USERNAME}:${NEXUS_PASSWORD}@ and no password lands in any file."""
    server = _index(pypi_server_factory, [*backend_wheels, *six_wheels], auth="download,update,list")
    password = server.password or ""
    env = {**tools, "NEXUS_USERNAME": server.username or "", "NEXUS_PASSWORD": password}
    root = _pdm_root_consumer(tmp_path, server.simple_url, env, auth=True)
    lock = root / "pdm.lock"
    before = lock.read_text()
    shared = {"api", "schemas"}
    assert {p.message for p in path_pins(before, "pdm.lock", shared)} >= {
        "api is locked from path `./src/api`", "schemas is locked from path `./src/schemas`"}
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    result, after = _publish_and_rewrite(run_cli, common, env, lock, shared, (
        "pdm.lock:1: re-locked with `pdm update --no-sync -G dev api schemas && pdm update --no-sync -G server api` "
        "against nexus"))
    assert pinned_versions(after)["six"] == {"1.16.0"}
    sources = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pdm"]["source"]
    nexus = next(s for s in sources if s["name"] == "nexus")
    assert nexus["url"] == server.simple_url.replace("http://", "http://${NEXUS_USERNAME}:${NEXUS_PASSWORD}@")
    assert nexus["include_packages"] == ["api", "schemas"]
    _run(["pdm", "lock", "--check", "-G", ":all"], root, env)
    dockerfile = (root / "Dockerfile").read_text()
    assert dockerfile == DOCKERFILE.format(url=server.simple_url)
    _pdm_step_reads_the_secret(dockerfile, tmp_path, server.username or "", password)
    for path, data in _files(root).items():
        assert password.encode() not in data, path
    assert password not in result.output

    # the root is the consumer (src/api's own file URL to schemas is publish's business: staged copies)
    verified = run_cli("verify", *common, "--json", str(root), env=env)
    assert verified.exit_code == 0, verified.output
    (consumer,) = json.loads(verified.stdout)["consumers"]
    assert consumer["checks"]["lock"]["status"] == "ok"
    assert consumer["checks"]["lock"]["detail"] == "`pdm lock --check` in . passed"


@pytest.fixture(scope="session")
def requests_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """requests and what it needs (the nightly job of pdm-file-urls installs it)."""
    return download_wheels(tmp_path_factory.mktemp("requests-wheels"), "requests",
                           options=("--python-version", "3.11"))


def test_pdm_file_url_consumer_is_relocked_with_its_transitive_shared_packages(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path], requests_wheels: list[Path],
        tools: dict[str, str]) -> None:
    """jobs/nightly takes pkg-second by `file:///${PROJECT_ROOT}/...` URL (pkg-first and pkg-core
    through it): one `pdm update --no-sync` of the three, every third-party pin kept, verify ok."""
    server = _index(pypi_server_factory, [*backend_wheels, *requests_wheels], auth=None)
    env = dict(tools)
    root = tmp_path / "repo"
    shutil.copytree(LAYOUTS / "pdm-file-urls", root)
    nightly = root / "jobs/nightly"
    with (nightly / "pyproject.toml").open("a") as fh:
        fh.write(f'\n[[tool.pdm.source]]\nname = "pypi"\nurl = "{server.simple_url}"\n')
    _run(["pdm", "lock"], nightly, env)
    shutil.rmtree(nightly / ".venv", ignore_errors=True)
    lock = nightly / "pdm.lock"
    before = lock.read_text()
    shared = {"pkg-core", "pkg-first", "pkg-second"}
    assert {p.name for p in path_pins(before, "pdm.lock", shared)} == shared
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    _, after = _publish_and_rewrite(run_cli, common, env, lock, shared, (
        "jobs/nightly/pdm.lock:1: re-locked with `pdm update --no-sync pkg-core pkg-first pkg-second` against nexus"))
    assert {name for name in pinned_versions(after)} >= {"requests", "urllib3", *shared}
    _run(["pdm", "lock", "--check"], nightly, env)
    verified = run_cli("verify", *common, "--json", "jobs/nightly", env=env)
    assert verified.exit_code == 0, verified.output
    (consumer,) = json.loads(verified.stdout)["consumers"]
    assert consumer["checks"]["resolve"]["detail"] == (
        f"from {server.simple_url}: pkg-core 0.1.0, pkg-first 0.2.0, pkg-second 0.3.0")
