"""`nexusify release [PACKAGE...]`: bump, cascade, re-pin, changelog, commit, tag, publish."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from nexusify.commands import Context
from nexusify.release import ReleasePlan, apply_release, plan_release, publish_released
from nexusify.release.bump import LEVELS
from nexusify.release.plan import refresh_locks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser  # listed under Arguments and Options (help: nexusify.ui.help)
    g.add_argument("packages", nargs="*", metavar="PACKAGE",
                   help="release these shared packages (default: every one whose sources differ from the index)")
    g.add_argument("--bump", choices=(*LEVELS, "auto"), default="auto",
                   help="the level for the changed packages; auto (default): from Conventional Commits since each "
                        "package's last <name>-v<version> tag (0.x: a breaking change bumps the minor). "
                        "Dependents always get a patch")
    g.add_argument("--dry-run", action="store_true", help="print the whole plan; write, commit and publish nothing")
    g.add_argument("--commit", action="store_true",
                   help="commit the release's files and tag each package <name>-v<version>")
    g.add_argument("--publish", action="store_true", help="then publish exactly the released packages")


def run(args: argparse.Namespace, ctx: Context) -> int:
    plan = plan_release(ctx.settings, args.packages, bump=args.bump, env=ctx.env)
    out = ctx.out
    data: dict[str, Any] = {**plan.to_dict(), "dry_run": args.dry_run, "written": False, "commit": None, "published": None}
    if args.dry_run or plan.errors:
        for s in plan.stale_locks:
            plan.problems.append(s.warning(plan.root, "refreshed after --publish"))
        data["problems"] = [p.to_dict() for p in plan.problems]
        if ctx.json:
            out.json(data)
        else:
            _render(plan, ctx, dry=True)
        return 1 if plan.errors else 0
    data["commit"] = apply_release(plan, commit=args.commit) if plan.files else None
    data["written"] = bool(plan.files)
    code = 0
    published = False
    if args.publish and plan.to_publish:
        report = publish_released(ctx.settings, plan, ctx.env)
        data["published"] = report.to_dict()
        published = report.ok
        code = 0 if report.ok else 1
    locked, data["lock_commit"] = refresh_locks(ctx.settings, plan, ctx.env, published=published,
                                                        commit=args.commit and data["commit"] is not None)
    data["locked"] = locked
    data["problems"] = [p.to_dict() for p in plan.problems]
    if ctx.json:
        out.json(data)
        return code
    _render(plan, ctx, dry=False)
    if data["commit"]:
        out.print(f"committed {str(data['commit'])[:12]} and tagged " + ", ".join(b.tag for b in plan.bumps),
                  markup=False)
    if data["published"] is not None:
        from nexusify.commands.publish import render

        render(report, ctx)
    for rel in locked:
        out.print(f"refreshed {rel}", markup=False)
    return code


def _render(plan: ReleasePlan, ctx: Context, dry: bool) -> None:
    out = ctx.out
    if plan.empty:
        out.print("nothing to release: every shared package matches what the index holds", markup=False)
    if plan.bumps:
        out.table("Release plan (dry run: nothing written)" if dry else "Released",
                  ["package", "from", "to", "level", "why"],
                  [[escape(b.name), b.old, b.new, b.level, escape(b.why + ": " + "; ".join(b.notes))]
                   for b in plan.bumps])
    if plan.pending:
        out.print("already bumped, not on the index yet (published with --publish): " + ", ".join(plan.pending),
                  markup=False)
    if plan.repins:
        out.table("Consumers re-pinned", ["consumer", "where", "package", "from", "to"],
                  [[escape(r.consumer), f"{r.file}:{r.line}", escape(r.package), escape(r.old), escape(r.new)]
                   for r in plan.repins])
    for f in plan.files:
        out.print(f"{'would write' if dry else 'wrote'} {f.rel}: {f.why}", markup=False)
    for p in plan.problems:
        out.print(str(p), markup=False)
    if plan.errors:
        out.print(f"{len(plan.errors)} problem(s) prevent the release; nothing was written", markup=False)
