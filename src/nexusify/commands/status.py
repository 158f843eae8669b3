"""`nexusify status`: per host, per service, the live and kept versions and health, from the hosts."""

from __future__ import annotations

import argparse

from nexusify.commands import Context
from nexusify.commands.deploy import need_deploy_extra
from nexusify.deploy.config.load import DeployConfig, load_deploy_config
from nexusify.deploy.config.placement import placement_of
from nexusify.deploy.kubernetes.cluster import kubectl_for
from nexusify.deploy.kubernetes.status import KubeServiceStatus, kubernetes_status
from nexusify.deploy.plan import make_proxy, routes_of, runtime_of
from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.state.hostset import connected_hosts
from nexusify.deploy.state.primary import primary_first
from nexusify.deploy.state.status import EnvironmentStatus, environment_status
from nexusify.deploy.traffic.proxy_container import ContainerProxy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-e", "--environment", required=True, metavar="NAME", help="environment to show")


def render(ctx: Context, report: EnvironmentStatus) -> None:
    rows = [[s.host, s.service, ", ".join(s.live) or "-", ", ".join(s.kept) or "-", s.health or "-"]
            for s in report.services]
    ctx.out.table(f"{report.environment} on {len(report.hosts)} host(s)", ["host", "service", "live", "kept", "health"],
                  rows)
    if report.lock:
        ctx.out.print(f"deploy lock held by {report.lock}", markup=False)
    for problem in report.problems:
        ctx.out.print(f"problem: {problem}", markup=False)


def render_kubernetes(ctx: Context, report: EnvironmentStatus) -> None:
    rows = []
    for s in report.services:
        assert isinstance(s, KubeServiceStatus)
        live = f"{s.live_color} {', '.join(s.live) or '(no Deployment)'}" if s.live_color else "-"
        kept = f"{s.kept_color} {', '.join(s.kept) or ''}".strip() if s.kept_ready else "-"
        rows.append([s.service, live, s.image or "-", s.health or "-", kept, s.kept_ready or "nothing kept"])
    ctx.out.table(f"{report.environment} on Kubernetes {', '.join(report.hosts)}",
                  ["service", "live", "image", "ready", "kept", "kept ready"], rows)
    for problem in report.problems:
        ctx.out.print(f"problem: {problem}", markup=False)


def run_kubernetes(ctx: Context, config: DeployConfig, environment: str) -> int:
    """Per service: the live color, its version, image and readiness, and the kept color, from kubectl."""
    env_cfg = config.environment(environment)
    report = kubernetes_status(env_cfg, kubectl_for(config, environment, ctx.env))
    if ctx.json:
        return ctx.emit(report.to_dict(), 1 if report.problems else 0, errors=report.problems, warnings=[])
    if not report.deployed:
        ctx.out.print(f"nothing is deployed to {env_cfg.name} yet (Kubernetes {report.hosts[0]})", markup=False)
    else:
        render_kubernetes(ctx, report)
    return 1 if report.problems else 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    need_deploy_extra()
    config = load_deploy_config(ctx.settings, env=ctx.env)
    if config.environment(args.environment).kubernetes is not None:
        return run_kubernetes(ctx, config, args.environment)
    env_cfg = config.environment(args.environment)
    runtimes = [runtime_of(env_cfg, svc) for svc in env_cfg.services.values()]
    placement = placement_of(config, env_cfg, ctx.env)
    proxy_for = switched_to = None
    if not placement.proxy_container:  # the private nginx: its upstream files record each switch
        nginx = make_proxy(env_cfg, ctx.settings)

        def switched_to(service: str) -> str | None:
            if service not in nginx.routes:
                return None
            target = nginx.switch(service).current()
            return target.name if target is not None else None
    else:
        assert env_cfg.proxy is not None
        routes, image = routes_of(env_cfg, env_cfg.proxy), env_cfg.proxy.image

        def proxy_for(host: str, engine: Engine) -> ContainerProxy:
            return ContainerProxy(engine, env_cfg.name, routes, image=image, host=host)

    with connected_hosts(placement, ctx.env) as hosts:
        if placement.state_on_hosts:
            hosts = primary_first(hosts, placement)
        report = environment_status(env_cfg.name, hosts, runtimes, proxy_for=proxy_for, switched_to=switched_to,
                                    lock_on_primary=placement.state_on_hosts)
    if ctx.json:
        return ctx.emit(report.to_dict(), 1 if report.problems else 0, errors=report.problems, warnings=[])
    if not report.deployed and not report.unreachable:
        ctx.out.print(f"nothing is deployed to {env_cfg.name} yet (hosts: {', '.join(report.hosts)})", markup=False)
    else:
        render(ctx, report)
    return 1 if report.problems else 0
