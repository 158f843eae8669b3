"""`nexusify history`: the deployment record of an environment, as a table or JSON."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from nexusify.commands import Context
from nexusify.commands.deploy import need_deploy_extra
from nexusify.config import suggest
from nexusify.deploy.config.load import load_deploy_config
from nexusify.deploy.config.placement import placement_of
from nexusify.deploy.kubernetes.cluster import kubectl_for
from nexusify.deploy.kubernetes.history import ConfigMapHistory
from nexusify.deploy.state.backend import state_backend
from nexusify.deploy.state.history import DeploymentRecord, read_history
from nexusify.deploy.state.hostset import connected_hosts
from nexusify.errors import ConfigError, DeployError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-e", "--environment", metavar="NAME",
                        help="environment to show (default: the only one configured)")
    parser.add_argument("--service", metavar="NAME", action="append",
                        help="only deployments that touched this service (repeatable)")
    parser.add_argument("-n", "--limit", metavar="N", type=int, default=20,
                        help="show the last N records (default 20; 0 = all)")


def known_environments(ctx: Context) -> list[str]:
    """Environments in the config file plus any that have recorded history."""
    names: list[str] = []
    envs = ctx.settings.deploy.get("environments") if isinstance(ctx.settings.deploy, dict) else None
    if isinstance(envs, dict):
        names.extend(str(n) for n in envs)
    state = Path(ctx.settings.state_path) / "deploy"
    if state.is_dir():
        names.extend(p.name for p in sorted(state.iterdir()) if (p / "history.jsonl").is_file())
    return list(dict.fromkeys(names))


def _environment(args: argparse.Namespace, ctx: Context) -> str:
    known = known_environments(ctx)
    name: str | None = args.environment
    if name is None:
        if len(known) == 1:
            return known[0]
        raise UsageError(
            "which environment? pass --environment NAME",
            hint=f"environments: {', '.join(known)}" if known else "no environment is configured or has history yet",
        )
    if name not in known:
        near = suggest(name, known)
        raise ConfigError(
            f"unknown environment `{name}`" + (f"; did you mean `{near}`?" if near else ""),
            path=ctx.settings.config_path,
            hint=f"environments: {', '.join(known)}" if known else "no environment is configured or has history yet",
        )
    return name


def _services_cell(rec: DeploymentRecord) -> str:
    parts = []
    for s in rec.services:
        text = f"{s.name} {s.version}"
        if s.previous_version and s.previous_version != s.version:
            text = f"{s.name} {s.previous_version} → {s.version}"
        if s.outcome and s.outcome != rec.outcome:
            text += f" ({s.outcome})"
        parts.append(text)
    return "\n".join(parts)


def _migrations_cell(rec: DeploymentRecord) -> str:
    parts = []
    for s in rec.services:
        if s.migration_after is None and s.migration_before is None:
            continue
        if s.migration_before == s.migration_after:
            parts.append(f"{s.name} {s.migration_after} (no change)")
        else:
            parts.append(f"{s.name} {s.migration_before or 'base'} → {s.migration_after or '?'}")
    return "\n".join(parts)


def _records(ctx: Context, environment: str) -> tuple[list[DeploymentRecord], list[str]]:
    """The environment's history (:meth:`StateBackend.records`: the local records, merged by id
    with those on its hosts when it keeps its history there; a fresh clone has only those); plus
    the hosts that could not be read. An environment no longer configured: its local records."""
    configured = ctx.settings.deploy.get("environments") if isinstance(ctx.settings.deploy, dict) else None
    if not isinstance(configured, dict) or environment not in configured:
        return read_history(ctx.settings.state_path, environment), []
    config = load_deploy_config(ctx.settings, env=ctx.env)
    env_cfg = config.environment(environment)
    if env_cfg.kubernetes is not None:  # kept in the cluster: every clone reads the same records
        return ConfigMapHistory(kubectl_for(config, environment, ctx.env), environment).records()
    placement = placement_of(config, env_cfg, ctx.env)
    if not placement.state_on_hosts:
        return state_backend(ctx.settings, placement, [], ctx.env).records()
    need_deploy_extra()  # only to reach the hosts: a local history needs no engine
    with contextlib.ExitStack() as stack:
        try:
            hosts = stack.enter_context(connected_hosts(placement, ctx.env))
        except DeployError as exc:  # a host down hides no record this working copy has
            return read_history(ctx.settings.state_path, environment), [f"the hosts' history was not read: {exc.message}"]
        return state_backend(ctx.settings, placement, hosts, ctx.env).records()


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.limit < 0:
        raise UsageError("--limit must be 0 or more")
    environment = _environment(args, ctx)
    records, unread = _records(ctx, environment)
    for problem in unread:
        ctx.out.info(f"warning: {problem}")
    if args.service:
        wanted = set(args.service)
        records = [r for r in records if wanted & {s.name for s in r.services}]
    if args.limit:
        records = records[-args.limit:]
    if ctx.json:
        data: dict[str, Any] = {"environment": environment, "records": [r.to_dict() for r in records],
                                "unread_hosts": unread}
        return ctx.emit(data, 0, errors=[], warnings=unread)
    if not records:
        ctx.out.info(f"no deployments recorded for environment `{environment}` yet")
        return 0
    rows = []
    for r in reversed(records):  # newest first
        rows.append([
            r.started_at, r.action, r.outcome, r.who, _services_cell(r), _migrations_cell(r),
            f"{r.duration:.1f}s", r.id,
        ])
    ctx.out.table(f"deployments of {environment} (newest first)",
                  ["when (UTC)", "action", "outcome", "who", "services", "migrations", "took", "id"], rows)
    failed = [r for r in records if r.error]
    if failed and ctx.out.verbose:
        for r in failed:
            ctx.out.print(f"{r.id}: {r.error}", markup=False)
    return 0
