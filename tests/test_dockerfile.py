"""Dockerfile parsing, shared-copy detection and patching (pure text: no engine)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from nexusify.formats.dockerfile_rules import SharedCode, judge_dockerfile
from nexusify.rewrite.dockerfile_patch import PatchResult
from nexusify.rewrite.dockerfile_patch import patch as patch_verdict
from nexusify.syntax.dockerfile_parse import DockerfileSyntaxError, parse, parse_file
from tests.conftest import SAMPLE

URL = "http://127.0.0.1:9/simple/"


def shared_code(items: Sequence[Path | str]) -> SharedCode:
    """Absolute Paths are shared package folders (named after the folder), strings container paths."""
    return SharedCode.of([(p, p.name) for p in items if isinstance(p, Path)],
                         [str(c) for c in items if not isinstance(c, Path)])


def shared_copies(path: Path, text: str, shared: Sequence[Path | str]) -> list[tuple[int, str]]:
    """(line, source) of every COPY/ADD source the rule says brings shared code."""
    verdict = judge_dockerfile(str(path), text, project_dir=path.parent, root=path.parent.parent.parent,
                               shared=shared_code(shared))
    return [(c.line, src) for c in verdict.copies for src in c.sources]


def patch(path: Path, text: str, shared: Sequence[Path | str], *, index_url: str, auth: bool = False,
          context: Path | None = None) -> PatchResult:
    verdict = judge_dockerfile(str(path), text, project_dir=path.parent, root=path.parent.parent.parent,
                               shared=shared_code(shared), context=context)
    return patch_verdict(path, text, verdict, index_url=index_url, auth=auth,
                         requirement=lambda name, extras: f"{name}{extras}==1.0")

TRICKY = """\
# syntax=docker/dockerfile:1.7
# escape=\\
ARG BASE=python:3.11-slim
FROM --platform=linux/amd64 $BASE AS builder
# a comment
RUN apt-get update \\
    # a comment inside a continuation is dropped
    && apt-get install -y git \\

    && echo done
