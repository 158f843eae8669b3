"""``hosts`` of an environment and ``proxy.kind = "container"``: parsed into HostSpecs, errors at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusify.deploy.runtime.hosts import HostSpec, network_name, proxy_name
from nexusify.errors import ConfigError, ConfigErrors
from tests.test_deploy_config import _load, _project

BASE = """\
[deploy.services.api]
folder = "services/api"
container-port = 8000
public-port = 8080

[deploy.environments.prod.proxy]
kind = "container"
image = "localhost/nginx:stack"
"""


def test_hosts_parse_to_specs(tmp_path: Path) -> None:
    root = _project(tmp_path, BASE + """
[deploy.environments.prod]
hosts = ["ssh://deploy@127.0.0.2:2222", "tcp://10.0.0.7:2376", "unix:///run/podman.sock",
         {url = "ssh://deploy@web2", bind = "10.0.0.5"}]
""")
    env = _load(root).environment("prod")
    assert env.hosts == (HostSpec("ssh://deploy@127.0.0.2:2222"), HostSpec("tcp://10.0.0.7:2376"),
                         HostSpec("unix:///run/podman.sock"), HostSpec("ssh://deploy@web2", bind="10.0.0.5"))
    assert [h.name for h in env.hosts] == ["deploy@127.0.0.2:2222", "10.0.0.7:2376", "/run/podman.sock", "deploy@web2"]
    assert env.proxy is not None and env.proxy.kind == "container" and env.proxy.image == "localhost/nginx:stack"
    assert network_name("prod") == "nexusify-prod" and proxy_name("prod") == "nexusify-prod-proxy"


@pytest.mark.parametrize("engine", ["ssh://-oProxyCommand=x", "ssh://u:pw@h", "ssh://h/path"])
def test_an_ssh_engine_follows_the_hosts_rule(tmp_path: Path, engine: str) -> None:
    """`engine = "ssh://..."` rides the same ssh transport as hosts: the same address rule."""
    root = _project(tmp_path, f'[deploy]\nengine = "{engine}"\n' + BASE)
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        _load(root)
    assert "engine" in str(info.value)


def test_no_hosts_keeps_the_single_engine(tmp_path: Path) -> None:
    root = _project(tmp_path, BASE.replace('kind = "container"\nimage = "localhost/nginx:stack"\n', ""))
    assert _load(root).environment("prod").hosts == ()


@pytest.mark.parametrize(("hosts", "message"), [
    ('["http://h:1"]', "unknown scheme 'http'"),
    ('["ssh://u:pw@h"]', "holds a password"),
    ('["tcp://h"]', "expected a port"),
    ('[{url = "ssh://h", bind = "not-an-ip"}]', "expected an IP address for bind"),
    ('[{url = "ssh://h", bnd = "10.0.0.1"}]', "did you mean `bind`"),
    ('["ssh://h", "ssh://h"]', "listed twice"),
    ('["ssh://-oProxyCommand=x"]', "unexpected characters"),
    ('["ssh://-oProxyCommand=x@h"]', "unexpected characters"),
    ('[]', "non-empty list"),
])
def test_bad_hosts_are_errors_at_their_line(tmp_path: Path, hosts: str, message: str) -> None:
    root = _project(tmp_path, BASE + f"\n[deploy.environments.prod]\nhosts = {hosts}\n")
    with pytest.raises(ConfigError) as info:
        _load(root)
    errors = info.value.errors if isinstance(info.value, ConfigErrors) else [info.value]
    found = [e for e in errors if message in str(e)]
    assert found, [str(e) for e in errors]
    line = next(i for i, t in enumerate((root / "nexusify.toml").read_text().splitlines(), 1) if t.startswith("hosts"))
    assert found[0].line == line
    assert "pw" not in str(info.value)


def test_hosts_need_the_container_proxy(tmp_path: Path) -> None:
    root = _project(tmp_path, BASE.replace('kind = "container"\nimage = "localhost/nginx:stack"\n', "")
                    + '\n[deploy.environments.prod]\nhosts = ["ssh://h"]\n')
    with pytest.raises(ConfigError, match="proxy container on each host"):
        _load(root)


def test_the_plan_names_the_hosts_and_the_proxy_container(tmp_path: Path) -> None:
    from nexusify.config import resolve_settings
    from nexusify.deploy.plan import plan_deploy

    root = _project(tmp_path, BASE + '\n[deploy.environments.prod]\nhosts = ["ssh://deploy@web1", "ssh://deploy@web2"]\n')
    settings = resolve_settings(root, env={})
    plan = plan_deploy(_load(root), settings, "prod", stages=["switch"], version="v1")
    text = "\n".join(plan.lines())
    assert "on 2 hosts (deploy@web1, deploy@web2)" in text
    assert "point the proxy container 8080 at it" in text.replace("0.0.0.0:", "").replace("127.0.0.1:", "")


def test_primary_names_the_lock_host_whatever_the_order(tmp_path: Path) -> None:
    """The lock and the migrations live on the first host; `primary` makes that one stay first."""
    for order in ('"ssh://deploy@web1", "ssh://deploy@web2"', '"ssh://deploy@web2", "ssh://deploy@web1"'):
        root = _project(tmp_path / order[15:19], BASE + f'[deploy.environments.prod]\nhosts = [{order}]\nprimary = "deploy@web1"\n')
        assert [h.name for h in _load(root).environment("prod").hosts] == ["deploy@web1", "deploy@web2"]
    root = _project(tmp_path / "default", BASE + '[deploy.environments.prod]\nhosts = ["ssh://b", "ssh://a"]\n')
    assert [h.name for h in _load(root).environment("prod").hosts] == ["b", "a"]  # default: the first listed
    root = _project(tmp_path / "bad", BASE + '[deploy.environments.prod]\nhosts = ["ssh://web1"]\nprimary = "ssh://web9"\n')
    with pytest.raises((ConfigError, ConfigErrors), match="not one of `hosts`"):
        _load(root)
