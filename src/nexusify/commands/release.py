"""`nexusify release [PACKAGE...]`: bump, cascade, re-pin, changelog, commit, tag, publish."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from rich.markup import escape

from nexusify.commands import Context
from nexusify.errors import ConfigError, NexusifyError, OperationFailed, Problem
from nexusify.release import ReleasePlan, apply_release, plan_release, publish_released
from nexusify.release.bump import LEVELS
from nexusify.release.plan import check_worktree, refresh_locks


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
    if args.publish and not args.dry_run and not ctx.settings.upload_url:
        raise ConfigError("release --publish: no index to publish to; nothing was written",
                          hint="set --nexus-url (with --repository) or NEXUS_URL, or --repository-url for another "
                               "PyPI server")
    plan = plan_release(ctx.settings, args.packages, bump=args.bump, env=ctx.env, publish=args.publish)
    check_worktree(plan, committing=args.commit or args.publish)
    out = ctx.out
    data: dict[str, Any] = {**plan.to_dict(), "dry_run": args.dry_run, "written": False, "commit": None, "published": None}
    if args.dry_run or plan.errors:
        for s in plan.stale_locks:
            plan.problems.append(s.warning(plan.root, "refreshed after --publish"))
        data["problems"] = [p.to_dict() for p in plan.problems]
        if ctx.json:
            return ctx.emit(data, 1 if plan.errors else 0)
        _render(plan, ctx, dry=args.dry_run)
        return 1 if plan.errors else 0
    data["commit"] = apply_release(plan, commit=args.commit) if plan.files else None
    data["written"] = bool(plan.files)
    code = 0
    published = False
    report = None
    if args.publish and plan.to_publish:
        try:
            report = publish_released(ctx.settings, plan, ctx.env)
        except NexusifyError as exc:
            failed = OperationFailed(f"{_done(plan, data)}, but publishing failed: {exc.message}",
                                     hint=f"once the cause is fixed (the index is back), resume with: "
                                          f"{_resume(plan, ctx, args)}")
            failed.exit_code = exc.exit_code
            raise failed from exc
        data["published"] = report.to_dict()
        published = report.ok
        code = 0 if report.ok else 1
        if not report.ok:
            plan.problems.append(Problem("error", "publish-incomplete", None, None,
                                         f"{_done(plan, data)}, but not every package was published",
                                         f"fix the cause above, then resume with: {_resume(plan, ctx, args)}"))
    locked, data["lock_commit"] = refresh_locks(ctx.settings, plan, ctx.env, published=published,
                                                        commit=args.commit and data["commit"] is not None)
    data["locked"] = locked
    data["problems"] = [p.to_dict() for p in plan.problems]
    if ctx.json:  # a publish that failed is the publish-incomplete error among the problems
        return ctx.emit(data, code)
    _render(plan, ctx, dry=False)
    if data["commit"]:
        out.print(f"committed {str(data['commit'])[:12]} and tagged " + ", ".join(b.tag for b in plan.bumps),
                  markup=False)
    if report is not None:
        from nexusify.commands.publish import render

        render(report, ctx)
    for rel in locked:
        out.print(f"refreshed {rel}", markup=False)
    return code


def _done(plan: ReleasePlan, data: dict[str, Any]) -> str:
    """What the release did before publishing, for a message about a publish that failed."""
    if not data["written"]:
        return "nothing needed writing"
    if data["commit"]:
        return (f"the release's {len(plan.files)} file(s) were written, committed ({str(data['commit'])[:12]}) and "
                f"tagged ({', '.join(b.tag for b in plan.bumps)})")
    return f"the release's {len(plan.files)} file(s) were written (not committed)"


#: the flags that tell publish where to upload, repeated in the resume command when given
_INDEX_FLAGS = ("nexus-url", "repository", "index-repository", "repository-url", "index-url", "username", "timeout")


def _resume(plan: ReleasePlan, ctx: Context, args: argparse.Namespace) -> str:
    """The command that publishes exactly what this release was to publish (URLs without any
    password: a password is never printed)."""
    from nexusify.config import SCHEMA_BY_KEY
    from nexusify.credentials import mask_url

    cmd = ["nexusify", "publish", *plan.to_publish]
    if ctx.root != Path.cwd().resolve():
        cmd += ["--root", str(ctx.root)]
    for key in _INDEX_FLAGS:
        opt = SCHEMA_BY_KEY[key]
        value = getattr(args, opt.attr, None)
        if value is not None and opt.flag:
            cmd += [opt.flag, mask_url(str(value)) if key.endswith("url") else str(value)]
    return shlex.join(cmd)


def _render(plan: ReleasePlan, ctx: Context, dry: bool) -> None:
    out = ctx.out
    if plan.empty and not plan.errors:
        out.print("nothing to release: every shared package matches what the index holds", markup=False)
    if plan.bumps:
        title = ("Release plan (dry run: nothing written)" if dry else
                 "Release plan (stopped: nothing written)" if plan.errors else "Released")
        out.table(title,
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
        out.print(f"{'would write' if dry or plan.errors else 'wrote'} {f.rel}: {f.why}", markup=False)
    for p in plan.problems:
        out.print(str(p), markup=False)
    if plan.errors:
        out.print(f"{len(plan.errors)} problem(s) prevent the release; nothing was written", markup=False)
