"""`nexusify deploy`: secrets -> migrate -> build -> switch -> record, or print the plan."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable

from nexusify.commands import Context
from nexusify.deploy.config.load import DeployConfig, load_deploy_config
from nexusify.deploy.kubernetes.target import deploy_kubernetes, plan_kubernetes
from nexusify.deploy.pipeline import (
    STAGES,
    DeployFailed,
    DeployPlan,
    DeployResult,
    Event,
    parse_stages,
    plan_deploy,
    run_deploy,
)
from nexusify.deploy.state.hostlock import unlock_environment
from nexusify.deploy.teardown import Found, down
from nexusify.errors import UsageError
from nexusify.extras import EXTRAS, require


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help="services to deploy (default: all configured); or `down` (remove what nexusify created "
                        "in the environment) or `unlock` (release a lock a killed deploy left)")
    parser.add_argument("-e", "--environment", required=True, help="environment to deploy to (from [deploy.environments])")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and the migration SQL (Alembic offline mode); change nothing")
    parser.add_argument("--stages", metavar="LIST",
                        help=f"comma-separated subset of {','.join(STAGES)} (secrets is added when migrate or switch need it)")
    parser.add_argument("--tag", metavar="VERSION",
                        help="image version (default: git short SHA, with -dirty for uncommitted changes)")
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="build argument for every image (never a secret: build args are stored in the image)")
    parser.add_argument("--lock-wait", type=float, metavar="SECONDS",
                        help="wait this long for another deploy of the environment (default: config `lock-wait`; 0 refuses)")
    parser.add_argument("--yes", action="store_true", help="down: remove without asking (needed when not on a terminal)")
    parser.add_argument("--purge-history", action="store_true",
                        help="down: remove the deployment history too (on the hosts and in the working copy)")


def _build_args(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--build-arg {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def render_event(ctx: Context, event: Event) -> None:
    if event.kind == "start":
        ctx.out.info(f"[{event.stage}] ...")
    elif event.kind == "done":
        ctx.out.info(f"[{event.stage}] done in {event.seconds:.2f}s")
    elif event.kind == "fail":
        ctx.out.info(f"[{event.stage}] FAILED after {event.seconds or 0:.2f}s: {event.message}")
    else:
        ctx.out.info(f"[{event.stage}] {event.message}")


def render_plan(ctx: Context, plan: DeployPlan) -> None:
    for line in plan.lines():
        ctx.out.print(line, markup=False)
    for service, sql in plan.migration_sql.items():
        ctx.out.print(f"\n-- migration SQL for {service} (Alembic offline mode; not executed)", markup=False)
        ctx.out.print(sql.rstrip(), markup=False)
    ctx.out.print("\n(dry run: nothing was changed)", markup=False)


def render_result(ctx: Context, result: DeployResult) -> None:
    rows = []
    hosts = any("host" in s for s in result.services)
    for s in result.services:
        rows.append([s.get("service"), *([s.get("host", "")] if hosts else []), s.get("previous_version") or "",
                     s.get("version"), s.get("container", ""), s.get("port", ""),
                     f"{s['switch_seconds']:.2f}s" if "switch_seconds" in s else ""])
    if rows:
        ctx.out.table(f"{result.action} to {result.environment}: {result.outcome}",
                      ["service", *(["host"] if hosts else []), "from", "to", "container", "port", "switch"], rows)
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.stages.items())
    ctx.out.print(f"{result.action} {result.outcome} in {result.duration:.2f}s ({timings})", markup=False)


def need_deploy_extra() -> None:
    """ExtraMissing (exit 2, naming ``pip install 'nexusify[deploy]'``) before anything runs when a
    module of the ``deploy`` extra is missing (looked up, not imported: boto3 is slow to import)."""
    for module in EXTRAS["deploy"]:
        if importlib.util.find_spec(module) is None:
            require("deploy", module)


def run(args: argparse.Namespace, ctx: Context) -> int:
    need_deploy_extra()
    if args.services and args.services[0] in ("down", "unlock"):
        if len(args.services) > 1:
            raise UsageError(f"`nexusify deploy {args.services[0]}` takes no service names",
                             hint=f"`nexusify deploy {args.services[0]} -e ENVIRONMENT` acts on the whole environment")
        return run_down(args, ctx) if args.services[0] == "down" else run_unlock(args, ctx)
    if args.yes or args.purge_history:
        raise UsageError("--yes and --purge-history belong to `nexusify deploy down`",
                         hint="`nexusify deploy down -e ENVIRONMENT --yes`")
    config = load_deploy_config(ctx.settings, env=ctx.env)
    if config.environment(args.environment).kubernetes is not None:
        return run_kubernetes(args, ctx, config)
    stages = parse_stages(args.stages)
    if args.dry_run:
        plan = plan_deploy(config, ctx.settings, args.environment, services=args.services or None, stages=stages,
                           version=args.tag, env=ctx.env, with_sql=True)
        if ctx.json:
            ctx.emit({"dry_run": True, **plan.to_dict()}, 0, errors=[], warnings=[])
        else:
            render_plan(ctx, plan)
        return 0
    return report(ctx, lambda: run_deploy(
        config, ctx.settings, args.environment, services=args.services or None, stages=stages, version=args.tag,
        env=ctx.env, build_args=_build_args(args.build_arg), lock_wait=args.lock_wait,
        on_event=lambda e: render_event(ctx, e)))


def run_kubernetes(args: argparse.Namespace, ctx: Context, config: DeployConfig) -> int:
    """A Kubernetes environment: print the manifests and kubectl steps, or run them."""
    if args.stages or args.lock_wait is not None:
        raise UsageError("--stages and --lock-wait are not for Kubernetes environments",
                         hint="a Kubernetes deploy runs every step; kubectl serializes what it applies")
    if args.dry_run:
        plan = plan_kubernetes(config, ctx.settings, args.environment, services=args.services or None,
                               version=args.tag, env=ctx.env)
        if ctx.json:
            return ctx.emit({"dry_run": True, **plan.to_dict()}, 0, errors=[], warnings=[])
        for line in plan.lines():
            ctx.out.print(line, markup=False)
        ctx.out.print("\n(dry run: nothing was fetched, built or applied)", markup=False)
        return 0
    plan = deploy_kubernetes(config, ctx.settings, args.environment, services=args.services or None,
                             version=args.tag, env=ctx.env, build_args=_build_args(args.build_arg),
                             on_step=ctx.out.info)
    if ctx.json:
        return ctx.emit({"dry_run": False, **plan.to_dict()}, 0, errors=[], warnings=[])
    switched = ", ".join(f"{s.target.service.name} {s.live or 'none'} -> {s.target.color}" for s in plan.switches)
    ctx.out.print(f"deployed {plan.version} to {plan.environment} (Kubernetes {plan.cluster.context}/"
                  f"{plan.cluster.namespace}): {switched}", markup=False)
    return 0


def report(ctx: Context, action: Callable[[], DeployResult]) -> int:
    """Run a deploy or rollback and show its result (a table, or JSON); on failure the partial
    result (what was switched, what was recorded) is shown before the error."""
    try:
        result = action()
    except DeployFailed as exc:
        if ctx.json:
            return ctx.emit({**exc.result.to_dict(), "error": exc.to_dict()}, exc.exit_code, errors=[exc], warnings=[])
        render_result(ctx, exc.result)
        raise
    if ctx.json:
        return ctx.emit(result.to_dict(), 0, errors=[], warnings=[])
    render_result(ctx, result)
    return 0


def _confirm(ctx: Context, environment: str, items: list[Found]) -> bool:
    ctx.out.info(f"nexusify deploy down will remove from {environment}:")
    for item in items:
        ctx.out.info(f"  {item.describe()}")
    sys.stderr.write(f"Remove these {len(items)}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def run_down(args: argparse.Namespace, ctx: Context) -> int:
    """`nexusify deploy down`: asks on a terminal; without one, refuses (exit 2) unless --yes."""
    if not args.yes and (ctx.json or not sys.stdin.isatty()):
        raise UsageError(f"`deploy down` removes every container of {args.environment}; refusing without --yes "
                         "when not run from a terminal",
                         hint=f"pass --yes; `nexusify status -e {args.environment}` shows what runs there")
    config = load_deploy_config(ctx.settings, env=ctx.env)
    env_cfg = config.environment(args.environment)
    kube = env_cfg.kubernetes
    config.engine_environment(args.environment, "deploy down", hint=None if kube is None else (
        f"remove the objects with `kubectl --context={kube.context} --namespace={kube.namespace} delete "
        f"deployment,service,secret,job,configmap -l io.nexusify.environment={env_cfg.name}` (the history, "
        "ConfigMap nexusify-history, carries no environment label and stays)"))
    result = down(config, ctx.settings, args.environment, env=ctx.env, purge_history=args.purge_history,
                  lock_wait=args.lock_wait,
                  confirm=None if args.yes else (lambda items: _confirm(ctx, args.environment, items)))
    if ctx.json:
        return ctx.emit(result.to_dict(), 1 if result.declined else 0,
                        errors=["declined: nothing was removed"] if result.declined else [], warnings=[])
    if result.declined:
        ctx.out.print("nothing was removed", markup=False)
        return 1
    if not result.removed:
        ctx.out.print(f"nothing of {result.environment} to remove", markup=False)
    else:
        ctx.out.print(f"removed from {result.environment}:", markup=False)
        for item in result.removed:
            ctx.out.print(f"  {item.describe()}", markup=False)
    if result.kept:
        ctx.out.print("history kept: " + ", ".join(i.describe() for i in result.kept), markup=False)
        ctx.out.print(f"  remove it too with `nexusify deploy down -e {result.environment} --yes --purge-history`",
                      markup=False)
    else:
        ctx.out.print("no history is kept", markup=False)
    if result.removed:
        ctx.out.print("images stay in the engines (other environments may run them); `docker image prune` "
                      "(or `podman image prune`) removes unused ones", markup=False)
    return 0


def run_unlock(args: argparse.Namespace, ctx: Context) -> int:
    """`nexusify deploy unlock`: release the lock a killed deploy left on the first host."""
    config = load_deploy_config(ctx.settings, env=ctx.env)
    config.engine_environment(args.environment, "deploy unlock",
                              hint="a Kubernetes deploy takes no lock: there is nothing to release")
    where, released = unlock_environment(config, ctx.settings, args.environment, ctx.env)
    if ctx.json:
        ctx.emit({"environment": args.environment, "where": where,
                  "released": released.to_dict() if released else None}, 0, errors=[], warnings=[])
    elif released is None:
        ctx.out.print(f"{args.environment} is not locked ({where})", markup=False)
    else:
        ctx.out.print(f"released the deploy lock of {args.environment} on {where}, held by {released.describe()}",
                      markup=False)
    return 0
