"""The false greens of issue 20, each reproduced on a small uv/Poetry monorepo with the real tools
(pip, uv) against a real pypiserver: verify (and ``rewrite --check`` where it judges the same
thing) exits 1 naming the consumer and the file:line, where it used to say ok.

The monorepo is in its migrated shape (shared packages by version from the index), so nothing
else would make the commands fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nexusify.formats.dockerfile_rules import judge_dockerfile
from nexusify.formats.shared_code import SharedCode
from nexusify.model import load_workspace
from nexusify.verify.lock_index import lock_index_findings
from tests.conftest import FIXTURES, missing
from tests.helpers import snapshot

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
OTHER = "https://pypi.example.org/simple/"


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shutil.which("uv") is None:
        missing("uv", "`uv` is not on PATH (a dev extra: pip install -e '.[dev]')")
    return {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "UV_NO_CACHE": "1",
            "UV_PYTHON_DOWNLOADS": "never"}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


LIB = '''[project]
name = "acme-common"
version = "0.2.0"
requires-python = ">=3.11"
dependencies = []

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/acme_common"]
'''


def _uv_service(name: str, index: str) -> str:
    return f'''[project]
name = "{name}"
version = "1.0.0"
requires-python = ">=3.11"
dependencies = ["acme-common>=0.2.0"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{name}"]

[[tool.uv.index]]
name = "nexus"
url = "{index}"
explicit = true

[tool.uv.sources]
acme-common = {{ index = "nexus" }}
'''


def _repo(tmp_path: Path, index: str) -> Path:
    root = tmp_path / "repo"
    _write(root, {"libs/common/pyproject.toml": LIB, "libs/common/src/acme_common/__init__.py": "X = 1\n",
                  "services/api/pyproject.toml": _uv_service("api", index),
                  "services/api/src/api/__init__.py": "import acme_common\n"})
    return root


@pytest.fixture
def index(pypi_server_factory, backend_wheels: list[Path]):  # type: ignore[no-untyped-def]
    server = pypi_server_factory(auth=None)
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    return server


def _verify(run_cli, root: Path, server, env: dict[str, str], *targets: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    result = run_cli("verify", "--root", str(root), "--index-url", server.simple_url, "--json", *targets, env=env)
    return result.exit_code, json.loads(result.stdout)


def _findings(data: dict, check: str, consumer: str | None = None) -> list[str]:  # type: ignore[type-arg]
    return [f"{f['path']}:{f['line']}: {f['message']}" for c in data["consumers"]
            if consumer is None or c["name"] == consumer for f in c["checks"][check]["findings"]]


def _publish(run_cli, root: Path, server, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    published = run_cli("publish", "--root", str(root), "--repository-url", server.url, "--index-url",
                        server.simple_url, env=env)
    assert published.exit_code == 0, published.output


def _line(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# --------------------------------------------------------------------------- 1. another index


@pytest.mark.slow
def test_1_a_source_or_a_dockerfile_default_on_another_index_fails(run_cli, tmp_path: Path, index,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    root = _repo(tmp_path, index.simple_url)
    _publish(run_cli, root, index, env)
    code, data = _verify(run_cli, root, index, env)
    assert code == 0, data  # the migrated shape is green: what follows is what turns it red

    manifest = root / "services/api/pyproject.toml"
    manifest.write_text(_uv_service("api", OTHER))
    code, data = _verify(run_cli, root, index, env)
    assert code == 1
    at = _line(manifest, 'name = "nexus"')
    assert _findings(data, "static", "api") == [
        f"services/api/pyproject.toml:{at}: acme-common comes from uv index 'nexus' "
        f"at {OTHER}, not the configured index {index.simple_url}"]

    manifest.write_text(_uv_service("api", index.simple_url))
    dockerfile = root / "services/api/Dockerfile"
    dockerfile.write_text(f"FROM python:3.12-slim\nARG NEXUS_INDEX_URL={OTHER}\nWORKDIR /app\nCOPY . .\n"
                          'RUN pip install --index-url "$NEXUS_INDEX_URL" .\n')
    code, data = _verify(run_cli, root, index, env)
    assert code == 1
    assert _findings(data, "static", "api") == [
        f"services/api/Dockerfile:2: ARG NEXUS_INDEX_URL names the index {OTHER}, not the configured index "
        f"{index.simple_url}: a build that does not override it installs from there"]
    check = run_cli("rewrite", "--check", "--root", str(root), "--index-url", index.simple_url, env=env)
    assert check.exit_code == 1
    assert "services/api/Dockerfile:2: index URL default: " + OTHER in check.output  # rewrite puts it right

    # an index under another name than the configured source's: rewrite leaves it, --check says why
    dockerfile.unlink()
    manifest.write_text(_uv_service("api", OTHER).replace('"nexus"', '"internal"'))
    check = run_cli("rewrite", "--check", "--root", str(root), "--index-url", index.simple_url, env=env)
    assert check.exit_code == 1
    assert (f"services/api/pyproject.toml:{at}: error[index-elsewhere]: acme-common comes from uv index 'internal' "
            f"at {OTHER}") in check.output, check.output
    manifest.write_text(_uv_service("api", index.simple_url))

    # Poetry: the dependency's source names a [[tool.poetry.source]] on another index
    _write(root, {"services/worker/pyproject.toml": f'''[tool.poetry]
name = "worker"
version = "1.0.0"
description = ""
authors = ["a <a@b.c>"]
packages = [{{include = "worker"}}]

[tool.poetry.dependencies]
python = "^3.11"
acme-common = {{version = "^0.2.0", source = "nexus"}}

[[tool.poetry.source]]
name = "nexus"
url = "{OTHER}"
priority = "explicit"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
''', "services/worker/worker/__init__.py": ""})
    code, data = _verify(run_cli, root, index, env, "services/worker")
    assert code == 1
    assert _findings(data, "static", "worker") == [
        f"services/worker/pyproject.toml:13: acme-common comes from Poetry source 'nexus' at {OTHER}, not the "
        f"configured index {index.simple_url}"]


# --------------------------------------------------------------------------- 2. the lock's file


@pytest.mark.slow
def test_2_a_lock_pinning_another_file_than_the_index_serves_fails(run_cli, tmp_path: Path, index,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    root = _repo(tmp_path, index.simple_url)
    _publish(run_cli, root, index, env)
    api = root / "services/api"
    made = subprocess.run(["uv", "lock"], cwd=api, env=env, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    code, data = _verify(run_cli, root, index, env)
    assert code == 0, data
    lock = api / "uv.lock"
    wheel = next(index.packages.glob("acme_common-0.2.0-*.whl"))
    text = lock.read_text()
    at = text.index(wheel.name)
    digest = text.index("sha256:", at)
    lock.write_text(text[:digest] + "sha256:" + "0" * 64 + text[digest + 71:])
    # uv's own check does not compare hashes with the index: it still passes
    checked = subprocess.run(["uv", "lock", "--check"], cwd=api, env=env, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    code, data = _verify(run_cli, root, index, env)
    assert code == 1
    at = _line(lock, 'name = "acme-common"')
    assert _findings(data, "lock", "api") == [
        f"services/api/uv.lock:{at}: acme-common 0.2.0: the lock pins "
        f"{wheel.name} with another hash than the file the index serves, so a frozen install fails on the hash"]

    # Poetry and PDM locks: the same comparison, and a Poetry lock made against another index
    ws = load_workspace(root)
    consumer = ws.project_at(api)
    assert consumer is not None
    lock.unlink()
    good = "sha256:" + __import__("hashlib").sha256(wheel.read_bytes()).hexdigest()
    for name, body, expected in [
        ("poetry.lock", f'[[package]]\nname = "acme-common"\nversion = "0.2.0"\nfiles = [\n'
                        f'    {{file = "{wheel.name}", hash = "{good}"}},\n]\n\n[package.source]\ntype = "legacy"\n'
                        f'url = "{index.simple_url}"\nreference = "nexus"\n', []),
        ("poetry.lock", '[[package]]\nname = "acme-common"\nversion = "0.2.0"\nfiles = []\n',
         [f"services/api/poetry.lock:2: acme-common 0.2.0 is locked from https://pypi.org/simple, not from the "
          f"configured index {index.simple_url}"]),
        ("pdm.lock", f'[[package]]\nname = "acme-common"\nversion = "0.2.0"\nfiles = [\n'
                     f'    {{file = "acme_common-0.2.0-cp311-cp311-linux_x86_64.whl", hash = "{good}"}},\n]\n',
         ["services/api/pdm.lock:2: acme-common 0.2.0: the lock pins acme_common-0.2.0-cp311-cp311-linux_x86_64.whl, which the index "
          "does not serve, so a frozen install fails"]),
    ]:
        path = api / name
        path.write_text(body)
        consumer.lockfiles = [path]
        found = lock_index_findings(consumer, root, {"acme-common"}, index.simple_url, None)
        assert [str(f) for f in found] == expected
        path.unlink()


# --------------------------------------------------------------------------- 3. RUN pip install <path>


@pytest.mark.slow
def test_3_a_run_installing_a_shared_folder_by_path_fails_and_is_left_alone(run_cli, tmp_path: Path, index,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    root = _repo(tmp_path, index.simple_url)
    _publish(run_cli, root, index, env)
    dockerfile = root / "services/api/Dockerfile"
    text = ("FROM python:3.12-slim\nWORKDIR /app/services/api\nCOPY . .\n"
            "RUN pip install ../../libs/common && pip install .\n")
    dockerfile.write_text(text)
    code, data = _verify(run_cli, root, index, env)
    assert code == 1
    message = ("services/api/Dockerfile:4: RUN installs `../../libs/common`, the folder of shared package "
               "acme-common: the image installs it from a path, not from the index")
    assert _findings(data, "static", "api") == [message]
    _write(root, {"services/worker/pyproject.toml": _uv_service("worker", index.simple_url),
                  "services/worker/src/worker/__init__.py": ""})
    common = ("--root", str(root), "--index-url", index.simple_url)
    check = run_cli("rewrite", "--check", *common, "services/worker", env=env)  # another target: still judged
    assert check.exit_code == 1
    assert "services/api/Dockerfile:4: error[dockerfile-installs-shared-path]: " + message.split(": ", 1)[1] in (
        check.output.replace("\n    ", " "))
    rewritten = run_cli("rewrite", *common, env=env)
    assert rewritten.exit_code == 1
    assert dockerfile.read_text() == text  # the path is not kept beside a second ARG: the file is left alone


# --------------------------------------------------------------------------- 4. Poetry package-mode = false


POETRY_APP = '''[tool.poetry]
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
acme-common = {{version = "^0.2.0", source = "nexus"}}

[tool.poetry.group.dev.dependencies]
hatchling = "*"

[[tool.poetry.source]]
name = "nexus"
url = "{index}"
priority = "explicit"
'''


@pytest.mark.slow
def test_4_a_poetry_non_package_app_is_resolved_from_its_tables(run_cli, tmp_path: Path, index,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    root = _repo(tmp_path, index.simple_url)
    _write(root, {"services/tools/pyproject.toml": POETRY_APP.format(index=index.simple_url)})
    code, data = _verify(run_cli, root, index, env, "services/tools")
    assert code == 1, data
    resolve = data["consumers"][0]["checks"]["resolve"]
    assert resolve["status"] == "fail"  # not n/a: poetry install fails, acme-common is not on the index
    assert resolve["findings"][0]["path"] == "services/tools/pyproject.toml"
    assert "[tool.poetry.dependencies, tool.poetry.group.dev.dependencies] does not resolve" in (
        resolve["findings"][0]["message"])
    _publish(run_cli, root, index, env)
    code, data = _verify(run_cli, root, index, env, "services/tools")
    assert code == 0, data
    assert data["consumers"][0]["checks"]["resolve"]["detail"] == f"from {index.simple_url}: acme-common 0.2.0"


# --------------------------------------------------------------------------- 5 and 6. uv --package


COMPOSE = '''services:
  svc-b:
    build:
      context: .
      dockerfile: services/svc-b/Dockerfile
  app-a:
    build:
      context: .
      dockerfile: docker/Dockerfile
      args:
        APP_NAME: svc-a
  app-b:
    build:
      context: .
      dockerfile: docker/Dockerfile
      args:
        APP_NAME: svc-b
'''


@pytest.mark.slow
def test_5_6_uv_sync_package_of_a_member_moved_out_fails(run_cli, tmp_path: Path, index,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """After svc-b moved out of the workspace (what `rewrite --no-dockerfiles` leaves), its own
    Dockerfile and the root one built per app (compose build arg APP_NAME) still run
    `uv sync --frozen --package svc-b` over the root lock that no longer has it."""
    env = _env(tmp_path, monkeypatch)
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock", root)
    _write(root, {
        "compose.yaml": COMPOSE,
        "services/svc-b/Dockerfile": "FROM python:3.12-slim\nCOPY --from=ghcr.io/astral-sh/uv:0.5 /uv /bin/uv\n"
                                     "WORKDIR /app\nCOPY . .\nRUN uv sync --frozen --package svc-b\n",
        "docker/Dockerfile": "FROM python:3.12-slim\nARG APP_NAME\nWORKDIR /app\nCOPY . .\n"
                             "RUN pip install uv && uv sync --frozen --no-dev --package ${APP_NAME}\n",
    })
    _publish(run_cli, root, index, env)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'members = ["libs/*", "services/*"]', 'members = ["libs/*", "services/*"]\nexclude = ["services/svc-b"]'))
    manifest = root / "services/svc-b/pyproject.toml"
    manifest.write_text(manifest.read_text().replace(
        "acme-common = { workspace = true }",
        f'acme-common = {{ index = "nexus" }}\n\n[[tool.uv.index]]\nname = "nexus"\nurl = "{index.simple_url}"\n'
        "explicit = true"))
    for folder in (root, root / "services/svc-b"):
        made = subprocess.run(["uv", "lock"], cwd=folder, env=env, capture_output=True, text=True, check=False)
        assert made.returncode == 0, made.stderr
    expected = [
        "docker/Dockerfile:5: `uv sync --package svc-b` (build arg APP_NAME=svc-b): svc-b is not a member of the uv "
        "workspace the build uses (./pyproject.toml does not make it a member), so the build fails",
        "services/svc-b/Dockerfile:5: `uv sync --package svc-b`: svc-b is not a member of the uv workspace the "
        "build uses (./pyproject.toml does not make it a member), so the build fails",
    ]
    code, data = _verify(run_cli, root, index, env, "services/svc-b")
    assert code == 1
    found = sorted(_findings(data, "static"))
    # the model (roles by use) also attaches these Dockerfiles to svc-b and says they build inside
    # the root workspace: more errors on the same broken builds, never fewer
    assert set(expected) <= set(found), found
    assert {f.split(":", 1)[0] for f in found} == {"docker/Dockerfile", "services/svc-b/Dockerfile"}, found
    for flags in ((), ("--no-dockerfiles",), ("--no-lock",)):
        check = run_cli("rewrite", "--check", "--root", str(root), "--index-url", index.simple_url, *flags,
                        "services/svc-b", env=env)
        assert check.exit_code == 1, check.output
        for e in expected:
            where, what = e.split(": ", 1)
            assert where in check.output and what in check.output.replace("\n    ", " "), check.output


# --------------------------------------------------------------------------- COPY --from, flags


def _judge(tmp_path: Path, text: str) -> list[str]:
    ctx = tmp_path / "svc"
    ctx.mkdir(exist_ok=True)
    (ctx / "pyproject.toml").write_text("")
    shared = SharedCode.of([(tmp_path / "libs/common", "acme-common")])
    verdict = judge_dockerfile("svc/Dockerfile", text, project_dir=ctx, root=tmp_path, shared=shared, context=ctx)
    return [f"{p.line}: {p.message}" for p in verdict.problems]


def test_copy_from_a_stage_that_no_longer_produces_the_path_is_an_error(tmp_path: Path) -> None:
    base = "FROM python:3.12-slim AS builder\nWORKDIR /src\nCOPY pyproject.toml .\nRUN pip wheel . -w /wheels\n"
    for gone in ("/src/common", "/src/acme_common", "/deps/common"):  # shared code the patch no longer copies
        assert _judge(tmp_path, base + f"FROM python:3.12-slim\nCOPY --from=builder {gone} /app/x\n") == [
            f"6: COPY --from=builder {gone}: stage builder no longer produces {gone} (nothing copies it there "
            "and no RUN makes it), so the build fails"]
    # what the stage does produce is fine: its wheels, its venv, the file it copied, a base image's folders,
    # and what a RUN may make in its WORKDIR without naming it (collectstatic...)
    for ok in ("/wheels", "/wheels/x.whl", "/src/.venv", "/src/pyproject.toml", "/usr/local/lib", "/src",
               "/src/staticfiles"):
        assert _judge(tmp_path, base + f"FROM python:3.12-slim\nCOPY --from=builder {ok} /x\n") == [], ok


@pytest.mark.slow
def test_no_dockerfiles_does_not_hide_a_dockerfile_from_check(run_cli, tmp_path: Path, index,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    root = _repo(tmp_path, index.simple_url)
    _write(root, {"services/api/compose.yaml": "services:\n  api:\n    build:\n      context: ../..\n"
                                               "      dockerfile: services/api/Dockerfile\n",
                  "services/api/Dockerfile": "FROM python:3.12-slim\nCOPY libs/common /libs/common\n"
                                             "COPY services/api /app\nRUN pip install /libs/common /app\n"})
    common = ("--root", str(root), "--index-url", index.simple_url)
    assert run_cli("rewrite", "--check", *common, env=env).exit_code == 1
    check = run_cli("rewrite", "--check", "--no-dockerfiles", *common, env=env)
    assert check.exit_code == 1, check.output
    assert "services/api/Dockerfile:2" in check.output


@pytest.mark.slow
def test_5_the_real_rewrite_no_dockerfiles_then_check_and_verify_fail(run_cli, tmp_path: Path, index,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The journey as a user runs it: `rewrite --no-dockerfiles` moves svc-b out of the workspace
    and leaves its Dockerfile; `rewrite --check` and verify name that Dockerfile's line."""
    env = _env(tmp_path, monkeypatch)
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock", root)
    _write(root, {"compose.yaml": COMPOSE.split("  app-a:")[0],
                  "services/svc-b/Dockerfile": "FROM python:3.12-slim\nRUN pip install uv\nWORKDIR /app\n"
                                               "COPY . .\nRUN uv sync --frozen --package svc-b\n"})
    _publish(run_cli, root, index, env)
    common = ("--root", str(root), "--index-url", index.simple_url)
    moved = run_cli("rewrite", *common, "--no-dockerfiles", "services/svc-b", env=env)
    assert moved.exit_code == 0, moved.output
    assert "exclude" in (root / "pyproject.toml").read_text()
    where = "services/svc-b/Dockerfile:5"
    what = "`uv sync --package svc-b`: svc-b is not a member of the uv workspace the build uses"
    check = run_cli("rewrite", "--check", *common, "services/svc-b", env=env)
    assert check.exit_code == 1 and where in check.output and what in check.output, check.output
    code, data = _verify(run_cli, root, index, env, "services/svc-b")
    assert code == 1
    assert any(f.startswith(where) and what in f for f in _findings(data, "static")), data


