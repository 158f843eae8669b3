"""`nexusify audit`: report shared packages, services, publish order and problems."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from nexusify.audit.graph import GRAPH_FORMATS, render_graph
from nexusify.audit.report import AuditReport, run_audit
from nexusify.commands import Context, add_strict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_strict(parser)
    parser.add_argument(
        "--graph", choices=GRAPH_FORMATS, metavar="{mermaid,dot}",
        help="print the dependency graph (shared packages and services) as Mermaid or Graphviz dot",
    )
    parser.add_argument(
        "--check-public", action="store_true",
        help="look shared package names up on the public index (dependency-confusion hazard); "
        "see --public-index-url",
    )
    parser.add_argument(
        "--offline", action="store_true",
        help="do not contact the configured index (no published-version status)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    report = run_audit(
        ctx.settings, env=ctx.env, check_public=bool(getattr(args, "check_public", False)),
        index=not getattr(args, "offline", False),
    )
    out = ctx.out
    graph = getattr(args, "graph", None)
    if ctx.json:
        data = report.to_dict()
        if graph:
            data["graph"] = render_graph(report, graph)
        return ctx.emit(data, ctx.verdict(len(report.errors), len(report.warnings)))
    if graph:
        out.console.file.write(render_graph(report, graph))
        out.console.file.flush()
        _summary(report, ctx, to_stderr=True)
        return ctx.verdict(len(report.errors), len(report.warnings))
    _tables(report, ctx)
    _summary(report, ctx)
    return ctx.verdict(len(report.errors), len(report.warnings))


def _table(ctx: Context, title: str, columns: list[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table whose cells are plain text (names, paths and messages hold brackets)."""
    from rich.markup import escape

    ctx.out.table(title, columns, [[escape("" if v is None else str(v)) for v in r] for r in rows])


def _tables(report: AuditReport, ctx: Context) -> None:
    out = ctx.out
    data = report.to_dict()
    index = {p["name"]: p for p in data["index"].get("packages", [])}
    show_index = bool(data["index"].get("reachable"))

    def published(name: str) -> str:
        e = index.get(name)
        if e is None:
            return "?"
        if not e["published"]:
            return "not yet"
        return "yes, differs" if e["differs"] else "yes"

    columns = ["name", "version", "path", "backend", "depends on"]
    if show_index:
        columns.append("on index")
    rows = []
    for p in data["packages"]:
        runtime = set(p["runtime_depends_on"])
        depends = ", ".join(n if n in runtime else f"{n} (dev)" for n in p["depends_on"])
        row = [p["name"], p["version"] or "?", p["path"], p["build_backend"] or "(none)", depends]
        if show_index:
            row.append(published(p["name"]))
        rows.append(row)
    _table(ctx, f"Shared packages ({len(rows)})", columns, rows)
    _table(
        ctx,
        f"Consumers ({len(data['services'])})",
        ["name", "path", "shared dependencies", "+ transitive", "Dockerfiles"],
        [[s["name"], s["path"], _with_kinds(s) or "(none)",
          ", ".join(sorted(set(s["transitive_shared_dependencies"]) - set(s["shared_dependencies"]))),
          ", ".join(d.rsplit("/", 1)[-1] for d in s["dockerfiles"])] for s in data["services"]],
    )
    for s in data["services"]:
        if s.get("uv_workspace"):
            strategy = s["uv_workspace"]["strategy"]
            if s["uv_workspace"].get("configured"):  # the stay-in-workspace setting keeps it there
                strategy = strategy.replace("stays in the uv workspace", "stays in the uv workspace (stay-in-workspace)", 1)
            out.print(f"{s['path']}: uv workspace {'root' if s['uv_workspace']['root'] == s['path'] else 'member'} "
                      f"(root {s['uv_workspace']['root']}): {strategy}", markup=False)
    cyclic = any(p.code == "dependency-cycle" for p in report.problems)
    order = " -> ".join(report.publish_order) or ("(none: the dependencies form a cycle)" if cyclic else "(none)")
    out.print("Publish order: " + order, markup=False)
    if report.tools:  # rewrite re-locks with them, verify checks with them: before any rewrite
        out.print("Tools the consumers need: " + ", ".join(
            f"{t.tool} ({'found' if t.found else f'missing: `{t.install}`'})" for t in report.tools), markup=False)
    if report.problems:
        _table(
            ctx,
            f"Problems ({len(report.problems)})",
            ["severity", "where", "problem", "what to do"],
            [[p.severity, p.location or "-", f"[{p.code}] {p.message}", p.hint or ""] for p in report.problems],
        )


def _with_kinds(service: dict[str, Any]) -> str:
    """Each shared dependency with how it is declared: by path, or by version from the index;
    ", dev" when only a development group needs it (the image does not install it)."""
    kinds = service.get("shared_dependency_kinds", {})
    runtime = set(service.get("runtime_shared_dependencies", ()))
    shown = {"name": "name only"}
    return ", ".join(f"{n} ({shown.get(kinds.get(n, 'path'), kinds.get(n, 'path'))}{'' if n in runtime else ', dev'})"
                     for n in service["shared_dependencies"])


def _summary(report: AuditReport, ctx: Context, to_stderr: bool = False) -> None:
    n_err, n_warn = len(report.errors), len(report.warnings)
    ws = report.workspace
    text = (f"{len(ws.shared())} shared package(s), {len(ws.consumers())} consumer(s): "
            f"{n_err} error(s), {n_warn} warning(s)")
    if to_stderr:
        ctx.out.err.print(text, markup=False)
        for p in report.problems:
            ctx.out.err.print(str(p), markup=False)
    else:
        ctx.out.print(text, markup=False)
