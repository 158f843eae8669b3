"""`nexusify rollback`: switch back to a kept version in seconds (health check, no rebuild, no DB downgrade)."""

from __future__ import annotations

import argparse

from nexusify.commands import Context
from nexusify.commands.deploy import need_deploy_extra, render_event, report
from nexusify.deploy.config.load import DeployConfig, load_deploy_config
from nexusify.deploy.kubernetes import rollback as kube
from nexusify.deploy.kubernetes.cluster import kubectl_for
from nexusify.deploy.pipeline import run_rollback
from nexusify.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="services to roll back (default: all deployed)")
    parser.add_argument("-e", "--environment", required=True, help="environment to roll back")
    parser.add_argument("--to", metavar="VERSION",
                        help="version to go back to (default: the newest kept version other than the live one)")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS",
                        help="wait this long for a deploy of the environment to finish (default: config `lock-wait`)")
    parser.add_argument("--dry-run", action="store_true",
                        help="Kubernetes environments: read the cluster and print the kubectl steps; change nothing")


def run(args: argparse.Namespace, ctx: Context) -> int:
    need_deploy_extra()
    config = load_deploy_config(ctx.settings, env=ctx.env)
    if config.environment(args.environment).kubernetes is not None:
        return run_kubernetes(args, ctx, config)
    if args.dry_run:
        raise UsageError("`rollback --dry-run` is for Kubernetes environments",
                         hint=f"`nexusify status -e {args.environment}` shows the kept versions a rollback can go to")
    return report(ctx, lambda: run_rollback(
        config, ctx.settings, args.environment, services=args.services or None, to_version=args.to, env=ctx.env,
        lock_wait=args.lock_wait, on_event=lambda e: render_event(ctx, e)))


def run_kubernetes(args: argparse.Namespace, ctx: Context, config: DeployConfig) -> int:
    """The Service selectors back to the kept colors, read from and checked on the cluster."""
    if args.lock_wait is not None:
        raise UsageError("--lock-wait is not for Kubernetes environments",
                         hint="a Kubernetes rollback is one selector patch per service; it takes no lock")
    kubectl = kubectl_for(config, args.environment, ctx.env)
    plan = kube.plan_rollback(config, args.environment, kubectl, services=args.services or None, to_version=args.to)
    if args.dry_run:
        if ctx.json:
            return ctx.emit({"dry_run": True, **plan.to_dict()}, 0, errors=[], warnings=[])
        for line in plan.lines():
            ctx.out.print(line, markup=False)
        ctx.out.print("\n(dry run: nothing was changed)", markup=False)
        return 0
    return report(ctx, lambda: kube.run_rollback(plan, kubectl, env=ctx.env, on_step=ctx.out.info))
