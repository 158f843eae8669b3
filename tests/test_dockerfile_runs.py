"""RUN forms around shared code (issue 14): `grep -v` filters of shared names, installs of a copied
shared folder that the service's own install already pulls, and `uv sync` over a copied uv
workspace. The rule (audit, rewrite, verify) and the patch agree; no engine needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nexusify.formats.dockerfile_rules import SharedCode, judge_dockerfile
from nexusify.formats.dockerfile_runs import ProjectPulls
from nexusify.rewrite.dockerfile_patch import patch
from tests.conftest import FIXTURES
from tests.helpers import snapshot

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
ARG = f"ARG NEXUS_INDEX_URL={URL}\n"
PIP = 'pip install --index-url "$NEXUS_INDEX_URL"'
VENV = "RUN python3 -m venv /opt/venv\nENV PATH=/opt/venv/bin:$PATH\n"


def _tree(tmp_path: Path) -> Path:
    """libs/acme-core and libs/acme-util (shared), services/svc with a requirements file."""
    root = tmp_path / "r"
    for folder in ("libs/acme-core", "libs/acme-util", "services/svc"):
        (root / folder).mkdir(parents=True)
    (root / "services/svc/requirements.txt").write_text("-e ../../libs/acme-core\nsix\n")
    (root / "services/svc/pyproject.toml").write_text("[project]\nname = 'svc'\n")
    return root


def _judge(root: Path, text: str, pulls: ProjectPulls | None = None):  # type: ignore[no-untyped-def]
    shared = SharedCode.of([(root / "libs/acme-core", "acme-core"), (root / "libs/acme-util", "acme-util")])
    return judge_dockerfile("Dockerfile", text, project_dir=root / "services/svc", root=root, shared=shared,
                            pulls=pulls)


def _pulls(root: Path, runtime: tuple[str, ...] = ("acme-core",)) -> ProjectPulls:
    svc = root / "services/svc"
    return ProjectPulls(svc, svc / "pyproject.toml", frozenset(runtime),
                        {svc / "requirements.txt": frozenset({"acme-core"})})


def _patched(root: Path, text: str, pulls: ProjectPulls | None = None) -> str:
    verdict = _judge(root, text, pulls)
    assert verdict.problems == []
    result = patch(Path("Dockerfile"), text, verdict, index_url=URL,
                   requirement=lambda name, extras: f"{name}{extras}>=0.1.0,<0.2.0")
    assert result.problems == []
    again = _judge(root, result.text, pulls)
    assert (again.copies, again.installs, again.filters, again.problems) == ([], [], [], [])  # one verdict
    return result.text


# --------------------------------------------------------------------------- grep filters


@pytest.mark.parametrize(("run", "expected"), [
    pytest.param("RUN grep -v 'acme-core' requirements.txt > /tmp/r.txt && pip install -r /tmp/r.txt\n",
                 f"RUN {PIP} -r requirements.txt\n", id="whole-construct"),
    pytest.param("RUN grep -vi -e ACME_CORE -e boto requirements.txt > r.txt && pip install -r r.txt\n",
                 f"RUN grep -vi -e boto requirements.txt > r.txt && {PIP} -r r.txt\n", id="only-the-shared-pattern"),
    pytest.param("RUN grep -v 'acme-core\\|acme-util' requirements.txt >r.txt \\\n    && pip install -r r.txt\n",
                 f"RUN {PIP} -r requirements.txt\n", id="alternation-of-shared-names"),
    pytest.param("RUN grep -v 'libs/' requirements.txt > r.txt && pip install -r r.txt\n",
                 f"RUN grep -v 'libs/' requirements.txt > r.txt && {PIP} -r r.txt\n", id="filters-no-rewritten-line"),
])
def test_a_grep_filter_of_shared_names_goes(tmp_path: Path, run: str, expected: str) -> None:
    root = _tree(tmp_path)
    text = "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n" + run
    assert _patched(root, text) == "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n" + ARG + expected


@pytest.mark.parametrize(("text", "why"), [
    pytest.param("RUN grep -v 'acme-core\\|six' requirements.txt > r.txt && pip install -r r.txt\n",
                 "a pattern also matches other lines", id="mixed-alternation"),
    pytest.param("RUN grep -v -f skip.txt requirements.txt > r.txt && pip install -r r.txt\n",
                 "`-f` is an option nexusify does not read", id="patterns-from-a-file"),
    pytest.param("RUN grep -v acme-core requirements.txt >> r.txt && pip install -r r.txt\n",
                 "it appends to its output", id="append"),
    pytest.param("RUN grep -v acme-core requirements.txt > r.txt && pip install -r r.txt\nRUN cat r.txt\n",
                 "its output r.txt is used beyond", id="output-read-elsewhere"),
    pytest.param("RUN grep -v acme-core requirements.txt > r.txt; pip install -r r.txt\n",
                 "its output r.txt is used beyond", id="not-joined-by-and"),
])
def test_a_grep_filter_nobody_can_rewrite_is_an_error_at_its_line(tmp_path: Path, text: str, why: str) -> None:
    root = _tree(tmp_path)
    full = "FROM python:3.11-slim\nCOPY requirements.txt .\n" + text
    verdict = _judge(root, full)
    assert [(p.line, p.code, p.severity) for p in verdict.problems] == [(3, "dockerfile-filters-shared", "error")]
    assert why in verdict.problems[0].message
    result = patch(Path("Dockerfile"), full, verdict, index_url=URL, requirement=lambda n, e: n)
    assert result.text == full and not result.changed and result.problems


def test_rewrite_and_check_report_an_unrewritable_filter_at_file_and_line(run_cli, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/docker-run-forms", root)
    dockerfile = root / "services/api/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("'dr-core'", "'dr-core\\|six'"))
    before = snapshot(root)
    for args in ((), ("--check",)):
        result = run_cli("rewrite", "--root", str(root), "--index-url", URL, *args, env=ENV)
        assert result.exit_code == 1, result.output
        assert "services/api/Dockerfile:10: error[dockerfile-filters-shared]" in result.output
    assert snapshot(root) == before


# --------------------------------------------------------------------------- redundant path installs


@pytest.mark.parametrize(("runs", "expected"), [
    pytest.param("COPY services/svc/requirements.txt .\nRUN pip install /deps/acme-core\nRUN pip install -r requirements.txt\n",
                 f"COPY services/svc/requirements.txt .\n{ARG}RUN {PIP} -r requirements.txt\n", id="requirements"),
    pytest.param("COPY services/svc /app\nRUN pip install /deps/acme-core /deps/acme-util && pip install /app\n",
                 f"COPY services/svc /app\n{ARG}RUN {PIP} 'acme-util>=0.1.0,<0.2.0' && {PIP} /app\n",
                 id="same-command-keeps-the-other"),
    pytest.param("COPY services/svc/pyproject.toml ./\nRUN pip install -e /deps/acme-core && poetry install --no-root\n",
                 "COPY services/svc/pyproject.toml ./\nRUN poetry install --no-root\n", id="poetry-install"),
    pytest.param("COPY services/svc /app\nRUN pip install /deps/acme-core; pip install /app\n",
                 f"COPY services/svc /app\n{ARG}RUN {PIP} 'acme-core>=0.1.0,<0.2.0'; {PIP} /app\n",
                 id="not-cut-with-certainty-installs-by-version"),
    pytest.param("COPY services/svc /app\nRUN pip install /deps/acme-core && pip install --no-deps /app\n",
                 f"COPY services/svc /app\n{ARG}RUN {PIP} 'acme-core>=0.1.0,<0.2.0' && {PIP} --no-deps /app\n",
                 id="no-deps-pulls-nothing"),
    pytest.param("COPY services/svc /app\nRUN pip install --prefix=/opt /deps/acme-core && pip install /app\n",
                 f"COPY services/svc /app\n{ARG}RUN {PIP} --prefix=/opt 'acme-core>=0.1.0,<0.2.0' && {PIP} /app\n",
                 id="another-environment"),
])
def test_an_install_the_services_own_install_already_pulls_goes(tmp_path: Path, runs: str, expected: str) -> None:
    root = _tree(tmp_path)
    head = "FROM python:3.11-slim\nWORKDIR /srv\n"
    text = head + "COPY libs/acme-core /deps/acme-core\nCOPY libs/acme-util /deps/acme-util\n" + runs
    assert _patched(root, text, _pulls(root)) == head + expected


def test_without_the_services_own_install_the_package_installs_by_version(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    text = "FROM python:3.11-slim\nCOPY libs/acme-core /deps/acme-core\nRUN pip install /deps/acme-core\n"
    assert _patched(root, text, _pulls(root)) == f"FROM python:3.11-slim\n{ARG}RUN {PIP} 'acme-core>=0.1.0,<0.2.0'\n"


def test_the_fixture_rewrites_in_one_pass_and_audit_then_has_nothing_to_say(run_cli, tmp_path: Path) -> None:
    """services/api: the grep filter goes (its `-r` reads the rewritten file), the install of the
    copy goes with its whole RUN; services/worker: one path install goes, the other is a version."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/docker-run-forms", root)
    result = run_cli("rewrite", "--root", str(root), "--index-url", URL, env=ENV)
    assert result.exit_code == 0, result.output
    assert (root / "services/api/Dockerfile").read_text() == (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG PIP_INDEX_URL\nWORKDIR /app\n" + VENV + "COPY --from=conf app.conf /etc/app.conf\n"
        "COPY requirements.txt .\n" + ARG + f"RUN {PIP} --no-cache-dir -r requirements.txt\n"
        'COPY app.py .\nCMD ["python", "app.py"]\n')
    assert (root / "services/worker/Dockerfile").read_text() == (
        "FROM python:3.11-slim-bookworm\nWORKDIR /srv\n" + VENV + "COPY services/worker /srv/worker\n" + ARG
        + f"RUN {PIP} --no-cache-dir 'dr-util>=0.1.0,<0.2.0' && {PIP} --no-cache-dir /srv/worker\n"
        'CMD ["python", "-c", "import dr_worker"]\n')
    # the named context `libs` served only the dropped shared copy: it goes; `conf` stays
    assert (root / "docker-compose.yml").read_text() == (
        "services:\n  api:\n    build:\n      context: services/api\n      dockerfile: Dockerfile\n"
        "      additional_contexts:\n        conf: config\n      args:\n        BASE_IMAGE: python:3.11-slim-bookworm\n")
    after = snapshot(root)
    check = run_cli("rewrite", "--root", str(root), "--index-url", URL, "--check", env=ENV)
    assert check.exit_code == 0 and "nothing to rewrite" in check.output, check.output
    audit = json.loads(run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV).stdout)
    assert [p for p in audit["problems"] if p["code"].startswith("dockerfile")] == []
    assert snapshot(root) == after


