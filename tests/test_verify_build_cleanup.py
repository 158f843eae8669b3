"""`verify --build` leaves no image behind, intermediate ones included, also when the build fails
(issue 24, item 11)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from nexusify.config import resolve_settings
from nexusify.deploy.runtime.engine import LABEL_SERVICE
from nexusify.formats.dockerfile_rules import SharedCode, judge_project
from nexusify.model import workspace_for
from nexusify.verify.build import Builder

BASE = os.environ.get("NEXUSIFY_TEST_BASE_IMAGE", "localhost/python:3.11-slim-bookworm")


def _labelled(client, service: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(i.id for i in client.images.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"}))


@pytest.mark.engine
@pytest.mark.parametrize("last", [
    pytest.param("RUN false", id="failed-build"),
    pytest.param("RUN echo two > /two", id="built"),
])
@pytest.mark.parametrize("secret", [pytest.param(False, id="sdk"), pytest.param(True, id="cli")])
def test_verify_build_removes_every_image_it_labelled(docker_client, tmp_path: Path, last: str,  # type: ignore[no-untyped-def]
                                                      secret: bool) -> None:
    service = f"cleanup-{uuid.uuid4().hex[:10]}"
    svc = tmp_path / "services" / service
    svc.mkdir(parents=True)
    (svc / "pyproject.toml").write_text(f'[project]\nname = "{service}"\nversion = "0.1.0"\n')
    mount = "--mount=type=secret,id=netrc,target=/root/.netrc " if secret else ""
    # it copies its manifest: a Dockerfile that installs nothing of the project builds no consumer
    (svc / "Dockerfile").write_text(f"FROM {BASE} AS base\nCOPY pyproject.toml /app/\nRUN {mount}echo {service} > /one\n"
                                    f"FROM base AS second\nRUN echo more > /more\nFROM second\n{last}\n")
    ws = workspace_for(resolve_settings(tmp_path, env={}))
    project = next(p for p in ws.projects if p.name == service)
    judged = judge_project(project, ws.root, SharedCode.from_workspace(ws, {}))
    builder = Builder({"DOCKER_HOST": os.environ["DOCKER_HOST"], "PATH": os.environ.get("PATH", "")},
                      "http://127.0.0.1:9/simple/", None)
    try:
        check = builder.check(project, ws, judged, installs=[])
    finally:
        builder.close()
    assert check.status == ("fail" if last == "RUN false" else "ok"), check
    assert _labelled(docker_client, service) == []
