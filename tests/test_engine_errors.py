"""Engine failures: a transient netavark race is retried; any other engine error is named as the engine's."""

from __future__ import annotations

import pytest

from nexusify import cli
from nexusify.deploy.engine import is_transient, start_retrying

NETAVARK_RACE = ('500 Server Error: Internal Server Error ("netavark: code: 4, msg: iptables v1.8.9 (nf_tables):  '
                 'CHAIN_USER_ADD failed (File exists): chain NETAVARK-2B0EADDFC0473")')


def test_the_netavark_chain_race_is_transient_and_retried() -> None:
    assert is_transient(RuntimeError(NETAVARK_RACE))
    assert not is_transient(RuntimeError("no such image"))
    calls: list[int] = []

    def start() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise RuntimeError(NETAVARK_RACE)
        return "started"

    assert start_retrying(start) == "started" and len(calls) == 2
    with pytest.raises(RuntimeError, match="no such image"):
        start_retrying(lambda: (_ for _ in ()).throw(RuntimeError("no such image")))


def test_an_engine_error_is_reported_as_the_engines_not_as_a_nexusify_bug(monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import docker.errors  # the deploy extra, part of the dev install the tests run in

    from nexusify.commands import audit

    def boom(ns: object, ctx: object) -> int:
        raise docker.errors.APIError("500 Server Error: image not known")

    monkeypatch.setattr(audit, "run", boom)
    code = cli.main(["audit", "--offline"], env={})
    err = capsys.readouterr().err
    assert code == 1
    assert "the container engine failed" in err and "image not known" in err
    assert "internal error" not in err