# --------------------------------------------------------------------------- uv sync over a copied workspace


def test_uv_sync_over_a_workspace_copied_from_a_named_context_is_never_patched_half(run_cli, tmp_path: Path) -> None:
    """The workspace comes through compose's named context `repo`: dropping `COPY --from=repo libs`
    would leave `uv sync` without its members. Audit names the uv sync line; rewrite and --check
    refuse the member's move (it is not built from the workspace root), writing nothing."""
    root = tmp_path / "ws"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock-compose", root)
    (root / "docker-compose.yml").write_text(
        "services:\n  api:\n    build:\n      context: services/api\n      dockerfile: ../../docker/Dockerfile.api\n"
        "      additional_contexts:\n        repo: .\n")
    (root / "docker/Dockerfile.api").write_text(
        "FROM python:3.11-slim-bookworm\nWORKDIR /workspace\nCOPY --from=repo pyproject.toml uv.lock ./\n"
        "COPY --from=repo libs ./libs\nCOPY . ./services/api\nRUN uv sync --frozen --package api\n")
    before = snapshot(root)
    audit = json.loads(run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV).stdout)
    found = [p for p in audit["problems"] if p["code"] == "dockerfile-uv-workspace" and p["path"].endswith(".api")]
    assert [(p["path"], p["line"]) for p in found] == [("docker/Dockerfile.api", 3)], audit["problems"]
    assert "`uv sync` at line 6 reads that workspace" in found[0]["message"]
    for args in ((), ("--check",)):
        result = run_cli("rewrite", "--root", str(root), "--index-url", URL, *args, "services/api", env=ENV)
        assert result.exit_code == 1, result.output
        assert "docker/Dockerfile.api" in result.output and "nothing was written" in result.output, result.output
    assert snapshot(root) == before