COPY --chown=app:app --chmod=0644 ["a b.txt", "c.txt", "/dst/"]
RUN <<EOF bash
set -e
echo "COPY ../../shared/packages /nope"
EOF
COPY <<-CFG /etc/app.cfg
\tkey = value
\tCFG
FROM builder
COPY --from=builder /opt/venv /opt/venv
cmd ["python", "-m", "svc"]
"""


def test_parse_keywords_lines_flags_heredocs_and_stages() -> None:
    instrs = parse(TRICKY)
    assert [(i.keyword, i.start, i.end) for i in instrs] == [
        ("ARG", 3, 3), ("FROM", 4, 4), ("RUN", 6, 10), ("COPY", 11, 11), ("RUN", 12, 15),
        ("COPY", 16, 18), ("FROM", 19, 19), ("COPY", 20, 20), ("CMD", 21, 21),
    ]
    frm = instrs[1]
    assert frm.flags == [("platform", "linux/amd64")] and frm.image == "$BASE" and frm.alias == "builder"
    run = instrs[2]
    assert "comment" not in run.args and run.args.endswith("&& echo done")
    copy = instrs[3]
    assert copy.json_form and copy.sources == ["a b.txt", "c.txt"] and copy.dest == "/dst/"
    assert copy.flag("chown") == "app:app" and copy.flag("chmod") == "0644"
    assert instrs[4].heredocs[0].delimiter == "EOF" and instrs[4].heredocs[0].last_line == 15
    assert instrs[5].heredocs[0].strip_tabs and instrs[5].sources == ["<<-CFG"]
    assert [i.stage for i in instrs] == [-1, 0, 0, 0, 0, 0, 1, 1, 1]
    assert instrs[7].flag("from") == "builder"


def test_escape_directive_backtick() -> None:
    text = "# escape=`\nFROM mcr/windows\nRUN dir c:\\ `\n    && echo hi\nCOPY a\\b c:\\dest\\\n"
    df = parse_file(text)
    assert df.escape == "`"
    assert [(i.keyword, i.start, i.end) for i in df.instructions] == [("FROM", 2, 2), ("RUN", 3, 4), ("COPY", 5, 5)]
    assert df.instructions[2].sources == ["a\\b"]  # a backslash is not a continuation here


def test_unclosed_heredoc_is_a_syntax_error_with_its_line() -> None:
    with pytest.raises(DockerfileSyntaxError) as info:
        parse("FROM x\nRUN <<EOF\necho\n")
    assert info.value.line == 2


def test_shared_copies_of_the_sample() -> None:
    shared = sorted((SAMPLE / "shared/packages").resolve().iterdir())
    gateway = SAMPLE / "services/gateway/Dockerfile"
    assert shared_copies(gateway, gateway.read_text(), shared) == [
        (6, "../../shared/packages/core-config"), (7, "../../shared/packages/core-auth"),
        (8, "../../shared/packages/monitoring")]
    qf = SAMPLE / "services/quality-fabric/Dockerfile"
    assert shared_copies(qf, qf.read_text(), shared) == [(6, "../../shared/packages")]
    assert shared_copies(qf, qf.read_text(), ["/shared/packages"]) == [(6, "../../shared/packages")]
    rep = SAMPLE / "services/reporting/Dockerfile"
    assert shared_copies(rep, rep.read_text(), shared) == []
    # the heredoc body mentioning shared/packages is not an instruction
    assert shared_copies(Path("/repo/services/x/Dockerfile"), TRICKY, ["/shared/packages"]) == []


def test_patch_drops_shared_copies_and_installs_from_the_index(tmp_path: Path) -> None:
    svc = tmp_path / "services" / "svc"
    (tmp_path / "shared" / "lib").mkdir(parents=True)
    svc.mkdir(parents=True)
    text = (
        "FROM base AS build\r\n"
        "COPY ../../shared/lib pyproject.toml \\\r\n"
        "     ./\r\n"
        "COPY ../../shared/lib /shared/lib\r\n"
        "RUN --mount=type=cache,target=/root/.cache \\\r\n"
        "    python -m pip install --no-cache-dir . && pip3 install gunicorn\r\n"
        "FROM base\r\n"
        "COPY --from=build /shared/lib /shared/lib\r\n"
        "COPY --from=build /opt/venv /opt/venv\r\n"
        "CMD [\"svc\"]"
    )
    result = patch(svc / "Dockerfile", text, [tmp_path / "shared" / "lib"], index_url=URL, auth=True)
    assert not result.problems
    assert result.text == (
        "FROM base AS build\r\n"
        "COPY pyproject.toml \\\r\n"
        "     ./\r\n"
        f"ARG NEXUS_INDEX_URL={URL}\r\n"
        "RUN --mount=type=secret,id=netrc,target=/root/.netrc --mount=type=cache,target=/root/.cache \\\r\n"
        '    python -m pip install --index-url "$NEXUS_INDEX_URL" --no-cache-dir . && '
        'pip3 install --index-url "$NEXUS_INDEX_URL" gunicorn\r\n'
        "FROM base\r\n"
        "COPY --from=build /opt/venv /opt/venv\r\n"
        "CMD [\"svc\"]"
    )
    assert [e.line for e in result.edits] == [2, 4, 5, 8]
    again = patch(svc / "Dockerfile", result.text, [tmp_path / "shared" / "lib"], index_url=URL, auth=True)
    assert again.text == result.text and not again.edits


def test_patch_without_credentials_adds_no_mount() -> None:
    text = "FROM base\nRUN pip install .\n"
    result = patch(Path("/r/s/Dockerfile"), text, [], index_url=URL, auth=False)
    assert result.text == f'FROM base\nARG NEXUS_INDEX_URL={URL}\nRUN pip install --index-url "$NEXUS_INDEX_URL" .\n'
    assert "secret" not in result.text


@pytest.mark.parametrize(("text", "message"), [
    pytest.param('FROM b\nRUN ["pip", "install", "."]\n', "exec-form", id="json-run"),
    pytest.param("FROM b\nRUN pip install -i https://other/simple .\n", "already names an index", id="other-index"),
    pytest.param("FROM b\nUSER app\nRUN pip install .\n", "runs as USER app", id="non-root"),
    pytest.param('FROM b\nCOPY ["../../shared/lib", "x", "y", \\\n  "/d/"]\nRUN pip install .\n', "cannot be edited",
                 id="multi-line-json-copy"),
])
def test_unpatchable_shapes_are_reported_with_their_line_and_left_untouched(text: str, message: str) -> None:
    result = patch(Path("/r/services/s/Dockerfile"), text, ["/r/shared/lib"], index_url=URL, auth=True)
    assert result.text == text and not result.edits
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert message in problem.message and problem.line is not None and problem.line >= 2
    assert problem.path == "/r/services/s/Dockerfile"


# --------------------------------------------------------------------------- the one shared-code rule


def tree(root: Path, *folders: str) -> Path:
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


def judge(root: Path, text: str, project: str = "services/svc") -> tuple[list[tuple[int, tuple[str, ...]]],
                                                                       list[tuple[int, str, str]],
                                                                       list[tuple[int | None, str]]]:
    """(copies as (line, sources), installs as (line, word, name+extras), problems as (line, code))."""
    shared = SharedCode.of([(root / "shared/packages/a", "a"), (root / "shared/packages/b", "b")])
    verdict = judge_dockerfile("Dockerfile", text, project_dir=root / project, root=root, shared=shared)
    return ([(c.line, c.sources) for c in verdict.copies],
            [(i.instruction.start, i.word, i.name + i.extras) for i in verdict.installs],
            [(p.line, p.code) for p in verdict.problems])


def test_rule_root_context_copy_and_its_installs(tmp_path: Path) -> None:
    """The issue's reproducer: the source exists only from the root, so the context is the root;
    the COPY goes and every pip install of what it filled names the package instead."""
    root = tree(tmp_path, "shared/packages/a", "shared/packages/b", "services/svc")
    text = ("FROM python:3.11-slim\n"
            "COPY shared/packages/a /deps/a\n"
            "COPY . /app\n"
            "WORKDIR /deps\n"
            "RUN pip install /deps/a && pip install -e ./a 'a[x]' file:///deps/a[y,z] /app\n")
    copies, installs, problems = judge(root, text)
    assert problems == []
    assert copies == [(2, ("shared/packages/a",))]
    assert installs == [(5, "/deps/a", "a"), (5, "./a", "a"), (5, "'a[x]'", "a[x]"), (5, "file:///deps/a[y,z]", "a[y,z]")]
    verdict = judge_dockerfile("Dockerfile", text, project_dir=root / "services/svc", root=root,
                               shared=SharedCode.of([(root / "shared/packages/a", "a")]))
    assert [(p.line, p.code, p.severity) for p in verdict.audit_problems()] == [
        (2, "dockerfile-copies-shared", "warning")]
    patched = patch_verdict(Path("Dockerfile"), text, verdict, index_url=URL,
                            requirement=lambda name, extras: f"{name}{extras}>=0.1.0,<0.2.0")
    assert patched.problems == []
    assert patched.text == (
        "FROM python:3.11-slim\n"
        "COPY . /app\n"
        "WORKDIR /deps\n"
        f"ARG NEXUS_INDEX_URL={URL}\n"
        "RUN pip install --index-url \"$NEXUS_INDEX_URL\" 'a>=0.1.0,<0.2.0' && pip install --index-url "
        "\"$NEXUS_INDEX_URL\" 'a>=0.1.0,<0.2.0' 'a[x]>=0.1.0,<0.2.0' 'a[y,z]>=0.1.0,<0.2.0' /app\n")
    again = judge_dockerfile("Dockerfile", patched.text, project_dir=root / "services/svc", root=root,
                             shared=SharedCode.of([(root / "shared/packages/a", "a")]))
    assert again.copies == [] and again.installs == [] and again.audit_problems() == []


def test_rule_multistage_copy_from_of_a_path_a_previous_stage_copied(tmp_path: Path) -> None:
    root = tree(tmp_path, "shared/packages/a", "shared/packages/b", "services/svc")
    text = ("FROM python:3.11-slim AS builder\n"           # 1
            "WORKDIR /workspace\n"                          # 2
            "COPY shared/packages ./libs\n"                 # 3: holds a and b
            "COPY services/svc ./svc\n"                     # 4: names the project from the root
            "RUN pip install /workspace/libs/a ./svc\n"     # 5
            "FROM builder AS test\n"                        # 6: inherits what builder filled
            "RUN pip install -e libs/b\n"                   # 7
            "FROM python:3.11-slim\n"                       # 8
            "COPY --from=builder /workspace/libs/a /opt/a\n"  # 9
            "COPY --from=builder /workspace /srv\n"         # 10: a parent: kept, libs land under /srv
            "RUN pip install /opt/a /srv/libs/b\n")         # 11
    copies, installs, problems = judge(root, text)
    assert problems == []
    assert copies == [(3, ("shared/packages",)), (9, ("/workspace/libs/a",))]
    assert installs == [(5, "/workspace/libs/a", "a"), (7, "libs/b", "b"), (11, "/opt/a", "a"), (11, "/srv/libs/b", "b")]


@pytest.mark.parametrize(("run", "line"), [
    pytest.param("RUN for d in /deps/*; do pip install $d; done", 3, id="shell-loop"),
    pytest.param("RUN bash /deps/a/install.sh", 3, id="script"),
    pytest.param("RUN cd /deps && pip install ./a", 3, id="cd"),
    pytest.param("ENV PYTHONPATH=/deps/a:/app", 3, id="env"),
    pytest.param("RUN pip install -r /deps/a/requirements.txt", 3, id="requirements-inside"),
    pytest.param("RUN <<EOF\npip install /deps/a\nEOF", 3, id="heredoc"),
    pytest.param('RUN ["pip", "install", "/deps/a"]', 3, id="exec-form"),
])
def test_rule_uses_it_cannot_rewrite_are_errors(tmp_path: Path, run: str, line: int) -> None:
    root = tree(tmp_path, "shared/packages/a", "shared/packages/b", "services/svc")
    text = f"FROM python:3.11-slim\nCOPY shared/packages/a /deps/a\n{run}\n"
    _copies, _installs, problems = judge(root, text)
    assert problems == [(line, "dockerfile-uses-shared-code")]
    verdict = judge_dockerfile("Dockerfile", text, project_dir=root / "services/svc", root=root,
                               shared=SharedCode.of([(root / "shared/packages/a", "a")]))
    assert [p.severity for p in verdict.problems] == ["error"]  # rewrite refuses the file
    assert [p.severity for p in verdict.audit_problems() if p.code == "dockerfile-uses-shared-code"] == ["warning"]
    patched = patch_verdict(Path("Dockerfile"), text, verdict, index_url=URL, requirement=lambda n, e: n)
    assert patched.text == text and not patched.changed and patched.problems


def test_rule_undecidable_context_is_an_error(tmp_path: Path) -> None:
    root = tree(tmp_path, "shared/packages/a", "services/svc")
    (root / "services/svc/requirements.txt").write_text("six\n")
    text = "FROM python:3.11-slim\nCOPY requirements.txt /app/\nCOPY shared/packages/a /deps/a\n"
    copies, installs, problems = judge(root, text)
    assert (copies, installs, problems) == ([], [], [(3, "dockerfile-context-unknown")])


@pytest.mark.parametrize(("text", "copies"), [
    pytest.param("FROM x\nCOPY ../../shared/packages/a /a\n", [(2, ("../../shared/packages/a",))], id="climbs-out"),
    pytest.param("FROM x\nCOPY . /app\nCOPY src/ /src/\n", [], id="whole-context-is-the-project"),
    pytest.param("FROM x\nADD https://example.com/shared/packages/a.tgz /a\nCOPY $LIBS /libs\n", [], id="remote-or-var"),
    pytest.param("FROM x\nCOPY --from=other /shared/packages/a /a\n", [], id="from-an-image"),
])
def test_rule_what_is_not_or_is_shared(tmp_path: Path, text: str, copies: list[tuple[int, tuple[str, ...]]]) -> None:
    root = tree(tmp_path, "shared/packages/a", "shared/packages/b", "services/svc/src")
    assert judge(root, text) == (copies, [], [])


def test_rule_copy_holding_the_project_too_is_an_error(tmp_path: Path) -> None:
    root = tree(tmp_path, "libs/a", "libs/svc")
    shared = SharedCode.of([(root / "libs/a", "a")])
    verdict = judge_dockerfile("Dockerfile", "FROM x\nCOPY libs /libs\n", project_dir=root / "libs/svc", root=root,
                               shared=shared, context=root)
    assert [(p.line, p.code) for p in verdict.problems] == [(2, "dockerfile-copies-shared")]
    assert verdict.copies == []


def test_rule_takes_a_declared_context_and_named_contexts(tmp_path: Path) -> None:
    """A compose file's build.context is taken as is (no guess); COPY --from=<additional context>
    is judged like a COPY from that folder; a Dockerfile built from two contexts is a problem."""
    from nexusify.formats.dockerfile_rules import judge_file

    root = tree(tmp_path, "shared/packages/a", "services/svc")
    df = root / "services/svc/Dockerfile"
    df.write_text("FROM x\nCOPY --from=libs a /deps/a\nCOPY shared/packages/a /a\nRUN pip install /deps/a\n")
    shared = SharedCode.of([(root / "shared/packages/a", "a")])
    _raw, verdict = judge_file(df, "services/svc/Dockerfile", project_dir=root / "services/svc", root=root,
                               shared=shared, contexts=[root], additional={"libs": root / "shared/packages"})
    assert verdict.problems == [] and verdict.context == root
    assert [(c.line, c.sources) for c in verdict.copies] == [(2, ("a",)), (3, ("shared/packages/a",))]
    assert [(i.instruction.start, i.name) for i in verdict.installs] == [(4, "a")]
    _raw, verdict = judge_file(df, "services/svc/Dockerfile", project_dir=root / "services/svc", root=root,
                               shared=shared, contexts=[root, root / "services/svc"])
    assert [p.code for p in verdict.problems] == ["dockerfile-context-unknown"] and verdict.copies == []


def test_rule_pip_wheel_and_download_of_copied_shared_code_fetch_it_by_version(tmp_path: Path) -> None:
    """A builder stage that builds (`pip wheel -w DIR <folder>`) or fetches (`pip download -d DIR`)
    the copied shared code: the folder becomes the package by version and the step asks the index."""
    root = tree(tmp_path, "shared/packages/a", "shared/packages/b", "services/svc")
    text = ("FROM python:3.11-slim AS builder\n"
            "COPY shared/packages /src/libs\n"
            "RUN pip wheel --no-deps -w /wheels /src/libs/a && python -m pip download -d /dl /src/libs/b\n"
            "FROM python:3.11-slim\n"
            "COPY --from=builder /wheels /wheels\n"
            "RUN pip install /wheels/*.whl\n")
    copies, installs, problems = judge(root, text)
    assert problems == []
    assert copies == [(2, ("shared/packages",))]
    assert installs == [(3, "/src/libs/a", "a"), (3, "/src/libs/b", "b")]
    verdict = judge_dockerfile("Dockerfile", text, project_dir=root / "services/svc", root=root,
                               shared=SharedCode.of([(root / "shared/packages/a", "a"), (root / "shared/packages/b", "b")]))
    patched = patch_verdict(Path("Dockerfile"), text, verdict, index_url=URL, requirement=lambda n, e: f"{n}{e}>=0.1")
    assert patched.problems == []
    assert patched.text.splitlines()[1:3] == [
        f"ARG NEXUS_INDEX_URL={URL}",
        "RUN pip wheel --index-url \"$NEXUS_INDEX_URL\" --no-deps -w /wheels 'a>=0.1' && python -m pip download "
        "--index-url \"$NEXUS_INDEX_URL\" -d /dl 'b>=0.1'"]
