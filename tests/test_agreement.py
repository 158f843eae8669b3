"""The verbs agree on every fixture (issue 19): audit's consumers = rewrite's targets (and the
consumers it leaves in their uv workspace) = verify's rows = affected's universe for a change to
every shared package; and each consumer has the same Dockerfiles in audit as in the verdicts that
rewrite, verify and deploy readiness judge. One model answers; these pin that every verb asks it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nexusify.affected import Changed, expand
from nexusify.config import resolve_settings
from nexusify.formats.dockerfile_rules import judge_project
from nexusify.formats.shared_code import SharedCode
from nexusify.model import load_workspace, relpath
from nexusify.rewrite.plan import plan_rewrite
from nexusify.verify import select_consumers

from .conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
URL = "http://127.0.0.1:9/simple/"


def _fixtures() -> list[Path]:
    """Every monorepo under fixtures/: a folder holding projects (deploy's fixtures are configs)."""
    found = [FIXTURES / "monorepo"]
    for group in ("layouts", "publish"):
        found += sorted(p for p in (FIXTURES / group).iterdir() if p.is_dir())
    return found


@pytest.mark.parametrize("fixture", _fixtures(), ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_every_verb_sees_the_same_consumers_and_dockerfiles(fixture: Path, tmp_path: Path, run_cli) -> None:
    root = tmp_path / "repo"
    shutil.copytree(fixture, root)
    ws = load_workspace(root)
    model = {p.rel(ws.root) for p in ws.consumers()}
    assert model, "every fixture has consumers: an empty set would agree vacuously"

    audit = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    listed = {s["path"]: s for s in json.loads(audit.stdout)["services"]}
    assert set(listed) == model, "audit"

    plan = plan_rewrite(resolve_settings(root, {"index_url": URL}, ENV), [], env=ENV, lock=False)
    assert {sp.rel for sp in plan.services} | set(plan.staying) == model, "rewrite"
    assert not {sp.rel for sp in plan.services} & set(plan.staying)

    rows = {p.rel(ws.root) for p in select_consumers(ws, [])}
    assert rows == model, "verify"

    changed = [Changed(p.name or "", p.rel(ws.root), "test") for p in ws.shared() if p.name]
    universe = {c.path for c in expand(ws, changed, "test").consumers}
    assert universe == model, "affected"

    shared = SharedCode.from_workspace(ws)
    for p in ws.consumers():
        judged = sorted(j.rel for j in judge_project(p, ws.root, shared))
        assert judged == listed[p.rel(ws.root)]["dockerfiles"], p.rel(ws.root)
        assert sorted({relpath(b.dockerfile, ws.root) for b in ws.dockerfiles_of(p)}) == judged
