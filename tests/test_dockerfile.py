"""Dockerfile parsing, shared-copy detection and patching (pure text: no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusify.formats.dockerfile import (
    DockerfileSyntaxError,
    parse,
    parse_file,
    patch,
    shared_copies,
)
from tests.conftest import SAMPLE

URL = "http://127.0.0.1:9/simple/"

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
