"""Shared code only the images take (Muxite/webRAG, found by the ecosystem check): each service's
`.dockerfile`, built by compose from `services/`, copies `shared` and runs `pip install /app/shared`;
no manifest names it. A package there is shared and the services are its consumers (rewrite makes
the images install it by version from the index, and they stay consumers after); a folder with no
package metadata is refused at the COPY line by audit, rewrite, `rewrite --check` and verify. Both
used to end with `rewrite --check` exit 0 and nothing judged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nexusify.model import load_workspace
from tests.conftest import FIXTURES
from tests.helpers import snapshot

LAYOUT = FIXTURES / "layouts/dockerfile-only-shared"
ENV = {"NO_COLOR": "1", "HOME": "/nonexistent"}


def _repo(tmp_path: Path, packaged: bool = True) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(LAYOUT, root)
    if not packaged:
        (root / "services/shared/pyproject.toml").unlink()
    return root


def test_a_package_only_images_install_is_shared_and_the_services_consume_it(tmp_path: Path) -> None:
    ws = load_workspace(LAYOUT)
    assert [p.rel(ws.root) for p in ws.shared()] == ["services/shared"]
    consumers = {p.rel(ws.root): ws.takes(p) for p in ws.consumers()}
    assert consumers == {"services/api": ["acme-shared"], "services/worker": ["acme-shared"]}
    api = ws.project_at(ws.root / "services/api")
    assert api is not None
    assert [(b.context.relative_to(ws.root).as_posix(), b.origin) for b in ws.dockerfiles_of(api)] == [
        ("services", "compose:services/docker-compose.yml:api")]
    # a Dockerfile no compose file names is built from the folder its sources name the service from
    root = _repo(tmp_path)
    (root / "services/docker-compose.yml").unlink()
    ws = load_workspace(root)
    api = ws.project_at(root / "services/api")
    assert api is not None and [b.context for b in ws.dockerfiles_of(api)] == [root / "services"]
    assert sorted(p.rel(root) for p in ws.consumers()) == ["services/api", "services/worker"]


@pytest.mark.slow
def test_the_images_install_it_from_the_index_and_pip_does(run_cli, tmp_path: Path, pypi_server_factory,
                                                          backend_wheels: list[Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    env = {**ENV, "HOME": str(tmp_path), "PATH": os.environ["PATH"], "NEXUS_USERNAME": server.username or "",
           "NEXUS_PASSWORD": server.password or ""}
    root = _repo(tmp_path)
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    done = run_cli("rewrite", *common, env=env)
    assert done.exit_code == 0, done.output
    for service in ("api", "worker"):
        text = (root / f"services/{service}/.dockerfile").read_text()
        assert "COPY shared" not in text and "/app/shared" not in text, text
        assert "'acme-shared>=0.4.0,<0.5.0'" in text and '--index-url "$NEXUS_INDEX_URL"' in text, text
    # still its consumers: the images take it by name now
    assert sorted(p.rel(root) for p in load_workspace(root).consumers()) == ["services/api", "services/worker"]
    assert run_cli("rewrite", "--check", *common, env=env).exit_code == 0
    verified = run_cli("verify", *common, "--json", env=env)
    assert verified.exit_code == 0, verified.output
    rows = {c["path"]: c for c in json.loads(verified.stdout)["consumers"]}
    assert sorted(rows) == ["services/api", "services/worker"]
    # resolve proves what the image installs by name comes from the index
    assert rows["services/api"]["checks"]["resolve"]["detail"] == f"from {server.simple_url}: acme-shared 0.4.0"
    # what the image's RUN now does, with pip: install it from the index, then import it
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--index-url", server.simple_url,
                          "--target", str(target), "acme-shared>=0.4.0,<0.5.0"],
                         capture_output=True, text=True, check=False, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    ran = subprocess.run([sys.executable, str(root / "services/api/main.py")], env={**os.environ, "PYTHONPATH": str(target)},
                         capture_output=True, text=True, check=False)
    assert ran.stdout.strip() == "hello", ran.stderr
    # the index loses it: the image's `pip install` would fail, and verify says so at the Dockerfile
    for published in server.packages.glob("acme_shared-*"):
        published.unlink()
    lost = run_cli("verify", *common, "--json", env=env)
    assert lost.exit_code == 1, lost.output
    resolve = {c["path"]: c["checks"]["resolve"] for c in json.loads(lost.stdout)["consumers"]}["services/api"]
    assert resolve["status"] == "fail" and resolve["findings"][0]["path"] == "services/api/.dockerfile", resolve
    assert resolve["findings"][0]["message"].startswith("services/api/.dockerfile:6 (acme-shared>=0.4.0,<0.5.0)"
                                                       " does not resolve from the index alone"), resolve


def test_code_with_no_package_metadata_is_refused_at_the_copy_line(run_cli, tmp_path: Path) -> None:
    root = _repo(tmp_path, packaged=False)
    before = snapshot(root)
    url = "http://127.0.0.1:9/simple/"
    lines = ("services/api/.dockerfile:5: error[shared-code-unpackaged]",
             "services/worker/.dockerfile:5: error[shared-code-unpackaged]")
    for verb in (("audit", "--offline"), ("rewrite", "--index-url", url), ("rewrite", "--check", "--index-url", url),
                 ("verify", "--index-url", url)):
        r = run_cli(*verb[:1], "--root", str(root), *verb[1:], env=ENV)
        text = r.output.replace("\n    ", " ")
        assert r.exit_code == 1, (verb, r.output)
        if verb[0] != "audit":  # audit's table wraps; its JSON is checked below
            assert all(line in text for line in lines), (verb, text)
            assert "services/shared/, Python code the images of services/api, services/worker take from a path, " \
                   "but it has no package metadata" in text, text
        assert snapshot(root) == before
    data = json.loads(run_cli("--json", "audit", "--root", str(root), "--offline", env=ENV).stdout)
    assert [(p["path"], p["line"]) for p in data["errors"] if p["code"] == "shared-code-unpackaged"] == [
        ("services/api/.dockerfile", 5), ("services/worker/.dockerfile", 5)]
    # one image alone copying it counts when it installs it (pip install /app/shared)
    shutil.rmtree(root / "services/worker")
    (root / "services/docker-compose.yml").write_text("services:\n  api:\n    build:\n      context: .\n"
                                                      "      dockerfile: api/.dockerfile\n")
    one = run_cli("rewrite", "--check", "--root", str(root), "--index-url", url, env=ENV)
    assert one.exit_code == 1 and "services/api/.dockerfile:5: error[shared-code-unpackaged]" in one.output
    # on PYTHONPATH (`import shared` from /app) in one image alone: that service's own code, kept elsewhere
    df = root / "services/api/.dockerfile"
    df.write_text(df.read_text().replace("RUN pip install --no-cache-dir /app/shared\n", "ENV PYTHONPATH=/app\n"))
    assert not [p for p in load_workspace(root).problems if p.code == "shared-code-unpackaged"]
    # ... in the images of two services: shared code
    shutil.copytree(root / "services/api", root / "services/worker")
    (root / "services/worker/.dockerfile").write_text(df.read_text().replace("api", "worker"))
    (root / "services/docker-compose.yml").write_text(LAYOUT.joinpath("services/docker-compose.yml").read_text())
    assert [(p.path, p.line) for p in load_workspace(root).problems if p.code == "shared-code-unpackaged"] == [
        ("services/api/.dockerfile", 5), ("services/worker/.dockerfile", 5)]
    # a folder they copy but never install or put on PYTHONPATH (static files) is no shared code
    for service in ("api", "worker"):
        df = root / f"services/{service}/.dockerfile"
        df.write_text(df.read_text().replace("ENV PYTHONPATH=/app\n", ""))
    assert not [p for p in load_workspace(root).problems if p.code == "shared-code-unpackaged"]
