"""Hints name what will work: audit never says "nothing was changed" (it changes nothing), and
where rewrite refuses a Dockerfile, neither audit nor verify sends the user to rewrite for it
(issue 24, items 6 and 9)."""

from __future__ import annotations

import json
from pathlib import Path

from nexusify.config import resolve_settings
from nexusify.formats.dockerfile_rules import SharedCode, judge_project
from nexusify.model import workspace_for
from nexusify.verify.static import dockerfile_findings

INDEX = "http://127.0.0.1:9/simple/"


def _monorepo(root: Path, run: str) -> Path:
    lib = root / "shared" / "packages" / "a"
    svc = root / "services" / "svc"
    (lib / "a").mkdir(parents=True)
    (lib / "a" / "__init__.py").write_text("")
    (lib / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "1.0.0"\n'
                                        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    svc.mkdir(parents=True)
    (svc / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\ndependencies = ["a"]\n'
                                        '[tool.uv.sources]\na = { path = "../../shared/packages/a" }\n')
    (svc / "Dockerfile").write_text(f"FROM python:3.11-slim\nCOPY shared/packages/a /deps/a\n{run}\n")
    return root


def test_audit_hints_never_say_nothing_was_changed(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _monorepo(tmp_path, "RUN cd /deps && pip install ./a")
    r = run_cli("audit", "--offline", "--json", "--root", str(root))
    problems = json.loads(r.stdout)["problems"]
    assert any(p["code"] == "dockerfile-uses-shared-code" for p in problems)
    assert all("nothing was changed" not in (p["hint"] or "") for p in problems), problems
    # rewrite, which does leave the file alone, says so
    rw = run_cli("rewrite", "--check", "--json", "--root", str(root), "--index-url", INDEX)
    refused = [p for p in json.loads(rw.stdout)["problems"] if p["code"] == "dockerfile-uses-shared-code"]
    assert refused and all("left untouched" in p["hint"] for p in refused)
    assert all(p["hint"].count("left untouched") == 1 for p in refused)


def _static(root: Path) -> list[tuple[int | None, str | None]]:
    settings = resolve_settings(root, env={})
    ws = workspace_for(settings)
    svc = next(p for p in ws.projects if p.name == "svc")
    judged = judge_project(svc, ws.root, SharedCode.from_workspace(ws, settings.path_aliases))
    return [(f.line, f.hint) for jd in judged for f in dockerfile_findings(jd)]


def test_verify_does_not_send_to_rewrite_a_dockerfile_rewrite_refuses(tmp_path: Path) -> None:
    findings = _static(_monorepo(tmp_path, "RUN cd /deps && pip install ./a"))
    copy = [hint for line, hint in findings if line == 2]
    assert copy and "`nexusify rewrite` installs it" not in copy[0]
    assert "by hand" in copy[0] and "line 3" in copy[0]


def test_verify_sends_to_rewrite_what_rewrite_fixes(tmp_path: Path) -> None:
    findings = _static(_monorepo(tmp_path, "RUN pip install /deps/a"))
    assert [hint for line, hint in findings if line == 2] == ["`nexusify rewrite` installs it from the index instead"]


def test_audit_copy_hint_matches_what_rewrite_will_do(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _monorepo(tmp_path, "RUN cd /deps && pip install ./a")
    problems = json.loads(run_cli("audit", "--offline", "--json", "--root", str(root)).stdout)["problems"]
    copy = next(p for p in problems if p["code"] == "dockerfile-copies-shared")
    assert "nexusify rewrite" not in copy["hint"] and "by hand" in copy["hint"]
