"""Every problem kind audit reports: severity, code, file and line; all collected, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexusify.audit.report import AuditReport, run_audit
from nexusify.config import resolve_settings

POETRY_BS = '[build-system]\nrequires = ["poetry-core>=1.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n'
HATCH_BS = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def poetry(name: str, deps: str = "", version: str = "1.0.0", extra: str = "") -> str:
    return (f'[tool.poetry]\nname = "{name}"\nversion = "{version}"\n{extra}\n'
            f'[tool.poetry.dependencies]\npython = "^3.11"\n{deps}\n' + POETRY_BS)


def pep621(name: str, deps: str = "", version: str | None = "1.0.0", extra: str = "", bs: str = HATCH_BS) -> str:
    ver = f'version = "{version}"\n' if version is not None else ""
    return f'[project]\nname = "{name}"\n{ver}dependencies = [{deps}]\n{extra}\n{bs}'


def make_tree(root: Path, files: dict[str, str] | dict[str, str | bytes]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return root


def audit(root: Path, **kwargs: object) -> AuditReport:
    return run_audit(resolve_settings(root, env={}), index=False, **kwargs)  # type: ignore[arg-type]


PROBLEMS = [
    pytest.param(
        {"libs/a/pyproject.toml": '[project]\nname = "a"\nversion = "1.0\n', "libs/b/pyproject.toml": pep621("b")},
        ("error", "invalid-toml", "libs/a/pyproject.toml", 3), id="invalid-toml",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a", version=None)},
        ("error", "version-missing", "libs/a/pyproject.toml", 2), id="version-missing",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a", version=None, extra='dynamic = ["version"]\n'
                                         '[tool.hatch.version]\npath = "a/__about__.py"\n')},
        ("error", "version-unresolved", "libs/a/pyproject.toml", 4), id="version-unresolved",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a", version="one.two")},
        ("error", "invalid-version", "libs/a/pyproject.toml", 3), id="invalid-version",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": '[project]\nname = "a"\nversion = "1.0"\n'},
        ("warning", "no-build-system", "libs/a/pyproject.toml", None), id="no-build-system-pep621",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": '[tool.poetry]\nname = "a"\nversion = "1.0"\n'},
        ("error", "no-build-system", "libs/a/pyproject.toml", None), id="no-build-system-poetry-only",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": poetry("a", extra="package-mode = false"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}')},
        ("error", "virtual-dependency", "services/s/pyproject.toml", 7), id="virtual-package-mode-false",
    ),
    pytest.param(
        {"pyproject.toml": '[project]\nname = "root"\nversion = "0"\n[tool.uv.workspace]\nmembers = ["libs/*"]\n',
         "libs/a/pyproject.toml": pep621("a", '"root"', extra='[tool.uv.sources]\nroot = { workspace = true }\n')},
        ("error", "virtual-dependency", "libs/a/pyproject.toml", 4), id="virtual-uv-workspace-root",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("Acme_Lib"), "libs/b/pyproject.toml": pep621("acme-lib")},
        ("error", "duplicate-name", "libs/b/pyproject.toml", 2), id="duplicate-normalised-name",
    ),
    pytest.param(
        {"services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/nope"}')},
        ("error", "missing-path", "services/s/pyproject.toml", 7), id="missing-folder",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "/opt/elsewhere/zzz"}')},
        ("error", "unresolvable-path", "services/s/pyproject.toml", 7), id="unresolvable-container-path",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a"), "vendor/a/pyproject.toml": pep621("a2"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "/container/a"}')},
        ("error", "ambiguous-path", "services/s/pyproject.toml", 7), id="ambiguous-container-path",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": poetry("a", 'b = {path = "../b"}'),
         "libs/b/pyproject.toml": poetry("b", 'a = {path = "../a"}')},
        ("error", "dependency-cycle", "libs/a/pyproject.toml", None), id="cycle",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("real-name"),
         "services/s/pyproject.toml": poetry("s", 'wrong-name = {path = "../../libs/a"}')},
        ("error", "name-mismatch", "services/s/pyproject.toml", 7), id="name-mismatch",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a", '"b"', extra='[tool.uv.sources]\nb = { workspace = true }\n')},
        ("error", "workspace-member-missing", "libs/a/pyproject.toml", 6), id="workspace-without-workspace",
    ),
    pytest.param(
        {"services/s/pyproject.toml": poetry("s", 'a = {path = "../../../outside-lib"}'),
         "../outside-lib/pyproject.toml": pep621("a")},
        ("error", "outside-monorepo", "services/s/pyproject.toml", 7), id="outside-monorepo",
    ),
    pytest.param(
        {"services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'), "libs/a/setup.py": "",
         "libs/b/pyproject.toml": pep621("b")},
        ("error", "name-missing", "libs/a/setup.py", None), id="setup-py-only-without-metadata",
    ),
    pytest.param(
        {"services/s/pyproject.toml": poetry("s", 'a = {path = "../../dist/a-1.0-py3-none-any.whl"}'),
         "dist/a-1.0-py3-none-any.whl": ""},
        ("warning", "file-dependency", "services/s/pyproject.toml", 7), id="wheel-file",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a", '"b[ @ file:///${PROJECT_ROOT}/../b"')},
        ("error", "bad-requirement", "libs/a/pyproject.toml", 4), id="bad-requirement",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'),
         "services/s/Dockerfile": "FROM python:3.11\nWORKDIR /app\nCOPY ../../libs/a /libs/a\n"},
        ("warning", "dockerfile-copies-shared", "services/s/Dockerfile", 3), id="dockerfile-copy",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'),
         "services/s/Dockerfile": "FROM python:3.11\nRUN echo hi && \\\n    echo there\nADD \\\n  --chown=1:1 \\\n  libs /libs\n"},
        ("warning", "dockerfile-copies-shared", "services/s/Dockerfile", 4), id="dockerfile-add-root-context",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'),
         "services/s/Dockerfile": "FROM python:3.11\nCOPY <<EOF /app/x\nhello\n"},
        ("warning", "dockerfile-syntax", "services/s/Dockerfile", 2), id="dockerfile-unclosed-heredoc",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": pep621("a"),
         "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'),
         "services/s/Dockerfile": "FROM python:3.11\nCOPY --from=builder /libs/a /libs/a\nCOPY libs/*/ /libs/\n"},
        ("warning", "dockerfile-copies-shared", "services/s/Dockerfile", 3), id="dockerfile-glob-not-from-stage",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": poetry("a", version="0.0.0") + "\n[tool.poetry-dynamic-versioning]\nenable = true\n"},
        ("warning", "placeholder-version", "libs/a/pyproject.toml", 12), id="poetry-dynamic-versioning",
    ),
    pytest.param(
        {"libs/a/pyproject.toml": b'[project]\nname = "\xff"\n'},
        ("error", "unreadable", "libs/a/pyproject.toml", None), id="not-utf8",
    ),
]


@pytest.mark.parametrize(("files", "expected"), PROBLEMS)
def test_problem(tmp_path: Path, files: dict[str, str], expected: tuple[str, str, str, int | None]) -> None:
    root = make_tree(tmp_path / "repo", files)
    report = audit(root)
    found = [(p.severity, p.code, p.path, p.line) for p in report.problems]
    assert expected in found, found
    assert report.exit_code == (1 if report.errors else 0)
    assert report.exit_code == (1 if expected[0] == "error" else 0) or any(
        p.severity == "error" for p in report.problems if p.code != expected[1])


def test_invalid_toml_names_the_column_and_the_rest_is_still_audited(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {
        "libs/broken/pyproject.toml": '[project]\nname = "x"\nversion = = "1"\n',
        "libs/good/pyproject.toml": pep621("good"),
        "services/s/pyproject.toml": poetry("s", 'good = {path = "../../libs/good"}'),
    })
    report = audit(root)
    (problem,) = [p for p in report.problems if p.code == "invalid-toml"]
    assert (problem.line, problem.column) == (3, 11)
    assert problem.location == "libs/broken/pyproject.toml:3:11"
    assert [p.name for p in report.workspace.shared()] == ["good"]
    assert [p.name for p in report.workspace.consumers()] == ["s"]


def test_cycle_is_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {
        "libs/a/pyproject.toml": poetry("a", 'b = {path = "../b"}'),
        "libs/b/pyproject.toml": poetry("b", 'c = {path = "../c"}'),
        "libs/c/pyproject.toml": poetry("c", 'a = {path = "../a"}'),
        "libs/d/pyproject.toml": poetry("d", 'e = {path = "../e"}'),
        "libs/e/pyproject.toml": poetry("e", 'd = {path = "../d"}'),
    })
    report = audit(root)
    cycles = sorted(p.message for p in report.problems if p.code == "dependency-cycle")
    assert cycles == [
        "shared packages depend on each other in a cycle: a -> b -> c -> a",
        "shared packages depend on each other in a cycle: d -> e -> d",
    ]
    assert report.publish_order == []


def test_dev_only_cycle_is_not_a_cycle(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {
        "libs/a/pyproject.toml": poetry("a", 'b = {path = "../b"}'),
        "libs/b/pyproject.toml": poetry("b") + '\n[tool.poetry.group.dev.dependencies]\na = {path = "../a"}\n',
    })
    report = audit(root)
    assert report.problems == [] and report.publish_order == ["b", "a"]


BROKEN = {
    "libs/bad-toml/pyproject.toml": '[project]\nname = "bad"\nversion = "1\n',
    "libs/no-version/pyproject.toml": pep621("no-version", version=None),
    "libs/dyn/pyproject.toml": pep621("dyn", version=None, extra='dynamic = ["version"]\n[tool.hatch.version]\npath = "x.py"\n'),
    "libs/legacy/pyproject.toml": '[project]\nname = "legacy"\nversion = "1.0"\n',
    "libs/virtual/pyproject.toml": poetry("virtual", extra="package-mode = false"),
    "libs/dup-a/pyproject.toml": pep621("Dup_Name"),
    "libs/dup-b/pyproject.toml": pep621("dup-name"),
    "libs/cyc-a/pyproject.toml": poetry("cyc-a", 'cyc-b = {path = "../cyc-b"}'),
    "libs/cyc-b/pyproject.toml": poetry("cyc-b", 'cyc-a = {path = "../cyc-a"}'),
    "services/svc/pyproject.toml": poetry("svc", 'virtual = {path = "../../libs/virtual"}\n'
                                          'gone = {path = "../../libs/gone"}\n'
                                          'elsewhere = {path = "/opt/unknown/place"}\n'
                                          'legacy = {path = "/shared/packages/legacy"}\n'),
    "services/svc/Dockerfile": "FROM python:3.11\nCOPY ../../libs /libs\n",
}


def test_every_problem_is_collected_at_once(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    root = make_tree(tmp_path, BROKEN)
    r = run_cli("audit", "--root", str(root), "--json", "--offline")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    found = {(p["code"], p["path"], p["line"]) for p in data["problems"]}
    assert found >= {
        ("invalid-toml", "libs/bad-toml/pyproject.toml", 3),
        ("version-missing", "libs/no-version/pyproject.toml", 2),
        ("version-unresolved", "libs/dyn/pyproject.toml", 4),
        ("no-build-system", "libs/legacy/pyproject.toml", None),
        ("duplicate-name", "libs/dup-b/pyproject.toml", 2),
        ("dependency-cycle", "libs/cyc-a/pyproject.toml", None),
        ("virtual-dependency", "services/svc/pyproject.toml", 7),
        ("missing-path", "services/svc/pyproject.toml", 8),
        ("unresolvable-path", "services/svc/pyproject.toml", 9),
        ("dockerfile-copies-shared", "services/svc/Dockerfile", 2),
    }, found
    svc = {s["name"]: s for s in data["services"]}["svc"]
    assert svc["shared_dependencies"] == ["legacy"]  # the container path mapped onto libs/legacy
    assert data["summary"]["errors"] == sum(p["severity"] == "error" for p in data["problems"])


@pytest.mark.parametrize(("files", "code"), [
    pytest.param({"libs/a/pyproject.toml": pep621("a")}, 0, id="clean"),
    pytest.param({"libs/a/pyproject.toml": '[project]\nname = "a"\nversion = "1.0"\n'}, 0, id="warnings-only"),
    pytest.param({"libs/a/pyproject.toml": pep621("a", version=None)}, 1, id="an-error"),
])
def test_exit_codes(tmp_path: Path, run_cli, files: dict[str, str], code: int) -> None:  # type: ignore[no-untyped-def]
    root = make_tree(tmp_path, files)
    assert run_cli("audit", "--root", str(root)).exit_code == code
    assert run_cli("audit", "--root", str(root), "--json").exit_code == code


def test_problem_lines_in_the_table_keep_their_brackets(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    root = make_tree(tmp_path, {"libs/a/pyproject.toml": pep621("a", version=None)})
    r = run_cli("audit", "--root", str(root))
    assert "[version-missing]" in r.stdout and "libs/a/pyproject.toml:2" in r.stdout
    assert "1 error(s), 0 warning(s)" in r.stdout


def test_dockerfile_copies_that_are_not_shared_code(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {
        "libs/a/pyproject.toml": pep621("a"),
        "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'),
        "services/s/Dockerfile": (
            "# escape=`\nFROM python:3.11 AS build\nCOPY --from=builder /libs/a /libs/a\nCOPY . .\n"
            "ADD https://example.invalid/libs/a.tar.gz /tmp/\nCOPY pyproject.toml `\n  README.md ./\n"
            "RUN <<EOF\ncp -r ../../libs/a /x\nEOF\nCOPY ${LIBS} /libs\n"),
    })
    assert [p for p in audit(root).problems if p.code.startswith("dockerfile")] == []


ODD_VALUES = ['1', '"x"', '[]', '{}', '[1, {a = 1}]', '{path = 1}', '"/abs"', '["/abs/*", "../../*", ""]', 'true',
              '{workspace = "yes"}', '[{path = "../x"}, "s"]', '{path = ""}']
ODD_KEYS = [
    ("project", "dependencies"), ("project", "optional-dependencies"), ("project", "name"), ("project", "version"),
    ("project", "dynamic"), ("tool.uv.sources", "b"), ("tool.uv", "sources"), ("tool.uv.workspace", "members"),
    ("tool.uv.workspace", "exclude"), ("tool.poetry", "dependencies"), ("tool.poetry.dependencies", "b"),
    ("tool.poetry.group", "dev"), ("tool.poetry", "extras"), ("tool.poetry", "package-mode"),
    ("build-system", "requires"), ("build-system", "build-backend"), ("dependency-groups", "dev"),
    ("tool.pdm", "dev-dependencies"), ("tool.setuptools.dynamic", "version"), ("tool.hatch", "version"),
    ("tool.pdm", "version"), ("tool.poetry-dynamic-versioning", "enable"),
]


@pytest.mark.parametrize(("table", "key"), [pytest.param(t, k, id=f"{t}.{k}") for t, k in ODD_KEYS])
def test_odd_values_never_crash(tmp_path: Path, table: str, key: str) -> None:
    """Every odd value in every place audit reads: a report, never an exception."""
    for i, value in enumerate(ODD_VALUES):
        root = tmp_path / str(i)
        base = "" if table == "project" else '[project]\nname = "a"\nversion = "1"\ndependencies = ["b"]\n'
        make_tree(root, {
            "libs/a/pyproject.toml": base + f"[{table}]\n{key} = {value}\n",
            "services/s/pyproject.toml": poetry("s", 'a = {path = "../../libs/a"}'),
        })
        report = audit(root)
        json.dumps(report.to_dict())
