"""pip requirements files: parsing, audit (local dependencies, requirements-only services),
rewrite (byte-preserving, idempotent, one index), and a clean ``pip install -r`` from a real index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nexusify.model import Workspace, load_workspace
from nexusify.syntax.requirements import (
    LocalEntry,
    file_group,
    logical_lines,
    parse_requirements,
    read_tree,
    replace_lines,
    tree_of,
)
from tests.conftest import FIXTURES
from tests.helpers import snapshot

LAYOUT = FIXTURES / "layouts" / "requirements-services"
URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def entry(line: str) -> LocalEntry:
    parsed = parse_requirements(line + "\n", Path("/r/requirements.txt"))
    assert parsed.issues == []
    (found,) = parsed.entries
    return found


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("line", "written", "is_url", "name", "editable", "extras", "markers"), [
    pytest.param("-e ../../libs/core-auth", "../../libs/core-auth", False, None, True, (), None, id="editable-short"),
    pytest.param("--editable ../x", "../x", False, None, True, (), None, id="editable-long"),
    pytest.param("--editable=../x", "../x", False, None, True, (), None, id="editable-equals"),
    pytest.param("../../shared/packages/core-api", "../../shared/packages/core-api", False, None, False, (), None,
                 id="relative-path"),
    pytest.param("./vendor/x", "./vendor/x", False, None, False, (), None, id="dot-path"),
    pytest.param("/shared/packages/test-healer", "/shared/packages/test-healer", False, None, False, (), None,
                 id="container-path"),
    pytest.param("maestro-core-db @ file:///shared/packages/core-db", "file:///shared/packages/core-db", True,
                 "maestro-core-db", False, (), None, id="pep508-file-url"),
    pytest.param("file:../../libs/x#egg=lib-x", "file:../../libs/x", True, "lib-x", False, (), None,
                 id="file-url-egg"),
    pytest.param("-e file:../../libs/x#egg=lib-x[a]", "file:../../libs/x", True, "lib-x", True, ("a",), None,
                 id="editable-file-url-egg-extras"),
    pytest.param('../x[a, b] ; python_version >= "3.8"', "../x", False, None, False, ("a", "b"),
                 'python_version >= "3.8"', id="path-extras-marker"),
    pytest.param('../x;sys_platform=="linux"', "../x", False, None, False, (), 'sys_platform=="linux"',
                 id="path-marker-no-space"),
    pytest.param('lib-y[s] @ file:///srv/y ; sys_platform == "linux"', "file:///srv/y", True, "lib-y", False, ("s",),
                 'sys_platform == "linux"', id="pep508-url-marker"),
    pytest.param("../x  # the x library", "../x", False, None, False, (), None, id="inline-comment"),
    pytest.param("../x --config-settings=editable_mode=compat", "../x", False, None, False, (), None,
                 id="per-requirement-options"),
])
def test_local_line_forms(line: str, written: str, is_url: bool, name: str | None, editable: bool,
                          extras: tuple[str, ...], markers: str | None) -> None:
    found = entry(line)
    assert (found.written, found.is_url, found.name, found.editable, found.extras, found.markers) == (
        written, is_url, name, editable, extras, markers)
    assert found.line == found.end == 1


@pytest.mark.parametrize("line", [
    pytest.param("requests>=2.31", id="named"),
    pytest.param("# -e ../../libs/x", id="comment"),
    pytest.param("-e git+https://github.com/acme/x.git#egg=x", id="vcs"),
    pytest.param("x @ https://example.com/x-1.0.tar.gz", id="remote-url"),
    pytest.param("   ", id="blank"),
])
def test_lines_that_are_not_local(line: str) -> None:
    parsed = parse_requirements(line + "\n", Path("/r/requirements.txt"))
    assert parsed.entries == [] and parsed.issues == []


def test_options_are_kept_as_written() -> None:
    text = "--index-url https://nexus/simple\n-i https://other/simple\n--extra-index-url=https://pypi.org/simple\n" \
           "--no-index\n--trusted-host nexus\n"
    parsed = parse_requirements(text, Path("/r/requirements.txt"))
    assert [(o.line, o.option, o.value) for o in parsed.options] == [
        (1, "--index-url", "https://nexus/simple"), (2, "--index-url", "https://other/simple"),
        (3, "--extra-index-url", "https://pypi.org/simple"), (4, "--no-index", ""), (5, "--trusted-host", "nexus")]
    assert [o.line for o in parsed.index_urls()] == [1, 2] and [o.line for o in parsed.extra_index_urls()] == [3]


def test_named_requirements_are_recorded_with_their_line() -> None:
    parsed = parse_requirements("# top\nRequests[socks]>=2 ; python_version > '3'\nAcme.Core==1.0\n", Path("/r/r.txt"))
    assert parsed.names == [("requests", 2), ("acme-core", 3)]


def test_continuations_join_lines_and_keep_the_first_line_number() -> None:
    text = "# header\n-e \\\n  ../../libs/a\nrequests \\\n  >=2\n../b \\\n  ; python_version >= '3.8'  # c\n"
    assert [(a, b) for a, b, _ in logical_lines(text)] == [(2, 3), (4, 5), (6, 7)]
    parsed = parse_requirements(text, Path("/r/requirements.txt"))
    assert [(e.written, e.line, e.end, e.markers) for e in parsed.entries] == [
        ("../../libs/a", 2, 3, None), ("../b", 6, 7, "python_version >= '3.8'")]
    assert parsed.names == [("requests", 4)]


def test_a_bad_line_is_reported_with_its_line() -> None:
    parsed = parse_requirements("requests\nnot a requirement!!\n-e\n", Path("/r/requirements.txt"))
    assert [(i.severity, i.line) for i in parsed.issues] == [("warning", 2), ("error", 3)]


def test_includes_are_followed_relative_to_the_file_and_cycles_end(tmp_path: Path) -> None:
    (tmp_path / "req").mkdir()
    (tmp_path / "req/base.txt").write_text("-r ../common.txt\n-e ../libs/a\n")
    (tmp_path / "common.txt").write_text("-c req/base.txt\n--requirement=req/missing.txt\n../libs/b\n")
    (tmp_path / "requirements.txt").write_text("-r req/base.txt\n")
    files = read_tree([tmp_path / "requirements.txt"])
    top = (tmp_path / "requirements.txt").resolve()
    assert [f.path.name for f in tree_of(top, files)] == ["requirements.txt", "base.txt", "common.txt"]
    common = files[(tmp_path / "common.txt").resolve()]
    assert [(i.code, i.line) for i in common.issues] == [("missing-include", 2)]
    assert [e.written for f in files.values() for e in f.entries] == ["../libs/a", "../libs/b"]


@pytest.mark.parametrize(("name", "group"), [
    ("requirements.txt", ("main", True)), ("requirements-prod.txt", ("main", True)), ("base.txt", ("main", True)),
    ("requirements-dev.txt", ("dev", False)), ("requirements_test.txt", ("test", False)), ("docs.txt", ("docs", False)),
])
def test_file_groups(name: str, group: tuple[str, bool]) -> None:
    assert file_group(Path(name)) == group


def test_replace_lines_keeps_every_other_byte() -> None:
    text = "# a\r\n-e \\\r\n  ../x   # keep me\r\nrequests\r\n../y"
    new = replace_lines(text, {2: (3, "x>=1"), 5: (5, "y>=2")}, "--index-url http://i/simple/")
    assert new == "--index-url http://i/simple/\r\n# a\r\nx>=1  # keep me\r\nrequests\r\ny>=2"


# --------------------------------------------------------------------------- audit


@pytest.fixture(scope="module")
def layout() -> Workspace:
    return load_workspace(LAYOUT)


def test_requirements_only_services_are_found_without_build_system_problems(layout: Workspace) -> None:
    billing = layout.by_name["billing"]
    assert layout.is_consumer(billing) and billing.requirements_only and billing.version is None
    assert billing.manifest == (LAYOUT / "services/billing/requirements-dev.txt").resolve()
    assert layout.problems == []


def test_requirements_dependencies_carry_their_file_and_line(layout: Workspace) -> None:
    reports = layout.by_name["reports"]
    found = {(d.name, relpath_of(d.file), d.line, d.mapped_from) for d in reports.local_deps}
    assert found == {
        ("rq-core-config", "services/reports/requirements/base.txt", 1, "/shared/packages/core-config"),
        ("rq-core-api", "services/reports/requirements/base.txt", 2, "/shared/packages/core-api"),
        ("rq-core-auth", "services/reports/requirements/prod.txt", 2, None),
    }
    billing = {d.name: d for d in layout.by_name["billing"].local_deps}
    assert billing["rq-core-auth"].editable and not billing["rq-core-api"].editable
    assert billing["rq-core-api"].extras == ["server"] and billing["rq-core-api"].markers == 'python_version >= "3.8"'
    assert billing["rq-core-api"].runtime and billing["rq-core-api"].group == "main"


def relpath_of(path: Path) -> str:
    return path.relative_to(LAYOUT.resolve()).as_posix()


def test_audit_json_lists_requirements_dependencies(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("audit", "--root", str(LAYOUT), "--offline", "--json", env=ENV)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    services = {s["name"]: s for s in data["services"]}
    assert sorted(services["billing"]["shared_dependencies"]) == ["rq-core-api", "rq-core-auth"]
    assert services["billing"]["transitive_shared_dependencies"] == ["rq-core-api", "rq-core-auth", "rq-core-config"]
    assert sorted(services["portal"]["shared_dependencies"]) == ["rq-core-api", "rq-core-auth", "rq-core-config"]
    assert {d["kind"] for d in services["reports"]["dependencies"]} == {"requirements"}
    assert data["publish_order"] == ["rq-core-config", "rq-core-auth", "rq-core-api"]


def _monorepo(tmp_path: Path, requirements: str, name: str = "requirements.txt") -> Path:
    root = tmp_path / "mono"
    (root / "libs/a").mkdir(parents=True)
    (root / "libs/a/pyproject.toml").write_text(
        '[project]\nname = "lib-a"\nversion = "1.2.0"\n\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n')
    svc = root / "services/svc"
    (svc / Path(name).parent).mkdir(parents=True, exist_ok=True)
    (svc / name).write_text(requirements)
    return root


@pytest.mark.parametrize(("line", "code"), [
    pytest.param("-e ../../libs/nope", "missing-path", id="missing-relative"),
    pytest.param("/opt/nowhere/zzz-unknown", "unresolvable-path", id="unmapped-container-path"),
    pytest.param("file:../../libs/b#egg=lib-b", "missing-path", id="missing-file-url"),
    pytest.param("lib-b @ file:///code/libs/a", "name-mismatch", id="name-mismatch"),
])
def test_a_bad_path_is_a_problem_at_its_file_and_line(tmp_path: Path, line: str, code: str) -> None:
    root = _monorepo(tmp_path, f"# svc\nrequests\n{line}\n")
    ws = load_workspace(root)
    assert [(p.code, p.location) for p in ws.problems] == [(code, "services/svc/requirements.txt:3")]


def test_vendored_code_in_the_service_folder_is_left_alone(tmp_path: Path) -> None:
    root = _monorepo(tmp_path, "./vendor/x\n-e ../../libs/a\n")
    (root / "services/svc/vendor/x").mkdir(parents=True)
    (root / "services/svc/vendor/x/setup.py").write_text("from setuptools import setup\nsetup()\n")
    ws = load_workspace(root)
    assert ws.problems == []
    assert ws.by_name["svc"].internal_names() == ["lib-a"]


def test_a_path_relative_to_the_service_folder_also_resolves(tmp_path: Path) -> None:
    # pip reads a relative path from the current folder: `pip install -r requirements/prod.txt` in the service
    root = _monorepo(tmp_path, "-e ../../libs/a\n", name="requirements/prod.txt")
    ws = load_workspace(root)
    assert ws.problems == []
    assert ws.by_name["svc"].internal_names() == ["lib-a"]


def test_requirements_folder_and_configured_service_globs(tmp_path: Path) -> None:
    root = _monorepo(tmp_path, "-e ../../../libs/a\n", name="requirements/prod.txt")
    (root / "tools/job").mkdir(parents=True)
    (root / "tools/job/requirements.txt").write_text("-e ../../libs/a\n")
    (root / "services/empty").mkdir()
    ws = load_workspace(root)
    # tools/job installs local code: a consumer wherever it is; empty has no requirements
    assert [p.name for p in ws.consumers()] == ["svc", "job"]
    # globs widen the search; they never make a consumer something else
    configured = load_workspace(root, shared_globs=["libs/*"], service_globs=["tools/*"])
    assert [p.name for p in configured.consumers()] == ["svc", "job"]
    assert configured.by_name["job"].internal_names() == ["lib-a"]


# --------------------------------------------------------------------------- rewrite


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dest = tmp_path / "requirements-services"
    shutil.copytree(LAYOUT, dest)
    return dest


def rewrite(run_cli, root: Path, *args: str, url: str = URL):  # type: ignore[no-untyped-def]
    return run_cli("rewrite", "--root", str(root), "--index-url", url, *args, env=ENV)


def test_rewrite_changes_only_the_local_lines_and_adds_the_index(run_cli, copy: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(copy)
    result = rewrite(run_cli, copy)
    assert result.exit_code == 0, result.output
    assert "credentials come from ~/.netrc or keyring" in result.stdout
    after = snapshot(copy)
    assert sorted(k for k in before if before[k] != after[k]) == [
        "services/billing/requirements.txt", "services/portal/pyproject.toml", "services/portal/requirements.txt",
        "services/reports/requirements/base.txt", "services/reports/requirements/prod.txt"]
    assert after["services/billing/requirements.txt"].decode() == (
        f"--index-url {URL}\n"
        "# billing: installed with `pip install -r requirements.txt`\n"
        "rq-core-auth>=0.1.0,<0.2.0  # auth\n"
        'rq-core-api[server]>=1.0.0,<2.0.0 ; python_version >= "3.8"\n')
    assert after["services/reports/requirements/base.txt"].decode() == (
        f"--index-url {URL}\nrq-core-config>=0.2.0,<0.3.0\nrq-core-api>=1.0.0,<2.0.0 ; sys_platform != \"win32\"\n")
    assert after["services/portal/requirements.txt"].decode() == (
        f"--index-url {URL}\nrq-core-config>=0.2.0,<0.3.0\nrq-core-auth>=0.1.0,<0.2.0\n")
    assert after["services/billing/requirements-dev.txt"] == before["services/billing/requirements-dev.txt"]

    # a second run changes nothing, and --check agrees
    again = rewrite(run_cli, copy)
    assert again.exit_code == 0 and "nothing to rewrite" in again.stdout, again.output
    assert snapshot(copy) == after
    check = rewrite(run_cli, copy, "--check")
    assert check.exit_code == 0, check.output


def test_exact_constraint_and_crlf_bom_file(run_cli, copy: Path) -> None:  # type: ignore[no-untyped-def]
    req = copy / "services/billing/requirements.txt"
    req.write_bytes(b"\xef\xbb\xbf-e ../../libs/core-auth\r\nrequests>=2 \\\r\n  ; python_version > '3'\r\n")
    result = rewrite(run_cli, copy, "--constraint", "exact", "services/billing")
    assert result.exit_code == 0, result.output
    assert req.read_bytes() == (b"\xef\xbb\xbf--index-url " + URL.encode() + b"\r\nrq-core-auth==0.1.0\r\n"
                                b"requests>=2 \\\r\n  ; python_version > '3'\r\n")


def test_check_and_diff_cover_requirements_files(run_cli, copy: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(copy)
    check = rewrite(run_cli, copy, "--check", "services/billing")
    assert check.exit_code == 1 and "1 file(s) would be rewritten" in check.stdout, check.output
    diff = rewrite(run_cli, copy, "--diff", "services/reports")
    assert diff.exit_code == 0, diff.output
    assert "+++ b/services/reports/requirements/prod.txt" in diff.stdout
    assert "-file:../../../libs/core-auth#egg=rq-core-auth\n+rq-core-auth>=0.1.0,<0.2.0" in diff.stdout
    assert snapshot(copy) == before


def test_a_different_index_url_is_an_error_and_nothing_is_written(run_cli, copy: Path) -> None:  # type: ignore[no-untyped-def]
    base = copy / "services/reports/requirements/base.txt"
    base.write_text("# pinned\n-i https://mirror.example.com/simple\n" + base.read_text())
    before = snapshot(copy)
    result = rewrite(run_cli, copy)
    assert result.exit_code == 1
    assert "services/reports/requirements/base.txt:2: error[requirements-index-conflict]" in result.output
    assert f"--index-url {URL}" in result.output
    assert snapshot(copy) == before  # the other services' files too


def test_the_same_index_url_is_kept_and_extra_index_is_a_warning(run_cli, copy: Path) -> None:  # type: ignore[no-untyped-def]
    req = copy / "services/billing/requirements.txt"
    req.write_text(f"--index-url {URL.rstrip('/')}\n--extra-index-url https://pypi.org/simple\n-e ../../libs/core-auth\n")
    result = rewrite(run_cli, copy, "services/billing")
    assert "services/billing/requirements.txt:2: warning[requirements-extra-index]" in result.output
    assert "dependency confusion" in result.output
    assert req.read_text() == (f"--index-url {URL.rstrip('/')}\n--extra-index-url https://pypi.org/simple\n"
                               "rq-core-auth>=0.1.0,<0.2.0\n")


def test_a_bad_path_blocks_the_rewrite(run_cli, copy: Path) -> None:  # type: ignore[no-untyped-def]
    (copy / "services/reports/requirements/prod.txt").write_text("-r base.txt\n-e ../../../libs/gone\n")
    before = snapshot(copy)
    result = rewrite(run_cli, copy)
    assert result.exit_code == 1
    assert "services/reports/requirements/prod.txt:2" in result.output and "missing-path" in result.output
    assert snapshot(copy) == before


# --------------------------------------------------------------------------- a real index


@pytest.mark.slow
def test_publish_rewrite_then_pip_install_r_from_the_index_alone(copy: Path, pypi_server_factory, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 build_env_dir: Path, run_cli) -> None:
    from nexusify.config import resolve_settings
    from nexusify.publish import PublishOptions, run_publish

    server = pypi_server_factory(auth=None)
    env = {"HOME": str(Path.home()), "NO_COLOR": "1", "NEXUSIFY_BUILD_ENV_DIR": str(build_env_dir),
           "PATH": os.environ.get("PATH", "")}
    report = run_publish(resolve_settings(copy, {"repository_url": server.url}, env), PublishOptions(env=env))
    assert report.ok, [p.to_dict() for p in report.packages]
    assert len(list(server.packages.glob("*.whl"))) == 3
    result = rewrite(run_cli, copy, url=server.simple_url)
    assert result.exit_code == 0, result.output

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull,
             "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for service in ("services/billing/requirements.txt", "services/reports/requirements/prod.txt"):
        install = subprocess.run([str(venv / "bin/pip"), "install", "--isolated", "--no-cache-dir", "-r", service],
                                 cwd=copy, capture_output=True, text=True, env=clean, check=False, timeout=120)
        assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([str(venv / "bin/python"), "-c",
                            "import rq_core_auth, rq_core_api, rq_core_config; print(rq_core_api.__file__)"],
                           capture_output=True, text=True, env=clean, check=False)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(str(venv))  # installed from the index, not the monorepo
