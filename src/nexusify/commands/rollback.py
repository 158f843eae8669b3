"""`nexusify rollback`: switch back to a kept version in seconds (health check, no rebuild, no DB downgrade)."""

from __future__ import annotations

import argparse

from nexusify.commands import Context
from nexusify.commands.deploy import need_deploy_extra, render_event, report
from nexusify.deploy.config.load import load_deploy_config
from nexusify.deploy.pipeline import run_rollback


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="services to roll back (default: all deployed)")
    parser.add_argument("-e", "--environment", required=True, help="environment to roll back")
    parser.add_argument("--to", metavar="VERSION",
                        help="version to go back to (default: the newest kept version other than the live one)")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS",
                        help="wait this long for a deploy of the environment to finish (default: config `lock-wait`)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    need_deploy_extra()
    config = load_deploy_config(ctx.settings, env=ctx.env)
    config.engine_environment(args.environment, "rollback")
    return report(ctx, lambda: run_rollback(
        config, ctx.settings, args.environment, services=args.services or None, to_version=args.to, env=ctx.env,
        lock_wait=args.lock_wait, on_event=lambda e: render_event(ctx, e)))
