"""`nexusify rewrite [SERVICE...]`: services depend on shared packages by version from the index."""

from __future__ import annotations

import argparse
from pathlib import Path

from nexusify.commands import Context, add_index_auth, add_strict
from nexusify.errors import ProblemsFound
from nexusify.formats.shared_code import SharedCode
from nexusify.model import STAYS, workspace_for
from nexusify.rewrite.apply import apply_plan
from nexusify.rewrite.plan import RewritePlan, plan_rewrite
from nexusify.verify.gate import check_problems, moved_member_problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_strict(parser)
    parser.add_argument("targets", nargs="*", metavar="SERVICE",
                        help="service folders, pyproject.toml files or globs (default: every service audit finds)")
    g = parser  # listed under Arguments and Options (help: nexusify.ui.help)
    g.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if anything would change (for CI and pre-commit)")
    g.add_argument("--diff", action="store_true", help="write nothing; print unified diffs of what would change")
    g.add_argument("--from-index", action="store_true",
                   help="take versions from what the index has published instead of the shared packages' pyproject")
    g.add_argument("--lock", action=argparse.BooleanOptionalAction, default=True,
                   help="re-lock each rewritten consumer's lockfile with its own tool so that only the shared "
                        "packages' entries change (default; `--lock` is accepted as a no-op); --no-lock leaves "
                        "lockfiles alone and warns that they are stale")
    add_index_auth(g)
    g.add_argument("--no-dockerfiles", dest="dockerfiles", action="store_false",
                   help="leave Dockerfiles alone (pyproject.toml only)")


def _render(plan: RewritePlan, ctx: Context, verb: str) -> None:
    lines: list[str] = []
    for sp in plan.services:
        files = [f for f in sp.files if f.changed]
        if not files:
            if sp.by_name:
                lines.append(f"{sp.rel}: names shared packages without a version or an index "
                             f"({', '.join(sp.by_name)}), unchanged (see the warning)")
                continue
            why = "depends on shared packages by version" if sp.by_version else "no shared dependency"
            lines.append(f"{sp.rel}: {why}, unchanged")
            continue
        lines.append(f"{sp.rel}: {verb} {len(files)} file(s)")
        if sp.move is not None:
            lines.append(f"  {sp.rel} {sp.move.describe()}")
        for f in files:
            for e in f.edits:
                lines.append(f"  {f.rel}:{e.line}: {e.reason}")
    for rel in plan.staying:
        lines.append(f"{rel}: {STAYS}, unchanged")
    for p in plan.problems:
        lines.append(str(p))
    if lines:  # one print: thousands of lines cost one render, not thousands
        ctx.out.print("\n".join(lines), markup=False)


def run(args: argparse.Namespace, ctx: Context) -> int:
    dry = args.check or args.diff
    ws = workspace_for(ctx.settings)
    # --no-dockerfiles and --no-lock narrow what is written, never what --check judges
    plan = plan_rewrite(
        ctx.settings, args.targets, env=ctx.env, from_index=args.from_index, index_auth=args.index_auth,
        dockerfiles=args.dockerfiles or args.check, lock=args.lock and not dry, cwd=None, workspace=ws,
    )
    moves: dict[Path, set[str]] = {}
    for sp in plan.services:
        member = ws.project_at(sp.path)
        if sp.move is not None and member is not None and member.normalized:
            moves.setdefault(ws.root / sp.move.workspace, set()).add(member.normalized)
    if moves and (args.dockerfiles or args.check):  # any Dockerfile that syncs a member by name: refused up front
        known = {(p.path, p.line, p.message) for p in plan.problems}
        planned = {f.path: f.new for f in plan.files if f.kind == "dockerfile"}
        plan.problems += [p for p in moved_member_problems(
            ws, ws.consumers(), SharedCode.from_workspace(ws, ctx.settings.path_aliases), moves, planned)
            if (p.path, p.line, p.message) not in known]
    if args.check:
        known = {(p.path, p.line, p.message) for p in plan.problems}
        gate = check_problems(ws, ws.consumers(),
                              SharedCode.from_workspace(ws, ctx.settings.path_aliases), plan.source.url,
                              plan.source.explicit,
                              {sp.path for sp in plan.services if not any(f.changed for f in sp.files)},
                              plan.judged)
        plan.problems += [p for p in gate if (p.path, p.line, p.message) not in known]
    if plan.errors and (dry or ctx.json):
        if ctx.json:
            return ctx.emit({**plan.to_dict(), "mode": "check" if args.check else "diff" if dry else "apply",
                             "written": False}, ProblemsFound.exit_code)
        raise ProblemsFound(
            f"{len(plan.errors)} problem(s) prevent the rewrite:\n  " + "\n  ".join(str(p) for p in plan.errors),
            hint="fix them and re-run",
        )
    if dry:
        code = ctx.verdict(len(plan.errors), len(plan.warnings))
        if args.check and (plan.changed or plan.stale_lockfiles):
            code = 1
        if args.diff and not ctx.json:
            text = plan.diff()
            if text:
                ctx.out.console.file.write(text)
        n, stale = len(plan.files), len(plan.stale_lockfiles)
        if ctx.json:
            pending = [f"{n} file(s) would be rewritten, {stale} lockfile(s) re-locked; run `nexusify rewrite`"]
            errors = [*plan.errors, *(pending if args.check and (plan.changed or stale) else [])]
            return ctx.emit({**plan.to_dict(), "mode": "check" if args.check else "diff", "written": False,
                             "diff": plan.diff() if args.diff else None}, code, errors=errors, warnings=plan.warnings)
        if args.check:
            _render(plan, ctx, "would rewrite")
            ctx.out.print(f"{n} file(s) would be rewritten, {stale} lockfile(s) re-locked; run `nexusify rewrite`"
                          if n or stale else "nothing to rewrite", markup=False)
        return code
    written = apply_plan(plan)
    code = ctx.verdict(len(plan.errors), len(plan.warnings))
    if ctx.json:
        return ctx.emit({**plan.to_dict(), "mode": "apply", "written": True}, code)
    _render(plan, ctx, "rewrote")
    ctx.out.print(f"{len(written)} file(s) rewritten" if written else "nothing to rewrite", markup=False)
    return code
