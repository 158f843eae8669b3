"""Engine failures: a transient netavark race is retried; any other engine error is named as the engine's."""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest

from nexusify import cli
from nexusify.deploy.runtime.engine import connect, start_retrying
from nexusify.deploy.runtime.objects import create_marker_container, remove_container
from nexusify.deploy.runtime.sdk import (
    Conflict,
    EngineError,
    ImageNotFound,
    NotFound,
    Transient,
    Unreachable,
    classify,
)
from nexusify.errors import DeployError

NETAVARK_RACE = ('500 Server Error: Internal Server Error ("netavark: code: 4, msg: iptables v1.8.9 (nf_tables):  '
                 'CHAIN_USER_ADD failed (File exists): chain NETAVARK-2B0EADDFC0473")')


def _api_error(text: str, status: int | None) -> BaseException:
    import docker.errors
    import requests

    response = None
    if status is not None:
        response = requests.Response()
        response.status_code = status
    error: BaseException = docker.errors.APIError("Server Error", response=response, explanation=text)
    return error


@pytest.mark.parametrize(("text", "status", "kind"), [
    pytest.param(NETAVARK_RACE, 500, Transient, id="netavark-race"),
    pytest.param("no such container: x", 404, NotFound, id="docker-404"),
    pytest.param("no such container: x", 500, NotFound, id="podman-500-gone"),
    pytest.param("x: image not known", 500, ImageNotFound, id="podman-image-gone"),
    pytest.param("the container name x is already in use", 500, Conflict, id="podman-500-taken"),
    pytest.param("Conflict", 409, Conflict, id="docker-409"),
    pytest.param("disk full", 500, EngineError, id="other"),
])
def test_an_sdk_error_is_classified_once(text: str, status: int, kind: type[EngineError]) -> None:
    typed = classify(_api_error(text, status))
    assert type(typed) is kind and isinstance(typed, DeployError)
    assert typed.status == status


def test_what_is_no_engine_error_is_left_alone() -> None:
    assert classify(ValueError("no such container")) is None  # the text alone makes nothing an engine error
    assert isinstance(classify(ConnectionRefusedError("refused")), Unreachable)


def test_the_netavark_chain_race_is_transient_and_retried() -> None:
    calls: list[int] = []

    def start() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise Transient(NETAVARK_RACE)
        return "started"

    assert start_retrying(start) == "started" and len(calls) == 2
    with pytest.raises(NotFound):  # anything else: at once, not retried
        start_retrying(lambda: (_ for _ in ()).throw(NotFound("no such image")))


@pytest.mark.engine
def test_the_engine_client_raises_typed_errors(docker_client: Any) -> None:
    """Through the engine nexusify connects, the real engine's answers arrive typed: gone, taken,
    an image missing; SDK objects it returns can be passed back to it."""
    engine = connect(None, dict(os.environ))
    name = f"nexusify-test-errors-{secrets.token_hex(4)}"
    try:
        with pytest.raises(NotFound):
            engine.client.containers.get(name)
        with pytest.raises(ImageNotFound):
            engine.client.images.get(f"localhost/nexusify-no-such-image:{secrets.token_hex(4)}")
        ident = create_marker_container(engine, name, {"io.nexusify.managed": "true"})
        with pytest.raises(Conflict):
            create_marker_container(engine, name, {"io.nexusify.managed": "true"})
        container = engine.client.containers.get(name)  # a model: its own calls are typed too
        assert container.id == ident and container.attrs["Id"] == ident
        container.remove(force=True)
        with pytest.raises(NotFound):
            container.reload()
        assert remove_container(engine, name) is False  # gone: NotFound, told as False
    finally:
        remove_container(engine, name)
        engine.close()


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