def test_a_root_dockerfile_attached_by_its_package_arg_is_judged_from_the_root(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by the ecosystem check (JasperHG90/uv-monorepo): a root Dockerfile building one member
    (`ARG PACKAGE="core"`, `uv sync --frozen --package=$PACKAGE` over the root's lock) is attached to
    src/core, and was judged as if built from src/core's folder: after core left the workspace,
    `rewrite --check` said ok while the build fails. It is built from where it sits."""
    url = "http://127.0.0.1:9/simple/"
    files = {
        "pyproject.toml": '[project]\nname = "monorepo"\nversion = "0.1.0"\ndependencies = ["core"]\n\n'
                          '[tool.uv.sources]\ncore = { path = "src/core", editable = true }\n'
                          'utils = { workspace = true }\n\n[tool.uv.workspace]\nmembers = ["shared/utils"]\n'
                          'exclude = ["src/core"]\n',
        "shared/utils/pyproject.toml": '[project]\nname = "utils"\nversion = "0.1.0"\n',
        "src/core/pyproject.toml": '[project]\nname = "core"\nversion = "0.1.0"\ndependencies = ["utils>=0.1"]\n\n'
                                   '[tool.uv.sources]\nutils = { index = "nexus" }\n\n[[tool.uv.index]]\n'
                                   f'name = "nexus"\nurl = "{url}"\nexplicit = true\n',
        "Dockerfile": 'FROM python:3.11-slim\nARG PACKAGE="core"\nWORKDIR /app\n'
                      "RUN --mount=type=bind,source=uv.lock,target=uv.lock \\\n"
                      "    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\\n"
                      "    uv sync --frozen --no-install-project --no-dev --package=$PACKAGE\n"
                      "COPY src/$PACKAGE /app/src/$PACKAGE\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    r = run_cli("rewrite", "--check", "--root", str(tmp_path), "--index-url", url, "src/core",
                env={"HOME": str(tmp_path), "NO_COLOR": "1"})
    assert r.exit_code == 1, r.output
    assert "Dockerfile:4" in r.output and "dockerfile-uv-package" in r.output, r.output
    assert "core is not a member of the uv workspace" in r.output.replace("\n    ", " ")


def test_rewrite_refuses_to_move_a_member_a_root_dockerfile_syncs_by_package_arg(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The same repository before the move (JasperHG90/uv-monorepo): rewrite used to move core out of
    the workspace with exit 0 and only `--check` refused afterwards. The rule `--check` applies after
    the move is asked before it: `dockerfile-uv-move` at the `uv sync` lines, nothing written, and the
    repository's own `uv lock --check` still passes."""
    env = _env(tmp_path, monkeypatch)
    url = "http://127.0.0.1:9/simple/"
    root = tmp_path / "repo"
    _write(root, {
        "pyproject.toml": '[project]\nname = "monorepo"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
                          'dependencies = []\n\n[dependency-groups]\ndev = ["core", "utils"]\n\n'
                          '[tool.uv]\npackage = false\n\n[tool.uv.sources]\ncore = { workspace = true }\n'
                          'utils = { workspace = true }\n\n[tool.uv.workspace]\nmembers = ["shared/*", "src/*"]\n',
        "shared/utils/pyproject.toml": '[project]\nname = "utils"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n',
        "src/core/pyproject.toml": '[project]\nname = "core"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
                                   'dependencies = ["utils"]\n\n[tool.uv.sources]\nutils = { workspace = true }\n',
        "Dockerfile": 'FROM python:3.11-slim\nARG PACKAGE="core"\nWORKDIR /app\nCOPY shared/utils /app/shared/utils\n'
                      "RUN --mount=type=bind,source=uv.lock,target=uv.lock \\\n"
                      "    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\\n"
                      "    uv sync --frozen --no-install-project --no-dev --package=$PACKAGE\n"
                      "COPY src/$PACKAGE /app/src/$PACKAGE\n"
                      "RUN --mount=type=bind,source=uv.lock,target=uv.lock \\\n"
                      "    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\\n"
                      "    uv sync --frozen --no-dev --package=$PACKAGE\n",
    })
    locked = subprocess.run(["uv", "lock"], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert locked.returncode == 0, locked.stderr
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for targets in ((), ("src/core",)):
        r = run_cli("rewrite", "--root", str(root), "--index-url", url, "--no-lock", *targets, env=env)
        assert r.exit_code == 1, r.output
        text = r.output.replace("\n    ", " ")
        assert "Dockerfile:5: error[dockerfile-uv-move]" in text and "Dockerfile:9: error[dockerfile-uv-move]" in text
        assert "`uv sync --package core` builds inside the uv workspace at ., which rewrite would move core out of" in text
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    still = subprocess.run(["uv", "lock", "--check"], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert still.returncode == 0, still.stderr


def test_rewrite_refuses_a_move_another_consumers_dockerfile_syncs_by_name(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same rule over every Dockerfile of the monorepo, not only the moved member's own: svc-a's
    image also syncs svc-b from the root workspace (`uv sync --package svc-b`); moving svc-b out is
    refused at that line, and nothing is written."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock", root)
    _write(root, {"services/svc-a/Dockerfile": "FROM python:3.12-slim\nRUN pip install uv\nWORKDIR /app\nCOPY . .\n"
                                               "RUN uv sync --frozen --package svc-a && uv sync --frozen --package svc-b\n",
                  "compose.yaml": "services:\n  svc-a:\n    build:\n      context: .\n"
                                  "      dockerfile: services/svc-a/Dockerfile\n"})
    before = snapshot(root)
    r = run_cli("rewrite", "--root", str(root), "--index-url", "http://127.0.0.1:9/simple/", "--no-lock",
                "services/svc-b", env={"HOME": str(tmp_path), "NO_COLOR": "1"})
    assert r.exit_code == 1, r.output
    text = r.output.replace("\n    ", " ")
    assert "services/svc-a/Dockerfile:5: error[dockerfile-uv-move]: `uv sync --package svc-b` builds inside the uv " \
           "workspace at ., which rewrite would move svc-b out of" in text, text
    assert snapshot(root) == before
