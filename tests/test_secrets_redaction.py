"""No secret leaves nexusify: URL credentials are split off before anything is stored or shown,
and one redactor (output layer + every log record of every logger) hides passwords, URL
userinfo and Authorization headers without garbling ordinary text, whatever the password's length."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nexusify import cli
from nexusify.config import resolve_settings
from nexusify.credentials import (
    Redactor,
    Secret,
    secrets_in_env,
    split_userinfo,
)
from nexusify.ui.logs import logging_for_run

from .conftest import REPO

LONG = "Xq7-long-Pa55word-9z"
# "<hidden>" glued to a letter means a word was cut: the garbling of issue 11 item 3
GARBLED = re.compile(r"\w<hidden>|<hidden>\w")


@pytest.mark.parametrize(("secrets", "text", "expected"), [
    pytest.param(["e"], "Shared packages in nexusify.toml", "Shared packages in nexusify.toml", id="1-char-keeps-words"),
    pytest.param(["e"], "password: e", "password: <hidden>", id="1-char-whole-token"),
    pytest.param(["s3cret"], "user s3cret, s3crets", "user <hidden>, s3crets", id="short-whole-token-only"),
    pytest.param([LONG], f"x{LONG}y", "x<hidden>y", id="long-anywhere"),
    pytest.param([], "GET http://ci-user:e@127.0.0.1:8080/simple/ 200",
                 "GET http://****@127.0.0.1:8080/simple/ 200", id="url-userinfo-any-length"),
    pytest.param([], "{'Authorization': 'Basic Y2ktdXNlcjpl', 'Accept': '*/*'}",
                 "{'Authorization': 'Basic <hidden>', 'Accept': '*/*'}", id="auth-header-dict"),
    pytest.param([], "authorization: Bearer abc.def", "authorization: Bearer <hidden>", id="auth-header-http"),
    pytest.param(["p@ss word"], "netrc password p%40ss%20word", "netrc password <hidden>", id="percent-encoded"),
])
def test_redactor_rules(secrets: list[str], text: str, expected: str) -> None:
    assert Redactor(secrets)(text) == expected


def test_url_userinfo_is_split_off_in_settings_and_becomes_the_credentials(tmp_path: Path) -> None:
    assert split_userinfo("https://ci%40corp:p%3Aw@nexus.example.com/x") == ("https://nexus.example.com/x", "ci@corp", "p:w")
    env = {"NEXUS_URL": f"https://ci-user:{LONG}@nexus.example.com"}
    settings = resolve_settings(tmp_path, {}, env)
    assert settings.nexus_url == "https://nexus.example.com"
    assert settings.upload_url == "https://nexus.example.com/repository/pypi-hosted/"
    assert settings.username == "ci-user" and settings.sources["username"] == "url"
    assert settings.url_password == Secret(LONG) and LONG not in repr(settings)
    # one method for every verb (verify and release's re-lock included: the URL's password is kept),
    # and one URL for the .pypirc/keyring lookups: the upload URL when there is one
    assert settings.credentials(env).auth() == ("ci-user", LONG)
    assert settings.credentials_url == settings.upload_url
    assert resolve_settings(tmp_path, {"index_url": "http://127.0.0.1:9/simple/"}, {}).credentials_url == \
        "http://127.0.0.1:9/simple/"
    # explicit NEXUS_USERNAME/NEXUS_PASSWORD win over the URL's
    both = {**env, "NEXUS_USERNAME": "other", "NEXUS_PASSWORD": "pw2"}
    s2 = resolve_settings(tmp_path, {}, both)
    assert s2.credentials(both).auth() == ("other", "pw2")
    # URL passwords anywhere in the environment are known secrets
    assert LONG in secrets_in_env(env)


def test_a_password_in_the_config_file_is_a_config_error(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nexusify.toml").write_text(f'nexus-url = "https://ci:{LONG}@nexus.example.com"\n')
    r = run_cli("audit", "--root", str(tmp_path), "--offline")
    assert r.exit_code == 2, r.output
    assert "nexusify.toml:1: `nexus-url` holds a password" in r.output
    assert LONG not in r.output


@pytest.mark.parametrize("password", [LONG, "e"], ids=["long", "1-char"])
def test_init_writes_the_url_without_credentials_and_says_where_they_belong(run_cli, monorepo: Path,  # type: ignore[no-untyped-def]
                                                                             password: str) -> None:
    env = {"HOME": "/nonexistent", "NO_COLOR": "1", "NEXUS_URL": f"http://ci-user:{password}@nexus.example.com:8081"}
    r = run_cli("--root", str(monorepo), "init", env=env)
    assert r.exit_code == 0, r.output
    text = (monorepo / "nexusify.toml").read_text()
    assert tomllib.loads(text)["nexus-url"] == "http://nexus.example.com:8081"
    assert "ci-user" not in text and f":{password}@" not in text
    assert "credentials in NEXUS_URL were not written" in r.output
    assert "NEXUS_USERNAME and NEXUS_PASSWORD" in r.output
    assert "wrote " in r.output and "nexusify.toml" in r.output and not GARBLED.search(r.output)
    if len(password) > 1:
        assert password not in r.output


def test_a_one_char_password_never_garbles_output(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"HOME": "/nonexistent", "NO_COLOR": "1", "NEXUS_PASSWORD": "e", "NEXUS_USERNAME": "ci-user"}
    r = run_cli("audit", "--root", str(monorepo), "--offline", env=env)
    assert r.exit_code == 0, r.output
    assert "Shared packages (8)" in r.output and "maestro-core-config" in r.output
    assert not GARBLED.search(r.output), r.output


def test_every_log_record_is_redacted_whatever_the_logger(caplog: pytest.LogCaptureFixture,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    redactor = Redactor([LONG])
    with caplog.at_level(logging.DEBUG), logging_for_run(redactor, verbose=2):
        logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', f"http://ci-user:{LONG}@h/simple/")
        logging.getLogger("some.library").debug("headers %r", {"Authorization": "Basic Y2k6eA=="})
        try:
            raise RuntimeError(f"boom {LONG}")
        except RuntimeError:
            logging.getLogger("x").exception("failed")
    logged = caplog.text + capsys.readouterr().err
    assert LONG not in logged and "Y2k6eA==" not in logged
    assert "HTTP Request: GET http://****@h/simple/" in logged and "RuntimeError: boom <hidden>" in logged
    assert logging.getLogRecordFactory() is logging.LogRecord  # restored


def test_audit_with_url_credentials_against_a_real_index_in_process(  # type: ignore[no-untyped-def]
        monorepo: Path, pypi_server_factory, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    server = pypi_server_factory(auth="download,update,list", password=LONG)
    url = server.simple_url.replace("http://", f"http://{server.username}:{LONG}@")
    with caplog.at_level(logging.DEBUG):
        code = cli.main(["audit", "-vv", "--json", "--root", str(monorepo), "--index-url", url],
                        env={"HOME": "/nonexistent", "NO_COLOR": "1"})
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    data = json.loads(out.out)
    assert data["index"]["reachable"] is True  # the URL's credentials were used: no 401
    assert "index-auth" not in [p["code"] for p in data["problems"]]
    assert "HTTP Request" in caplog.text  # httpx did log its requests
    for text in (out.out, out.err, caplog.text):
        assert LONG not in text


@pytest.mark.parametrize("password", [LONG, "e"], ids=["long", "1-char"])
def test_audit_vv_in_a_real_subprocess_never_prints_the_password(monorepo: Path, pypi_server_factory,  # type: ignore[no-untyped-def]
                                                                  password: str) -> None:
    server = pypi_server_factory(auth="download,update,list", password=password)
    env = {**os.environ, "HOME": str(monorepo), "NO_COLOR": "1", "PYTHONPATH": str(REPO / "src"),
           "NEXUS_REPOSITORY_URL": server.url.replace("http://", f"http://{server.username}:{password}@"),
           "NEXUS_INDEX_URL": server.simple_url.replace("http://", f"http://{server.username}:{password}@")}
    for key in ("NEXUS_USERNAME", "NEXUS_PASSWORD", "NEXUS_URL"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "nexusify", "audit", "-vv", "--root", str(monorepo)],
                          env=env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "HTTP Request: GET http://127.0.0.1" in output  # -vv showed httpx's request lines
    assert "401" not in output and "index-auth" not in output  # the credentials from the URL were used
    assert f":{password}@" not in output
    if len(password) > 1:
        assert password not in output
    assert "Shared packages (8)" in output and "Publish order" in output
    assert not GARBLED.search(output), output