def test_what_the_services_dependencies_need_is_pulled_too(run_cli, tmp_path: Path) -> None:
    """poetry-libs' api needs acme-events, which needs acme_common_utils: `poetry install --only main`
    pulls it from the index, so the install of its copy goes (the model's graph, transitively)."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/poetry-libs", root)
    dockerfile = root / "projects/api/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        "RUN poetry install --only main", "RUN pip install /libs/common_utils && poetry install --only main"))
    result = run_cli("rewrite", "--root", str(root), "--index-url", URL, "projects/api", env=ENV)
    assert result.exit_code == 0, result.output
    assert "RUN poetry install --only main --no-interaction\n" in dockerfile.read_text()
    assert "common_utils" not in dockerfile.read_text()


def test_an_emptied_additional_contexts_key_goes_with_its_last_entry(run_cli, tmp_path: Path) -> None:
    """The acceptance run's S6 shape: the only named context served the shared copy; rewrite
    drops the entry and the emptied key, and `--check` is then green."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/docker-run-forms", root)
    compose = root / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("        conf: config\n", ""))
    dockerfile = root / "services/api/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY --from=conf app.conf /etc/app.conf\n", ""))
    check = run_cli("rewrite", "--root", str(root), "--index-url", URL, "--check", env=ENV)
    assert check.exit_code == 1 and "docker-compose.yml:7: drop the named context libs" in check.output, check.output
    assert run_cli("rewrite", "--root", str(root), "--index-url", URL, env=ENV).exit_code == 0
    assert compose.read_text() == (
        "services:\n  api:\n    build:\n      context: services/api\n      dockerfile: Dockerfile\n"
        "      args:\n        BASE_IMAGE: python:3.11-slim-bookworm\n")
    assert run_cli("rewrite", "--root", str(root), "--index-url", URL, "--check", env=ENV).exit_code == 0
