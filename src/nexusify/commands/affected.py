"""`nexusify affected [--since REF]`: what a change touches, for CI to build and deploy only that."""

from __future__ import annotations

import argparse

from nexusify.affected import Affected, affected
from nexusify.commands import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser  # listed under Arguments and Options (help: nexusify.ui.help)
    g.add_argument("--since", metavar="REF",
                   help="compare with this git ref (offline) instead of what the index holds")
    g.add_argument("--format", dest="fmt", choices=("table", "names", "deploy"), default="table",
                   help="names: only the affected consumers' names, one per line; deploy: the names of the "
                        "[deploy.services.*] whose folder is an affected consumer's, for "
                        "`nexusify deploy -e ENV $(nexusify affected --format deploy)`")


def run(args: argparse.Namespace, ctx: Context) -> int:
    result = affected(ctx.settings, since=args.since, env=ctx.env)
    code = 1 if result.errors else 0
    out = ctx.out
    if ctx.json:
        return ctx.emit(result.to_dict(), code)
    if args.fmt in ("names", "deploy"):
        for name in _deploy_names(result, ctx) if args.fmt == "deploy" else [c.name for c in result.consumers]:
            out.console.file.write(name + "\n")
        out.console.file.flush()
        for p in result.problems:
            out.err.print(str(p), markup=False)
        return code
    details = {c.name: c for c in result.changed}
    out.table(f"Shared packages affected ({len(result.packages)}; baseline: {result.baseline})",
              ["package", "path", "why"],
              [[p.name, p.path, details[p.name].why if p.name in details else "depends on " + " <- ".join(p.because)]
               for p in result.packages])
    out.table(f"Consumers affected ({len(result.consumers)})", ["consumer", "path", "because"],
              [[c.name, c.path, c.chain() if c.because else "its own files changed"] for c in result.consumers])
    for p in result.problems:
        out.print(str(p), markup=False)
    out.print("nothing changed" if result.empty else
              f"{len(result.changed)} changed, {len(result.packages)} shared package(s) and "
              f"{len(result.consumers)} consumer(s) affected", markup=False)
    return code


def _deploy_names(result: Affected, ctx: Context) -> list[str]:
    """The configured deploy services built from an affected consumer's folder."""
    from nexusify.deploy.config import load_deploy_config

    config = load_deploy_config(ctx.settings, env=ctx.env)
    folders = {(ctx.root / c.path).resolve() for c in result.consumers}
    return sorted(name for name, svc in config.services.items() if svc.folder.resolve() in folders)
